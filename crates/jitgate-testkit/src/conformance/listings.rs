//! The `Listings` group: paginated listings and what is built on them (`revoke_all`).

use super::*;

/// `revoke_all` ends every live grant of the principal and leaves others' grants alone.
pub async fn revoke_all_ends_every_grant_of_a_principal(store: Arc<dyn Store>) {
    let (gate, _, _) = fixtures::gate(store.clone());
    for db in ["a", "b", "c"] {
        let RequestOutcome::Pending(r) = gate.request(ask(restart(db), 30)).await.unwrap() else {
            panic!()
        };
        gate.approve(r.id, &lee(), None).await.unwrap();
    }
    let mut other = ask(restart("a"), 30);
    other.principal = lin();
    let RequestOutcome::Pending(r) = gate.request(other).await.unwrap() else {
        panic!()
    };
    gate.approve(r.id, &lee(), None).await.unwrap();

    let RequestOutcome::Pending(waiting) = gate.request(ask(restart("d"), 30)).await.unwrap() else {
        panic!()
    };
    let mut others = ask(restart("d"), 30);
    others.principal = lin();
    let RequestOutcome::Pending(not_sams) = gate.request(others).await.unwrap() else {
        panic!()
    };

    let done = gate.revoke_all(&sam(), &lee(), Some("off-boarding")).await.unwrap();
    let revoked = &done.revoked;
    assert_eq!(revoked.len(), 3);
    assert_eq!(
        done.withdrawn.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![waiting.id],
        "and their pending request"
    );
    assert_eq!(done.withdrawn[0].state, RequestState::Cancelled);
    assert_eq!(
        store.read_request(not_sams.id).await.unwrap().unwrap().state,
        RequestState::Pending,
        "someone else's request stays"
    );
    assert!(store
        .pending_request(&sam(), &restart("d").scope)
        .await
        .unwrap()
        .is_none());
    assert!(revoked.iter().all(|g| g.state == GrantState::Revoked));
    for db in ["a", "b", "c"] {
        assert!(
            !gate.authorize(&restart(db), &sam()).await.is_allowed(),
            "revoked grant still allows {db}"
        );
    }
    assert!(
        gate.authorize(&restart("a"), &lin()).await.is_allowed(),
        "someone else's grant was revoked"
    );
    let page = listings(&store)
        .live_grants_of(&sam(), &PageRequest::first(10))
        .await
        .unwrap();
    assert!(page.items.is_empty());
    let again = gate.revoke_all(&sam(), &lee(), None).await.unwrap();
    assert!(again.revoked.is_empty() && again.withdrawn.is_empty(), "idempotent");
    if store.audit_log().is_some() {
        let trail = audit_all(&store).await;
        let closed = trail
            .iter()
            .find(|r| {
                r.entry.request_id == waiting.id && r.entry.action == jitgate_core::audit::AuditAction::RequestCancelled
            })
            .expect("the closing is audited");
        assert_eq!(closed.entry.actor, lee());
        assert_eq!(closed.entry.text.as_deref(), Some("off-boarding"));
    }
}

