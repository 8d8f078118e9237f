//! Helpers of the tests that run several replicas (`replicas.rs`, `audit_chain.rs`).

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use jitgate_core::*;
use jitgate_postgres::PgStore;
use jitgate_testkit::fixtures::{self, ask, lee, restart, sam};

/// The fixture gate; one principal opens dozens of requests here, beyond the default limit.
/// Tests that hold a transaction open in the database, or that need every committed entry
/// sealed by a deadline, run one at a time: an open transaction holds sealing back for every
/// schema of the database.
pub static SEALING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `conn` with a transaction begun and given an id, left open (`ROLLBACK` ends it).
pub async fn open_transaction(mut conn: sqlx::PgConnection) -> sqlx::PgConnection {
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    let _: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn
}

pub fn gate(store: Arc<PgStore>, clock: Arc<ManualClock>) -> Gate {
    Gate::builder()
        .policy(Arc::new(fixtures::policy()))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(store)
        .clock(clock)
        .notifier(Arc::new(MemoryNotifier::new()))
        .limits(Limits::default().with_pending_per_principal(1_000))
        .build()
        .expect("policy and store are set")
}

/// Polls `f` until it returns true or `within` passes.
pub async fn eventually(within: StdDuration, mut f: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if f().await {
            return true;
        }
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    false
}

/// Sam's restart of `orders`, approved on A; waits until B allows it (at most 5 s).
pub async fn granted_on_a_seen_on_b(ga: &Gate, gb: &Gate) -> Grant {
    let req = pending(ga, ask(restart("orders"), 30)).await;
    let grant = ga.approve(req.id, &lee(), None).await.unwrap().grant.unwrap();
    assert!(
        eventually(StdDuration::from_secs(5), async || gb
            .authorize(&restart("orders"), &sam())
            .await
            .is_allowed())
        .await,
        "replica B never saw the grant"
    );
    grant
}

pub async fn pending(gate: &Gate, a: NewRequest) -> AccessRequest {
    match gate.request(a).await.unwrap() {
        RequestOutcome::Pending(r) => r,
        other => panic!("{other:?}"),
    }
}
