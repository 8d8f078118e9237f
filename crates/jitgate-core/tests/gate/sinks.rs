//! What the standard-output and `tracing` sinks write: the export format, one line per record
//! (standard output, checked in a child process, since a test cannot capture the real handle),
//! and one event per record with its `seq`, `hash` and the whole record (`tracing`).

use std::sync::Mutex;

use jitgate_core::audit::{verify_jsonl, AuditRecord, RecordSink, StdoutRecords, TracingRecords};

use super::*;

/// A life cycle's records: request, approval, revoke.
async fn records() -> Vec<AuditRecord> {
    let (gate, _, _, store) = setup();
    let r = pending(&gate, ask(restart("a"), 30)).await;
    let g = gate.approve(r.id, &lee(), None).await.unwrap().grant.unwrap();
    gate.revoke(g.id, &lee(), Some("done")).await.unwrap();
    store.audit_records()
}

const CHILD: &str = "JITGATE_STDOUT_SINK_CHILD";

#[tokio::test]
async fn stdout_records_are_json_lines_that_verify_as_an_export() {
    let records = records().await;
    if std::env::var_os(CHILD).is_some() {
        // In the child: the records, straight to the process's standard output.
        StdoutRecords.publish(&records).await.unwrap();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sinks::stdout_records_are_json_lines_that_verify_as_an_export",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    // libtest's own output surrounds the records (and starts the first line): each record is
    // a line from its `{"v":` on.
    let lines: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.find("{\"v\":").map(|at| &l[at..]))
        .collect();
    assert_eq!(lines.len(), records.len(), "{stdout}");
    let head = verify_jsonl(std::io::Cursor::new(lines.join("\n") + "\n")).unwrap();
    assert_eq!(head.seq, records.last().unwrap().seq);
}

/// Keeps the `jitgate::audit` events' fields.
#[derive(Default)]
struct Events(Mutex<Vec<Vec<(String, String)>>>);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.push((field.name().to_owned(), value.to_string()));
    }
}

impl tracing::Subscriber for &'static Events {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() == "jitgate::audit" {
            let mut fields = Vec::new();
            event.record(&mut Fields(&mut fields));
            self.0.lock().unwrap().push(fields);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test(flavor = "current_thread")]
async fn tracing_records_emit_one_event_per_record_with_the_whole_record() {
    let records = records().await;
    let events: &'static Events = Box::leak(Box::default());
    {
        let _on_this_thread = tracing::subscriber::set_default(events);
        TracingRecords.publish(&records).await.unwrap();
    }
    let seen = events.0.lock().unwrap();
    assert_eq!(seen.len(), records.len());
    for (fields, r) in seen.iter().zip(&records) {
        let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        assert_eq!(get("seq"), Some(r.seq.to_string()));
        assert_eq!(get("hash"), Some(r.hash.to_string()));
        let whole: AuditRecord = serde_json::from_str(&get("record").expect("the record")).unwrap();
        assert_eq!(whole.seq, r.seq);
        assert_eq!(whole.hash, r.hash);
    }
}