/// Every listing pages through all items exactly once; a foreign cursor is refused.
pub async fn listings_paginate(store: Arc<dyn Store>) {
    let (gate, clock, _) = fixtures::gate(store.clone());
    let mut requests = Vec::new();
    for i in 0..7 {
        let RequestOutcome::Pending(r) = gate.request(ask(restart(&format!("db{i}")), 30)).await.unwrap() else {
            panic!()
        };
        requests.push(r.id);
        clock.advance(Duration::seconds(1));
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(3);
    loop {
        let p = listings(&store).pending_requests(&page).await.unwrap();
        assert!(p.items.len() <= 3);
        seen.extend(p.items.iter().map(|r| r.id));
        match p.next {
            Some(c) => page = PageRequest::after(c, 3),
            None => break,
        }
    }
    assert_eq!(seen, requests, "pending requests, oldest first, each once");

    for id in &requests[..5] {
        gate.approve(*id, &lee(), None).await.unwrap();
    }
    let mut grants = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let p = listings(&store).live_grants_of(&sam(), &page).await.unwrap();
        grants.extend(p.items.iter().map(|g| g.id));
        match p.next {
            Some(c) => page = PageRequest::after(c, 2),
            None => break,
        }
    }
    assert_eq!(grants.len(), 5);
    assert_eq!(grants.iter().collect::<HashSet<_>>().len(), 5);
    let mut sorted = grants.clone();
    sorted.sort();
    assert_eq!(grants, sorted, "ordered by id");

    let audit = gate.request_audit(requests[0], &PageRequest::first(2)).await.unwrap();
    assert_eq!(audit.items.len(), 2);
    let rest = gate
        .request_audit(requests[0], &PageRequest::after(audit.next.clone().unwrap(), 100))
        .await
        .unwrap();
    assert!(rest.next.is_none());
    let all: Vec<_> = audit.items.iter().chain(rest.items.iter()).collect();
    assert!(all.iter().all(|r| r.entry.request_id == requests[0]));
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(all.len(), 4, "created, review, approved, grant created");

    let bad = PageRequest::after(jitgate_core::Cursor::new("not-a-cursor"), 2);
    assert!(matches!(
        listings(&store).pending_requests(&bad).await,
        Err(StoreError::InvalidCursor { .. })
    ));
    assert!(matches!(
        listings(&store).live_grants_of(&sam(), &bad).await,
        Err(StoreError::InvalidCursor { .. })
    ));
}

