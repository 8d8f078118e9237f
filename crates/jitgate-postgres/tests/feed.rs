//! The change feed skips a replica's own notifications (each of its commits applied to its
//! index at once) and follows every other replica's.

mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use jitgate_core::*;
use jitgate_testkit::fixtures::{self, ask, lee, restart, sam};

fn gate(store: Arc<jitgate_postgres::PgStore>) -> Gate {
    Gate::builder()
        .policy(Arc::new(fixtures::policy()))
        .destination(fixtures::security_alerts())
        .store(store)
        .clock(Arc::new(ManualClock::default()))
        .notifier(Arc::new(MemoryNotifier::new()))
        .background_delivery(false)
        .build()
        .expect("a gate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_applies_its_own_commits_and_catches_up_on_every_other_replicas() {
    // No heartbeat within the test: every catch-up counted comes from a commit.
    let quiet = |o: jitgate_postgres::PgStoreOptions| o.heartbeat(StdDuration::from_secs(600));
    let Some(a) = common::store_with(quiet).await else {
        return;
    };
    let a = Arc::new(a);
    let b = Arc::new(common::replica(&a).await);
    let (ga, gb) = (gate(a.clone()), gate(b.clone()));
    // Both feeds listening and caught up.
    for store in [&a, &b] {
        let deadline = std::time::Instant::now() + StdDuration::from_secs(5);
        while !store.grant_cache_fresh() && std::time::Instant::now() < deadline {
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
        assert!(store.grant_cache_fresh());
    }
    let (a0, b0) = (a.grant_cache_catch_ups(), b.grant_cache_catch_ups());
    for db in ["one", "two", "three"] {
        let RequestOutcome::Pending(r) = ga.request(ask(restart(db), 30)).await.unwrap() else {
            panic!("pending")
        };
        let grant = ga.approve(r.id, &lee(), None).await.unwrap().grant.unwrap();
        assert!(
            ga.authorize(&restart(db), &sam()).await.is_allowed(),
            "read-your-writes on A"
        );
        ga.revoke(grant.id, &lee(), None).await.unwrap();
        assert!(
            !ga.authorize(&restart(db), &sam()).await.is_allowed(),
            "read-your-writes on A"
        );
    }
    // Let the notifications arrive on both feeds.
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    assert_eq!(
        a.grant_cache_catch_ups() - a0,
        0,
        "A applied its 6 grant commits to its index itself, and skipped its own notifications"
    );
    assert!(b.grant_cache_catch_ups() > b0, "B follows A's notifications");
    assert_eq!(a.stepwise_commits(), 0, "every commit in one statement");
    assert!(!gb.authorize(&restart("three"), &sam()).await.is_allowed());
}

/// A fresh deployment: nothing that reads jitgate's tables runs before `migrate` creates them;
/// after it, the change feed and the sealer run.
#[tokio::test]
async fn the_feed_and_the_sealer_start_only_once_the_tables_exist() {
    let Some(store) = common::unmigrated(|o| o).await else {
        return;
    };
    assert!(!store.background_running(), "started before the schema existed");
    store.migrate().await.unwrap();
    assert!(store.background_running());
    // A replica connecting to the migrated schema starts them at once.
    let replica = common::replica(&store).await;
    assert!(replica.background_running());
}

/// The SQL a database administrator applies by hand (`jitgate migrate --print`) makes the same
/// schema `migrate` would, and records it: a later `migrate` has nothing to do and the store
/// works.
#[tokio::test]
async fn the_printed_migrations_applied_by_hand_leave_nothing_for_migrate() {
    let Some(probe) = common::unmigrated(|o| o).await else {
        return;
    };
    let schema = probe.schema().to_owned();
    let sql = jitgate_postgres::PgStore::migration_sql(&schema);
    assert!(sql.contains("CREATE TABLE requests"), "{sql}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(probe.pool())
        .await
        .expect("the printed SQL applies");
    assert!(!probe.background_running());
    probe
        .migrate()
        .await
        .expect("migrate finds every migration applied, with its checksum");
    assert!(probe.background_running());
    let gate = gate(Arc::new(probe));
    let r = gate.request(ask(restart("db"), 30)).await.unwrap();
    assert!(matches!(r, RequestOutcome::Pending(_)));
}

/// Dropping a throw-away store drops its schema even when one of its sessions was left inside
/// a transaction holding a lock (a task aborted mid-transaction whose runtime never rolls it
/// back): the store ends its own sessions first, instead of waiting on the lock for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throw_away_store_drops_its_schema_past_its_own_open_transaction() {
    let Some(store) = common::store().await else { return };
    let schema = store.schema().to_owned();
    let mut conn = store.pool().acquire().await.unwrap();
    sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
    sqlx::query("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE")
        .execute(&mut *conn)
        .await
        .unwrap();
    // Never returned to the pool, never rolled back.
    std::mem::forget(conn);
    let dropped = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::task::spawn_blocking(move || drop(store)),
    )
    .await;
    assert!(dropped.is_ok(), "dropping the store hung on its own open transaction");
    let mut check = <sqlx::PgConnection as sqlx::Connection>::connect(&common::url())
        .await
        .unwrap();
    let left: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(&schema)
        .fetch_one(&mut check)
        .await
        .unwrap();
    assert!(!left, "the schema {schema} was left behind");
}
