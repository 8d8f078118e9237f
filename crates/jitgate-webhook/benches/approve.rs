//! `approve` with a webhook destination that takes 2 s to answer, against `approve` with no
//! destination: no verb waits on a notifier (issue 12). Run:
//! `cargo bench -p jitgate-webhook --bench approve`.
//!
//! Each iteration opens a request (not timed) and times its approval, on the in-memory store,
//! with the gate's background dispatcher running (as by default) on a multi-threaded runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use jitgate_core::{Gate, MemoryStore, NullNotifier, RequestOutcome};
use jitgate_testkit::fixtures::{self, ask, lee, restart};
use jitgate_webhook::WebhookNotifier;

fn gate(notifier: Arc<dyn jitgate_core::Notifier>) -> Gate {
    Gate::builder()
        .policy(Arc::new(fixtures::policy()))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(Arc::new(MemoryStore::new()))
        .notifier(notifier)
        .build()
        .expect("gate")
}

fn time_approvals(rt: &tokio::runtime::Runtime, gate: &Gate, iters: u64) -> Duration {
    rt.block_on(async {
        let mut took = Duration::ZERO;
        for i in 0..iters {
            let db = format!("db{i}-{}", fastrand_id());
            let RequestOutcome::Pending(r) = gate.request(ask(restart(&db), 30)).await.expect("request") else {
                panic!("pending")
            };
            let start = Instant::now();
            let outcome = gate.approve(r.id, &lee(), None).await.expect("approve");
            took += start.elapsed();
            std::hint::black_box(outcome);
        }
        took
    })
}

/// A unique suffix, so requests never collide across criterion's runs.
fn fastrand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // A receiver that answers every request after 2 s.
    let url = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let app = Router::new().route(
            "/hook",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                StatusCode::NO_CONTENT
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        url
    });
    let slow = WebhookNotifier::builder(b"bench-secret".to_vec())
        .url(url)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("notifier");
    let (quiet, slowed) = rt.block_on(async { (gate(Arc::new(NullNotifier)), gate(Arc::new(slow))) });
    let mut group = c.benchmark_group("approve");
    group.bench_function("no_destination", |b| {
        b.iter_custom(|iters| time_approvals(&rt, &quiet, iters))
    });
    group.bench_function("destination_answering_in_2s", |b| {
        b.iter_custom(|iters| time_approvals(&rt, &slowed, iters))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
