//! `sweep`: expiry reminders.

use super::*;

#[tokio::test]
async fn the_sweep_sends_one_expiry_reminder_per_grant() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::default());
    let notifier = Arc::new(MemoryNotifier::new());
    let gate = Gate::builder()
        .policy(Arc::new(policy()))
        .destination(jitgate_testkit::fixtures::security_alerts())
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
    gate.deliver_outbox().await.unwrap();
    let reminders: Vec<_> = notifier
        .deliveries()
        .into_iter()
        .filter(|d| matches!(d.event.kind, EventKind::GrantExpiring { .. }))
        .collect();
    assert_eq!(reminders.len(), 1);
    assert_eq!(reminders[0].to, vec![sam()]);
}
