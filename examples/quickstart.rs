//! The jitgate quickstart, in memory, no set-up: `cargo run --example quickstart`.
//!
//! Sam, an SRE, wants to restart the production orders database. Restarting it is not a
//! standing permission: one SRE lead must approve, for at most an hour.

use std::sync::Arc;

use jitgate::chrono::{Duration, TimeZone, Utc};
use jitgate::{
    Action, Decision, EntityRef, Flow, Gate, ManualClock, MemoryNotifier, MemoryStore, NewRequest, Pattern,
    RequestOutcome, Requirement, RuleTable,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let e = EntityRef::new;
    let (sam, lee) = (e("User", "sam"), e("User", "lee"));

    // 1. The policy: SREs may ask to restart databases; one SRE lead approves; at most 1 h;
    //    the request waits 30 min for a decision; a reason is required.
    let policy = RuleTable::builder()
        .member(sam.clone(), e("Team", "sre"))
        .member(lee.clone(), e("Team", "sre-leads"))
        .standing(
            "read-logs",
            Pattern::In(e("Team", "sre")),
            Pattern::Is(e("Action", "read_logs")),
            Pattern::Any,
        )
        .eligible(
            "prod-db-restart",
            Pattern::In(e("Team", "sre")),
            Pattern::Is(e("Action", "db_restart")),
            Pattern::Any,
            Flow::new(Duration::hours(1))
                .with_requirement(Requirement::new(e("Team", "sre-leads"), 1))
                .with_request_ttl(Duration::minutes(30))
                .with_reason_required(true),
        )
        .build()?;

    // 2. The engine, on the in-memory store, with a clock we can move.
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap()));
    let store = Arc::new(MemoryStore::new());
    let notifier = Arc::new(MemoryNotifier::new());
    let gate = Gate::builder()
        .policy(Arc::new(policy))
        .store(store.clone())
        .notifier(notifier.clone())
        .clock(clock.clone())
        .build()?;

    let restart = Action::new(e("Action", "db_restart"), e("Database", "orders-prod"));
    println!("== {sam} wants to {}", restart.scope);

    // 3. authorize says: not now, but you may ask — and names the flow.
    let decision = gate.authorize(&restart, &sam).await;
    println!("authorize            -> {decision}");

    // 4. Sam asks, with a reason.
    let ask = NewRequest::new(sam.clone(), restart.clone(), Duration::minutes(45))
        .with_justification("INC-4411: orders-prod connection pool wedged");
    let RequestOutcome::Pending(request) = gate.request(ask).await? else {
        return Err("expected the request to wait for review".into());
    };
    println!(
        "request              -> {} is {} (decide before {})",
        request.id, request.state, request.deadline
    );

    // 5. Sam tries to approve his own request: refused.
    match gate.approve(request.id, &sam, Some("trust me")).await {
        Err(err) => println!("approve by {sam}   -> refused: {err}"),
        Ok(_) => return Err("self-approval must be refused".into()),
    }

    // 6. Lee, a lead, approves ten minutes later.
    clock.advance(Duration::minutes(10));
    let outcome = gate
        .approve(request.id, &lee, Some("go ahead, page me if it fails"))
        .await?;
    let grant = outcome.grant.ok_or("one lead's approval completes the flow")?;
    println!(
        "approve by {lee}   -> grant {} from {} until {}",
        grant.id,
        grant.window.not_before(),
        grant.window.expires_at()
    );

    // 7. Now authorize allows, through the grant.
    println!("authorize            -> {}", gate.authorize(&restart, &sam).await);

    // 8. Time passes beyond the grant's end: it no longer allows, sweep or not.
    clock.advance(Duration::minutes(46));
    let after = gate.authorize(&restart, &sam).await;
    println!("authorize (46 min on) -> {after}");
    assert!(matches!(after, Decision::NeedsApproval { .. }));
    let swept = gate.sweep().await?;
    println!("sweep                -> {} grant(s) expired", swept.grants_expired);

    // 9. The audit trail, verified.
    let head = gate.verify_audit().await?;
    println!(
        "\n== audit trail ({} records, chain verified, head {}…)",
        head.seq,
        &head.hash[..16]
    );
    for r in store.audit_records() {
        let e = &r.entry;
        println!(
            "#{:<2} {} {:<24} by {:<14} {}{}",
            r.seq,
            e.at.format("%H:%M"),
            format!("{:?}", e.action),
            e.actor.to_string(),
            e.text.as_deref().map(|t| format!("\"{t}\" ")).unwrap_or_default(),
            if e.policy_ids.is_empty() {
                String::new()
            } else {
                format!("[{}]", e.policy_ids.join(", "))
            },
        );
    }
    println!(
        "\n== notifications sent: {}",
        notifier
            .events()
            .iter()
            .map(|e| format!("{:?}", e.kind))
            .map(|k| k.split([' ', '{']).next().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
