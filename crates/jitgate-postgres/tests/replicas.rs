//! Several replicas (each its own `PgStore` and pool) on one database.

mod common;

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use jitgate_core::*;
use jitgate_postgres::PgStore;
use jitgate_testkit::fixtures::{self, ask, lee, lin, restart, sam};

use common::replicas::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_reviewers_approving_at_once_on_two_replicas_yield_one_grant_and_one_trail() {
    let Some(a) = common::store().await else { return };
    let a = Arc::new(a);
    let b = Arc::new(common::replica(&a).await);
    let clock = Arc::new(ManualClock::default());
    let (ga, gb) = (gate(a.clone(), clock.clone()), gate(b.clone(), clock.clone()));
    for round in 0..10 {
        let req = pending(&ga, ask(restart(&format!("db{round}")), 30)).await;
        let (x, y) = tokio::join!(
            tokio::spawn({
                let ga = ga.clone();
                async move { ga.approve(req.id, &lee(), None).await }
            }),
            tokio::spawn({
                let gb = gb.clone();
                async move { gb.approve(req.id, &lin(), None).await }
            })
        );
        let grants: Vec<GrantId> = [x.unwrap(), y.unwrap()]
            .into_iter()
            .filter_map(|r| r.ok().and_then(|o| o.grant))
            .map(|g| g.id)
            .collect();
        assert_eq!(grants.len(), 1, "round {round}: exactly one grant");
        let stored = gb.read_request(req.id).await.unwrap();
        assert_eq!(stored.state, RequestState::Approved);
        assert_eq!(stored.reviews.len(), 1, "one recorded review");
        let trail = ga.request_audit(req.id, &PageRequest::first(100)).await.unwrap().items;
        let approvals = trail
            .iter()
            .filter(|r| r.entry.action == audit::AuditAction::RequestApproved)
            .count();
        assert_eq!(approvals, 1, "one approval in the trail");
    }
    ga.verify_audit().await.expect("one chain, verified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approval_on_a_allows_on_b_and_a_revoke_on_a_denies_on_b() {
    let Some(a) = common::store().await else { return };
    let a = Arc::new(a);
    let b = Arc::new(common::replica(&a).await);
    let clock = Arc::new(ManualClock::default());
    let (ga, gb) = (gate(a, clock.clone()), gate(b, clock.clone()));
    let grant = granted_on_a_seen_on_b(&ga, &gb).await;
    ga.revoke(grant.id, &lee(), Some("incident over")).await.unwrap();
    assert!(
        eventually(StdDuration::from_secs(2), async || !gb
            .authorize(&restart("orders"), &sam())
            .await
            .is_allowed())
        .await,
        "replica B kept allowing a revoked grant"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_cache_reads_the_database_instead() {
    let Some(a) = common::store().await else { return };
    let a = Arc::new(a);
    // Replica B never trusts its cache (bound 0) and never catches up on its own.
    let opts = common::options(a.schema())
        .staleness_bound(StdDuration::ZERO)
        .heartbeat(StdDuration::from_secs(3600));
    let b = Arc::new(PgStore::connect(opts).await.unwrap());
    let clock = Arc::new(ManualClock::default());
    let (ga, gb) = (gate(a, clock.clone()), gate(b, clock.clone()));
    let req = pending(&ga, ask(restart("orders"), 30)).await;
    let grant = ga.approve(req.id, &lee(), None).await.unwrap().grant.unwrap();
    assert!(
        gb.authorize(&restart("orders"), &sam()).await.is_allowed(),
        "read through to the database at once"
    );
    ga.revoke(grant.id, &lee(), None).await.unwrap();
    assert!(
        !gb.authorize(&restart("orders"), &sam()).await.is_allowed(),
        "read through to the database at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_feed_recovers_after_its_connection_is_killed() {
    let Some(a) = common::store().await else { return };
    let a = Arc::new(a);
    let b = Arc::new(common::replica(&a).await);
    let clock = Arc::new(ManualClock::default());
    let (ga, gb) = (gate(a.clone(), clock.clone()), gate(b, clock.clone()));
    // Let both feeds start listening, then cut every listener of this schema.
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    let killed = kill_listeners(&a).await;
    assert!(killed >= 1, "no listener found to kill");
    let req = pending(&ga, ask(restart("orders"), 30)).await;
    ga.approve(req.id, &lee(), None).await.unwrap();
    assert!(
        eventually(StdDuration::from_secs(5), async || gb
            .authorize(&restart("orders"), &sam())
            .await
            .is_allowed())
        .await,
        "replica B did not recover from losing its feed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sweeps_on_two_replicas_expire_each_item_once() {
    let Some(a) = common::store().await else { return };
    let a = Arc::new(a);
    let b = Arc::new(common::replica(&a).await);
    let clock = Arc::new(ManualClock::default());
    let (ga, gb) = (gate(a, clock.clone()), gate(b, clock.clone()));
    for i in 0..30 {
        let req = pending(&ga, ask(restart(&format!("db{i}")), 10)).await;
        if i % 2 == 0 {
            ga.approve(req.id, &lee(), None).await.unwrap();
        }
    }
    clock.advance(Duration::minutes(45));
    let (x, y) = tokio::join!(ga.sweep(), gb.sweep());
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.requests_expired + y.requests_expired, 15);
    assert_eq!(x.grants_expired + y.grants_expired, 15);
    let trail = ga
        .store()
        .audit_log()
        .expect("audit log")
        .records(0, 10_000)
        .await
        .unwrap();
    let expiries = trail
        .iter()
        .filter(|r| r.entry.action == audit::AuditAction::GrantExpired)
        .count();
    assert_eq!(expiries, 15, "each grant expired once");
    audit::verify(&trail).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_migrating_at_once_are_fine() {
    let Some(a) = common::store().await else { return };
    let (x, y) = tokio::join!(a.migrate(), a.migrate());
    x.unwrap();
    y.unwrap();
    let b = common::replica(&a).await;
    b.migrate().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_grant_cache_becomes_fresh_and_stays_fresh_while_idle() {
    let Some(a) = common::store().await else { return };
    let b = common::replica(&a).await;
    let fresh = async |s: &PgStore| {
        let start = Instant::now();
        while start.elapsed() < StdDuration::from_secs(3) {
            if s.grant_cache_fresh() {
                return true;
            }
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
        false
    };
    assert!(
        fresh(&a).await && fresh(&b).await,
        "the change feed never confirmed the cache"
    );
    tokio::time::sleep(StdDuration::from_secs(1)).await;
    assert!(
        a.grant_cache_fresh() && b.grant_cache_fresh(),
        "heartbeats keep an idle cache fresh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dispatchers_on_two_replicas_deliver_each_event_once() {
    let Some(a) = common::store().await else { return };
    let a = Arc::new(a);
    let b = Arc::new(common::replica(&a).await);
    let clock = Arc::new(ManualClock::default());
    let writer = Gate::builder()
        .policy(Arc::new(fixtures::policy()))
        // Events for the destination named `default`, which the two dispatchers below have.
        .notifier(Arc::new(NullNotifier))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(a.clone())
        .clock(clock.clone())
        .background_delivery(false)
        // 40 pending requests of one principal: more than the default allows.
        .limits(Limits::default().with_pending_per_principal(40))
        .build()
        .unwrap();
    for i in 0..40 {
        pending(&writer, ask(restart(&format!("db{i}")), 30)).await;
    }
    let (na, nb) = (Arc::new(MemoryNotifier::new()), Arc::new(MemoryNotifier::new()));
    let da = Dispatcher::new(a.clone(), clock.clone())
        .notifier(na.clone())
        .config(DispatchConfig::default().with_batch(4));
    let db = Dispatcher::new(b.clone(), clock.clone())
        .notifier(nb.clone())
        .config(DispatchConfig::default().with_batch(4));
    let (x, y) = tokio::join!(da.dispatch_once(), db.dispatch_once());
    assert_eq!(x.unwrap().delivered + y.unwrap().delivered, 40);
    let mut ids: Vec<_> = na.events().into_iter().chain(nb.events()).map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        40,
        "each event delivered exactly once across the two replicas"
    );
}

/// Listeners of this schema's change feed now.
async fn listeners(store: &PgStore) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%{}%'",
        store.schema()
    )))
    .fetch_one(store.pool())
    .await
    .unwrap()
}

/// Terminates every change-feed listener of this schema (every replica's); returns how many.
async fn kill_listeners(store: &PgStore) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%{}%'",
        store.schema()
    )))
    .fetch_one(store.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_feed_killed_again_and_again_reconnects_at_once_each_time() {
    let Some(a) = common::store().await else { return };
    let a = Arc::new(a);
    let b = Arc::new(common::replica(&a).await);
    let clock = Arc::new(ManualClock::default());
    let (ga, gb) = (gate(a.clone(), clock.clone()), gate(b, clock.clone()));
    assert!(eventually(StdDuration::from_secs(5), async || listeners(&a).await >= 2).await);
    // Kill every listener seven times, each time once both feeds are back.
    for round in 0..7 {
        kill_listeners(&a).await;
        assert!(
            eventually(StdDuration::from_secs(5), async || listeners(&a).await >= 2).await,
            "round {round}: the feeds did not come back"
        );
    }
    let grant = granted_on_a_seen_on_b(&ga, &gb).await;
    // An eighth loss, and a revoke right after it. Had the backoff kept doubling across healthy
    // connections, B would wait seconds to reconnect, trusting its (not yet stale) cache
    // meanwhile.
    kill_listeners(&a).await;
    ga.revoke(grant.id, &lee(), None).await.unwrap();
    assert!(
        eventually(StdDuration::from_secs(1), async || !gb
            .authorize(&restart("orders"), &sam())
            .await
            .is_allowed())
        .await,
        "after eight losses the feed of B still brings a revoke within a second"
    );
}

/// The moment a replica's feed is lost, its cache stops answering: `authorize` reads the
/// database until the feed is back and has caught up, so a revoke made meanwhile on another
/// replica is enforced at once, not when the cache would have gone stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_whose_feed_is_lost_reads_the_database_until_it_has_caught_up() {
    let Some(a) = common::store().await else { return };
    let a = Arc::new(a);
    let b = Arc::new(common::replica(&a).await);
    let clock = Arc::new(ManualClock::default());
    let (ga, gb) = (gate(a.clone(), clock.clone()), gate(b.clone(), clock.clone()));
    assert!(
        eventually(StdDuration::from_secs(5), async || listeners(&a).await >= 2
            && b.grant_cache_fresh())
        .await
    );
    let grant = granted_on_a_seen_on_b(&ga, &gb).await;

    kill_listeners(&a).await;
    assert!(
        eventually(StdDuration::from_secs(1), async || !b.grant_cache_fresh()).await,
        "B noticed the lost feed and stopped trusting its cache (the staleness bound is 5 s)"
    );
    ga.revoke(grant.id, &lee(), None).await.unwrap();
    assert!(
        !gb.authorize(&restart("orders"), &sam()).await.is_allowed(),
        "the revoke is enforced on B at once, feed or no feed"
    );
    assert!(
        eventually(StdDuration::from_secs(5), async || b.grant_cache_fresh()).await,
        "the feed comes back and the cache is trusted again"
    );
    assert!(!gb.authorize(&restart("orders"), &sam()).await.is_allowed());
}
