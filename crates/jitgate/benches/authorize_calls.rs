//! A fixed `authorize` workload for counting instructions with callgrind, which compares two
//! builds reliably on a noisy machine (wall-clock runs here vary by ±30%). The `authorize`
//! bench's policy, 1,000 auto-approved grants, then `JITGATE_CALLS` calls (default 20,000) of
//! case `JITGATE_CASE`: `grant` (allowed through a grant), `needs` (needs approval) or
//! `standing` (standing permission). Per-call cost = (instructions with N calls − with 0) / N:
//!
//! ```sh
//! cargo bench -p jitgate --bench authorize_calls --no-run   # prints the binary's path
//! JITGATE_CASE=grant JITGATE_CALLS=0 valgrind --tool=callgrind <binary>
//! JITGATE_CASE=grant JITGATE_CALLS=20000 valgrind --tool=callgrind <binary>
//! ```
//!
//! `JITGATE_RECORD` chooses how uses of grants are recorded: `off` (default; what the counts
//! before use recording measured), `buffered` (the default recording, buffer never full and
//! never written: the hot path's share), `written` (buffered, and written every 256 calls as
//! the writer does, on the in-memory store: the whole cost, off the path or not) or `sync`.

use std::sync::Arc;

mod common;

use chrono::Duration;
use common::{policy, restart};
use jitgate::{
    Action, EntityRef, Gate, ManualClock, MemoryStore, NewRequest, NullNotifier, RequestOutcome, UseBuffer,
    UseRecording,
};

fn e(type_name: &str, id: &str) -> EntityRef {
    EntityRef::new(type_name, id)
}

fn main() {
    let case = std::env::var("JITGATE_CASE").unwrap_or_else(|_| "grant".into());
    let calls: usize = std::env::var("JITGATE_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let record = std::env::var("JITGATE_RECORD").unwrap_or_else(|_| "off".into());
    let (recording, write_every) = match record.as_str() {
        "off" => (UseRecording::Off, None),
        "buffered" => (UseRecording::Buffered(UseBuffer::default().capacity(usize::MAX)), None),
        "written" => (
            UseRecording::Buffered(UseBuffer::default().capacity(usize::MAX)),
            Some(256),
        ),
        "sync" => (UseRecording::Synchronous, None),
        other => panic!("JITGATE_RECORD must be off, buffered, written or sync, not {other}"),
    };
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let gate = Gate::builder()
        .policy(Arc::new(policy()))
        .store(Arc::new(MemoryStore::new()))
        .notifier(Arc::new(NullNotifier))
        .clock(Arc::new(ManualClock::default()))
        .use_recording(recording)
        .build()
        .expect("gate");
    rt.block_on(async {
        for i in 0..1_000 {
            let ask = NewRequest::new(
                e("User", &format!("u{i}")),
                restart(&format!("db{}", i % 100)),
                Duration::hours(4),
            );
            assert!(matches!(gate.request(ask).await, Ok(RequestOutcome::Granted { .. })));
        }
    });
    let (action, who) = match case.as_str() {
        "grant" => (restart("db0"), e("User", "u500")),
        "needs" => (restart("db0"), e("User", "nobody")),
        "standing" => (
            Action::new(e("Action", "read_logs"), e("Service", "orders")),
            e("User", "holder"),
        ),
        other => panic!("JITGATE_CASE must be grant, needs or standing, not {other}"),
    };
    let mut allowed = 0usize;
    rt.block_on(async {
        for n in 1..=calls {
            allowed += usize::from(std::hint::black_box(gate.authorize(&action, &who).await).is_allowed());
            if write_every.is_some_and(|every| n % every == 0) {
                gate.flush_audit_buffer().await.expect("write uses");
            }
        }
        if write_every.is_some() {
            gate.flush_audit_buffer().await.expect("write uses");
        }
    });
    println!("{case} ({record}): {calls} calls, {allowed} allowed");
}
