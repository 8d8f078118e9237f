//! Sealed audit records stream out to sinks, at least once, in order, each sink at its own
//! pace, resuming from a cursor file after a restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use jitgate_core::audit::{verify_jsonl, AuditRecord, JsonLinesRecords, RecordSink, SinkError};

use super::*;

/// Keeps what it takes; fails while `down` is set.
#[derive(Default)]
struct Collecting {
    taken: Mutex<Vec<u64>>,
    down: AtomicBool,
}

#[async_trait]
impl RecordSink for Collecting {
    fn name(&self) -> &str {
        "collecting"
    }
    async fn publish(&self, records: &[AuditRecord]) -> Result<(), SinkError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(SinkError::new("collecting", "the SIEM is down"));
        }
        self.taken.lock().unwrap().extend(records.iter().map(|r| r.seq));
        Ok(())
    }
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("jitgate-stream-{}-{name}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn records_stream_to_every_sink_in_order_and_a_failing_sink_catches_up_alone() {
    let (gate, ..) = setup();
    let dir = temp("order");
    let file = dir.join("audit.jsonl");
    let siem = Arc::new(Collecting::default());
    let streamer = gate
        .audit_streamer()
        .sink(Arc::new(JsonLinesRecords::new(&file)))
        .sink(siem.clone());
    let r = pending(&gate, ask(restart("orders"), 30)).await;
    gate.approve(r.id, &lee(), None).await.unwrap();
    siem.down.store(true, Ordering::SeqCst);

    let report = streamer.stream_once().await.unwrap();
    assert_eq!(
        report.published, 4,
        "the file took RequestCreated, ReviewApproved, RequestApproved, GrantCreated"
    );
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].sink(), "collecting");
    assert_eq!(report.position, 0, "the SIEM has taken nothing yet");

    siem.down.store(false, Ordering::SeqCst);
    gate.cancel(pending(&gate, ask(restart("billing"), 30)).await.id, &sam())
        .await
        .unwrap();
    let report = streamer.stream_once().await.unwrap();
    assert!(report.failed.is_empty());
    assert_eq!(
        report.published,
        6 + 2,
        "the SIEM catches up on six, the file takes the two new ones"
    );
    assert_eq!(report.position, 6);
    assert_eq!(*siem.taken.lock().unwrap(), vec![1, 2, 3, 4, 5, 6]);
    let head = verify_jsonl(std::io::BufReader::new(std::fs::File::open(&file).unwrap())).unwrap();
    assert_eq!(head.seq, 6, "the file is a verifiable export, without duplicates");
    assert_eq!(streamer.stream_once().await.unwrap().published, 0, "nothing new");
}

#[tokio::test]
async fn a_restarted_streamer_resumes_from_its_cursor_file() {
    let (gate, ..) = setup();
    let dir = temp("cursor");
    let cursor = dir.join("cursor");
    let first = Arc::new(Collecting::default());
    let streamer = gate.audit_streamer().sink(first.clone()).cursor_file(&cursor);
    pending(&gate, ask(restart("orders"), 30)).await;
    assert_eq!(streamer.stream_once().await.unwrap().position, 1);
    assert_eq!(std::fs::read_to_string(&cursor).unwrap().trim(), "1");
    drop(streamer);

    pending(&gate, ask(restart("billing"), 30)).await;
    let second = Arc::new(Collecting::default());
    let restarted = gate.audit_streamer().sink(second.clone()).cursor_file(&cursor);
    assert_eq!(restarted.saved_position().unwrap(), Some(1));
    restarted.stream_once().await.unwrap();
    assert_eq!(
        *second.taken.lock().unwrap(),
        vec![2],
        "only what came after the saved position"
    );

    std::fs::write(&cursor, "not a number").unwrap();
    let broken = gate.audit_streamer().sink(second).cursor_file(&cursor);
    let err = broken.stream_once().await.unwrap_err();
    assert!(
        matches!(&err, AuditError::StreamCursor { path, .. } if *path == cursor),
        "{err:?}"
    );
    assert!(err.to_string().ends_with("does not hold a sequence number"), "{err}");
}

#[tokio::test]
async fn the_streamer_runs_until_shutdown_and_streams_once_more_at_the_end() {
    let (gate, ..) = setup();
    let siem = Arc::new(Collecting::default());
    let streamer = Arc::new(gate.audit_streamer().sink(siem.clone()));
    pending(&gate, ask(restart("orders"), 30)).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn({
        let streamer = streamer.clone();
        async move {
            streamer
                .run(StdDuration::from_secs(3600), async {
                    stopped.await.ok();
                })
                .await
        }
    });
    tokio::time::timeout(StdDuration::from_secs(10), async {
        while siem.taken.lock().unwrap().is_empty() {
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
    })
    .await
    .expect("the first round streams at once");
    pending(&gate, ask(restart("late"), 30)).await;
    stop.send(()).unwrap();
    task.await.unwrap();
    let taken = siem.taken.lock().unwrap().clone();
    let all = gate.verify_audit().await.unwrap().head.seq;
    assert_eq!(taken, (1..=all).collect::<Vec<_>>(), "everything, in order, once");
}
