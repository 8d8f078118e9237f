//! Verifying a JSON-lines audit export of 1,000,000 records (`audit::verify_jsonl`, streaming,
//! format 2), and the process's peak memory before and after. Run:
//! `cargo bench -p jitgate-core --bench verify_export` (`JITGATE_EXPORT_RECORDS` to change the
//! size; the export is written once to a temporary file, record by record).

use std::io::{BufReader, BufWriter, Write};

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use jitgate_core::audit::{verify_jsonl, write_jsonl, AuditAction, AuditEntry, ChainHead};
use jitgate_core::{EntityRef, RequestId, Scope};

/// The process's peak resident memory so far (`VmHWM`), in KiB; 0 where /proc is missing.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn entry(i: u64) -> AuditEntry {
    let e = |t: &str, id: String| EntityRef::new(t, id);
    AuditEntry {
        at: DateTime::<Utc>::from_timestamp(1_800_000_000 + i as i64, 0).unwrap(),
        actor: e("User", format!("u{}", i % 1_000)),
        action: AuditAction::RequestCreated,
        request_id: RequestId::new_random(),
        grant_id: None,
        principal: e("User", format!("u{}", i % 1_000)),
        scope: Scope::new(
            e("Action", "db_restart".into()),
            e("Database", format!("db{}", i % 100)),
        ),
        text: Some(format!("INC-{i}: connection pool wedged")),
        policy_ids: vec!["prod-db-restart".into()],
        binding: None,
        replica: None,
        policy_version: None,
    }
}

fn bench(c: &mut Criterion) {
    let n: u64 = std::env::var("JITGATE_EXPORT_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let path = std::env::temp_dir().join(format!("jitgate-verify-export-{}.jsonl", std::process::id()));
    let mut out = BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut head = ChainHead::genesis();
    for i in 0..n {
        write_jsonl([&head.append(entry(i))], &mut out).unwrap();
    }
    out.flush().unwrap();
    drop(out);
    let bytes = std::fs::metadata(&path).unwrap().len();
    let before = peak_rss_kib();
    let verified = verify_jsonl(BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
    assert_eq!(verified, head);
    let after = peak_rss_kib();
    println!(
        "export of {n} records, {} MiB; peak RSS before verifying {before} KiB, after {after} KiB",
        bytes >> 20
    );
    let mut group = c.benchmark_group("verify_export");
    group.sample_size(10);
    group.bench_function(format!("verify_jsonl/{n}"), |b| {
        b.iter(|| verify_jsonl(BufReader::new(std::fs::File::open(&path).unwrap())).unwrap())
    });
    group.finish();
    println!("peak RSS after every run {} KiB", peak_rss_kib());
    std::fs::remove_file(&path).ok();
}

criterion_group!(benches, bench);
criterion_main!(benches);
