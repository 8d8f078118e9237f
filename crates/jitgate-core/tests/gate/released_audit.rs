//! `MemoryStore::releasing_streamed_audit`: the records every sink of the streamer took leave
//! memory; verification, checkpoints and streaming go on from the release point, and the
//! sinks' copy plus the kept chain is the whole chain.

use std::io::BufReader;

use jitgate_core::audit::{
    verify_jsonl, AuditRecord, ChainError, ChainHead, CheckpointSigner, JsonLinesRecords, RecordSink, SinkError,
};

use super::*;

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("jitgate-release-{}-{name}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Refuses everything.
struct Down;

#[async_trait]
impl RecordSink for Down {
    fn name(&self) -> &str {
        "down"
    }
    async fn publish(&self, _: &[AuditRecord]) -> Result<(), SinkError> {
        Err(SinkError::new("down", "the SIEM is down"))
    }
}

#[tokio::test]
async fn streamed_records_leave_memory_and_the_chain_verifies_from_the_release_point() {
    let store = Arc::new(MemoryStore::new().releasing_streamed_audit());
    let (gate, ..) = gate(store.clone());
    let file = temp("whole").join("audit.jsonl");
    let streamer = gate.audit_streamer().sink(Arc::new(JsonLinesRecords::new(&file)));
    let first = pending(&gate, ask(restart("orders"), 30)).await;
    gate.approve(first.id, &lee(), None).await.unwrap();
    assert_eq!(store.audit_len(), 4);

    let report = streamer.stream_once().await.unwrap();
    assert_eq!(report.position, 4);
    assert_eq!(store.audit_len(), 0, "every sink took them: released");
    let log = store.audit_log().unwrap();
    let released = log.released().await.unwrap();
    assert_eq!(released.seq, 4);
    assert!(log.records(0, 100).await.unwrap().is_empty());
    assert!(
        gate.request_audit(first.id, &PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty(),
        "a released record is the sinks' now"
    );

    // The kept chain goes on from the released head, and verifies from there.
    let second = pending(&gate, ask(restart("billing"), 30)).await;
    gate.cancel(second.id, &sam()).await.unwrap();
    let kept = log.records(0, 100).await.unwrap();
    assert_eq!(kept.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![5, 6]);
    assert_eq!(kept[0].prev_hash, released.hash, "linked to the last released record");
    let trail = gate
        .request_audit(second.id, &PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(trail.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![5, 6]);
    let report = gate.verify_audit().await.unwrap();
    assert_eq!((report.released.seq, report.head.seq), (4, 6));

    // The sink's copy and what is kept make the whole chain.
    streamer.stream_once().await.unwrap();
    assert_eq!(store.audit_len(), 0);
    let head = verify_jsonl(BufReader::new(std::fs::File::open(&file).unwrap())).unwrap();
    assert_eq!(head, log.released().await.unwrap());
    assert_eq!(head.seq, 6);
}

#[tokio::test]
async fn nothing_is_released_until_every_sink_took_it_nor_by_a_store_that_keeps_its_chain() {
    let store = Arc::new(MemoryStore::new().releasing_streamed_audit());
    let (gate, ..) = gate(store.clone());
    let file = temp("partial").join("audit.jsonl");
    let streamer = gate
        .audit_streamer()
        .sink(Arc::new(JsonLinesRecords::new(&file)))
        .sink(Arc::new(Down));
    pending(&gate, ask(restart("orders"), 30)).await;
    let report = streamer.stream_once().await.unwrap();
    assert_eq!((report.position, report.failed.len()), (0, 1));
    assert_eq!(store.audit_len(), 1, "one sink has not taken it: kept");
    assert_eq!(gate.verify_audit().await.unwrap().released.seq, 0);

    // A store made without `releasing_streamed_audit` keeps everything.
    let (keeping_gate, _, _, keeping) = setup();
    let streamer = keeping_gate
        .audit_streamer()
        .sink(Arc::new(JsonLinesRecords::new(temp("keep").join("a.jsonl"))));
    pending(&keeping_gate, ask(restart("orders"), 30)).await;
    assert_eq!(streamer.stream_once().await.unwrap().position, 1);
    assert_eq!(keeping.audit_len(), 1);
    assert_eq!(
        keeping.audit_log().unwrap().released().await.unwrap(),
        ChainHead::genesis()
    );

    // A streamer without sinks releases nothing.
    let store = Arc::new(MemoryStore::new().releasing_streamed_audit());
    let (alone, ..) = super::gate(store.clone());
    pending(&alone, ask(restart("orders"), 30)).await;
    alone.audit_streamer().stream_once().await.unwrap();
    assert_eq!(store.audit_len(), 1);
}

#[tokio::test]
async fn checkpoints_go_on_across_the_release_point() {
    let store = Arc::new(MemoryStore::new().releasing_streamed_audit());
    let (gate, ..) = gate(store.clone());
    let signer = CheckpointSigner::from_seed([7; 32]);
    let key = signer.public_key_hex();
    let checkpointer = gate.checkpointer(signer.clone());
    let streamer = gate
        .audit_streamer()
        .sink(Arc::new(JsonLinesRecords::new(temp("checkpoints").join("a.jsonl"))));
    pending(&gate, ask(restart("orders"), 30)).await;
    let early = checkpointer.checkpoint_now().await.unwrap();
    pending(&gate, ask(restart("billing"), 30)).await;
    streamer.stream_once().await.unwrap();
    assert_eq!(store.audit_len(), 0);

    // Records released before the checkpointer saw them are the sinks' to verify.
    pending(&gate, ask(restart("payments"), 30)).await;
    let late = checkpointer.checkpoint_now().await.unwrap();
    assert_eq!(late.seq, 3);
    let report = gate.verify_audit_against(&late, &key).await.unwrap();
    assert_eq!((report.released.seq, report.head.seq), (2, 3));
    // A checkpoint of a released record is left to the sinks' copy.
    assert_eq!(gate.verify_audit_against(&early, &key).await.unwrap().head.seq, 3);

    // A checkpoint at the release point must have signed the released record.
    let released = store.audit_log().unwrap().released().await.unwrap();
    let at_release = signer.sign(&released, chrono::Utc::now());
    assert_eq!(gate.verify_audit_against(&at_release, &key).await.unwrap().head.seq, 3);
    let forged = signer.sign(
        &ChainHead {
            seq: released.seq,
            hash: "00".repeat(32),
        },
        chrono::Utc::now(),
    );
    let err = gate.verify_audit_against(&forged, &key).await.unwrap_err();
    assert!(
        matches!(err, AuditError::Chain(ChainError::DiffersFromCheckpoint { seq: 2 })),
        "{err:?}"
    );
}
