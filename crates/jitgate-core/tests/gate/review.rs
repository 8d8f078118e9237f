//! `approve` and `deny`: who may review, quorums, deny closes, reviewer queues, races.

use super::*;

#[tokio::test]
async fn self_approval_is_refused() {
    let (gate, ..) = setup();
    let mut ask = ask(restart("db"), 30);
    ask.principal = lee(); // a lead asking for themselves
    let req = pending(&gate, ask).await;
    let err = transition(gate.approve(req.id, &lee(), None).await.unwrap_err());
    assert!(matches!(err, TransitionError::SelfApproval { .. }), "{err}");
    assert!(err.to_string().contains("self-approval"));
}

#[tokio::test]
async fn a_reviewer_outside_every_reviewer_set_is_refused() {
    let (gate, ..) = setup();
    let req = pending(&gate, ask(restart("db"), 30)).await;
    let err = transition(gate.approve(req.id, &sec(), None).await.unwrap_err());
    assert!(matches!(err, TransitionError::NotEligibleReviewer { .. }));
    assert!(
        err.to_string().contains(r#"Team::"sre-leads""#),
        "the error says who may review: {err}"
    );
    let err = transition(gate.deny(req.id, &sec(), None).await.unwrap_err());
    assert!(
        matches!(err, TransitionError::NotEligibleReviewer { .. }),
        "an ineligible deny counts for nothing"
    );
    assert_eq!(gate.read_request(req.id).await.unwrap().state, RequestState::Pending);
}

#[tokio::test]
async fn two_requirements_need_two_distinct_people() {
    let (gate, ..) = setup();
    let req = pending(&gate, ask(migrate("db"), 30)).await;
    let out = gate.approve(req.id, &ada(), None).await.unwrap();
    assert!(out.grant.is_none(), "one person in both sets is not lead AND security");
    let err = transition(gate.approve(req.id, &ada(), None).await.unwrap_err());
    assert!(matches!(err, TransitionError::DuplicateReview { .. }));
    // Ada counts as security, so Lee (lead only) completes it.
    let out = gate.approve(req.id, &lee(), None).await.unwrap();
    assert!(out.grant.is_some());
}

#[tokio::test]
async fn two_leads_do_not_satisfy_a_security_requirement() {
    let (gate, ..) = setup();
    let req = pending(&gate, ask(migrate("db"), 30)).await;
    assert!(gate.approve(req.id, &lee(), None).await.unwrap().grant.is_none());
    assert!(gate.approve(req.id, &lin(), None).await.unwrap().grant.is_none());
    assert!(gate.approve(req.id, &sec(), None).await.unwrap().grant.is_some());
}

#[tokio::test]
async fn the_first_eligible_deny_closes_the_request_for_good() {
    let (gate, ..) = setup();
    let req = pending(&gate, ask(migrate("db"), 30)).await;
    gate.approve(req.id, &lee(), None).await.unwrap();
    let out = gate.deny(req.id, &sec(), Some("not during the freeze")).await.unwrap();
    assert_eq!(out.request.state, RequestState::Denied);
    let err = transition(gate.approve(req.id, &ada(), None).await.unwrap_err());
    assert!(matches!(
        err,
        TransitionError::RequestClosed {
            state: RequestState::Denied,
            ..
        }
    ));
    assert_eq!(gate.read_request(req.id).await.unwrap().state, RequestState::Denied);
}

#[tokio::test]
async fn a_request_past_its_ttl_cannot_be_approved_and_is_swept() {
    let (gate, clock, ..) = setup();
    let req = pending(&gate, ask(restart("db"), 30)).await;
    clock.advance(Duration::minutes(30));
    let err = transition(gate.approve(req.id, &lee(), None).await.unwrap_err());
    assert!(matches!(err, TransitionError::Time(TimeError::RequestExpired { .. })));
    assert_eq!(gate.sweep().await.unwrap().requests_expired, 1);
    assert_eq!(gate.read_request(req.id).await.unwrap().state, RequestState::Expired);
}

#[tokio::test]
async fn reviewers_see_the_requests_they_may_act_on() {
    let (gate, clock, ..) = setup();
    let r1 = pending(&gate, ask(restart("a"), 30)).await;
    clock.advance(Duration::seconds(1));
    let r2 = pending(&gate, ask(migrate("a"), 30)).await;
    clock.advance(Duration::seconds(1));
    let r3 = pending(&gate, ask(restart("b"), 30)).await;
    let ids = |p: Page<AccessRequest>| p.items.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(gate
            .pending_for_reviewer(&lee(), &PageRequest::first(10))
            .await
            .unwrap()),
        vec![r1.id, r2.id, r3.id]
    );
    assert_eq!(
        ids(gate
            .pending_for_reviewer(&sec(), &PageRequest::first(10))
            .await
            .unwrap()),
        vec![r2.id]
    );
    assert!(gate
        .pending_for_reviewer(&sam(), &PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
    let first = gate.pending_for_reviewer(&lee(), &PageRequest::first(2)).await.unwrap();
    let next = gate
        .pending_for_reviewer(&lee(), &PageRequest::after(first.next.clone().unwrap(), 2))
        .await
        .unwrap();
    assert_eq!(
        ids(first).into_iter().chain(ids(next)).collect::<Vec<_>>(),
        vec![r1.id, r2.id, r3.id]
    );
    gate.approve(r2.id, &lee(), None).await.unwrap();
    assert_eq!(
        ids(gate
            .pending_for_reviewer(&lee(), &PageRequest::first(10))
            .await
            .unwrap()),
        vec![r1.id, r3.id]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_approving_and_revoking_at_once_leave_a_consistent_state() {
    let store = Arc::new(MemoryStore::new());
    let (gate, ..) = gate(store.clone());
    for round in 0..20 {
        let db = format!("db{round}");
        let req = pending(&gate, ask(restart(&db), 30)).await;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let g1 = gate.clone();
            let who = [lee(), lin(), ada()][i % 3].clone();
            tasks.push(tokio::spawn(async move {
                let gate = g1;
                let grant = gate.approve(req.id, &who, None).await.ok().and_then(|o| o.grant);
                if let Some(g) = &grant {
                    let _ = gate.revoke(g.id, &who, Some("race")).await;
                }
                grant.map(|g| g.id)
            }));
            let gate = gate.clone();
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                let _ = gate.revoke_all(&sam(), &lee(), None).await;
                let _ = gate.authorize(&restart(&db), &sam()).await;
                None
            }));
        }
        let mut grants = Vec::new();
        for t in tasks {
            grants.extend(t.await.unwrap());
        }
        // Off-boarding also closes the pending request: either an approval won (one grant, then
        // revoked) or the off-boarding did (no grant, the request cancelled). Never both, never two.
        let stored = store.read_request(req.id).await.unwrap().unwrap();
        match grants.as_slice() {
            [one] => {
                assert_eq!(stored.state, RequestState::Approved, "round {round}");
                let g = store.read_grant(*one).await.unwrap().unwrap();
                assert_eq!(g.state, GrantState::Revoked, "round {round}");
            }
            [] => assert_eq!(stored.state, RequestState::Cancelled, "round {round}: withdrawn"),
            more => panic!("round {round}: {} grants for one request", more.len()),
        }
        assert!(!gate.authorize(&restart(&db), &sam()).await.is_allowed());
    }
    gate.verify_audit().await.expect("audit verifies after the races");
}

