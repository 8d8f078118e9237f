//! Delivery of events: retries, dead letters, routing, the spawned dispatcher.

use super::*;

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
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(Arc::new(MemoryStore::new()))
        .clock(clock.clone())
        .notifier(notifier.clone())
        .dispatch_config(DispatchConfig::default().with_max_attempts(max_attempts))
        // Attempts are counted here: the test drives every round.
        .background_delivery(false)
        .build()
        .unwrap();
    (gate, notifier, clock)
}

#[tokio::test]
async fn undelivered_events_are_retried_after_their_backoff_and_delivered_once() {
    let (gate, notifier, clock) = flaky_gate(8);
    let req = pending(&gate, ask(restart("db"), 30)).await;
    gate.approve(req.id, &lee(), None).await.unwrap();
    assert_eq!(gate.deliver_outbox().await.unwrap(), 0, "the receiver is down");
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
    assert_eq!(
        trail.last().unwrap().entry.action,
        jitgate_core::audit::AuditAction::NotificationDead
    );
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
    gate.deliver_outbox().await.unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_dispatcher_delivers_and_stops_cleanly_on_shutdown() {
    let store = Arc::new(MemoryStore::new());
    let notifier = Arc::new(MemoryNotifier::new());
    let gate = Gate::builder()
        .policy(Arc::new(policy()))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(store.clone())
        .clock(Arc::new(ManualClock::default()))
        .notifier(notifier.clone())
        .background_delivery(false)
        .dispatch_config(DispatchConfig::default().with_poll_interval(StdDuration::from_millis(10)))
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

/// Never answers.
struct BlackHole;

#[async_trait]
impl Notifier for BlackHole {
    async fn notify(&self, _: &Delivery) -> Result<(), NotifyError> {
        std::future::pending().await
    }
}

/// No verb waits on a notifier, even one that never answers (the background dispatcher
/// does, for at most `notify_timeout` per attempt).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_that_never_answers_holds_up_no_verb() {
    let gate = Gate::builder()
        .policy(Arc::new(policy()))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(Arc::new(MemoryStore::new()))
        .clock(Arc::new(ManualClock::default()))
        .notifier(Arc::new(BlackHole))
        .dispatch_config(DispatchConfig::default().with_notify_timeout(StdDuration::from_millis(100)))
        .build()
        .unwrap();
    let every_verb = async {
        let req = pending(&gate, ask(read_customer("c-1"), 30)).await;
        let grant = gate.approve(req.id, &lee(), None).await.unwrap().grant.unwrap();
        // The second use exhausts the grant: an event, on the hot path.
        assert!(gate.authorize(&read_customer("c-1"), &sam()).await.is_allowed());
        assert!(gate.authorize(&read_customer("c-1"), &sam()).await.is_allowed());
        let other = pending(&gate, ask(restart("db"), 30)).await;
        let restart_grant = gate.approve(other.id, &lee(), None).await.unwrap().grant.unwrap();
        gate.revoke(restart_grant.id, &lee(), Some("done")).await.unwrap();
        let denied = pending(&gate, ask(restart("db2"), 30)).await;
        gate.deny(denied.id, &lee(), Some("no")).await.unwrap();
        let cancelled = pending(&gate, ask(restart("db3"), 30)).await;
        gate.cancel(cancelled.id, &sam()).await.unwrap();
        gate.request(ask(restart("db4"), 10).break_glass()).await.unwrap();
        pending(&gate, ask(restart("db5"), 30)).await;
        gate.revoke_all(&sam(), &lee(), Some("offboarding")).await.unwrap();
        gate.sweep().await.unwrap();
        grant
    };
    tokio::time::timeout(StdDuration::from_secs(5), every_verb)
        .await
        .expect("every verb returned while the notifier never answers");
    let round = tokio::time::timeout(StdDuration::from_secs(5), gate.deliver_outbox())
        .await
        .expect("a dispatch round ends: each attempt times out");
    assert!(
        round.unwrap() <= 1,
        "only the security alerts' destination (a null notifier) answers, if the background dispatcher has not yet"
    );
}

/// A commit wakes the background dispatcher: the event goes out at once, not at the next poll
/// (an hour here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_wakes_the_background_dispatcher() {
    let store = Arc::new(MemoryStore::new());
    let notifier = Arc::new(MemoryNotifier::new());
    let gate = Gate::builder()
        .policy(Arc::new(policy()))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(store.clone())
        .clock(Arc::new(ManualClock::default()))
        .notifier(notifier.clone())
        .dispatch_config(DispatchConfig::default().with_poll_interval(StdDuration::from_secs(3600)))
        .build()
        .unwrap();
    let req = pending(&gate, ask(restart("db"), 30)).await;
    let needed = |e: &Event| matches!(e.kind, EventKind::ApprovalNeeded { .. });
    assert!(notifier.wait_for(StdDuration::from_secs(5), needed).await.is_some());
    gate.approve(req.id, &lee(), None).await.unwrap();
    assert!(
        notifier
            .wait_for(StdDuration::from_secs(5), |e| e.kind == EventKind::Approved)
            .await
            .is_some(),
        "delivered after the wake-up, not an hour later"
    );
    // The background dispatcher holds the store until the last clone of the gate is gone.
    drop(gate);
    tokio::time::timeout(StdDuration::from_secs(5), async {
        while Arc::strong_count(&store) > 1 {
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
    })
    .await
    .expect("the background dispatcher stopped with its gate");
}

/// Destinations take the events they subscribe to: by kind (the security channel, break-glass
/// only) and by recipient (a team's channel, what that team must act on).
#[tokio::test]
async fn destinations_take_the_events_they_subscribe_to() {
    let (security, leads, everything) = (
        Arc::new(MemoryNotifier::new()),
        Arc::new(MemoryNotifier::new()),
        Arc::new(MemoryNotifier::new()),
    );
    let gate = Gate::builder()
        .policy(Arc::new(policy()))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(Arc::new(MemoryStore::new()))
        .clock(Arc::new(ManualClock::default()))
        .notifier(everything.clone())
        .destination(Destination::new("security", security.clone()).kinds(["break_glass_used"]))
        .destination(Destination::new("leads", leads.clone()).recipients([team("sre-leads")]))
        .dispatch_config(DispatchConfig::default().with_routing(Routing::default().with_security(team("security"))))
        .background_delivery(false)
        .build()
        .unwrap();
    let req = pending(&gate, ask(restart("db"), 30)).await;
    gate.approve(req.id, &lee(), None).await.unwrap();
    gate.request(ask(restart("other"), 10).break_glass()).await.unwrap();
    gate.deliver_outbox().await.unwrap();
    let kinds = |n: &MemoryNotifier| n.events().iter().map(|e| e.kind.type_name()).collect::<Vec<_>>();
    assert_eq!(kinds(&security), vec!["break_glass_used"]);
    assert_eq!(
        kinds(&leads),
        vec!["approval_needed", "request_resolved"],
        "what the leads must act on, or learn was resolved"
    );
    let all = kinds(&everything);
    assert!(
        all.len() > 3 && all.contains(&"break_glass_used") && all.contains(&"approval_needed"),
        "the default destination takes every event: {all:?}"
    );
}

#[test]
fn destinations_named_twice_or_subscribing_to_unknown_kinds_do_not_build() {
    let n = Arc::new(MemoryNotifier::new());
    let err = Gate::builder()
        .policy(Arc::new(policy()))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(Arc::new(MemoryStore::new()))
        .destination(Destination::new("slack", n.clone()))
        .destination(Destination::new("slack", n.clone()).kinds(["break_glass"]))
        .build()
        .unwrap_err();
    assert_eq!(err.problems().len(), 2, "{err}");
    assert!(err.to_string().contains("two destinations are named `slack`"), "{err}");
    assert!(
        err.to_string().contains("`break_glass`, which is not an event kind"),
        "{err}"
    );
}

/// `EventKind::type_name` is the `type` each kind has in JSON.
#[test]
fn every_kind_names_its_json_type() {
    for name in EventKind::TYPES {
        let kind: EventKind = serde_json::from_value(serde_json::json!({ "type": name }))
            .or_else(|_| {
                let mut filled = serde_json::json!({ "type": name, "reviewers": [], "justification": null,
                    "by": {"type": "User", "id": "x"}, "comment": null, "reason": null, "state": "approved",
                    "expires_at": "2026-11-27T00:00:00Z" });
                filled["flow"] = "".into();
                serde_json::from_value(filled)
            })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(kind.type_name(), *name);
    }
}

/// A policy that allows break-glass needs a destination for its alerts: one subscribing to
/// `break_glass_used`, or one taking every event while a security audience is named.
#[test]
fn break_glass_alerts_must_have_a_destination() {
    let builder = || {
        Gate::builder()
            .policy(Arc::new(policy()))
            .store(Arc::new(MemoryStore::new()))
            .notifier(Arc::new(MemoryNotifier::new()))
    };
    let err = builder().build().unwrap_err();
    assert!(
        err.to_string()
            .contains("allows break-glass (prod-db-restart) but no destination takes its alerts"),
        "{err}"
    );
    builder()
        .destination(jitgate_testkit::fixtures::security_alerts())
        .build()
        .expect("a destination subscribing to break_glass_used");
    builder()
        .dispatch_config(DispatchConfig::default().with_routing(Routing::default().with_security(team("security"))))
        .build()
        .expect("a security audience for the default destination");
    let no_break_glass = RuleTable::builder()
        .eligible(
            "r",
            Pattern::Any,
            Pattern::Any,
            Pattern::Any,
            Flow::new(Duration::hours(1)).with_auto_approve(true),
        )
        .build()
        .unwrap();
    Gate::builder()
        .policy(Arc::new(no_break_glass))
        .store(Arc::new(MemoryStore::new()))
        .build()
        .expect("nothing to alert about");
}
