//! The audit trail: who, why, which policies.

use super::*;

#[tokio::test]
async fn the_audit_trail_records_who_why_and_which_policies() {
    let (gate, ..) = setup();
    let r = pending(&gate, ask(migrate("a"), 30)).await;
    gate.approve(r.id, &lee(), Some("lgtm")).await.unwrap();
    gate.approve(r.id, &sec(), Some("ok by security")).await.unwrap();
    let trail = gate.request_audit(r.id, &PageRequest::first(100)).await.unwrap().items;
    let actions: Vec<_> = trail.iter().map(|a| a.entry.action).collect();
    use jitgate_core::audit::AuditAction::*;
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
    assert_eq!(gate.verify_audit().await.unwrap().head.seq, n);
}

/// Runs the export verifier from the docs (Python, no jitgate) on `export`.
fn python_verifier(export: &[u8]) -> std::process::Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/audit/verify_export.py");
    let path = std::env::temp_dir().join(format!("jitgate-export-{}-{}.jsonl", std::process::id(), export.len()));
    std::fs::write(&path, export).unwrap();
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3 runs the verifier in docs/audit (.ci/run installs it where missing)");
    std::fs::remove_file(&path).ok();
    out
}

/// An export verifies with a short script in another language (format 2: SHA-256 over the
/// RFC 8785 canonical JSON of each record), which also names the first edited line.
#[tokio::test]
async fn an_export_verifies_with_the_script_in_the_docs() {
    let (gate, ..) = setup();
    let mut new = ask(restart("orders-prod"), 30);
    new.justification = Some("Läuft nicht: \"orders\" \\ ✓\n\tzweite Zeile".into());
    let r = pending(&gate, new).await;
    let grant = gate.approve(r.id, &lee(), Some("ok 👍")).await.unwrap().grant.unwrap();
    gate.revoke(grant.id, &sam(), Some("done")).await.unwrap();
    let mut export = Vec::new();
    let n = gate.export_audit(&mut export).await.unwrap();
    let head = jitgate_core::audit::verify_jsonl(export.as_slice()).unwrap();
    assert_eq!(head.seq, n);

    let out = python_verifier(&export);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("ok: {n} records, head {}", head.hash)
    );

    let edited = String::from_utf8(export).unwrap().replacen("Läuft", "Lauft", 1);
    let out = python_verifier(edited.as_bytes());
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8(out.stderr).unwrap().trim(),
        "line 1: record 1 was edited: its hash does not match its contents"
    );
    let e = jitgate_core::audit::verify_jsonl(edited.as_bytes()).unwrap_err();
    assert_eq!(e.line(), 1);
}

/// A sink that always fails.
struct BrokenSink;

#[async_trait]
impl jitgate_core::audit::CheckpointSink for BrokenSink {
    async fn publish(&self, _: &jitgate_core::audit::Checkpoint) -> Result<(), jitgate_core::audit::CheckpointError> {
        Err(std::io::Error::other("disk full").into())
    }
}

