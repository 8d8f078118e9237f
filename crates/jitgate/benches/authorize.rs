//! `Gate::authorize` on the in-memory store with 1k, 100k and 1M active grants and the
//! rule-table policy. Run: `cargo bench -p jitgate --bench authorize`.
//!
//! `grant_allow` records no uses (`UseRecording::Off`), as before use recording existed.
//! `grant_allow_unrecorded` and `grant_allow_recorded` compare the same store (a wrapper that
//! drops the batches of use records, see `common::DropUses`) without and with the default
//! buffered recording; the recorded case writes its buffer after every 256 calls, outside the
//! timing, as the writer task does beside a service.

use std::sync::Arc;

mod common;

use common::{policy, restart, DropUses};

use chrono::Duration;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use jitgate::{
    Action, EntityRef, Gate, ManualClock, MemoryStore, NewRequest, NullNotifier, RequestOutcome, Store, UseBuffer,
    UseRecording,
};

/// Adds grants (auto-approved requests) until the store holds `n`: user u{i} on db{i % 100}.
async fn grow(gate: &Gate, store: &MemoryStore, n: usize) {
    for i in store.grant_count()..n {
        let ask = NewRequest::new(
            EntityRef::new("User", format!("u{i}")),
            restart(&format!("db{}", i % 100)),
            Duration::hours(4),
        );
        match gate.request(ask).await {
            Ok(RequestOutcome::Granted { .. }) => {}
            other => panic!("setup: {other:?}"),
        }
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::default());
    let gate_on = |store: Arc<dyn Store>, recording| {
        Gate::builder()
            .policy(Arc::new(policy()))
            .store(store)
            .notifier(Arc::new(NullNotifier))
            .clock(clock.clone())
            .use_recording(recording)
            .build()
            .expect("gate")
    };
    let gate = gate_on(store.clone(), UseRecording::Off);
    let dropping: Arc<dyn Store> = Arc::new(DropUses {
        inner: store.clone(),
        dropped: Default::default(),
    });
    let unrecorded = gate_on(dropping.clone(), UseRecording::Off);
    let recorded = gate_on(
        dropping,
        UseRecording::Buffered(UseBuffer::default().capacity(usize::MAX)),
    );
    let mut group = c.benchmark_group("authorize");
    for n in [1_000usize, 100_000, 1_000_000] {
        rt.block_on(grow(&gate, &store, n));
        let holder = EntityRef::new("User", format!("u{}", n / 2));
        let action = restart(&format!("db{}", (n / 2) % 100));
        assert!(rt.block_on(gate.authorize(&action, &holder)).is_allowed());
        group.bench_with_input(BenchmarkId::new("grant_allow", n), &n, |b, _| {
            b.to_async(&rt).iter(|| gate.authorize(&action, &holder));
        });
        group.bench_with_input(BenchmarkId::new("grant_allow_unrecorded", n), &n, |b, _| {
            b.to_async(&rt).iter(|| unrecorded.authorize(&action, &holder));
        });
        group.bench_with_input(BenchmarkId::new("grant_allow_recorded", n), &n, |b, _| {
            // Timed: the calls. Not timed: writing each batch of 256 records, which the
            // writer task does beside a service (the buffer stays as small as it would).
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut took = std::time::Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let n = left.min(256);
                        let start = std::time::Instant::now();
                        for _ in 0..n {
                            std::hint::black_box(recorded.authorize(&action, &holder).await);
                        }
                        took += start.elapsed();
                        assert_eq!(recorded.flush_audit_buffer().await.expect("flush") as u64, n);
                        left -= n;
                    }
                    took
                })
            });
        });
        let stranger = EntityRef::new("User", "nobody-with-a-grant");
        group.bench_with_input(BenchmarkId::new("needs_approval", n), &n, |b, _| {
            b.to_async(&rt).iter(|| gate.authorize(&action, &stranger));
        });
    }
    let logs = Action::new(
        EntityRef::new("Action", "read_logs"),
        EntityRef::new("Service", "orders"),
    );
    let holder = EntityRef::new("User", "holder");
    group.bench_function("standing_allow", |b| {
        b.to_async(&rt).iter(|| gate.authorize(&logs, &holder))
    });
    let drop = Action::new(EntityRef::new("Action", "db_drop"), EntityRef::new("Database", "db1"));
    group.bench_function("forbid", |b| b.to_async(&rt).iter(|| gate.authorize(&drop, &holder)));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
