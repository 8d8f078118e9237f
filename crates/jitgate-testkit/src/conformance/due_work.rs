//! The `DueWork` group: what time has made due, found once even by many sweepers.

use super::*;

/// Sweeps expire due requests and grants exactly once, even when several run at once.
pub async fn expiry_sweep_is_idempotent_and_safe_concurrently(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::default());
    let notifier = Arc::new(jitgate_core::MemoryNotifier::new());
    let gates: Vec<Gate> = (0..3)
        .map(|_| fixtures::gate_with(store.clone(), clock.clone(), notifier.clone()))
        .collect();
    let g = &gates[0];
    let mut pending = Vec::new();
    for i in 0..5 {
        let RequestOutcome::Pending(r) = g.request(ask(restart(&format!("p{i}")), 30)).await.unwrap() else {
            panic!()
        };
        pending.push(r.id);
    }
    let mut granted = Vec::new();
    for i in 0..5 {
        let RequestOutcome::Pending(r) = g.request(ask(restart(&format!("g{i}")), 10)).await.unwrap() else {
            panic!()
        };
        granted.push(g.approve(r.id, &lee(), None).await.unwrap().grant.unwrap().id);
    }
    // A scheduled grant that starts in 35 minutes.
    let later = ask(restart("later"), 30).starting_at(clock.now_plus(Duration::minutes(35)));
    let RequestOutcome::Pending(r) = g.request(later).await.unwrap() else {
        panic!()
    };
    let scheduled = g.approve(r.id, &lee(), None).await.unwrap().grant.unwrap();
    assert_eq!(scheduled.state, GrantState::Scheduled);

    assert_eq!(
        g.sweep().await.unwrap(),
        jitgate_core::SweepReport::default(),
        "nothing is due yet"
    );
    clock.advance(Duration::minutes(36));
    let reports = futures_join(gates.iter().map(|g| g.sweep())).await;
    let total = reports.iter().fold((0, 0, 0), |acc, r| {
        let r = r.as_ref().expect("sweep");
        (
            acc.0 + r.requests_expired,
            acc.1 + r.grants_expired,
            acc.2 + r.grants_activated,
        )
    });
    assert_eq!(total, (5, 5, 1), "each due item moved exactly once across replicas");
    for id in &pending {
        assert_eq!(
            store.read_request(*id).await.unwrap().unwrap().state,
            RequestState::Expired
        );
    }
    for id in &granted {
        assert_eq!(store.read_grant(*id).await.unwrap().unwrap().state, GrantState::Expired);
    }
    assert_eq!(
        store.read_grant(scheduled.id).await.unwrap().unwrap().state,
        GrantState::Active
    );
    assert_eq!(
        g.sweep().await.unwrap(),
        jitgate_core::SweepReport::default(),
        "a second sweep does nothing"
    );
    let audit = audit_all(&store).await;
    let expiries = audit
        .iter()
        .filter(|r| r.entry.action == jitgate_core::audit::AuditAction::GrantExpired)
        .count();
    assert_eq!(expiries, 5, "one expiry record per grant");
    verify(&audit).expect("audit chain verifies");
}

/// Grants due for an expiry reminder are listed until reminded, once.
pub async fn expiry_reminders_are_due_once(store: Arc<dyn Store>) {
    let (gate, clock, _) = fixtures::gate(store.clone());
    let RequestOutcome::Pending(r) = gate.request(ask(restart("a"), 30)).await.unwrap() else {
        panic!()
    };
    let grant = gate.approve(r.id, &lee(), None).await.unwrap().grant.unwrap();
    let now = jitgate_core::Clock::now(&*clock);
    assert!(
        due_work(&store)
            .due_reminders(now + Duration::minutes(10), 10)
            .await
            .unwrap()
            .is_empty(),
        "ends in 30 min"
    );
    let due = due_work(&store)
        .due_reminders(now + Duration::minutes(30), 10)
        .await
        .unwrap();
    assert_eq!(due.iter().map(|g| g.id).collect::<Vec<_>>(), vec![grant.id]);
    store
        .commit(machine::remind(&due[0], now).unwrap().commit)
        .await
        .unwrap();
    assert!(
        due_work(&store)
            .due_reminders(now + Duration::minutes(30), 10)
            .await
            .unwrap()
            .is_empty(),
        "reminded once"
    );
}
