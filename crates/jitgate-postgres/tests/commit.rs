//! A commit is one statement; a refused one (a version found changed, a duplicate) writes
//! nothing and runs again step by step, which names the refusal.

mod common;

use std::sync::Arc;

use jitgate_core::*;
use jitgate_testkit::fixtures::{self, ask, lee, restart, sam};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_one_statement_and_a_refused_one_writes_nothing() {
    let Some(store) = common::store().await else { return };
    let store = Arc::new(store);
    let (gate, _, _) = fixtures::gate(store.clone());
    let RequestOutcome::Pending(r) = gate.request(ask(restart("orders"), 30)).await.unwrap() else {
        panic!("pending")
    };
    let grant = gate.approve(r.id, &lee(), None).await.unwrap().grant.unwrap();
    gate.revoke(grant.id, &lee(), None).await.unwrap();
    assert_eq!(
        store.stepwise_commits(),
        0,
        "request, approve and revoke each in one statement"
    );
    let records = gate.verify_audit().await.unwrap().head.seq;

    // A revocation computed from the grant's old version: refused, as one statement and then
    // step by step, and nothing of it is written.
    let stale = machine::revoke(&grant, &lee(), None, gate.now()).unwrap().commit;
    let err = store.commit(stale).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(store.stepwise_commits(), 1);
    assert_eq!(
        gate.verify_audit().await.unwrap().head.seq,
        records,
        "no audit entry written"
    );

    // A second pending request for the same scope: the duplicate is named.
    let RequestOutcome::Pending(first) = gate.request(ask(restart("billing"), 30)).await.unwrap() else {
        panic!("pending")
    };
    let flow = Arc::new(
        Flow::new(chrono::Duration::hours(1)).with_requirement(Requirement::new(fixtures::team("sre-leads"), 1)),
    );
    let again = machine::open(
        RequestId::new_random(),
        GrantId::new_random(),
        ask(restart("billing"), 30),
        &flow,
        None,
        gate.now(),
    )
    .unwrap()
    .commit;
    let err = store.commit(again).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::DuplicatePending { existing, .. } if *existing == first.id),
        "{err:?}"
    );
    assert_eq!(store.stepwise_commits(), 2);
    assert_eq!(
        store
            .pending_request(&sam(), &restart("billing").scope)
            .await
            .unwrap()
            .map(|r| r.id),
        Some(first.id)
    );
}

/// A request body that no longer decodes (edited by hand, written by a future version): the
/// reads that combine it with another row — the request verb's pending request and counts,
/// revoke's grant with its request — answer a typed error naming the table, and nothing is
/// written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_no_longer_decodes_is_an_error_naming_its_table() {
    let Some(store) = common::store().await else { return };
    let store = Arc::new(store);
    let (gate, _, _) = fixtures::gate(store.clone());
    let RequestOutcome::Pending(r) = gate.request(ask(restart("orders"), 30)).await.unwrap() else {
        panic!("pending")
    };
    let grant = gate.approve(r.id, &lee(), None).await.unwrap().grant.unwrap();
    let RequestOutcome::Pending(pending) = gate.request(ask(restart("billing"), 30)).await.unwrap() else {
        panic!("pending")
    };
    sqlx::query("UPDATE requests SET body = '{\"not\": \"a request\"}'::jsonb")
        .execute(store.pool())
        .await
        .unwrap();
    let corrupt = |e: &StoreError| {
        let chain = jitgate_core::ErrorChain(e).to_string();
        assert!(
            chain.contains("requests") && chain.contains("does not decode"),
            "{chain}"
        );
    };
    // The pending request for this principal and scope, read beside the counts.
    let err = store
        .pending_and_counts(&sam(), &restart("billing").scope, gate.now())
        .await
        .unwrap_err();
    corrupt(&err);
    assert!(gate.request(ask(restart("billing"), 30)).await.is_err());
    // The grant with its request.
    let err = store.grant_and_request(grant.id).await.unwrap_err();
    corrupt(&err);
    assert!(gate.revoke(grant.id, &lee(), None).await.is_err());
    let live: Vec<_> = store.live_grants(&sam(), &restart("orders").scope).await.unwrap();
    assert_eq!(live.len(), 1, "the grant was not revoked");
    assert!(store.read_request(pending.id).await.is_err());
}

/// On a new schema (empty, never analyzed) the store's sessions still plan the grant look-ups
/// of every commit and request by index: the generic plans a session keeps would otherwise
/// scan `grants` whole, and go on scanning it as it grows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_stores_sessions_find_grants_by_index_not_by_scanning_them() {
    let Some(store) = common::store().await else { return };
    let mut session = store.pool().acquire().await.unwrap();
    for sql in [
        "SET plan_cache_mode = force_generic_plan",
        // The commit's grant update and the request's count of unacknowledged grants.
        "PREPARE grant_update(uuid[], int8[]) AS UPDATE grants g SET version = u.expected + 1 \
         FROM UNNEST($1, $2) AS u(id, expected) WHERE g.id = u.id AND g.version = u.expected",
        "PREPARE unacknowledged(text) AS SELECT count(*) FROM grants WHERE principal = $1 AND awaits_ack",
    ] {
        sqlx::query(sql).execute(&mut *session).await.unwrap();
    }
    for explain in [
        "EXPLAIN EXECUTE grant_update('{}', '{}')",
        "EXPLAIN EXECUTE unacknowledged('User::\"sam\"')",
    ] {
        let plan: Vec<String> = sqlx::query_scalar(explain).fetch_all(&mut *session).await.unwrap();
        let plan = plan.join("\n");
        assert!(!plan.contains("Seq Scan on grants"), "{explain}:\n{plan}");
    }
    // Not back into the pool with its plan setting and statements.
    drop(session.detach());
}
