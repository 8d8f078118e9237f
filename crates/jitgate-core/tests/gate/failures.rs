//! Failures deny (fail closed); the builder refuses to build without its parts.

use super::*;
use jitgate_testkit::faulty::{Capabilities, FaultyStore};

struct BrokenPolicy;
impl Policy for BrokenPolicy {
    fn evaluate(&self, _: &EntityRef, _: &Action) -> Result<PolicyDecision, PolicyError> {
        Err(PolicyError::msg("entity provider unreachable"))
    }
    fn reviewer_standing(&self, _: &EntityRef, _: &AccessRequest) -> Result<ReviewerStanding, PolicyError> {
        Err(PolicyError::msg("entity provider unreachable"))
    }
    fn may_revoke(&self, _: &EntityRef, _: &Grant, _: &AccessRequest) -> Result<bool, PolicyError> {
        Err(PolicyError::msg("entity provider unreachable"))
    }
}

#[tokio::test]
async fn policy_and_store_failures_deny() {
    let gate = Gate::builder()
        .policy(Arc::new(BrokenPolicy))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
    let d = gate.authorize(&read_logs(), &sam()).await;
    assert!(
        matches!(&d, Decision::Deny { reason: DenyReason::PolicyError(m), .. } if m.contains("unreachable")),
        "{d:?}"
    );

    let store = Arc::new(FaultyStore::new(Capabilities::All));
    store.fail("live_grants");
    let gate = Gate::builder()
        .policy(Arc::new(policy()))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(store)
        .build()
        .unwrap();
    let d = gate.authorize(&restart("db"), &sam()).await;
    assert!(
        matches!(&d, Decision::Deny { reason: DenyReason::StoreError(m), .. } if m.contains("connection reset")),
        "{d:?}"
    );
    assert!(!gate.explain(&restart("db"), &sam()).await.decision.is_allowed());
}

#[test]
fn the_builder_refuses_to_build_without_policy_or_store() {
    assert_eq!(
        Gate::builder()
            .store(Arc::new(MemoryStore::new()))
            .build()
            .unwrap_err()
            .missing(),
        [GatePart::Policy]
    );
    assert_eq!(
        Gate::builder()
            .policy(Arc::new(policy()))
            .destination(jitgate_testkit::fixtures::security_alerts())
            .build()
            .unwrap_err()
            .missing(),
        [GatePart::Store]
    );
    let both = Gate::builder().build().unwrap_err();
    assert_eq!(
        both.missing(),
        [GatePart::Policy, GatePart::Store],
        "every missing part, not the first"
    );
    assert!(
        both.to_string().contains("a policy") && both.to_string().contains("a store"),
        "{both}"
    );
}

#[tokio::test]
async fn durations_up_to_the_maximum_are_errors_not_panics() {
    // A reminder lead and a backoff too long to add to now: sweeps and retries still run.
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::default());
    let gate = Gate::builder()
        .policy(Arc::new(policy()))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(store)
        .clock(clock.clone())
        .expiry_reminder(Duration::MAX)
        .dispatch_config(DispatchConfig::default().with_backoff(Duration::MAX, Duration::MAX))
        .build()
        .unwrap();
    let req = pending(&gate, ask(restart("db"), 30)).await;
    let grant = gate.approve(req.id, &lee(), None).await.unwrap().grant.unwrap();
    let report = gate.sweep().await.unwrap();
    assert_eq!(
        report.reminders_sent, 1,
        "a lead beyond the end of time reminds of the running grant"
    );
    let mut forever = ask(restart("other"), 30);
    forever.duration = Duration::MAX;
    assert!(matches!(
        gate.request(forever).await,
        Err(Error::Limit(LimitError::DurationTooLong { .. }))
    ));
    assert!(matches!(
        gate.extend(grant.id, &sam(), Duration::MAX, None).await,
        Err(Error::Limit(LimitError::DurationTooLong { .. }))
    ));
    // A flow whose maximum and TTL are the longest durations there are.
    let gate = Gate::builder()
        .policy(Arc::new(
            RuleTable::builder()
                .eligible(
                    "forever",
                    Pattern::Any,
                    Pattern::Any,
                    Pattern::Any,
                    Flow::new(Duration::MAX)
                        .with_request_ttl(Duration::MAX)
                        .with_auto_approve(true),
                )
                .build()
                .unwrap(),
        ))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
    let out = gate.request(ask(restart("db"), 30)).await;
    assert!(
        matches!(
            out,
            Err(Error::Transition(TransitionError::Time(TimeError::OutOfRange)))
        ),
        "{out:?}"
    );
}

/// A refusal the store fails to record is still the answer the caller gets (recording is
/// best effort; the failure is logged).
#[tokio::test]
async fn a_refusal_that_cannot_be_recorded_is_still_a_refusal() {
    let store = Arc::new(FaultyStore::new(Capabilities::All));
    let gate = Gate::builder()
        .policy(Arc::new(policy()))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(store.clone())
        .use_recording(UseRecording::Synchronous)
        .build()
        .unwrap();
    let req = pending(&gate, ask(restart("db"), 30)).await;
    store.fail("commit");
    let err = gate.approve(req.id, &sam(), None).await.unwrap_err();
    assert!(
        matches!(err, Error::Transition(TransitionError::SelfApproval { .. })),
        "{err:?}"
    );
    store.heal();
    let trail = gate
        .request_audit(req.id, &PageRequest::first(100))
        .await
        .unwrap()
        .items;
    assert!(
        trail
            .iter()
            .all(|r| r.entry.action != jitgate_core::audit::AuditAction::Refused),
        "nothing was recorded"
    );
}
