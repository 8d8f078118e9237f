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