/// Checkpoints anchor the chain outside the store: cutting the last line of an export, or
/// handing over another chain of the same length, verifies clean on its own and is found
/// against the checkpoint.
#[tokio::test]
async fn a_cut_tail_and_a_rewritten_chain_are_found_against_a_checkpoint() {
    use jitgate_core::audit::{verify_jsonl, verify_jsonl_against, ChainError, CheckpointSigner, ExportError};
    let signer = CheckpointSigner::from_seed([3; 32]);
    let key = signer.public_key_hex();
    let (gate, ..) = setup();
    let r = pending(&gate, ask(restart("orders-prod"), 30)).await;
    gate.approve(r.id, &lee(), None).await.unwrap();
    let checkpoint = gate.checkpointer(signer.clone()).checkpoint_now().await.unwrap();
    let mut export = Vec::new();
    let n = gate.export_audit(&mut export).await.unwrap();
    assert_eq!(checkpoint.seq, n);
    assert_eq!(
        verify_jsonl_against(export.as_slice(), &checkpoint, &key).unwrap().seq,
        n
    );
    assert_eq!(gate.verify_audit_against(&checkpoint, &key).await.unwrap().head.seq, n);

    let text = String::from_utf8(export).unwrap();
    let cut: String = text.lines().take(n as usize - 1).map(|l| format!("{l}\n")).collect();
    assert!(
        verify_jsonl(cut.as_bytes()).is_ok(),
        "a cut tail verifies clean on its own"
    );
    match verify_jsonl_against(cut.as_bytes(), &checkpoint, &key) {
        Err(ExportError::Chain {
            source:
                ChainError::EndsBeforeCheckpoint {
                    ends_at,
                    checkpoint: at,
                },
            ..
        }) => assert_eq!((ends_at, at), (n - 1, n)),
        other => panic!("expected a cut tail, got {other:?}"),
    }

    // Another chain of the same length, as someone rewriting the store would produce.
    let (other_gate, ..) = setup();
    let r = pending(&other_gate, ask(restart("orders-prod"), 45)).await;
    other_gate.approve(r.id, &lee(), None).await.unwrap();
    let mut rewritten = Vec::new();
    assert_eq!(other_gate.export_audit(&mut rewritten).await.unwrap(), n);
    assert!(
        verify_jsonl(rewritten.as_slice()).is_ok(),
        "a rewritten chain verifies clean on its own"
    );
    assert!(matches!(
        verify_jsonl_against(rewritten.as_slice(), &checkpoint, &key),
        Err(ExportError::Chain {
            source: ChainError::DiffersFromCheckpoint { .. },
            ..
        })
    ));
    assert!(matches!(
        other_gate.verify_audit_against(&checkpoint, &key).await,
        Err(AuditError::Chain(ChainError::DiffersFromCheckpoint { .. }))
    ));

    let stranger = CheckpointSigner::from_seed([4; 32]).public_key_hex();
    assert!(matches!(
        verify_jsonl_against(text.as_bytes(), &checkpoint, &stranger),
        Err(ExportError::Checkpoint(_))
    ));
}

/// A checkpointer verifies only what is new, publishes to every sink, and reports a failing
/// sink after trying the others.
#[tokio::test]
async fn the_checkpointer_is_incremental_and_publishes_to_every_sink() {
    use jitgate_core::audit::{CheckpointSigner, JsonLinesCheckpoints, TracingCheckpoints};
    let path = std::env::temp_dir().join(format!("jitgate-cp-{}.jsonl", std::process::id()));
    std::fs::remove_file(&path).ok();
    let file = Arc::new(JsonLinesCheckpoints::new(&path));
    let (gate, ..) = setup();
    let cp = gate
        .checkpointer(CheckpointSigner::from_seed([5; 32]))
        .sink(file.clone())
        .sink(Arc::new(TracingCheckpoints));
    assert_eq!(
        cp.checkpoint_now().await.unwrap().seq,
        0,
        "an empty chain is a checkpoint too"
    );
    pending(&gate, ask(restart("a"), 30)).await;
    let first = cp.checkpoint_now().await.unwrap();
    pending(&gate, ask(restart("b"), 30)).await;
    let second = cp.checkpoint_now().await.unwrap();
    assert!(second.seq > first.seq);
    assert_eq!(file.latest().unwrap(), Some(second.clone()));
    assert_eq!(gate.verify_audit().await.unwrap().head.hash, second.hash);

    let failing = gate
        .checkpointer(CheckpointSigner::from_seed([5; 32]))
        .sink(Arc::new(BrokenSink))
        .sink(file.clone());
    pending(&gate, ask(restart("c"), 30)).await;
    let e = failing.checkpoint_now().await.unwrap_err();
    assert!(matches!(e, AuditError::Checkpoint(_)), "{e:?}");
    assert!(
        file.latest().unwrap().unwrap().seq > second.seq,
        "the other sink still got it"
    );
    std::fs::remove_file(&path).ok();
}

