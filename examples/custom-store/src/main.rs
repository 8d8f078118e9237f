//! The quickstart's story on [`VecStore`], a store of one's own with the core trait alone:
//! `cargo run -p jitgate-example-custom-store`.

use std::sync::Arc;

use jitgate::cedar::{entities_from_json, CedarPolicy, StaticEntities};
use jitgate::chrono::{Duration, TimeZone, Utc};
use jitgate::{Action, Decision, EntityRef, Error, Gate, ManualClock, NewRequest, RequestOutcome};
use jitgate_example_custom_store::{block_on, VecStore};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    block_on(story())
}

async fn story() -> Result<(), Box<dyn std::error::Error>> {
    let e = EntityRef::new;
    let (sam, lee) = (e("User", "sam"), e("User", "lee"));
    let policy = CedarPolicy::builder()
        .schema("app.cedarschema", include_str!("../../policies/app.cedarschema"))
        .policies("access.cedar", include_str!("../../policies/access.cedar"))
        .entities(Arc::new(StaticEntities(entities_from_json(include_str!(
            "../../policies/entities.json"
        ))?)))
        .build()
        .await?;
    let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap()));
    let gate = Gate::builder()
        .policy(Arc::new(policy))
        .store(Arc::new(VecStore::default()))
        .clock(clock.clone())
        .build()?;
    for capability in gate.missing_capabilities() {
        println!(
            "{:<22} -> off: {}",
            format!("no {capability}"),
            capability.verbs().join(", ")
        );
    }

    let restart = Action::new(e("Action", "db_restart"), e("Database", "orders-prod"));
    println!("== {sam} wants to {}", restart.scope);
    println!("{:<22} -> {}", "authorize", gate.authorize(&restart, &sam).await);
    let ask = NewRequest::new(sam.clone(), restart.clone(), Duration::minutes(45))
        .with_justification("INC-4411: orders-prod connection pool wedged");
    let RequestOutcome::Pending(request) = gate.request(ask).await? else {
        return Err("expected the request to wait for review".into());
    };
    println!("{:<22} -> {} is {}", "request", request.id, request.state);
    match gate.approve(request.id, &sam, Some("trust me")).await {
        Err(err) => println!("{:<22} -> refused: {err}", format!("approve by {sam}")),
        Ok(_) => return Err("self-approval must be refused".into()),
    }
    let grant = gate
        .approve(request.id, &lee, Some("go ahead"))
        .await?
        .grant
        .ok_or("one lead's approval completes the flow")?;
    println!(
        "{:<22} -> grant {} until {}",
        format!("approve by {lee}"),
        grant.id,
        grant.window.expires_at()
    );
    let allowed = gate.authorize(&restart, &sam).await;
    println!("{:<22} -> {allowed}", "authorize");
    if !allowed.is_allowed() {
        return Err("the grant must allow".into());
    }
    // The use is recorded too: a store with only the core trait takes audit records in commits.
    println!(
        "{:<22} -> {} record(s) written",
        "flush_audit_buffer",
        gate.flush_audit_buffer().await?
    );
    gate.revoke(grant.id, &lee, Some("fixed")).await?;
    let after = gate.authorize(&restart, &sam).await;
    println!("{:<22} -> {after}", "authorize (revoked)");
    if !matches!(after, Decision::NeedsApproval { .. }) {
        return Err("a revoked grant must not allow".into());
    }
    match gate.sweep().await {
        Err(err @ Error::Unsupported { .. }) => println!("{:<22} -> {err}", "sweep"),
        other => return Err(format!("sweep needs DueWork, got {other:?}").into()),
    }
    Ok(())
}
