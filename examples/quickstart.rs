//! The jitgate quickstart, in memory, no set-up: `cargo run --example quickstart`.
//!
//! Sam, an SRE, wants to restart the production orders database. The Cedar policies in
//! `examples/policies/` say that is not a standing permission: one SRE lead must approve, for
//! at most an hour, and a reason is required.

use std::sync::Arc;

use jitgate::cedar::{entities_from_json, CedarPolicy, StaticEntities};
use jitgate::chrono::{Duration, TimeZone, Utc};
use jitgate::{
    Action, Decision, Destination, EntityRef, Gate, ManualClock, MemoryNotifier, MemoryStore, NewRequest,
    RequestOutcome, TracingNotifier,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let e = EntityRef::new;
    let (sam, lee) = (e("User", "sam"), e("User", "lee"));

    // 1. The policies: the service's schema, its Cedar policies, and who is in which team.
    let policy = CedarPolicy::builder()
        .schema(
            "examples/policies/app.cedarschema",
            include_str!("policies/app.cedarschema"),
        )
        .policies("examples/policies/access.cedar", include_str!("policies/access.cedar"))
        .entities(Arc::new(StaticEntities(entities_from_json(include_str!(
            "policies/entities.json"
        ))?)))
        .build()
        .await?;

    // 2. The engine, on the in-memory store, with a clock we can move.
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap()));
    let store = Arc::new(MemoryStore::new());
    let notifier = Arc::new(MemoryNotifier::new());
    let gate = Gate::builder()
        .policy(Arc::new(policy))
        .store(store.clone())
        .notifier(notifier.clone())
        // The policies allow break-glass, so its alerts need a destination of their own: the
        // security team's channel (here, the log).
        .destination(
            Destination::new("security", Arc::new(TracingNotifier))
                .kinds(["break_glass_used", "break_glass_acknowledged"]),
        )
        .clock(clock.clone())
        .replica("quickstart-1")
        .build()?;
    // Every allowed use of a grant is recorded; the writer stores the records in batches,
    // off `authorize`'s path, and writes what is left when it is told to stop.
    let (stop_writer, stop) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn({
        let gate = gate.clone();
        async move {
            gate.run_audit_writer(async {
                stop.await.ok();
            })
            .await
        }
    });

    let restart = Action::new(e("Action", "db_restart"), e("Database", "orders-prod"));
    println!("== {sam} wants to {}", restart.scope);

    // 3. authorize says: not now, but you may ask — and names the flow.
    println!("{:<22} -> {}", "authorize", gate.authorize(&restart, &sam).await);

    // 4. Sam asks, with a reason.
    let ask = NewRequest::new(sam.clone(), restart.clone(), Duration::minutes(45))
        .with_justification("INC-4411: orders-prod connection pool wedged");
    let RequestOutcome::Pending(request) = gate.request(ask).await? else {
        return Err("expected the request to wait for review".into());
    };
    println!(
        "{:<22} -> {} is {} (decide before {})",
        "request", request.id, request.state, request.deadline
    );

    // 5. Sam tries to approve his own request: refused.
    match gate.approve(request.id, &sam, Some("trust me")).await {
        Err(err) => println!("{:<22} -> refused: {err}", format!("approve by {sam}")),
        Ok(_) => return Err("self-approval must be refused".into()),
    }
    // The refusal's record waits in the audit buffer with uses; the writer would store it
    // within 200 ms, but this story's clock jumps, so write it now.
    gate.flush_audit_buffer().await?;

    // 6. Lee, a lead, approves ten minutes later.
    clock.advance(Duration::minutes(10));
    let outcome = gate
        .approve(request.id, &lee, Some("go ahead, page me if it fails"))
        .await?;
    let grant = outcome.grant.ok_or("one lead's approval completes the flow")?;
    println!(
        "{:<22} -> grant {} from {} until {}",
        format!("approve by {lee}"),
        grant.id,
        grant.window.not_before(),
        grant.window.expires_at()
    );

    // 7. Now authorize allows, through the grant, and the use is recorded. The writer would
    // store the record within 200 ms; this story's clock is about to jump, so write it now.
    println!("{:<22} -> {}", "authorize", gate.authorize(&restart, &sam).await);
    gate.flush_audit_buffer().await?;

    // 8. Time passes beyond the grant's end: it no longer allows, sweep or not.
    clock.advance(Duration::minutes(46));
    let after = gate.authorize(&restart, &sam).await;
    println!("{:<22} -> {after}", "authorize (46 min on)");
    assert!(matches!(after, Decision::NeedsApproval { .. }));
    let swept = gate.sweep().await?;
    println!("{:<22} -> {} grant(s) expired", "sweep", swept.grants_expired);

    // 9. Why, for a chat bot or a CLI.
    println!("\n== explain\n{}", gate.explain(&restart, &sam).await);

    // 10. The audit trail, verified, with the grant's use. (Stopping the writer writes any
    // use still buffered.)
    stop_writer.send(()).ok();
    writer.await?;
    let head = gate.verify_audit().await?.head;
    println!(
        "== audit trail ({} records, chain verified, head {}…)",
        head.seq,
        &head.hash[..16]
    );
    for r in store.audit_records() {
        let e = &r.entry;
        println!(
            "#{:<2} {} {:<16} by {:<26} {}{}",
            r.seq,
            e.at.format("%H:%M"),
            format!("{:?}", e.action),
            e.actor.to_string(),
            e.text.as_deref().map(|t| format!("\"{t}\" ")).unwrap_or_default()
                + &e.binding
                    .as_deref()
                    .map(|b| format!("call {}… on {} ", &b[..12], e.replica.as_deref().unwrap_or("?")))
                    .unwrap_or_default(),
            if e.policy_ids.is_empty() {
                String::new()
            } else {
                format!("[{}]", e.policy_ids.join(", "))
            },
        );
    }
    // Notifications went out in the background (a commit wakes the gate's dispatcher; no
    // verb waits for a notifier). One more round makes sure all are out before printing.
    gate.deliver_outbox().await?;
    let kinds: Vec<String> = notifier
        .events()
        .iter()
        .map(|e| {
            format!("{:?}", e.kind)
                .split([' ', '{'])
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    println!("\n== notifications sent: {}", kinds.join(", "));
    Ok(())
}
