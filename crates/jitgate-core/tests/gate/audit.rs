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
    assert_eq!(gate.verify_audit().await.unwrap().seq, n);
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
