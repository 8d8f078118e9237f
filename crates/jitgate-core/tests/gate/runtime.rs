//! The runtime: the gate's background work started by one call, failures restarted and
//! reported, shutdown flushing within a bound.

use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use jitgate_core::runtime::{Backoff, Intervals, Rounds, Runtime, Shutdown, Task, TaskError};

/// Waits (up to 5 s) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("{what} did not happen within 5 s");
}

fn quick() -> Intervals {
    let mut intervals = Intervals::default();
    intervals.sweep = StdDuration::from_millis(20);
    intervals
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gates_runtime_sweeps_and_delivers_and_stops_within_its_bound() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::default());
    let notifier = Arc::new(MemoryNotifier::new());
    let gate = Gate::builder()
        .policy(Arc::new(policy()))
        .store(store)
        .clock(clock.clone())
        .notifier(notifier.clone())
        .destination(security_alerts())
        .background_delivery(false)
        .build()
        .unwrap();
    assert!(!gate.delivers_in_background());
    let runtime = Runtime::for_gate(&gate, quick());
    assert_eq!(
        runtime.task_names(),
        ["sweeper", "dispatcher", "gauges", "audit writer"]
    );
    let handle = runtime.start();
    let r = pending(&gate, ask(restart("db"), 30)).await;
    // The dispatcher (woken by the commit) delivers the request's event.
    eventually("delivery of the request event", || !notifier.events().is_empty()).await;
    // The sweeper closes the request once its TTL has passed.
    clock.advance(Duration::hours(2));
    let mut state = RequestState::Pending;
    for _ in 0..500 {
        state = gate.read_request(r.id).await.unwrap().state;
        if state == RequestState::Expired {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    assert_eq!(state, RequestState::Expired, "the sweeper expired the request");
    assert!(
        handle.status().iter().all(|s| s.running && s.failures == 0),
        "{:?}",
        handle.status()
    );
    let report = handle.shutdown(StdDuration::from_secs(5)).await;
    assert_eq!(report.stopped.len(), 4);
    assert!(report.aborted.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_buffered_grant_uses() {
    let store = Arc::new(MemoryStore::new());
    let gate = Gate::builder()
        .policy(Arc::new(policy()))
        .store(store)
        .clock(Arc::new(ManualClock::default()))
        .destination(security_alerts())
        .use_recording(UseRecording::Buffered(
            UseBuffer::default()
                .interval(StdDuration::from_secs(3_600))
                .batch(1_000),
        ))
        .build()
        .unwrap();
    let handle = Runtime::for_gate(&gate, Intervals::default()).start();
    let r = pending(&gate, ask(restart("db"), 30)).await;
    gate.approve(r.id, &lee(), None).await.unwrap();
    assert!(gate.authorize(&restart("db"), &sam()).await.is_allowed());
    assert_eq!(
        gate.audit_buffer_len(),
        1,
        "the use waits in the buffer (written hourly)"
    );
    let report = handle.shutdown(StdDuration::from_secs(5)).await;
    assert!(report.aborted.is_empty(), "{report:?}");
    assert_eq!(gate.audit_buffer_len(), 0);
    let trail = gate.request_audit(r.id, &PageRequest::first(100)).await.unwrap().items;
    assert!(trail
        .iter()
        .any(|t| t.entry.action == jitgate_core::audit::AuditAction::GrantUsed));
}

/// Fails (or panics) its first `failing` runs, then runs until shutdown.
struct Flaky {
    runs: Arc<AtomicU32>,
    failing: u32,
    panics: bool,
}

#[async_trait]
impl Task for Flaky {
    fn name(&self) -> &str {
        if self.panics {
            "panicky"
        } else {
            "flaky"
        }
    }

    async fn run(&self, shutdown: Shutdown) -> Result<(), TaskError> {
        let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        if run <= self.failing {
            if self.panics {
                panic!("run {run} panicked");
            }
            return Err(format!("run {run} failed").into());
        }
        shutdown.signalled().await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_task_is_restarted_with_backoff_and_reported_and_the_others_go_on() {
    let (flaky, panicky, rounds) = (
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicU32::new(0)),
    );
    let counted = rounds.clone();
    let handle = Runtime::new()
        .backoff(Backoff::new(StdDuration::from_millis(10), StdDuration::from_millis(40)))
        .task(Flaky {
            runs: flaky.clone(),
            failing: 3,
            panics: false,
        })
        .task(Flaky {
            runs: panicky.clone(),
            failing: 2,
            panics: true,
        })
        .task(Rounds::new("steady", StdDuration::from_millis(5), move || {
            let c = counted.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }))
        .start();
    eventually("both to recover", || {
        flaky.load(Ordering::SeqCst) == 4 && panicky.load(Ordering::SeqCst) == 3
    })
    .await;
    eventually("the steady task to go on", || rounds.load(Ordering::SeqCst) > 10).await;
    let status = handle.status();
    let of = |name: &str| status.iter().find(|s| s.name == name).unwrap().clone();
    assert_eq!(of("flaky").failures, 3);
    assert_eq!(of("flaky").last_error.as_deref(), Some("run 3 failed"));
    assert_eq!(of("panicky").failures, 2);
    assert_eq!(of("panicky").last_error.as_deref(), Some("panicked: run 2 panicked"));
    assert_eq!(of("steady").failures, 0);
    assert!(status.iter().all(|s| s.running), "{status:?}");
    let report = handle.shutdown(StdDuration::from_secs(5)).await;
    assert_eq!(report.stopped.len(), 3);
}

/// Never looks at the shutdown signal.
struct Deaf;

#[async_trait]
impl Task for Deaf {
    fn name(&self) -> &str {
        "deaf"
    }
    async fn run(&self, _: Shutdown) -> Result<(), TaskError> {
        tokio::time::sleep(StdDuration::from_secs(3_600)).await;
        Ok(())
    }
}

#[tokio::test]
async fn a_task_that_does_not_stop_is_aborted_at_the_bound() {
    let handle = Runtime::new().task(Deaf).start();
    let started = std::time::Instant::now();
    let report = handle.shutdown(StdDuration::from_millis(100)).await;
    assert_eq!(report.aborted, ["deaf"]);
    assert!(started.elapsed() < StdDuration::from_secs(5));
}

/// The checkpointer and the streamer run at start, and once more at shutdown: the last
/// checkpoint covers the whole chain, and the stream holds every record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_takes_a_last_checkpoint_and_streams_the_last_records() {
    use jitgate_core::audit::{CheckpointSigner, JsonLinesCheckpoints, JsonLinesRecords};
    let dir = std::env::temp_dir().join(format!("jitgate-runtime-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (gate, ..) = setup();
    let checkpoints = Arc::new(JsonLinesCheckpoints::new(dir.join("checkpoints.jsonl")));
    let hour = StdDuration::from_secs(3_600);
    let handle = Runtime::new()
        .checkpoints(
            gate.checkpointer(CheckpointSigner::from_seed([7; 32]))
                .sink(checkpoints.clone()),
            hour,
        )
        .streaming(
            gate.audit_streamer()
                .sink(Arc::new(JsonLinesRecords::new(dir.join("records.jsonl"))))
                .cursor_file(dir.join("records.cursor")),
            hour,
        )
        .start();
    let r = pending(&gate, ask(restart("db"), 30)).await;
    gate.approve(r.id, &lee(), None).await.unwrap();
    let report = handle.shutdown(StdDuration::from_secs(5)).await;
    assert!(report.aborted.is_empty(), "{report:?}");
    let head = gate.verify_audit().await.unwrap().head;
    let last = checkpoints.latest().unwrap().expect("checkpoints were written");
    assert_eq!(last.seq, head.seq, "the checkpoint at shutdown covers every record");
    let streamed = std::fs::read_to_string(dir.join("records.jsonl")).unwrap();
    assert_eq!(streamed.lines().count() as u64, head.seq);
    std::fs::remove_dir_all(&dir).ok();
}

/// Returns at once, without waiting for shutdown.
struct Quitter(Arc<AtomicU32>);

#[async_trait]
impl Task for Quitter {
    fn name(&self) -> &str {
        "quitter"
    }
    async fn run(&self, _: Shutdown) -> Result<(), TaskError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn a_task_that_returns_before_shutdown_is_a_failure_and_runs_again() {
    let runs = Arc::new(AtomicU32::new(0));
    let handle = Runtime::new()
        .backoff(Backoff::new(StdDuration::from_millis(5), StdDuration::from_millis(10)))
        .task(Quitter(runs.clone()))
        .start();
    eventually("a second run", || runs.load(Ordering::SeqCst) >= 2).await;
    let status = handle.status();
    assert!(status[0].failures >= 1, "{status:?}");
    assert_eq!(status[0].last_error.as_deref(), Some("returned before shutdown"));
    handle.shutdown(StdDuration::from_secs(5)).await;
}
