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
        .store(Arc::new(MemoryStore::new()))
        .clock(clock.clone())
        .notifier(notifier.clone())
        .dispatch_config(DispatchConfig::default().with_max_attempts(max_attempts))
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
        .store(store.clone())
        .clock(Arc::new(ManualClock::default()))
        .notifier(notifier.clone())
        .deliver_inline(false)
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
