//! Several replicas (each its own `PgStore` and pool) on one database.

mod common;

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use jitgate_core::audit::ChainError;
use jitgate_core::*;
use jitgate_postgres::PgStore;
use jitgate_testkit::fixtures::{self, ask, lee, lin, restart, sam};

/// The fixture gate; one principal opens dozens of requests here, beyond the default limit.
/// Tests that hold a transaction open in the database, or that need every committed entry
/// sealed by a deadline, run one at a time: an open transaction holds sealing back for every
/// schema of the database.
static SEALING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `conn` with a transaction begun and given an id, left open (`ROLLBACK` ends it).
async fn open_transaction(mut conn: sqlx::PgConnection) -> sqlx::PgConnection {
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    let _: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn
}

fn gate(store: Arc<PgStore>, clock: Arc<ManualClock>) -> Gate {
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
async fn eventually(within: StdDuration, mut f: impl AsyncFnMut() -> bool) -> bool {
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
async fn granted_on_a_seen_on_b(ga: &Gate, gb: &Gate) -> Grant {
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

async fn pending(gate: &Gate, a: NewRequest) -> AccessRequest {
    match gate.request(a).await.unwrap() {
        RequestOutcome::Pending(r) => r,
        other => panic!("{other:?}"),
    }
}

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
async fn the_audit_table_is_append_only_and_verify_finds_edits_and_deletions() {
    let Some(a) = common::store().await else { return };
    let a = Arc::new(a);
    let clock = Arc::new(ManualClock::default());
    let g = gate(a.clone(), clock);
    for i in 0..3 {
        let req = pending(&g, ask(restart(&format!("db{i}")), 10)).await;
        g.approve(req.id, &lee(), Some("ok")).await.unwrap();
    }
    let head = g.verify_audit().await.unwrap().head;
    assert_eq!(head.seq, 12);
    let refused = sqlx::query("UPDATE audit SET entry = jsonb_set(entry, '{text}', '\"edited\"') WHERE seq = 2")
        .execute(a.pool())
        .await;
    assert!(refused.is_err(), "the audit table accepted an UPDATE");

    // A database administrator can disable the trigger; verify still finds the edit.
    sqlx::query("ALTER TABLE audit DISABLE TRIGGER audit_append_only")
        .execute(a.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE audit SET entry = jsonb_set(entry, '{text}', '\"edited\"') WHERE seq = 2")
        .execute(a.pool())
        .await
        .unwrap();
    match g.verify_audit().await {
        Err(AuditError::Chain(ChainError::Edited { seq: 2 })) => {}
        other => panic!("expected the edit of record 2 to be found, got {other:?}"),
    }
    sqlx::query("DELETE FROM audit WHERE seq IN (1, 2)")
        .execute(a.pool())
        .await
        .unwrap();
    assert!(matches!(
        g.verify_audit().await,
        Err(AuditError::Chain(ChainError::Missing { expected: 1, found: 3 }))
    ));
}

/// A superuser who deletes the last records and rewinds the head leaves a chain that verifies
/// clean; against a checkpoint signed before, the cut is found. So is a chain rewritten from
/// the start, and a checkpointer never signs a chain that does not verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_superuser_cutting_the_tail_is_found_against_a_checkpoint() {
    use jitgate_core::audit::CheckpointSigner;
    let Some(a) = common::store().await else { return };
    let a = Arc::new(a);
    let g = gate(a.clone(), Arc::new(ManualClock::default()));
    let signer = CheckpointSigner::from_seed([9; 32]);
    let key = signer.public_key_hex();
    for i in 0..3 {
        let req = pending(&g, ask(restart(&format!("db{i}")), 10)).await;
        g.approve(req.id, &lee(), Some("ok")).await.unwrap();
    }
    let checkpointer = g.checkpointer(signer);
    let checkpoint = checkpointer.checkpoint_now().await.unwrap();
    assert_eq!(checkpoint.seq, 12);
    assert!(g.verify_audit_against(&checkpoint, &key).await.is_ok());

    for sql in [
        "ALTER TABLE audit DISABLE TRIGGER audit_append_only",
        "DELETE FROM audit WHERE seq > 8",
        "UPDATE audit_head SET seq = 8, hash = (SELECT hash FROM audit WHERE seq = 8)",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(a.pool()).await.unwrap();
    }
    assert_eq!(
        g.verify_audit().await.unwrap().head.seq,
        8,
        "the cut chain verifies clean on its own"
    );
    match g.verify_audit_against(&checkpoint, &key).await {
        Err(AuditError::Chain(ChainError::EndsBeforeCheckpoint {
            ends_at: 8,
            checkpoint: 12,
        })) => {}
        other => panic!("expected the cut tail to be found, got {other:?}"),
    }

    sqlx::query("UPDATE audit SET entry = jsonb_set(entry, '{text}', '\"edited\"') WHERE seq = 2")
        .execute(a.pool())
        .await
        .unwrap();
    let fresh = g.checkpointer(CheckpointSigner::from_seed([9; 32]));
    assert!(
        matches!(
            fresh.checkpoint_now().await,
            Err(AuditError::Chain(ChainError::Edited { seq: 2 }))
        ),
        "a broken chain is never signed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_two_replicas_keep_one_chain() {
    let Some(a) = common::store().await else { return };
    let a = Arc::new(a);
    let b = Arc::new(common::replica(&a).await);
    let clock = Arc::new(ManualClock::default());
    let gates = [gate(a, clock.clone()), gate(b, clock.clone())];
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let g = gates[i % 2].clone();
            tokio::spawn(async move {
                let r = pending(&g, ask(restart(&format!("db{i}")), 10)).await;
                g.approve(r.id, &lee(), None).await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let head = gates[1].verify_audit().await.expect("the chain verifies").head;
    assert_eq!(head.seq, 160);
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

/// A transaction left open in another database of the same server holds a transaction id
/// older than every entry written here; it must not freeze sealing (before: reads waited 10 s
/// and then returned an empty chain).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transaction_open_in_another_database_never_delays_sealing() {
    let _one_at_a_time = SEALING.lock().await;
    use std::str::FromStr;

    use sqlx::postgres::{PgConnectOptions, PgConnection};
    use sqlx::Connection;
    let Some(a) = common::store().await else { return };
    if let Err(e) = sqlx::query("CREATE DATABASE jitgate_other").execute(a.pool()).await {
        let text = e.to_string();
        assert!(
            text.contains("already exists") || text.contains("duplicate key"),
            "{text}"
        );
    }
    let other_db = PgConnectOptions::from_str(&common::url())
        .unwrap()
        .database("jitgate_other");
    let mut other = open_transaction(PgConnection::connect_with(&other_db).await.unwrap()).await;

    let g = gate(Arc::new(a), Arc::new(ManualClock::default()));
    for i in 0..3 {
        let req = pending(&g, ask(restart(&format!("db{i}")), 10)).await;
        g.approve(req.id, &lee(), None).await.unwrap();
    }
    let started = Instant::now();
    let head = g.verify_audit().await.unwrap().head;
    assert_eq!(head.seq, 12, "every record is sealed and read");
    assert!(
        started.elapsed() < StdDuration::from_secs(5),
        "sealing waited {:?} for a transaction in another database",
        started.elapsed()
    );
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
}

/// A transaction left open in *this* database holds sealing back (its entries could come
/// before any later one): visibly. Reads wait at most `seal_wait`, return the sealed chain,
/// and the verify report and `unsealed_audit` say how many entries wait and since when.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transaction_open_in_this_database_delays_sealing_visibly() {
    let _one_at_a_time = SEALING.lock().await;
    use sqlx::Connection;
    let Some(a) = common::store_with(|o| o.seal_wait(StdDuration::from_millis(300))).await else {
        return;
    };
    let clock = Arc::new(ManualClock::default());
    let g = gate(Arc::new(a), clock.clone());
    let req = pending(&g, ask(restart("db0"), 10)).await;
    let report = g.verify_audit().await.unwrap();
    assert_eq!((report.head.seq, report.unsealed), (1, Unsealed::default()));

    let mut holder = open_transaction(sqlx::PgConnection::connect(&common::url()).await.unwrap()).await;
    clock.advance(Duration::minutes(5));
    g.approve(req.id, &lee(), Some("ok")).await.unwrap();

    let started = Instant::now();
    let report = g.verify_audit().await.unwrap();
    assert!(
        started.elapsed() < StdDuration::from_secs(3),
        "the read waited {:?}",
        started.elapsed()
    );
    assert_eq!(report.head.seq, 1, "only the sealed chain is verified");
    assert_eq!(
        report.unsealed,
        Unsealed::new(3, Some(g.now())),
        "the approval's three entries wait"
    );
    assert_eq!(g.unsealed_audit().await.unwrap().records, 3);
    let trail = g.request_audit(req.id, &PageRequest::first(10)).await.unwrap();
    assert_eq!(trail.items.len(), 1, "reads return what is sealed");

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    let report = g.verify_audit().await.unwrap();
    assert_eq!((report.head.seq, report.unsealed.records), (4, 0));
}

/// Records stream out of PostgreSQL as they seal: never an unsealed entry (its place in the
/// chain is not fixed yet), and each record once per sink, in chain order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_stream_to_a_file_as_they_seal() {
    let _one_at_a_time = SEALING.lock().await;
    use sqlx::Connection;
    let Some(a) = common::store_with(|o| o.seal_wait(StdDuration::from_millis(200))).await else {
        return;
    };
    let g = gate(Arc::new(a), Arc::new(ManualClock::default()));
    let file = std::env::temp_dir().join(format!("jitgate-pg-stream-{}.jsonl", std::process::id()));
    std::fs::remove_file(&file).ok();
    let streamer = g
        .audit_streamer()
        .sink(Arc::new(jitgate_core::audit::JsonLinesRecords::new(&file)));
    let req = pending(&g, ask(restart("db0"), 10)).await;
    assert_eq!(streamer.stream_once().await.unwrap().position, 1);

    let mut holder = open_transaction(sqlx::PgConnection::connect(&common::url()).await.unwrap()).await;
    g.approve(req.id, &lee(), None).await.unwrap();
    let held = streamer.stream_once().await.unwrap();
    assert_eq!(
        (held.published, held.position),
        (0, 1),
        "unsealed entries are not streamed"
    );

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    // They seal as soon as no older transaction of the database runs (other tests' included).
    let mut published = 0;
    let started = Instant::now();
    loop {
        let report = streamer.stream_once().await.unwrap();
        published += report.published;
        if report.position == 4 || started.elapsed() > StdDuration::from_secs(10) {
            assert_eq!((published, report.position), (3, 4));
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    let file_head = jitgate_core::audit::verify_jsonl(std::io::BufReader::new(std::fs::File::open(&file).unwrap()))
        .expect("the streamed file verifies");
    assert_eq!(file_head, g.verify_audit().await.unwrap().head);
    std::fs::remove_file(&file).ok();
}

/// An entry's content is fixed when it is committed: one edited before it is sealed (here
/// while a transaction in this database holds sealing back) is refused, never chained as
/// genuine, and reading the chain says which entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_entry_edited_before_it_is_sealed_is_refused() {
    let _one_at_a_time = SEALING.lock().await;
    use sqlx::Connection;
    let Some(a) = common::store().await else { return };
    let a = Arc::new(a);
    let g = gate(a.clone(), Arc::new(ManualClock::default()));
    let req = pending(&g, ask(restart("db0"), 10)).await;
    assert_eq!(g.verify_audit().await.unwrap().head.seq, 1);

    // Hold sealing back: a transaction of this database, with an id, left open.
    let mut holder = open_transaction(sqlx::PgConnection::connect(&common::url()).await.unwrap()).await;
    g.approve(req.id, &lee(), Some("ok")).await.unwrap();
    for sql in [
        "ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only",
        "UPDATE audit_entries SET entry = jsonb_set(entry, '{text}', '\"edited\"') \
         WHERE id = (SELECT max(id) FROM audit_entries)",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(a.pool()).await.unwrap();
    }
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();

    let err = g.verify_audit().await.unwrap_err();
    let chain = jitgate_core::ErrorChain(&err).to_string();
    assert!(
        chain.contains("was edited after it was committed and before it was sealed"),
        "{chain}"
    );
    let sealed: i64 = sqlx::query_scalar("SELECT count(*) FROM audit")
        .fetch_one(a.pool())
        .await
        .unwrap();
    assert_eq!(
        sealed, 3,
        "the request's record and the two approval entries before the edited one; not the edited one"
    );
}