/// Every refused attempt leaves a record of who tried what and why; the chain still verifies.
#[tokio::test]
async fn refusals_leave_a_record_of_who_tried_what_and_why() {
    use jitgate_core::audit::{AuditAction, AuditRecord};
    let (gate, ..) = setup();
    let r = pending(&gate, ask(restart("orders-prod"), 30)).await;
    // A self-approval, an ineligible reviewer, a forbidden request, a cancel by someone else.
    assert!(gate.approve(r.id, &sam(), None).await.is_err());
    assert!(gate.approve(r.id, &sec(), Some("let me in")).await.is_err());
    assert!(gate.request(ask(drop_db("orders-prod"), 30)).await.is_err());
    assert!(gate.cancel(r.id, &lee()).await.is_err());
    // Approving a closed request.
    let grant = gate.approve(r.id, &lee(), None).await.unwrap().grant.unwrap();
    assert!(gate.approve(r.id, &lin(), None).await.is_err());
    // Revoking without authority; extending someone else's grant.
    assert!(gate.revoke(grant.id, &eve(), None).await.is_err());
    assert!(gate
        .extend(grant.id, &lee(), Duration::minutes(10), None)
        .await
        .is_err());
    // Not refusals: a missing request, input over a limit.
    assert!(gate.approve(RequestId::new_random(), &lee(), None).await.is_err());
    assert!(gate.approve(r.id, &lee(), Some(&"x".repeat(10_000))).await.is_err());

    // Refusals wait in the audit buffer with uses (the writer's job in a service).
    assert_eq!(gate.audit_buffer_len(), 7);
    gate.flush_audit_buffer().await.unwrap();
    let mut export = Vec::new();
    gate.export_audit(&mut export).await.unwrap();
    let refused: Vec<AuditRecord> = String::from_utf8(export)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<AuditRecord>(l).unwrap())
        .filter(|r| r.entry.action == AuditAction::Refused)
        .collect();
    let who_what: Vec<(EntityRef, String)> = refused
        .iter()
        .map(|r| (r.entry.actor.clone(), r.entry.text.clone().unwrap()))
        .collect();
    assert_eq!(who_what.len(), 7, "{who_what:#?}");
    let expect = [
        (sam(), "approve refused"),
        (sec(), "approve refused"),
        (sam(), "request refused"),
        (lee(), "cancel refused"),
        (lin(), "approve refused"),
        (eve(), "revoke refused"),
        (lee(), "extend refused"),
    ];
    for ((actor, text), (want_actor, want_text)) in who_what.iter().zip(expect) {
        assert_eq!(*actor, want_actor, "{text}");
        assert!(text.starts_with(want_text), "{text}");
    }
    assert_eq!(
        refused[2].entry.policy_ids,
        vec!["no-drop".to_string()],
        "the forbidding policy"
    );
    assert_eq!(refused[2].entry.scope, drop_db("orders-prod").scope);
    assert_eq!(refused[0].entry.request_id, r.id);
    assert_eq!(refused[5].entry.grant_id, Some(grant.id));
    gate.verify_audit().await.unwrap();
}

/// `run` checkpoints at once, at every tick, and once more at shutdown.
#[tokio::test]
async fn the_checkpointer_runs_until_shutdown_and_checkpoints_once_more() {
    use jitgate_core::audit::{CheckpointSigner, JsonLinesCheckpoints};
    let path = std::env::temp_dir().join(format!("jitgate-cp-run-{}.jsonl", std::process::id()));
    std::fs::remove_file(&path).ok();
    let file = Arc::new(JsonLinesCheckpoints::new(&path));
    let (gate, ..) = setup();
    let cp = gate
        .checkpointer(CheckpointSigner::from_seed([6; 32]))
        .sink(file.clone());
    let writer = gate.clone();
    let shutdown = async move {
        tokio::time::sleep(StdDuration::from_millis(120)).await;
        pending(&writer, ask(restart("late"), 30)).await;
    };
    cp.run(StdDuration::from_millis(20), shutdown).await;
    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
    assert!(lines >= 3, "at once, at ticks and at shutdown: {lines}");
    assert_eq!(
        file.latest().unwrap().unwrap().hash,
        gate.verify_audit().await.unwrap().head.hash,
        "the last checkpoint covers what was written just before shutdown"
    );
    std::fs::remove_file(&path).ok();
}
