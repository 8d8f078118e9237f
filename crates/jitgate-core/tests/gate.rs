//! The engine end to end on the in-memory store, through the fixture policy.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::Duration;
use jitgate_core::*;
use jitgate_testkit::fixtures::*;

fn setup() -> (Gate, Arc<ManualClock>, Arc<MemoryNotifier>, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let (gate, clock, notifier) = gate(store.clone());
    (gate, clock, notifier, store)
}

async fn pending(gate: &Gate, ask: NewRequest) -> AccessRequest {
    match gate.request(ask).await.expect("request") {
        RequestOutcome::Pending(r) => r,
        other => panic!("expected a pending request, got {other:?}"),
    }
}

fn transition(e: Error) -> machine::TransitionError {
    match e {
        Error::Transition(t) => t,
        other => panic!("expected a transition error, got {other:?}"),
    }
}

#[tokio::test]
async fn authorize_gives_each_of_the_three_answers() {
    let (gate, ..) = setup();
    assert_eq!(
        gate.authorize(&read_logs(), &sam()).await,
        Decision::Allow { basis: Basis::Standing }
    );
    match gate.authorize(&restart("orders-prod"), &sam()).await {
        Decision::NeedsApproval { flow } => {
            assert_eq!(flow.requirements, vec![Requirement::new(team("sre-leads"), 1)]);
            assert_eq!(flow.policy_ids, vec!["prod-db-restart".to_string()]);
        }
        other => panic!("expected NeedsApproval, got {other:?}"),
    }
    assert_eq!(
        gate.authorize(&drop_db("orders-prod"), &sam()).await,
        Decision::Deny {
            reason: DenyReason::Forbidden {
                policy_ids: vec!["no-drop".into()]
            }
        }
    );
    assert_eq!(
        gate.authorize(&read_logs(), &user("nobody")).await,
        Decision::Deny {
            reason: DenyReason::NotEligible
        }
    );
}

#[tokio::test]
async fn the_full_life_cycle_ends_in_an_allow_and_then_expires() {
    let (gate, clock, notifier, _) = setup();
    let req = pending(&gate, ask(restart("orders-prod"), 30)).await;
    assert_eq!(req.deadline, req.created_at + Duration::minutes(30));
    let approved_at = clock.now() + Duration::minutes(5);
    clock.set(approved_at);
    let out = gate.approve(req.id, &lee(), Some("go ahead")).await.unwrap();
    let grant = out.grant.expect("one lead is enough");
    assert_eq!(out.request.state, RequestState::Approved);
    assert_eq!(grant.window.not_before(), approved_at, "the grant starts at approval");
    assert_eq!(
        grant.window.expires_at(),
        approved_at + Duration::minutes(30),
        "counted from approval"
    );
    assert_eq!(
        gate.authorize(&restart("orders-prod"), &sam()).await,
        Decision::Allow {
            basis: Basis::Grant(grant.id)
        }
    );
    assert!(
        !gate.authorize(&restart("orders-other"), &sam()).await.is_allowed(),
        "grant is scoped to one resource"
    );
    clock.advance(Duration::minutes(30));
    assert!(matches!(
        gate.authorize(&restart("orders-prod"), &sam()).await,
        Decision::NeedsApproval { .. }
    ));
    let kinds: Vec<_> = notifier.events().into_iter().map(|e| e.kind).collect();
    assert!(matches!(kinds[0], EventKind::ApprovalNeeded { .. }));
    assert!(kinds.contains(&EventKind::Approved));
    assert!(kinds.contains(&EventKind::GrantActive));
    gate.verify_audit().await.expect("audit verifies");
}

#[tokio::test]
async fn self_approval_is_refused() {
    let (gate, ..) = setup();
    let mut ask = ask(restart("db"), 30);
    ask.principal = lee(); // a lead asking for themselves
    let req = pending(&gate, ask).await;
    let err = transition(gate.approve(req.id, &lee(), None).await.unwrap_err());
    assert!(matches!(err, machine::TransitionError::SelfApproval { .. }), "{err}");
    assert!(err.to_string().contains("self-approval"));
}

