//! The audit chain on PostgreSQL: append-only, sealed in one order across replicas, verified
//! against checkpoints, streamed as it seals; what holds sealing back and what does not.

mod common;

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use jitgate_core::audit::ChainError;
use jitgate_core::*;
use jitgate_testkit::fixtures::{ask, lee, restart};

use common::replicas::*;

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

/// Entries are chained in the order of their transactions' ids as numbers: across a change in
/// the number of digits (999 before 1000), where sorting the ids as text would put 1000 first
/// and then chain 999's entries after entries sealed later (a fresh server crosses 1000 within
/// seconds; every later crossing of a power of ten did the same).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn entries_are_sealed_in_numeric_transaction_order() {
    let Some(source) = common::store().await else { return };
    let source = Arc::new(source);
    pending(
        &gate(source.clone(), Arc::new(ManualClock::default())),
        ask(restart("db0"), 10),
    )
    .await;
    let Some(a) = common::store().await else { return };
    let a = Arc::new(a);
    // Two copies of a real entry, as if written by transactions 1000 and then 999.
    let mut ids = Vec::new();
    for xid in ["1000", "999"] {
        let id: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "INSERT INTO audit_entries (xid, request_id, entry, digest) \
             SELECT '{xid}'::xid8, request_id, entry, digest FROM \"{}\".audit_entries LIMIT 1 RETURNING id",
            source.schema()
        )))
        .fetch_one(a.pool())
        .await
        .unwrap();
        ids.push(id);
    }
    let g = gate(a.clone(), Arc::new(ManualClock::default()));
    assert_eq!(g.verify_audit().await.unwrap().head.seq, 2);
    let chained: Vec<i64> = sqlx::query_scalar("SELECT entry_id FROM audit ORDER BY seq")
        .fetch_all(a.pool())
        .await
        .unwrap();
    assert_eq!(chained, vec![ids[1], ids[0]], "999's entry first, then 1000's");
}
