//! Life cycles per second on a primary with a synchronous standby, beside the same primary
//! with the standby asynchronous, in one run.
//!
//! `cargo bench -p jitgate-postgres --bench standby` (`JITGATE_BENCH_SECONDS` per run, default
//! 10; `JITGATE_BENCH_CLIENTS`, default 8). It starts a primary and a streaming standby of its
//! own from the machine's PostgreSQL binaries (as the failover test does, see
//! `tests/common/cluster.rs`), then alternates: synchronous, asynchronous, synchronous,
//! asynchronous, each run on a fresh schema. A life cycle is the one of `benches/lifecycle.rs`:
//! request → a refused self-approval → approve → authorize → revoke.

#[path = "../tests/common/cluster.rs"]
mod cluster;
#[path = "support/lifecycles.rs"]
mod lifecycles;

use std::sync::Arc;

use jitgate_core::{ManualClock, Store};
use jitgate_postgres::{PgStore, PgStoreOptions};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Life cycles per second with `clients` concurrent clients for `seconds`, on a fresh schema.
async fn throughput(url: &str, run: usize, clients: usize, seconds: u64) -> f64 {
    let opts = PgStoreOptions::new(url)
        .schema(&format!("jitgate_bench_{run}"))
        .max_connections(16)
        .ephemeral(true);
    let store = PgStore::connect(opts).await.expect("the cluster answers");
    store.migrate().await.expect("migrate");
    let store: Arc<dyn Store> = Arc::new(store);
    let g = lifecycles::gate(store, Arc::new(ManualClock::default()));
    lifecycles::run(&g, clients, seconds, &format!("r{run}")).await
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that is not this bench's name skips it.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with("--") && !"standby".contains(a.as_str()))
    {
        return;
    }
    let bin = cluster::binaries().expect("PostgreSQL server binaries (initdb): Debian's `postgresql`");
    let seconds = env_num("JITGATE_BENCH_SECONDS", 10);
    let clients = env_num("JITGATE_BENCH_CLIENTS", 8) as usize;
    let mut cluster = cluster::Cluster::start(bin, true).expect("a primary and a standby start");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = cluster.primary_url();
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for run in 0..4 {
        let synchronous = run % 2 == 0;
        cluster
            .set_synchronous(synchronous)
            .expect("switch synchronous replication");
        let rate = rt.block_on(throughput(&url, run, clients, seconds));
        println!(
            "run {run}: {} standby, {clients} clients, {seconds} s: {rate:.0} life cycles/s",
            if synchronous { "synchronous" } else { "asynchronous" }
        );
        rates[usize::from(!synchronous)].push(rate);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (sync, not) = (mean(&rates[0]), mean(&rates[1]));
    println!(
        "synchronous {sync:.0}/s ÷ asynchronous {not:.0}/s = {:.2} ({clients} clients, {seconds} s runs, alternated)",
        sync / not
    );
}