#[tokio::test]
async fn a_reviewer_outside_every_reviewer_set_is_refused() {
    let (gate, ..) = setup();
    let req = pending(&gate, ask(restart("db"), 30)).await;
    let err = transition(gate.approve(req.id, &sec(), None).await.unwrap_err());
    assert!(matches!(err, machine::TransitionError::NotEligibleReviewer { .. }));
    assert!(
        err.to_string().contains(r#"Team::"sre-leads""#),
        "the error says who may review: {err}"
    );
    let err = transition(gate.deny(req.id, &sec(), None).await.unwrap_err());
    assert!(
        matches!(err, machine::TransitionError::NotEligibleReviewer { .. }),
        "an ineligible deny counts for nothing"
    );
    assert_eq!(gate.get_request(req.id).await.unwrap().state, RequestState::Pending);
}

#[tokio::test]
async fn two_requirements_need_two_distinct_people() {
    let (gate, ..) = setup();
    let req = pending(&gate, ask(migrate("db"), 30)).await;
    let out = gate.approve(req.id, &ada(), None).await.unwrap();
    assert!(out.grant.is_none(), "one person in both sets is not lead AND security");
    let err = transition(gate.approve(req.id, &ada(), None).await.unwrap_err());
    assert!(matches!(err, machine::TransitionError::DuplicateReview { .. }));
    // Ada counts as security, so Lee (lead only) completes it.
    let out = gate.approve(req.id, &lee(), None).await.unwrap();
    assert!(out.grant.is_some());
}

#[tokio::test]
async fn two_leads_do_not_satisfy_a_security_requirement() {
    let (gate, ..) = setup();
    let req = pending(&gate, ask(migrate("db"), 30)).await;
    assert!(gate.approve(req.id, &lee(), None).await.unwrap().grant.is_none());
    assert!(gate.approve(req.id, &lin(), None).await.unwrap().grant.is_none());
    assert!(gate.approve(req.id, &sec(), None).await.unwrap().grant.is_some());
}

#[tokio::test]
async fn the_first_eligible_deny_closes_the_request_for_good() {
    let (gate, ..) = setup();
    let req = pending(&gate, ask(migrate("db"), 30)).await;
    gate.approve(req.id, &lee(), None).await.unwrap();
    let out = gate.deny(req.id, &sec(), Some("not during the freeze")).await.unwrap();
    assert_eq!(out.request.state, RequestState::Denied);
    let err = transition(gate.approve(req.id, &ada(), None).await.unwrap_err());
    assert!(matches!(
        err,
        machine::TransitionError::RequestClosed {
            state: RequestState::Denied,
            ..
        }
    ));
    assert_eq!(gate.get_request(req.id).await.unwrap().state, RequestState::Denied);
}

#[tokio::test]
async fn a_reason_is_required_where_the_flow_says_so() {
    let (gate, ..) = setup();
    let mut a = ask(migrate("db"), 30);
    a.justification = Some("   ".into());
    let err = transition(gate.request(a).await.unwrap_err());
    assert!(matches!(err, machine::TransitionError::ReasonRequired { .. }));
}

#[tokio::test]
async fn a_duration_above_the_maximum_is_refused() {
    let (gate, ..) = setup();
    let err = transition(gate.request(ask(restart("db"), 61)).await.unwrap_err());
    assert!(matches!(
        err,
        machine::TransitionError::Time(time::TimeError::DurationAboveMaximum {
            wanted_seconds: 3660,
            max_seconds: 3600
        })
    ));
}

#[tokio::test]
async fn a_request_past_its_ttl_cannot_be_approved_and_is_swept() {
    let (gate, clock, ..) = setup();
    let req = pending(&gate, ask(restart("db"), 30)).await;
    clock.advance(Duration::minutes(30));
    let err = transition(gate.approve(req.id, &lee(), None).await.unwrap_err());
    assert!(matches!(
        err,
        machine::TransitionError::Time(time::TimeError::RequestExpired { .. })
    ));
    assert_eq!(gate.sweep().await.unwrap().requests_expired, 1);
    assert_eq!(gate.get_request(req.id).await.unwrap().state, RequestState::Expired);
}

#[tokio::test]
async fn a_covered_request_returns_the_grant_and_a_repeated_one_the_pending_request() {
    let (gate, ..) = setup();
    let req = pending(&gate, ask(restart("db"), 30)).await;
    match gate.request(ask(restart("db"), 20)).await.unwrap() {
        RequestOutcome::AlreadyPending(r) => assert_eq!(r.id, req.id),
        other => panic!("{other:?}"),
    }
    let grant = gate.approve(req.id, &lee(), None).await.unwrap().grant.unwrap();
    match gate.request(ask(restart("db"), 20)).await.unwrap() {
        RequestOutcome::AlreadyCovered(g) => assert_eq!(g.id, grant.id),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        gate.request(ask(read_logs(), 5)).await.unwrap(),
        RequestOutcome::NotNeeded
    );
    assert!(matches!(
        gate.request(ask(drop_db("db"), 5)).await,
        Err(Error::Forbidden { .. })
    ));
    let mut nobody = ask(restart("db"), 5);
    nobody.principal = user("nobody");
    assert!(matches!(gate.request(nobody).await, Err(Error::NotEligible { .. })));
}

#[tokio::test]
async fn overlapping_grants_are_independent() {
    let (gate, clock, ..) = setup();
    let req = pending(&gate, ask(restart("db"), 30)).await;
    let first = gate.approve(req.id, &lee(), None).await.unwrap().grant.unwrap();
    clock.advance(Duration::minutes(20));
    let RequestOutcome::Pending(ext) = gate
        .extend(first.id, &sam(), Duration::minutes(30), Some("still busy"))
        .await
        .unwrap()
    else {
        panic!("an extension is a new request")
    };
    assert_eq!(ext.extends, Some(first.id));
    let second = gate.approve(ext.id, &lin(), None).await.unwrap().grant.unwrap();
    gate.revoke(first.id, &lee(), Some("rotate")).await.unwrap();
    assert_eq!(
        gate.authorize(&restart("db"), &sam()).await,
        Decision::Allow {
            basis: Basis::Grant(second.id)
        }
    );
    assert!(matches!(
        gate.extend(second.id, &lee(), Duration::minutes(5), None).await,
        Err(Error::NotGrantHolder { .. })
    ));
}

#[tokio::test]
async fn break_glass_is_granted_at_once_bounded_and_flagged_for_review() {
    let (gate, clock, notifier, _) = setup();
    let now = clock.now();
    let RequestOutcome::Granted { request, grant } = gate.request(ask(restart("db"), 60).break_glass()).await.unwrap()
    else {
        panic!("break-glass is granted at once")
    };
    assert_eq!(request.state, RequestState::Approved);
    assert_eq!(
        grant.window.expires_at(),
        now + Duration::minutes(15),
        "clamped to the break-glass bound"
    );
    assert!(gate.authorize(&restart("db"), &sam()).await.is_allowed());
    assert!(notifier
        .events()
        .iter()
        .any(|e| matches!(e.kind, EventKind::BreakGlassUsed { .. })));
    let listed = gate.unacknowledged_break_glass(&PageRequest::first(10)).await.unwrap();
    assert_eq!(listed.items.iter().map(|g| g.id).collect::<Vec<_>>(), vec![grant.id]);

    let self_ack = transition(gate.acknowledge(grant.id, &sam(), None).await.unwrap_err());
    assert!(matches!(self_ack, machine::TransitionError::SelfApproval { .. }));
    let outsider = transition(gate.acknowledge(grant.id, &sec(), None).await.unwrap_err());
    assert!(matches!(outsider, machine::TransitionError::NotEligibleReviewer { .. }));
    let acked = gate.acknowledge(grant.id, &lee(), Some("justified")).await.unwrap();
    assert_eq!(acked.acknowledged.as_ref().map(|a| a.by.clone()), Some(lee()));
    assert!(gate
        .unacknowledged_break_glass(&PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
    let again = transition(gate.acknowledge(grant.id, &lin(), None).await.unwrap_err());
    assert!(matches!(again, machine::TransitionError::AlreadyAcknowledged { .. }));
}

#[tokio::test]
async fn break_glass_needs_a_reason_and_a_flow_that_allows_it() {
    let (gate, ..) = setup();
    let mut no_reason = ask(restart("db"), 10).break_glass();
    no_reason.justification = None;
    assert!(matches!(
        transition(gate.request(no_reason).await.unwrap_err()),
        machine::TransitionError::ReasonRequired { .. }
    ));
    let err = transition(gate.request(ask(migrate("db"), 10).break_glass()).await.unwrap_err());
    assert!(matches!(err, machine::TransitionError::BreakGlassNotAllowed { .. }));
}

#[tokio::test]
async fn auto_approved_flows_grant_without_review() {
    let (gate, ..) = setup();
    let out = gate.request(ask(restart_staging(), 60)).await.unwrap();
    let RequestOutcome::Granted { grant, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(
        gate.authorize(&restart_staging(), &sam()).await,
        Decision::Allow {
            basis: Basis::Grant(grant.id)
        }
    );
}

#[tokio::test]
async fn a_scheduled_grant_allows_only_from_its_start() {
    let (gate, clock, notifier, _) = setup();
    let start = clock.now() + Duration::hours(2);
    let req = pending(&gate, ask(restart("db"), 30).starting_at(start)).await;
    let grant = gate.approve(req.id, &lee(), None).await.unwrap().grant.unwrap();
    assert_eq!(grant.state, GrantState::Scheduled);
    assert_eq!(
        (grant.window.not_before(), grant.window.expires_at()),
        (start, start + Duration::minutes(30))
    );
    assert!(!gate.authorize(&restart("db"), &sam()).await.is_allowed());
    clock.set(start);
    assert!(
        gate.authorize(&restart("db"), &sam()).await.is_allowed(),
        "allowed from its start, sweep or not"
    );
    assert_eq!(gate.sweep().await.unwrap().grants_activated, 1);
    assert!(notifier
        .wait_for(StdDuration::from_secs(1), |e| e.kind == EventKind::GrantActive)
        .await
        .is_some());
}

#[tokio::test]
async fn a_grant_allows_only_while_policy_still_makes_its_holder_eligible() {
    let store = Arc::new(MemoryStore::new());
    let (gate, clock, notifier) = gate(store.clone());
    let req = pending(&gate, ask(restart("db"), 30)).await;
    gate.approve(req.id, &lee(), None).await.unwrap().grant.unwrap();
    // Sam leaves the SRE team: a policy without his membership.
    let without_sam = RuleTable::builder()
        .member(lee(), team("sre-leads"))
        .eligible(
            "prod-db-restart",
            Pattern::In(team("sre")),
            Pattern::Is(EntityRef::new("Action", "db_restart")),
            Pattern::Any,
            Flow::new(Duration::hours(1)).with_requirement(Requirement::new(team("sre-leads"), 1)),
        )
        .build()
        .unwrap();
    let after = gate_on(Arc::new(without_sam), store, clock, notifier);
    assert_eq!(
        after.authorize(&restart("db"), &sam()).await,
        Decision::Deny {
            reason: DenyReason::NotEligible
        }
    );
}

#[tokio::test]
async fn forbid_beats_an_active_grant() {
    let store = Arc::new(MemoryStore::new());
    let (gate, clock, notifier) = gate(store.clone());
    let req = pending(&gate, ask(restart("db"), 30)).await;
    gate.approve(req.id, &lee(), None).await.unwrap();
    let freeze = RuleTable::builder()
        .member(sam(), team("sre"))
        .eligible(
            "prod-db-restart",
            Pattern::In(team("sre")),
            Pattern::Any,
            Pattern::Any,
            Flow::new(Duration::hours(1)).with_requirement(Requirement::new(team("sre-leads"), 1)),
        )
        .forbid(
            "change-freeze",
            Pattern::Any,
            Pattern::Any,
            Pattern::Is(EntityRef::new("Database", "db")),
        )
        .build()
        .unwrap();
    let frozen = gate_on(Arc::new(freeze), store, clock, notifier);
    assert_eq!(
        frozen.authorize(&restart("db"), &sam()).await,
        Decision::Deny {
            reason: DenyReason::Forbidden {
                policy_ids: vec!["change-freeze".into()]
            }
        }
    );
}

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

/// A store whose reads of the grant index fail.
struct BrokenIndex(MemoryStore);

#[async_trait]
impl Store for BrokenIndex {
    async fn commit(&self, c: Commit) -> Result<(), StoreError> {
        self.0.commit(c).await
    }
    async fn request(&self, id: RequestId) -> Result<Option<AccessRequest>, StoreError> {
        self.0.request(id).await
    }
    async fn grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        self.0.grant(id).await
    }
    async fn live_grants(&self, _: &EntityRef, _: &Scope) -> Result<Vec<Grant>, StoreError> {
        Err(StoreError::Backend("connection reset".into()))
    }
    async fn live_grants_of(&self, p: &EntityRef, page: &PageRequest) -> Result<Page<Grant>, StoreError> {
        self.0.live_grants_of(p, page).await
    }
    async fn pending_request(&self, p: &EntityRef, s: &Scope) -> Result<Option<AccessRequest>, StoreError> {
        self.0.pending_request(p, s).await
    }
    async fn pending_requests(&self, page: &PageRequest) -> Result<Page<AccessRequest>, StoreError> {
        self.0.pending_requests(page).await
    }
    async fn due_requests(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        n: usize,
    ) -> Result<Vec<AccessRequest>, StoreError> {
        self.0.due_requests(now, n).await
    }
    async fn due_grants(&self, now: chrono::DateTime<chrono::Utc>, n: usize) -> Result<Vec<Grant>, StoreError> {
        self.0.due_grants(now, n).await
    }
    async fn unacknowledged_break_glass(&self, page: &PageRequest) -> Result<Page<Grant>, StoreError> {
        self.0.unacknowledged_break_glass(page).await
    }
    async fn request_audit(&self, id: RequestId, page: &PageRequest) -> Result<Page<audit::AuditRecord>, StoreError> {
        self.0.request_audit(id, page).await
    }
    async fn audit_log(&self, after: u64, n: usize) -> Result<Vec<audit::AuditRecord>, StoreError> {
        self.0.audit_log(after, n).await
    }
    async fn outbox_claim(&self, now: chrono::DateTime<chrono::Utc>, n: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        self.0.outbox_claim(now, n).await
    }
    async fn outbox_done(&self, seqs: &[u64]) -> Result<(), StoreError> {
        self.0.outbox_done(seqs).await
    }
    async fn outbox_retry(
        &self,
        seq: u64,
        n: u32,
        next: chrono::DateTime<chrono::Utc>,
        e: &str,
    ) -> Result<(), StoreError> {
        self.0.outbox_retry(seq, n, next, e).await
    }
    async fn outbox_park(&self, seq: u64, n: u32, e: &str, a: audit::AuditEntry) -> Result<(), StoreError> {
        self.0.outbox_park(seq, n, e, a).await
    }
    async fn outbox_dead(&self, page: &PageRequest) -> Result<Page<OutboxEntry>, StoreError> {
        self.0.outbox_dead(page).await
    }
    async fn due_reminders(&self, before: chrono::DateTime<chrono::Utc>, n: usize) -> Result<Vec<Grant>, StoreError> {
        self.0.due_reminders(before, n).await
    }
}

#[tokio::test]
async fn policy_and_store_failures_deny() {
    let gate = Gate::builder()
        .policy(Arc::new(BrokenPolicy))
        .store(Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
    let d = gate.authorize(&read_logs(), &sam()).await;
    assert!(
        matches!(&d, Decision::Deny { reason: DenyReason::PolicyError(m) } if m.contains("unreachable")),
        "{d:?}"
    );

    let gate = Gate::builder()
        .policy(Arc::new(policy()))
        .store(Arc::new(BrokenIndex(MemoryStore::new())))
        .build()
        .unwrap();
    let d = gate.authorize(&restart("db"), &sam()).await;
    assert!(
        matches!(&d, Decision::Deny { reason: DenyReason::StoreError(m) } if m.contains("connection reset")),
        "{d:?}"
    );
    assert!(!gate.explain(&restart("db"), &sam()).await.decision.is_allowed());
}

struct FlakyNotifier {
    inner: MemoryNotifier,
    fail: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Notifier for FlakyNotifier {
    async fn notify(&self, delivery: &Delivery) -> Result<(), NotifyError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(NotifyError::new(delivery, "receiver down"));
        }
        self.inner.notify(delivery).await
    }
}

fn flaky_gate(max_attempts: u32) -> (Gate, Arc<FlakyNotifier>, Arc<ManualClock>) {
    let notifier = Arc::new(FlakyNotifier {
        inner: MemoryNotifier::new(),
        fail: true.into(),
    });
    let clock = Arc::new(ManualClock::default());
    let gate = Gate::builder()
        .policy(Arc::new(policy()))
        .store(Arc::new(MemoryStore::new()))
        .clock(clock.clone())
        .notifier(notifier.clone())
        .dispatch_config(DispatchConfig {
            max_attempts,
            ..DispatchConfig::default()
        })
        .build()
        .unwrap();
    (gate, notifier, clock)
}

#[tokio::test]
async fn undelivered_events_are_retried_after_their_backoff_and_delivered_once() {
    let (gate, notifier, clock) = flaky_gate(8);
    let req = pending(&gate, ask(restart("db"), 30)).await;
    gate.approve(req.id, &lee(), None).await.unwrap();
    assert!(notifier.inner.events().is_empty());
    notifier.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        gate.deliver_outbox().await.unwrap(),
        0,
        "not due before the backoff passes"
    );
    clock.advance(Duration::seconds(2));
    assert_eq!(
        gate.deliver_outbox().await.unwrap(),
        4,
        "ApprovalNeeded, Approved, GrantActive, RequestResolved"
    );
    assert_eq!(gate.deliver_outbox().await.unwrap(), 0);
    let deliveries = notifier.inner.deliveries();
    let ids: std::collections::HashSet<_> = deliveries.iter().map(|d| d.event.id.clone()).collect();
    assert_eq!(ids.len(), 4, "stable, distinct event ids");
    assert!(deliveries.iter().all(|d| d.attempt == 2), "second attempt each");
}

#[tokio::test]
async fn events_failing_every_attempt_are_parked_dead_listed_and_audited() {
    let (gate, notifier, clock) = flaky_gate(3);
    let req = pending(&gate, ask(restart("db"), 30)).await;
    for _ in 0..5 {
        clock.advance(Duration::minutes(10));
        gate.deliver_outbox().await.unwrap();
    }
    let dead = gate.dead_letters(&PageRequest::first(10)).await.unwrap().items;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(
        dead[0].last_error.as_deref().map(|e| e.contains("receiver down")),
        Some(true)
    );
    assert!(matches!(dead[0].event.kind, EventKind::ApprovalNeeded { .. }));
    let trail = gate.request_audit(req.id, &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(trail.last().unwrap().entry.action, audit::AuditAction::NotificationDead);
    notifier.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    clock.advance(Duration::days(1));
    assert_eq!(
        gate.deliver_outbox().await.unwrap(),
        0,
        "a dead event is never retried by itself"
    );
    gate.verify_audit().await.unwrap();
}

#[tokio::test]
async fn events_are_routed_to_the_people_who_must_act() {
    let (gate, _, notifier, _) = setup();
    let req = pending(&gate, ask(migrate("db"), 30)).await;
    gate.approve(req.id, &lee(), None).await.unwrap();
    gate.approve(req.id, &sec(), None).await.unwrap();
    let d = notifier.deliveries();
    let needed = d
        .iter()
        .find(|d| matches!(d.event.kind, EventKind::ApprovalNeeded { .. }))
        .unwrap();
    assert_eq!(needed.to, vec![team("sre-leads"), team("security")]);
    assert_eq!(needed.except, vec![sam()], "not the requester");
    let approved = d.iter().find(|d| d.event.kind == EventKind::Approved).unwrap();
    assert_eq!(approved.to, vec![sam()]);
    let resolved = d
        .iter()
        .find(|d| matches!(d.event.kind, EventKind::RequestResolved { .. }))
        .unwrap();
    assert_eq!(resolved.to, vec![team("sre-leads"), team("security")]);
    assert_eq!(
        resolved.except,
        vec![sam(), sec()],
        "not the requester, not the decider"
    );
}

#[tokio::test]
async fn the_sweep_sends_one_expiry_reminder_per_grant() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::default());
    let notifier = Arc::new(MemoryNotifier::new());
    let gate = Gate::builder()
        .policy(Arc::new(policy()))
        .store(store)
        .clock(clock.clone())
        .notifier(notifier.clone())
        .expiry_reminder(Duration::minutes(10))
        .build()
        .unwrap();
    let req = pending(&gate, ask(restart("db"), 30)).await;
    gate.approve(req.id, &lee(), None).await.unwrap();
    assert_eq!(gate.sweep().await.unwrap().reminders_sent, 0, "30 minutes left");
    clock.advance(Duration::minutes(21));
    assert_eq!(gate.sweep().await.unwrap().reminders_sent, 1);
    assert_eq!(gate.sweep().await.unwrap().reminders_sent, 0, "sent once");
    let reminders: Vec<_> = notifier
        .deliveries()
        .into_iter()
        .filter(|d| matches!(d.event.kind, EventKind::GrantExpiring { .. }))
        .collect();
    assert_eq!(reminders.len(), 1);
    assert_eq!(reminders[0].to, vec![sam()]);
}

#[tokio::test]
async fn explain_names_the_flow_and_reviewers_without_consuming_uses() {
    let (gate, ..) = setup();
    let text = gate.explain(&restart("db"), &sam()).await.to_string();
    assert!(text.contains("NeedsApproval"), "{text}");
    assert!(text.contains("prod-db-restart"), "{text}");
    assert!(text.contains(r#"candidate reviewers: Team::"sre-leads""#), "{text}");
    assert!(gate
        .explain(&drop_db("x"), &sam())
        .await
        .to_string()
        .contains("forbidden by no-drop"));

    let action = read_customer("c-1");
    let req = pending(&gate, ask(action.clone(), 30)).await;
    gate.approve(req.id, &lee(), None).await.unwrap();
    for _ in 0..5 {
        assert!(gate.explain(&action, &sam()).await.decision.is_allowed());
    }
    assert!(gate.authorize(&action, &sam()).await.is_allowed());
    assert!(gate.authorize(&action, &sam()).await.is_allowed());
    assert!(
        !gate.authorize(&action, &sam()).await.is_allowed(),
        "two uses, not seven"
    );
}

#[tokio::test]
async fn reviewers_see_the_requests_they_may_act_on() {
    let (gate, clock, ..) = setup();
    let r1 = pending(&gate, ask(restart("a"), 30)).await;
    clock.advance(Duration::seconds(1));
    let r2 = pending(&gate, ask(migrate("a"), 30)).await;
    clock.advance(Duration::seconds(1));
    let r3 = pending(&gate, ask(restart("b"), 30)).await;
    let ids = |p: Page<AccessRequest>| p.items.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(gate
            .pending_for_reviewer(&lee(), &PageRequest::first(10))
            .await
            .unwrap()),
        vec![r1.id, r2.id, r3.id]
    );
    assert_eq!(
        ids(gate
            .pending_for_reviewer(&sec(), &PageRequest::first(10))
            .await
            .unwrap()),
        vec![r2.id]
    );
    assert!(gate
        .pending_for_reviewer(&sam(), &PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
    let first = gate.pending_for_reviewer(&lee(), &PageRequest::first(2)).await.unwrap();
    let next = gate
        .pending_for_reviewer(&lee(), &PageRequest::after(first.next.clone().unwrap(), 2))
        .await
        .unwrap();
    assert_eq!(
        ids(first).into_iter().chain(ids(next)).collect::<Vec<_>>(),
        vec![r1.id, r2.id, r3.id]
    );
    gate.approve(r2.id, &lee(), None).await.unwrap();
    assert_eq!(
        ids(gate
            .pending_for_reviewer(&lee(), &PageRequest::first(10))
            .await
            .unwrap()),
        vec![r1.id, r3.id]
    );
}

#[tokio::test]
async fn cancel_and_revoke_check_who_acts() {
    let (gate, ..) = setup();
    let r = pending(&gate, ask(restart("a"), 30)).await;
    let err = transition(gate.cancel(r.id, &lee()).await.unwrap_err());
    assert!(matches!(err, machine::TransitionError::NotRequester { .. }));
    assert_eq!(gate.cancel(r.id, &sam()).await.unwrap().state, RequestState::Cancelled);
    assert!(matches!(
        transition(gate.cancel(r.id, &sam()).await.unwrap_err()),
        machine::TransitionError::RequestClosed { .. }
    ));

    let r = pending(&gate, ask(restart("b"), 30)).await;
    let g = gate.approve(r.id, &lee(), None).await.unwrap().grant.unwrap();
    assert!(matches!(
        gate.revoke(g.id, &user("mallory"), None).await,
        Err(Error::NotPermittedToRevoke { .. })
    ));
    assert_eq!(
        gate.revoke(g.id, &sam(), Some("done")).await.unwrap().state,
        GrantState::Revoked
    );
    assert!(matches!(
        transition(gate.revoke(g.id, &sam(), None).await.unwrap_err()),
        machine::TransitionError::GrantNotActive {
            state: GrantState::Revoked,
            ..
        }
    ));
    assert!(matches!(
        gate.revoke(GrantId::new_random(), &sam(), None).await,
        Err(Error::GrantNotFound(_))
    ));
}

#[tokio::test]
async fn the_audit_trail_records_who_why_and_which_policies() {
    let (gate, ..) = setup();
    let r = pending(&gate, ask(migrate("a"), 30)).await;
    gate.approve(r.id, &lee(), Some("lgtm")).await.unwrap();
    gate.approve(r.id, &sec(), Some("ok by security")).await.unwrap();
    let trail = gate.request_audit(r.id, &PageRequest::first(100)).await.unwrap().items;
    let actions: Vec<_> = trail.iter().map(|a| a.entry.action).collect();
    use audit::AuditAction::*;
    assert_eq!(
        actions,
        vec![
            RequestCreated,
            ReviewApproved,
            ReviewApproved,
            RequestApproved,
            GrantCreated
        ]
    );
    assert_eq!(trail[0].entry.text.as_deref(), Some("INC-1: on call"));
    assert_eq!(trail[0].entry.policy_ids, vec!["prod-db-migrate".to_string()]);
    assert_eq!(trail[2].entry.actor, sec());
    assert_eq!(trail[2].entry.text.as_deref(), Some("ok by security"));
    let mut out = Vec::new();
    let n = gate.export_audit(&mut out).await.unwrap();
    assert_eq!(String::from_utf8(out).unwrap().lines().count() as u64, n);
    assert_eq!(gate.verify_audit().await.unwrap().seq, n);
}

#[test]
fn the_builder_refuses_to_build_without_policy_or_store() {
    assert_eq!(
        Gate::builder().store(Arc::new(MemoryStore::new())).build().unwrap_err(),
        BuildError::MissingPolicy
    );
    assert_eq!(
        Gate::builder().policy(Arc::new(policy())).build().unwrap_err(),
        BuildError::MissingStore
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_approving_and_revoking_at_once_leave_a_consistent_state() {
    let store = Arc::new(MemoryStore::new());
    let (gate, ..) = gate(store.clone());
    for round in 0..20 {
        let db = format!("db{round}");
        let req = pending(&gate, ask(restart(&db), 30)).await;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let g1 = gate.clone();
            let who = [lee(), lin(), ada()][i % 3].clone();
            tasks.push(tokio::spawn(async move {
                let gate = g1;
                let grant = gate.approve(req.id, &who, None).await.ok().and_then(|o| o.grant);
                if let Some(g) = &grant {
                    let _ = gate.revoke(g.id, &who, Some("race")).await;
                }
                grant.map(|g| g.id)
            }));
            let gate = gate.clone();
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                let _ = gate.revoke_all(&sam(), &lee(), None).await;
                let _ = gate.authorize(&restart(&db), &sam()).await;
                None
            }));
        }
        let mut grants = Vec::new();
        for t in tasks {
            grants.extend(t.await.unwrap());
        }
        assert_eq!(grants.len(), 1, "round {round}: exactly one grant");
        let g = store.grant(grants[0]).await.unwrap().unwrap();
        assert_eq!(g.state, GrantState::Revoked, "round {round}");
        assert!(!gate.authorize(&restart(&db), &sam()).await.is_allowed());
    }
    gate.verify_audit().await.expect("audit verifies after the races");
}

#[tokio::test]
async fn a_lapsed_pending_request_does_not_block_a_new_one_before_the_sweep() {
    let (gate, clock, ..) = setup();
    let old = pending(&gate, ask(restart("a"), 30)).await;
    clock.advance(Duration::minutes(31));
    let new = pending(&gate, ask(restart("a"), 30)).await;
    assert_ne!(new.id, old.id);
    assert_eq!(gate.get_request(old.id).await.unwrap().state, RequestState::Expired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_dispatcher_delivers_and_stops_cleanly_on_shutdown() {
    let store = Arc::new(MemoryStore::new());
    let notifier = Arc::new(MemoryNotifier::new());
    let gate = Gate::builder()
        .policy(Arc::new(policy()))
        .store(store.clone())
        .clock(Arc::new(ManualClock::default()))
        .notifier(notifier.clone())
        .deliver_inline(false)
        .dispatch_config(DispatchConfig {
            poll_interval: StdDuration::from_millis(10),
            ..DispatchConfig::default()
        })
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let dispatcher = gate.dispatcher();
    let task = tokio::spawn(async move {
        dispatcher
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    let req = pending(&gate, ask(restart("db"), 30)).await;
    assert!(
        notifier
            .wait_for(StdDuration::from_secs(2), |e| matches!(
                e.kind,
                EventKind::ApprovalNeeded { .. }
            ))
            .await
            .is_some(),
        "the running dispatcher delivered"
    );
    stop.send(()).unwrap();
    tokio::time::timeout(StdDuration::from_secs(2), task)
        .await
        .expect("run returns on shutdown")
        .unwrap();
    gate.approve(req.id, &lee(), None).await.unwrap();
    tokio::time::sleep(StdDuration::from_millis(50)).await;
    assert!(
        !notifier.events().iter().any(|e| e.kind == EventKind::Approved),
        "nothing is delivered after shutdown"
    );
}
