//! Throughput and cross-replica revocation latency against a real PostgreSQL.
//!
//! `cargo bench -p jitgate-postgres --bench lifecycle` (database from
//! `JITGATE_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`;
//! `JITGATE_BENCH_SECONDS` per throughput run, default 10; `JITGATE_BENCH_REVOKES`, default 1000).
//!
//! 1. Full life cycles (request → a refused self-approval → approve → authorize → revoke) per
//!    second with 1 and 8 concurrent clients on one replica, with the use writer running
//!    (`JITGATE_BENCH_REVOKES=0` stops after this part).
//! 2. Time from a revoke committed on replica A to `authorize` denying on replica B.

#[path = "support/lifecycles.rs"]
mod lifecycles;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jitgate_core::{ManualClock, RequestOutcome, Store};
use jitgate_postgres::{PgStore, PgStoreOptions};
use jitgate_testkit::fixtures::{ask, lee, restart, sam};
use lifecycles::gate;

fn url() -> String {
    std::env::var("JITGATE_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn store(schema: &str, owner: bool) -> PgStore {
    let opts = PgStoreOptions::new(&url())
        .schema(schema)
        .max_connections(16)
        .ephemeral(owner);
    let s = PgStore::connect(opts).await.expect("PostgreSQL reachable");
    s.migrate().await.expect("migrate");
    s
}

async fn throughput(clients: usize, seconds: u64) -> f64 {
    let schema = format!("jitgate_bench_{}", std::process::id());
    let s: Arc<dyn Store> = Arc::new(store(&schema, true).await);
    lifecycles::run(&gate(s, Arc::new(ManualClock::default())), clients, seconds, "").await
}

/// Revoke on A → deny on B, `revokes` times. With `kill_every`, a task terminates every
/// change-feed listener of the schema (B's and A's) at that period meanwhile.
async fn revoke_latency(revokes: u64, kill_every: Option<Duration>) -> Vec<Duration> {
    let schema = format!(
        "jitgate_bench_lat_{}_{}",
        std::process::id(),
        kill_every.map_or(0, |d| d.as_millis())
    );
    let a = Arc::new(store(&schema, true).await);
    let killer = kill_every.map(|every| {
        let (pool, schema) = (a.pool().clone(), schema.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%{schema}%'"
                )))
                .execute(&pool)
                .await;
            }
        })
    });
    let b: Arc<dyn Store> = Arc::new(store(&schema, false).await);
    let clock = Arc::new(ManualClock::default());
    let (ga, gb) = (gate(a.clone(), clock.clone()), gate(b, clock.clone()));
    let mut out = Vec::with_capacity(revokes as usize);
    for i in 0..revokes {
        let db = format!("lat{i}");
        let RequestOutcome::Pending(r) = ga.request(ask(restart(&db), 30)).await.unwrap() else {
            panic!()
        };
        let grant = ga.approve(r.id, &lee(), None).await.unwrap().grant.unwrap();
        while !gb.authorize(&restart(&db), &sam()).await.is_allowed() {
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
        // Measured from the start of the revoke call: an upper bound that includes the commit.
        let committed = Instant::now();
        ga.revoke(grant.id, &lee(), None).await.unwrap();
        while gb.authorize(&restart(&db), &sam()).await.is_allowed() {
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
        out.push(committed.elapsed());
    }
    if let Some(k) = killer {
        k.abort();
    }
    out.sort();
    out
}

fn pct(v: &[Duration], p: f64) -> Duration {
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let seconds = env_num("JITGATE_BENCH_SECONDS", 10);
    rt.block_on(async {
        for clients in [1, 8] {
            let rate = throughput(clients, seconds).await;
            println!(
                "lifecycles/s  clients={clients:<2} {rate:8.0}   (request → refused self-approval → approve → authorize → revoke, {seconds} s)"
            );
        }
        let revokes = env_num("JITGATE_BENCH_REVOKES", 1000);
        if revokes == 0 {
            return;
        }
        for (label, kill) in [("", None), (", feeds killed every 1 s", Some(Duration::from_secs(1)))] {
            let lat = revoke_latency(revokes, kill).await;
            println!(
                "revoke on A → deny on B over {} revokes{label}: median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                lat.len(),
                pct(&lat, 0.5).as_secs_f64() * 1e3,
                pct(&lat, 0.99).as_secs_f64() * 1e3,
                lat.last().unwrap().as_secs_f64() * 1e3
            );
        }
    });
}
