//! `MemoryStore::with_retention`: closed requests and ended grants leave memory once the
//! retention has passed (on the commits' clock); live ones and the audit chain stay.

use super::*;

#[tokio::test]
async fn closed_requests_and_ended_grants_leave_memory_after_the_retention() {
    let store = Arc::new(MemoryStore::with_retention(Duration::hours(1)));
    let (gate, clock, _) = gate(store.clone());
    // A grant revoked now, a request denied now, a grant that stays live.
    let revoked = pending(&gate, ask(restart("a"), 30)).await;
    let grant = gate.approve(revoked.id, &lee(), None).await.unwrap().grant.unwrap();
    gate.revoke(grant.id, &lee(), Some("done")).await.unwrap();
    let denied = pending(&gate, ask(restart("b"), 30)).await;
    gate.deny(denied.id, &lee(), Some("no")).await.unwrap();
    let live = pending(&gate, ask(restart("c"), 30)).await;
    let live_grant = gate.approve(live.id, &lee(), None).await.unwrap().grant.unwrap();
    let records = store.audit_records().len();
    assert_eq!((store.request_count(), store.grant_count()), (3, 2));

    // Within the retention, a later commit forgets nothing.
    clock.advance(Duration::minutes(59));
    pending(&gate, ask(restart("d"), 30)).await;
    assert_eq!((store.request_count(), store.grant_count()), (4, 2));
    assert!(store.read_grant(grant.id).await.unwrap().is_some());

    // Past it, the next commit forgets what was closed before: the revoked grant and its
    // request, the denied request. The live grant and its request, and the pending one, stay.
    clock.advance(Duration::minutes(2));
    let e = pending(&gate, ask(restart("e"), 30)).await;
    assert_eq!(store.read_grant(grant.id).await.unwrap(), None);
    assert_eq!(store.read_request(revoked.id).await.unwrap(), None);
    assert_eq!(store.read_request(denied.id).await.unwrap(), None);
    assert!(store.read_grant(live_grant.id).await.unwrap().is_some());
    assert!(store.read_request(live.id).await.unwrap().is_some(), "its grant lives");
    assert!(store.read_request(e.id).await.unwrap().is_some());
    assert_eq!((store.request_count(), store.grant_count()), (3, 1));
    // "My requests" no longer lists the forgotten ones.
    let mine = gate
        .requests_of(&sam(), &RequestFilter::any(), &PageRequest::first(10))
        .await
        .unwrap();
    let mut listed: Vec<RequestId> = mine.items.iter().map(|r| r.id).collect();
    listed.sort();
    let mut kept = vec![live.id, e.id, store_pending_d(&gate).await];
    kept.sort();
    assert_eq!(listed, kept);
    // The audit chain keeps every record and verifies; a forgotten request's trail is there.
    assert!(store.audit_records().len() > records);
    gate.verify_audit().await.unwrap();
    let trail = gate.request_audit(denied.id, &PageRequest::first(10)).await.unwrap();
    assert!(!trail.items.is_empty(), "the denied request's records stay");
    // By now the live grant's window has passed: it ends when a sweep records its expiry
    // (an expiry nobody committed keeps it), and goes once the retention passes after that,
    // with its approved request.
    assert!(store.read_grant(live_grant.id).await.unwrap().is_some());
    gate.sweep().await.unwrap();
    clock.advance(Duration::minutes(61));
    pending(&gate, ask(restart("f"), 30)).await;
    assert_eq!(store.read_grant(live_grant.id).await.unwrap(), None);
    assert_eq!(store.read_request(live.id).await.unwrap(), None);
    assert_eq!(store.grant_count(), 0);
}

#[tokio::test]
async fn without_a_retention_nothing_is_forgotten() {
    let (gate, clock, _, store) = setup();
    let r = pending(&gate, ask(restart("a"), 30)).await;
    gate.deny(r.id, &lee(), None).await.unwrap();
    clock.advance(Duration::days(400));
    pending(&gate, ask(restart("b"), 30)).await;
    assert!(store.read_request(r.id).await.unwrap().is_some());
}

/// An ended break-glass grant nobody has acknowledged stays, whatever the retention: the
/// acknowledgement is still owed. Acknowledged, it goes once the retention has passed again.
#[tokio::test]
async fn an_unacknowledged_break_glass_grant_stays_until_acknowledged() {
    let store = Arc::new(MemoryStore::with_retention(Duration::hours(1)));
    let (gate, clock, _) = gate(store.clone());
    let RequestOutcome::Granted { grant, .. } = gate.request(ask(restart("db"), 60).break_glass()).await.unwrap()
    else {
        panic!("break-glass is granted at once")
    };
    gate.revoke(grant.id, &lee(), Some("over")).await.unwrap();
    clock.advance(Duration::hours(2));
    pending(&gate, ask(restart("other"), 30)).await;
    assert!(
        store.read_grant(grant.id).await.unwrap().is_some(),
        "ended, past the retention, not acknowledged: kept"
    );
    gate.acknowledge(grant.id, &lee(), Some("justified")).await.unwrap();
    clock.advance(Duration::minutes(30));
    pending(&gate, ask(restart("third"), 30)).await;
    assert!(
        store.read_grant(grant.id).await.unwrap().is_some(),
        "within the retention of its acknowledgement"
    );
    clock.advance(Duration::minutes(31));
    pending(&gate, ask(restart("fourth"), 30)).await;
    assert_eq!(store.read_grant(grant.id).await.unwrap(), None);
}

/// The id of sam's pending request for `Database::"d"`.
async fn store_pending_d(gate: &Gate) -> RequestId {
    let mine = gate
        .requests_of(
            &sam(),
            &RequestFilter::any().in_states([RequestState::Pending]),
            &PageRequest::first(10),
        )
        .await
        .unwrap();
    mine.items
        .iter()
        .find(|r| r.action.scope.resource.id.as_ref() == "d")
        .map(|r| r.id)
        .expect("d is pending")
}
