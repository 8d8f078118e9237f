//! The core group's checks of the combined reads a store may answer in one round trip: they
//! agree with the single reads they stand for.

use super::super::*;

/// `pending_and_counts` is `pending_request` and `principal_counts`; `grant_and_request` is
/// `read_grant` and the `read_request` of its request.
pub async fn combined_reads_agree_with_single_reads(store: Arc<dyn Store>) {
    let (gate, _, _) = fixtures::gate(store.clone());
    let RequestOutcome::Pending(pending) = gate.request(ask(restart("a"), 30)).await.unwrap() else {
        panic!("pending")
    };
    let RequestOutcome::Pending(approved) = gate.request(ask(restart("b"), 30)).await.unwrap() else {
        panic!("pending")
    };
    let grant = gate.approve(approved.id, &lee(), None).await.unwrap().grant.unwrap();
    let now = gate.now();
    for (scope, expected) in [(restart("a").scope, Some(&pending)), (restart("b").scope, None)] {
        let (found, counts) = store.pending_and_counts(&sam(), &scope, now).await.unwrap();
        assert_eq!(
            found.as_ref().map(|r| r.id),
            expected.map(|r| r.id),
            "pending for {scope}"
        );
        assert_eq!(found, store.pending_request(&sam(), &scope).await.unwrap());
        assert_eq!(counts, store.principal_counts(&sam(), now).await.unwrap());
        assert_eq!(counts.pending, 1, "one pending request of sam's");
    }
    let later = now + Duration::hours(1);
    let (_, lapsed) = store
        .pending_and_counts(&sam(), &restart("a").scope, later)
        .await
        .unwrap();
    assert_eq!(lapsed.pending, 0, "a lapsed request is not counted");

    let (g, r) = store
        .grant_and_request(grant.id)
        .await
        .unwrap()
        .expect("the grant is found");
    assert_eq!(Some(&g), store.read_grant(grant.id).await.unwrap().as_ref());
    assert_eq!(r, store.read_request(approved.id).await.unwrap());
    assert_eq!(r.map(|r| r.id), Some(approved.id));
    assert_eq!(store.grant_and_request(GrantId::new_random()).await.unwrap(), None);
}