#[tokio::test]
async fn a_group_never_requests_reviews_or_counts_towards_a_quorum() {
    let (gate, ..) = setup();
    let req = pending(&gate, ask(restart("db"), 30)).await;
    match gate.approve(req.id, &team("sre-leads"), None).await {
        Err(Error::NotAPrincipal { entity }) => assert_eq!(entity, team("sre-leads")),
        other => panic!("a group must not review, got {other:?}"),
    }
    assert_eq!(gate.read_request(req.id).await.unwrap().reviews.len(), 0);
    let mut by_group = ask(restart("other"), 30);
    by_group.principal = team("sre");
    assert!(matches!(gate.request(by_group).await, Err(Error::NotAPrincipal { .. })));
    assert!(
        gate.approve(req.id, &lee(), None).await.unwrap().grant.is_some(),
        "a person still can"
    );
}

/// The operator's list of pending requests leaves out those whose deadline passed, though no
/// sweep has closed them yet.
#[tokio::test]
async fn pending_requests_lists_what_still_waits() {
    let (gate, clock, ..) = setup();
    let first = pending(&gate, ask(restart("a"), 30)).await;
    clock.advance(Duration::minutes(20));
    let second = pending(&gate, ask(restart("b"), 30)).await;
    let ids = |p: Page<AccessRequest>| p.items.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(gate.pending_requests(&PageRequest::first(10)).await.unwrap()),
        [first.id, second.id]
    );
    clock.advance(Duration::minutes(15));
    assert_eq!(
        ids(gate.pending_requests(&PageRequest::first(10)).await.unwrap()),
        [second.id],
        "the first request's 30 minutes are over"
    );
}
