//! The `Notifier` group: every event reaches the receiver, a failure is a typed error naming
//! the event and the redelivery carries the same id, and concurrent deliveries all arrive.
//!
//! A notifier is tested through a [`NotifierHarness`]: the notifier, and a look at what its
//! receiver (a loopback HTTP server, a channel, a recording) accepted.

use std::time::Duration as StdDuration;

use async_trait::async_trait;
use jitgate_core::{Delivery, EventId, MemoryNotifier, MemoryStore, Notifier};

use super::*;

/// What the notifier checks need: the notifier under test and a view of its receiver.
#[async_trait]
pub trait NotifierHarness: Send + Sync {
    /// The notifier under test.
    fn notifier(&self) -> Arc<dyn Notifier>;

    /// The ids of the events the receiver accepted so far, in arrival order, after waiting up
    /// to `timeout` for at least `n` of them.
    async fn received(&self, n: usize, timeout: StdDuration) -> Vec<EventId>;

    /// Makes the receiver refuse (`true`) or accept (`false`) what comes next. Returns `false`
    /// if this harness cannot make its receiver fail (the failure check is then skipped).
    async fn fail(&self, failing: bool) -> bool;
}

const WAIT: StdDuration = StdDuration::from_secs(5);

/// Real deliveries of a life cycle (request, approval, revoke, a second request), as a
/// dispatcher routes them.
async fn life_cycle_deliveries() -> Vec<Delivery> {
    let recorder = Arc::new(MemoryNotifier::new());
    // Delivered by `deliver_outbox` below only: a background dispatcher could still be
    // delivering what it claimed when the recording is read.
    let gate = Gate::builder()
        .policy(Arc::new(fixtures::policy()))
        .store(Arc::new(MemoryStore::new()))
        .clock(Arc::new(jitgate_core::ManualClock::default()))
        .notifier(recorder.clone())
        .destination(fixtures::security_alerts())
        .background_delivery(false)
        .build()
        .expect("a gate");
    let RequestOutcome::Pending(r) = gate.request(ask(restart("a"), 30)).await.expect("request") else {
        panic!("expected a pending request")
    };
    let grant = gate
        .approve(r.id, &lee(), None)
        .await
        .expect("approve")
        .grant
        .expect("granted");
    gate.revoke(grant.id, &lee(), Some("done")).await.expect("revoke");
    gate.request(ask(restart("b"), 30)).await.expect("request");
    gate.deliver_outbox().await.expect("deliver");
    let deliveries = recorder.deliveries();
    assert!(deliveries.len() >= 5, "a life cycle has events: {deliveries:?}");
    deliveries
}

/// Every event of a life cycle reaches the receiver, each once, in order.
pub async fn delivers_every_event_of_a_life_cycle(harness: Arc<dyn NotifierHarness>) {
    let deliveries = life_cycle_deliveries().await;
    for d in &deliveries {
        harness
            .notifier()
            .notify(d)
            .await
            .expect("a healthy receiver accepts every event");
    }
    let expected: Vec<EventId> = deliveries.iter().map(|d| d.event.id.clone()).collect();
    let got = harness.received(expected.len(), WAIT).await;
    assert_eq!(got, expected, "every event, once, in order");
}

/// A refused delivery is an error naming the event; once the receiver is back, the same event
/// (same id) is accepted.
pub async fn a_failure_is_an_error_and_the_retry_keeps_the_event_id(harness: Arc<dyn NotifierHarness>) {
    if !harness.fail(true).await {
        return;
    }
    let deliveries = life_cycle_deliveries().await;
    let first = &deliveries[0];
    let err = harness
        .notifier()
        .notify(first)
        .await
        .expect_err("a refusing receiver is an error");
    assert_eq!(err.event, first.event.id.to_string(), "the error names the event");
    assert!(
        harness.received(0, StdDuration::ZERO).await.is_empty(),
        "nothing was accepted"
    );
    assert!(harness.fail(false).await);
    let mut again = first.clone();
    again.attempt += 1;
    harness
        .notifier()
        .notify(&again)
        .await
        .expect("accepted once the receiver is back");
    assert_eq!(harness.received(1, WAIT).await, vec![first.event.id.clone()]);
}

/// Deliveries made at once all arrive, none lost or mixed up.
pub async fn concurrent_deliveries_all_arrive(harness: Arc<dyn NotifierHarness>) {
    let deliveries = life_cycle_deliveries().await;
    let notifier = harness.notifier();
    let results = futures_join(deliveries.iter().map(|d| notifier.notify(d))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let mut got = harness.received(deliveries.len(), WAIT).await;
    let mut expected: Vec<EventId> = deliveries.iter().map(|d| d.event.id.clone()).collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "every delivery arrived exactly once");
}

/// The [`MemoryNotifier`] seen through the harness (it records everything and never fails).
#[derive(Default)]
pub struct MemoryHarness(pub Arc<MemoryNotifier>);

#[async_trait]
impl NotifierHarness for MemoryHarness {
    fn notifier(&self) -> Arc<dyn Notifier> {
        self.0.clone()
    }

    async fn received(&self, n: usize, timeout: StdDuration) -> Vec<EventId> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.0.events().len() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
        self.0.events().into_iter().map(|e| e.id).collect()
    }

    async fn fail(&self, _failing: bool) -> bool {
        false
    }
}
