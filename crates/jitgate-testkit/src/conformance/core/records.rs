//! The core group's checks of what the gate writes into the audit chain through a store:
//! refusals and uses, which are audit-only commits (no request or grant written).

use super::super::*;
use jitgate_core::audit::AuditAction;
use jitgate_core::UseRecording;

/// A refused attempt commits an audit record and nothing else: the store takes such a commit
/// (no request or grant written), and, with an audit log, the record names who tried.
pub async fn refusals_are_recorded(store: Arc<dyn Store>) {
    let (gate, _, _) = fixtures::gate(store.clone());
    let RequestOutcome::Pending(r) = gate.request(ask(restart("orders"), 30)).await.unwrap() else {
        panic!("pending")
    };
    let refused = gate.approve(r.id, &sam(), None).await.unwrap_err();
    assert!(refused.is_refusal(), "{refused}");
    let stored = store.read_request(r.id).await.unwrap().unwrap();
    assert_eq!(stored, r, "the refusal changed nothing but the audit chain");
    gate.flush_audit_buffer()
        .await
        .expect("the store takes the buffered refusal");
    if store.audit_log().is_some() {
        let trail = audit_all(&store).await;
        let last = trail.last().expect("records");
        assert_eq!(last.entry.action, jitgate_core::audit::AuditAction::Refused);
        assert_eq!(last.entry.actor, sam());
        assert_eq!(last.entry.request_id, r.id);
        verify(&trail).expect("the chain still verifies");
    }
    gate.approve(r.id, &lee(), None)
        .await
        .expect("the request is still open to others");
}

/// Every allowed call through a grant leaves a `GrantUsed` record: buffered ones when flushed,
/// synchronous ones at once; each names the grant, the call's parameters' digest and the
/// replica, and the chain still verifies.
pub async fn uses_are_recorded(store: Arc<dyn Store>) {
    let gate_with = |recording| {
        Gate::builder()
            .policy(Arc::new(fixtures::policy()))
            .destination(crate::fixtures::security_alerts())
            .store(store.clone())
            .clock(Arc::new(ManualClock::default()))
            .use_recording(recording)
            .replica("conformance-1")
            .build()
            .expect("gate")
    };
    let buffered = gate_with(UseRecording::default());
    let grant = match buffered
        .request(ask(fixtures::restart_staging(), 30))
        .await
        .expect("request")
    {
        RequestOutcome::Granted { grant, .. } => grant,
        other => panic!("staging restarts are auto-approved, got {other:?}"),
    };
    let calls: Vec<_> = ["INC-1", "INC-2"]
        .iter()
        .map(|t| fixtures::restart_staging().with_attr("ticket", *t))
        .collect();
    for call in &calls {
        assert!(buffered.authorize(call, &sam()).await.is_allowed());
    }
    assert_eq!(
        buffered
            .flush_audit_buffer()
            .await
            .expect("the store takes a batch of uses"),
        2
    );
    let synchronous = gate_with(UseRecording::Synchronous);
    assert!(synchronous.authorize(&calls[0], &sam()).await.is_allowed());
    if store.audit_log().is_some() {
        let trail = audit_all(&store).await;
        let uses: Vec<_> = trail
            .iter()
            .filter(|r| r.entry.action == AuditAction::GrantUsed)
            .map(|r| &r.entry)
            .collect();
        assert_eq!(uses.len(), 3, "one record per allowed call");
        let bindings: Vec<_> = uses.iter().map(|e| e.binding.clone().expect("a digest")).collect();
        let expected: Vec<_> = [&calls[0], &calls[1], &calls[0]]
            .iter()
            .map(|c| c.binding().0)
            .collect();
        assert_eq!(bindings, expected, "each record carries its call's digest, in order");
        for e in uses {
            assert_eq!(e.grant_id, Some(grant.id));
            assert_eq!(e.principal, sam());
            assert_eq!(e.replica.as_deref(), Some("conformance-1"));
        }
        verify(&trail).expect("the chain still verifies");
    }
}
