//! Metrics: decisions counted by outcome and reason, `authorize` timed, approvals timed, the
//! store's gauges counted — with label values from a bounded set.

use jitgate_core::metrics::{AUTHORIZE_DURATION, DECISIONS, TIME_TO_APPROVAL};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

use super::*;

/// A gate whose metrics go to a recorder of its own (registered when it is built).
fn observed() -> (Gate, Arc<ManualClock>, Snapshotter) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let clock = Arc::new(ManualClock::default());
    let gate = ::metrics::with_local_recorder(&recorder, || {
        gate_with(
            Arc::new(MemoryStore::new()),
            clock.clone(),
            Arc::new(MemoryNotifier::new()),
        )
    });
    (gate, clock, snapshotter)
}

/// (name with labels, value) pairs.
type Readings<T> = Vec<(String, T)>;

/// Counter values by their labels, and histogram sample counts by name.
fn read(snapshotter: &Snapshotter) -> (Readings<u64>, Readings<usize>) {
    let (mut counters, mut histograms) = (Vec::new(), Vec::new());
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.key().name(), labels.join(","));
        match value {
            DebugValue::Counter(n) if n > 0 => counters.push((name, n)),
            DebugValue::Histogram(samples) if !samples.is_empty() => {
                histograms.push((key.key().name().to_owned(), samples.len()))
            }
            _ => {}
        }
    }
    counters.sort();
    histograms.sort();
    (counters, histograms)
}

#[tokio::test]
async fn decisions_are_counted_by_outcome_and_reason_and_timed() {
    let (gate, clock, snapshotter) = observed();
    gate.authorize(&read_logs(), &sam()).await;
    gate.authorize(&restart("db"), &sam()).await;
    gate.authorize(&drop_db("db"), &sam()).await;
    gate.authorize(&drop_db("db"), &sam()).await;
    let r = pending(&gate, ask(restart("db"), 30)).await;
    clock.advance(Duration::minutes(3));
    gate.approve(r.id, &lee(), None).await.unwrap();
    gate.authorize(&restart("db"), &sam()).await;
    let (counters, histograms) = read(&snapshotter);
    let decisions = |outcome: &str, reason: &str| format!("{DECISIONS}{{outcome={outcome},reason={reason}}}");
    assert_eq!(
        counters,
        vec![
            (decisions("allow", "grant"), 1),
            (decisions("allow", "standing"), 1),
            (decisions("deny", "forbidden"), 2),
            (decisions("needs_approval", "eligible"), 1),
        ]
    );
    assert_eq!(
        histograms,
        vec![(AUTHORIZE_DURATION.to_owned(), 5), (TIME_TO_APPROVAL.to_owned(), 1)]
    );
}

#[tokio::test]
async fn the_gauges_count_pending_requests_active_grants_and_the_outbox() {
    let store = Arc::new(MemoryStore::new());
    let gate = Gate::builder()
        .policy(Arc::new(policy()))
        .store(store)
        .clock(Arc::new(ManualClock::default()))
        .destination(security_alerts())
        .destination(Destination::new("chat", Arc::new(MemoryNotifier::new())))
        .background_delivery(false)
        .build()
        .unwrap();
    let first = pending(&gate, ask(restart("a"), 30)).await;
    pending(&gate, ask(restart("b"), 30)).await;
    gate.approve(first.id, &lee(), None).await.unwrap();
    let g = gate.record_gauges().await.unwrap().expect("the memory store counts");
    assert_eq!((g.pending_requests, g.active_grants), (1, 1));
    let chat = g
        .outbox
        .iter()
        .find(|o| o.destination == "chat")
        .expect("events for chat wait");
    assert!(chat.pending >= 3, "{g:?}");
    assert_eq!(chat.dead, 0);
    gate.deliver_outbox().await.unwrap();
    let g = gate.record_gauges().await.unwrap().unwrap();
    assert!(g.outbox.iter().all(|o| o.pending == 0), "{g:?}");
}