/// The pending requests for some reviewer groups: only those whose flows name one of the
/// groups, each once, oldest first, paged with the cursors of `pending_requests`; closed
/// requests leave the listing. The gate's reviewer queue agrees.
pub async fn pending_requests_for_reviewers_are_theirs_oldest_first(store: Arc<dyn Store>) {
    let (gate, clock, _) = fixtures::gate(store.clone());
    let mut ids = Vec::new();
    for (i, action) in [
        restart("a"),
        fixtures::migrate("m1"),
        restart("b"),
        fixtures::migrate("m2"),
    ]
    .into_iter()
    .enumerate()
    {
        clock.advance(Duration::minutes(1));
        let mut new = ask(action, 30);
        new.justification = Some(format!("change {i}"));
        let RequestOutcome::Pending(r) = gate.request(new).await.unwrap() else {
            panic!("pending")
        };
        ids.push(r.id);
    }
    let (a, m1, b, m2) = (ids[0], ids[1], ids[2], ids[3]);
    gate.approve(b, &lee(), None).await.unwrap();

    let listed = |groups: Vec<EntityRef>, limit: usize| {
        let store = store.clone();
        async move {
            let mut all = Vec::new();
            let mut page = PageRequest::first(limit);
            loop {
                let p = listings(&store).pending_requests_for(&groups, &page).await.unwrap();
                assert!(p.items.len() <= limit);
                all.extend(p.items.iter().map(|r| r.id));
                match p.next {
                    Some(next) => page = PageRequest::after(next, limit),
                    None => return all,
                }
            }
        }
    };
    assert_eq!(listed(vec![team("security")], 1).await, vec![m1, m2]);
    assert_eq!(
        listed(vec![team("sre-leads"), team("security")], 2).await,
        vec![a, m1, m2],
        "a request that names two of the groups is listed once; an approved one not at all"
    );
    assert_eq!(listed(vec![team("sre-leads")], 10).await, vec![a, m1, m2]);
    assert!(listed(vec![team("nobody")], 10).await.is_empty());
    assert!(listed(Vec::new(), 10).await.is_empty());

    let foreign = PageRequest::after(jitgate_core::Cursor::new("not-a-request"), 5);
    assert!(matches!(
        listings(&store)
            .pending_requests_for(&[team("security")], &foreign)
            .await,
        Err(StoreError::InvalidCursor { .. })
    ));

    let queue = gate
        .pending_for_reviewer(&fixtures::sec(), &PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(queue.items.iter().map(|r| r.id).collect::<Vec<_>>(), vec![m1, m2]);
}

/// A principal's own requests in every state, newest first, each once across pages; filtered
/// by state and by creation time; another principal's requests never listed, and a cursor
/// from another principal's listing refused.
pub async fn requests_of_a_principal_are_theirs_newest_first(store: Arc<dyn Store>) {
    let (gate, clock, _) = fixtures::gate(store.clone());
    let mut made = Vec::new();
    for db in ["a", "b", "c", "d", "e"] {
        clock.advance(Duration::minutes(1));
        let RequestOutcome::Pending(r) = gate.request(ask(restart(db), 30)).await.unwrap() else {
            panic!("pending")
        };
        made.push(r);
    }
    let mut others = ask(restart("a"), 30);
    others.principal = lin();
    let RequestOutcome::Pending(lins) = gate.request(others).await.unwrap() else {
        panic!("pending")
    };
    gate.approve(made[0].id, &lee(), None).await.unwrap();
    gate.deny(made[1].id, &lee(), None).await.unwrap();
    gate.cancel(made[2].id, &sam()).await.unwrap();

    let listed = |filter: jitgate_core::RequestFilter, limit: usize| {
        let store = store.clone();
        async move {
            let mut all = Vec::new();
            let mut page = PageRequest::first(limit);
            loop {
                let p = listings(&store).requests_of(&sam(), &filter, &page).await.unwrap();
                assert!(p.items.len() <= limit);
                assert!(p.items.iter().all(|r| r.principal == sam()), "only sam's requests");
                all.extend(p.items.iter().map(|r| (r.id, r.state)));
                match p.next {
                    Some(next) => page = PageRequest::after(next, limit),
                    None => return all,
                }
            }
        }
    };
    let any = jitgate_core::RequestFilter::any;
    let newest_first: Vec<RequestId> = made.iter().rev().map(|r| r.id).collect();
    for limit in [1, 2, 5, 10] {
        let all = listed(any(), limit).await;
        assert_eq!(
            all.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            newest_first,
            "every state, newest first, each once (pages of {limit})"
        );
    }
    let all = listed(any(), 10).await;
    assert_eq!(
        all.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        vec![
            RequestState::Pending,
            RequestState::Pending,
            RequestState::Cancelled,
            RequestState::Denied,
            RequestState::Approved
        ],
        "each as stored now"
    );
    let closed = listed(any().in_states([RequestState::Approved, RequestState::Denied]), 1).await;
    assert_eq!(
        closed,
        vec![(made[1].id, RequestState::Denied), (made[0].id, RequestState::Approved)]
    );
    let pending = listed(any().in_states([RequestState::Pending]), 10).await;
    assert_eq!(pending.len(), 2);

    // Made at t0+1min .. t0+5min: [from, before) keeps the second to the fourth.
    let window = any()
        .created_from(made[1].created_at)
        .created_before(made[4].created_at);
    let middle = listed(window.clone(), 2).await;
    assert_eq!(
        middle.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![made[3].id, made[2].id, made[1].id],
        "from is inclusive, before exclusive"
    );
    let pending_in_window = listed(window.in_states([RequestState::Pending]), 10).await;
    assert_eq!(
        pending_in_window,
        vec![(made[3].id, RequestState::Pending)],
        "state and time together"
    );

    let nobody = listings(&store)
        .requests_of(&fixtures::sec(), &any(), &PageRequest::first(10))
        .await
        .unwrap();
    assert!(nobody.items.is_empty() && nobody.next.is_none());
    let lins_cursor = PageRequest::after(jitgate_core::Cursor::after(lins.id), 5);
    assert!(
        matches!(
            listings(&store).requests_of(&sam(), &any(), &lins_cursor).await,
            Err(StoreError::InvalidCursor { .. })
        ),
        "a cursor from lin's listing"
    );
    let garbage = PageRequest::after(jitgate_core::Cursor::new("not-a-request"), 5);
    assert!(matches!(
        listings(&store).requests_of(&sam(), &any(), &garbage).await,
        Err(StoreError::InvalidCursor { .. })
    ));
    let through_gate = gate.requests_of(&lin(), &any(), &PageRequest::first(10)).await.unwrap();
    assert_eq!(
        through_gate.items.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![lins.id]
    );
}
