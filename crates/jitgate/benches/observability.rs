//! `authorize` with metrics and spans on, beside the same gate without, in one run: a
//! Prometheus recorder installed (`metrics-exporter-prometheus`) and a `tracing` subscriber at
//! the default INFO level (writing to a sink). Run:
//! `cargo bench -p jitgate --bench observability`.
//!
//! The plain gate is built before the recorder is installed (its metric handles are no-ops, as
//! in a service without a recorder); the observed gate after (its handles record). Both read
//! the same store of 1,000 grants and record no grant uses, so only observability differs.

use std::sync::Arc;

mod common;

use common::{policy, restart};

use chrono::Duration;
use criterion::{criterion_group, criterion_main, Criterion};
use jitgate::{Action, EntityRef, Gate, ManualClock, MemoryStore, NewRequest, RequestOutcome, UseRecording};

fn gate(store: Arc<MemoryStore>, clock: Arc<ManualClock>) -> Gate {
    Gate::builder()
        .policy(Arc::new(policy()))
        .store(store)
        .clock(clock)
        .use_recording(UseRecording::Off)
        .build()
        .expect("gate")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::default());
    let plain = gate(store.clone(), clock.clone());
    rt.block_on(async {
        for i in 0..1_000 {
            let ask = NewRequest::new(
                EntityRef::new("User", format!("u{i}")),
                restart(&format!("db{}", i % 100)),
                Duration::hours(4),
            );
            assert!(matches!(plain.request(ask).await, Ok(RequestOutcome::Granted { .. })));
        }
    });
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder");
    let observed = gate(store, clock);
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::sink)
        .finish();
    let dispatch = tracing::Dispatch::new(subscriber);

    let holder = EntityRef::new("User", "u500");
    let granted = restart("db0");
    let stranger = EntityRef::new("User", "nobody-with-a-grant");
    let logs = Action::new(
        EntityRef::new("Action", "read_logs"),
        EntityRef::new("Service", "orders"),
    );
    let sre = EntityRef::new("User", "holder");
    let cases: [(&str, &Action, &EntityRef); 3] = [
        ("grant_allow", &granted, &holder),
        ("needs_approval", &granted, &stranger),
        ("standing_allow", &logs, &sre),
    ];
    let mut group = c.benchmark_group("observability");
    for (name, action, who) in cases {
        assert!(rt.block_on(plain.authorize(action, who)) == rt.block_on(observed.authorize(action, who)));
        group.bench_function(format!("{name}/plain"), |b| {
            b.to_async(&rt).iter(|| plain.authorize(action, who));
        });
        group.bench_function(format!("{name}/observed"), |b| {
            tracing::dispatcher::with_default(&dispatch, || {
                b.to_async(&rt).iter(|| observed.authorize(action, who));
            });
        });
    }
    group.finish();
    let rendered = recorder.render();
    assert!(
        rendered.contains("jitgate_decisions_total{outcome=\"allow\",reason=\"grant\"}"),
        "the observed gate recorded"
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
