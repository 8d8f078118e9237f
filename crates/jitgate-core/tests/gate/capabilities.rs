//! A store with only the core `Store` trait: it serves the verbs that decide and commit, and
//! the verbs that need a missing capability say which one.

use super::*;
use jitgate_testkit::faulty::{Capabilities, FaultyStore};

fn core_only_gate() -> (Gate, Arc<ManualClock>) {
    let store = Arc::new(FaultyStore::new(Capabilities::CoreOnly));
    let clock = Arc::new(ManualClock::default());
    let gate = Gate::builder()
        .policy(Arc::new(policy()))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(store)
        .clock(clock.clone())
        .build()
        .expect("a core-only store builds a gate");
    (gate, clock)
}

jitgate_testkit::store_conformance!(|| async { Some(Arc::new(FaultyStore::new(Capabilities::CoreOnly)) as Arc<dyn Store>) }; core);

#[tokio::test]
async fn a_core_only_store_serves_authorize_request_review_cancel_and_revoke() {
    let (gate, _) = core_only_gate();
    assert_eq!(gate.missing_capabilities(), Capability::ALL.to_vec());
    let restart = restart("orders-prod");
    assert!(matches!(
        gate.authorize(&restart, &sam()).await,
        Decision::NeedsApproval { .. }
    ));
    let req = pending(&gate, ask(restart.clone(), 30)).await;
    let grant = gate
        .approve(req.id, &lee(), Some("go"))
        .await
        .unwrap()
        .grant
        .expect("granted");
    assert_eq!(
        gate.authorize(&restart, &sam()).await,
        Decision::Allow {
            basis: Basis::Grant(grant.id),
            policy_version: gate.policy_version()
        }
    );
    gate.revoke(grant.id, &lee(), Some("done")).await.unwrap();
    assert!(!gate.authorize(&restart, &sam()).await.is_allowed());

    let denied = pending(&gate, ask(restart.clone(), 30)).await;
    let out = gate.deny(denied.id, &lin(), Some("not now")).await.unwrap();
    assert_eq!(out.request.state, RequestState::Denied);
    let cancelled = pending(&gate, ask(restart.clone(), 30)).await;
    assert_eq!(
        gate.cancel(cancelled.id, &sam()).await.unwrap().state,
        RequestState::Cancelled
    );
}

#[tokio::test]
async fn verbs_that_need_a_missing_capability_name_it() {
    let (gate, _) = core_only_gate();
    let page = PageRequest::first(10);
    let unsupported = |e: Error| match e {
        Error::Unsupported { verb, capability } => (verb, capability),
        other => panic!("expected Unsupported, got {other:?}"),
    };
    assert_eq!(
        unsupported(gate.sweep().await.unwrap_err()),
        ("sweep", Capability::DueWork)
    );
    assert_eq!(
        unsupported(gate.revoke_all(&sam(), &lee(), None).await.unwrap_err()),
        ("revoke_all", Capability::Listings)
    );
    assert_eq!(
        unsupported(gate.pending_for_reviewer(&lee(), &page).await.unwrap_err()),
        ("pending_for_reviewer", Capability::Listings)
    );
    assert_eq!(
        unsupported(gate.pending_requests(&page).await.unwrap_err()),
        ("pending_requests", Capability::Listings)
    );
    assert_eq!(
        unsupported(gate.dead_letters(&page).await.unwrap_err()),
        ("dead_letters", Capability::Outbox)
    );
    assert_eq!(
        unsupported(gate.request_audit(RequestId::new_random(), &page).await.unwrap_err()),
        ("request_audit", Capability::AuditLog)
    );
    assert!(matches!(
        gate.verify_audit().await,
        Err(AuditError::Store(StoreError::Unsupported {
            capability: Capability::AuditLog
        }))
    ));
    assert!(matches!(
        gate.deliver_outbox().await,
        Err(StoreError::Unsupported {
            capability: Capability::Outbox
        })
    ));
    for c in Capability::ALL {
        assert!(!c.verbs().is_empty(), "{c} names the verbs it turns on");
    }
    assert!(Capability::DueWork.verbs().contains(&"sweep"));
}

#[tokio::test]
async fn the_memory_store_has_every_capability() {
    let (gate, ..) = setup();
    assert!(gate.missing_capabilities().is_empty());
}
