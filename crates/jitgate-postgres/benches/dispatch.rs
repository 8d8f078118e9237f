//! Dispatcher throughput on PostgreSQL with four destinations, one of them failing, next to
//! the same run with all four healthy (issue 12). Run:
//! `cargo bench -p jitgate-postgres --bench dispatch` (database from
//! `JITGATE_TEST_DATABASE_URL`; `JITGATE_BENCH_EVENTS` requests per run, default 400).
//!
//! Each run commits that many requests (one `ApprovalNeeded` event each, so one outbox entry
//! per event and destination), then times `Dispatcher::dispatch_once` until every healthy
//! destination has every event. The failing destination's entries fail once each and wait
//! for their backoff (the clock does not move), as a receiver that is down would.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use jitgate_core::{Delivery, Destination, Gate, Limits, ManualClock, Notifier, NotifyError, RequestOutcome, Store};
use jitgate_postgres::{PgStore, PgStoreOptions};
use jitgate_testkit::fixtures::{self, ask, restart};

fn url() -> String {
    std::env::var("JITGATE_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Counts deliveries, or fails every one.
struct Receiver {
    got: AtomicU64,
    down: bool,
}

#[jitgate_core::async_trait]
impl Notifier for Receiver {
    async fn notify(&self, d: &Delivery) -> Result<(), NotifyError> {
        if self.down {
            return Err(NotifyError::new(d, "receiver down"));
        }
        self.got.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Deliveries per second to the healthy destinations, with the fourth one `down` or not.
async fn run(events: u64, fourth_down: bool) -> (f64, u64) {
    let schema = format!(
        "jitgate_bench_dispatch_{}_{}",
        std::process::id(),
        u8::from(fourth_down)
    );
    let store = PgStore::connect(PgStoreOptions::new(&url()).schema(&schema).ephemeral(true))
        .await
        .expect("PostgreSQL reachable");
    store.migrate().await.expect("migrate");
    let store: Arc<dyn Store> = Arc::new(store);
    let receivers: Vec<Arc<Receiver>> = (0..4)
        .map(|i| {
            Arc::new(Receiver {
                got: AtomicU64::new(0),
                down: fourth_down && i == 3,
            })
        })
        .collect();
    let gate = receivers
        .iter()
        .enumerate()
        .fold(Gate::builder(), |b, (i, r)| {
            b.destination(Destination::new(format!("destination-{i}"), r.clone()))
        })
        .policy(Arc::new(fixtures::policy()))
        .destination(fixtures::security_alerts())
        .store(store)
        .clock(Arc::new(ManualClock::default()))
        .background_delivery(false)
        .limits(Limits::default().with_pending_per_principal(events as usize))
        .build()
        .expect("gate");
    for i in 0..events {
        match gate.request(ask(restart(&format!("db{i}")), 30)).await {
            Ok(RequestOutcome::Pending(_)) => {}
            other => panic!("setup: {other:?}"),
        }
    }
    let healthy: Vec<_> = receivers.iter().filter(|r| !r.down).cloned().collect();
    let dispatcher = gate.dispatcher();
    let start = Instant::now();
    while healthy.iter().any(|r| r.got.load(Ordering::Relaxed) < events) {
        dispatcher.dispatch_once().await.expect("dispatch");
    }
    let took = start.elapsed().as_secs_f64();
    let delivered: u64 = healthy.iter().map(|r| r.got.load(Ordering::Relaxed)).sum();
    (delivered as f64 / took, delivered)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let events: u64 = std::env::var("JITGATE_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    rt.block_on(async {
        for fourth_down in [false, true, false, true] {
            let (rate, delivered) = run(events, fourth_down).await;
            println!(
                "dispatch, 4 destinations{}: {rate:8.0} deliveries/s to the healthy ones ({delivered} deliveries of {events} events)",
                if fourth_down { ", one failing" } else { ", all healthy" }
            );
        }
    });
}
