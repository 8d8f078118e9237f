//! The core group: what every `Store` must do — atomic, conditional commits and the reads the engine decides from.

use super::*;

mod reads;
mod records;
pub use reads::combined_reads_agree_with_single_reads;
pub use records::{refusals_are_recorded, uses_are_recorded};

/// An update computed from a stale version is refused with `Conflict`; from the current one it applies.
pub async fn compare_and_swap_conflict(store: Arc<dyn Store>) {
    let (req, c) = open(&sam(), "a", t0());
    store.commit(c).await.expect("insert");
    let approve = machine::review(
        &req,
        &lee(),
        Verdict::Approve,
        None,
        &lead_standing(),
        GrantId::new_random(),
        t0(),
    )
    .expect("review")
    .commit;
    let cancel = machine::cancel(&req, &sam(), t0()).expect("cancel").commit;
    store.commit(approve).await.expect("first writer wins");
    let err = store
        .commit(cancel)
        .await
        .expect_err("second writer on the same version must conflict");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: 1,
                found: Some(2),
                ..
            }
        ),
        "got {err:?}"
    );
    let stored = store.read_request(req.id).await.unwrap().expect("stored");
    assert_eq!(stored.state, RequestState::Approved);
    assert_eq!(stored.version, 2);
}

/// A commit whose second part conflicts writes nothing: no request change, no grant, no audit, no event.
pub async fn commit_is_all_or_nothing(store: Arc<dyn Store>) {
    let (req, c) = open(&sam(), "a", t0());
    store.commit(c).await.expect("insert");
    let audit_before = match store.audit_log() {
        Some(_) => audit_all(&store).await.len(),
        None => 0,
    };
    let approve = machine::review(
        &req,
        &lee(),
        Verdict::Approve,
        None,
        &lead_standing(),
        GrantId::new_random(),
        t0(),
    )
    .unwrap()
    .commit;
    let granted = approve.grants()[0].value().clone();
    let failed_events: Vec<_> = approve.events().iter().map(|e| e.id.clone()).collect();
    // A bogus update of a grant that does not exist makes the whole commit invalid.
    let mut ghost = granted.clone();
    ghost.id = GrantId::new_random();
    let (request, mut grants, audit, events) = approve.into_parts();
    grants.push(Write::Update {
        expected_version: 7,
        value: ghost,
    });
    let approve = Commit::from_parts(request, grants, audit, events);
    assert!(matches!(store.commit(approve).await, Err(StoreError::Conflict { .. })));
    assert_eq!(
        store.read_request(req.id).await.unwrap().unwrap().state,
        RequestState::Pending
    );
    assert_eq!(store.read_request(req.id).await.unwrap().unwrap().version, 1);
    assert!(
        store.read_grant(granted.id).await.unwrap().is_none(),
        "grant written by a failed commit"
    );
    if store.audit_log().is_some() {
        assert_eq!(
            audit_all(&store).await.len(),
            audit_before,
            "audit written by a failed commit"
        );
    }
    if store.outbox().is_some() {
        let outbox = outbox(&store).claim(t0(), usize::MAX).await.unwrap();
        assert!(
            outbox.iter().all(|e| !failed_events.contains(&e.event.id)),
            "event written by a failed commit"
        );
        assert_eq!(outbox.len(), 1, "only the first commit's event");
    }
}

/// A second pending request for the same principal and scope is refused; after the first
/// closes, a new one is accepted. Different scopes or principals do not collide.
pub async fn duplicate_pending_is_refused(store: Arc<dyn Store>) {
    let (first, c) = open(&sam(), "a", t0());
    store.commit(c).await.unwrap();
    let (_, same_id) = open(&lin(), "z", t0());
    let (mut request, grants, audit, events) = same_id.into_parts();
    if let Some(Write::Insert(r)) = request.as_mut() {
        r.id = first.id;
    }
    let same_id = Commit::from_parts(request, grants, audit, events);
    assert!(
        matches!(store.commit(same_id).await, Err(StoreError::AlreadyExists { .. })),
        "an existing id must be refused"
    );
    let (_, dup) = open(&sam(), "a", t0());
    match store.commit(dup).await {
        Err(StoreError::DuplicatePending { existing, .. }) => assert_eq!(existing, first.id),
        other => panic!("expected DuplicatePending, got {other:?}"),
    }
    store.commit(open(&sam(), "b", t0()).1).await.expect("other scope");
    store.commit(open(&lee(), "a", t0()).1).await.expect("other principal");
    assert_eq!(
        store
            .pending_request(&sam(), &restart("a").scope)
            .await
            .unwrap()
            .map(|r| r.id),
        Some(first.id)
    );
    store
        .commit(machine::cancel(&first, &sam(), t0()).unwrap().commit)
        .await
        .unwrap();
    assert!(store
        .pending_request(&sam(), &restart("a").scope)
        .await
        .unwrap()
        .is_none());
    store
        .commit(open(&sam(), "a", t0()).1)
        .await
        .expect("a new request once the first closed");
}

/// Many reviewers approving the same one-approval request at once produce exactly one grant.
pub async fn concurrent_approvers_yield_one_grant(store: Arc<dyn Store>) {
    let (gate, _, _) = fixtures::gate(store.clone());
    let RequestOutcome::Pending(req) = gate.request(ask(restart("orders-prod"), 30)).await.unwrap() else {
        panic!("expected a pending request")
    };
    let leads = ["lee", "lin", "ada"];
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let gate = gate.clone();
            let who = fixtures::user(leads[i % 3]);
            tokio::spawn(async move { gate.approve(req.id, &who, None).await })
        })
        .collect();
    let mut grants = HashSet::new();
    for t in tasks {
        if let Ok(Ok(outcome)) = t.await {
            grants.extend(outcome.grant.map(|g| g.id));
        }
    }
    assert_eq!(grants.len(), 1, "exactly one grant, got {grants:?}");
    let stored = store.read_request(req.id).await.unwrap().unwrap();
    assert_eq!(stored.state, RequestState::Approved);
    assert_eq!(stored.reviews.len(), 1, "only the winning review is recorded");
    let live = store.live_grants(&sam(), &restart("orders-prod").scope).await.unwrap();
    assert_eq!(live.len(), 1);
    if store.audit_log().is_some() {
        verify(&audit_all(&store).await).expect("audit chain verifies");
    }
}

/// `live_grants` returns exactly the principal's live grants for that scope, and no ended ones.
pub async fn grant_index_is_exact_and_drops_ended_grants(store: Arc<dyn Store>) {
    let (gate, clock, _) = fixtures::gate(store.clone());
    let mut ids = Vec::new();
    for db in ["a", "b"] {
        let RequestOutcome::Pending(r) = gate.request(ask(restart(db), 30)).await.unwrap() else {
            panic!()
        };
        ids.push(
            gate.approve(r.id, &lee(), None)
                .await
                .unwrap()
                .grant
                .expect("granted")
                .id,
        );
    }
    let a = store.live_grants(&sam(), &restart("a").scope).await.unwrap();
    assert_eq!(a.iter().map(|g| g.id).collect::<Vec<_>>(), vec![ids[0]]);
    assert!(
        store.live_grants(&lee(), &restart("a").scope).await.unwrap().is_empty(),
        "other principal"
    );
    assert!(
        store.live_grants(&sam(), &restart("c").scope).await.unwrap().is_empty(),
        "other scope"
    );
    gate.revoke(ids[0], &lee(), Some("done")).await.unwrap();
    assert!(
        store.live_grants(&sam(), &restart("a").scope).await.unwrap().is_empty(),
        "revoked grant still indexed"
    );
    clock.advance(Duration::hours(2));
    assert_eq!(
        store.live_grants(&sam(), &restart("b").scope).await.unwrap().len(),
        1,
        "unswept grant is still live"
    );
    assert_eq!(
        gate.authorize(&restart("b"), &sam()).await,
        gate.explain(&restart("b"), &sam()).await.decision
    );
    assert!(
        !gate.authorize(&restart("b"), &sam()).await.is_allowed(),
        "expired grant allowed before sweep"
    );
    if store.due_work().is_some() {
        gate.sweep().await.unwrap();
        assert!(
            store.live_grants(&sam(), &restart("b").scope).await.unwrap().is_empty(),
            "expired grant still indexed"
        );
    }
}

/// A two-use grant allows exactly two `authorize` calls, however many race for it, and
/// only for the exact parameters it was requested with.
pub async fn use_limited_grant_allows_exactly_n_uses_concurrently(store: Arc<dyn Store>) {
    let (gate, _, _) = fixtures::gate(store.clone());
    let action = read_customer("c-42").with_attr("ticket", "SUP-9");
    let RequestOutcome::Pending(r) = gate.request(ask(action.clone(), 30)).await.unwrap() else {
        panic!()
    };
    let grant = gate.approve(r.id, &lee(), None).await.unwrap().grant.unwrap();
    let other_params = read_customer("c-42").with_attr("ticket", "SUP-10");
    assert!(
        !gate.authorize(&other_params, &sam()).await.is_allowed(),
        "bound grant allowed other parameters"
    );
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let gate = gate.clone();
            let action = action.clone();
            tokio::spawn(async move { gate.authorize(&action, &sam()).await })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Decision::Allow { basis: Basis::Grant(id), .. } if id == grant.id) {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 2, "exactly two uses");
    let g = store.read_grant(grant.id).await.unwrap().unwrap();
    assert_eq!(g.state, GrantState::Exhausted);
    assert_eq!(g.uses.map(|u| u.used), Some(2));
}

/// Every input limit refuses one over with a typed error, before anything is stored, whatever
/// the store: no request, no review, no revoke, no audit record.
pub async fn limits_refuse_before_storing(store: Arc<dyn Store>) {
    use jitgate_core::{Field, LimitError, Limits};
    let (gate, clock, _) = fixtures::gate(store.clone());
    let limits = Limits::default();
    let audit_len = || async {
        match store.audit_log() {
            Some(_) => audit_all(&store).await.len(),
            None => 0,
        }
    };
    let limit = |e: Error| match e {
        Error::Limit(l) => l,
        other => panic!("expected a limit error, got {other:?}"),
    };
    let scope = restart("a").scope;
    let before = audit_len().await;

    let long = "x".repeat(limits.text_bytes + 1);
    let err = limit(
        gate.request(ask(restart("a"), 30).with_justification(long.as_str()))
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(err, LimitError::TooLong { field: Field::Justification, bytes, max } if bytes == max + 1),
        "{err}"
    );
    let err = limit(
        gate.request(ask(restart("a"), 30).with_justification("ok\0no"))
            .await
            .unwrap_err(),
    );
    assert!(matches!(err, LimitError::ControlCharacter { code: 0, .. }), "{err}");
    let mut far = ask(restart("a"), 30);
    far.principal = EntityRef::new("User", "u".repeat(limits.entity_id_bytes + 1));
    let err = limit(gate.request(far.clone()).await.unwrap_err());
    assert!(
        matches!(
            err,
            LimitError::TooLong {
                field: Field::EntityId,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        matches!(
            gate.authorize(&restart("a"), &far.principal).await,
            Decision::Deny { .. }
        ),
        "authorize denies an over-long principal"
    );
    let mut forever = ask(restart("a"), 30);
    forever.duration = Duration::MAX;
    assert!(matches!(
        limit(gate.request(forever).await.unwrap_err()),
        LimitError::DurationTooLong { .. }
    ));
    let later = ask(restart("a"), 30).starting_at(clock.now_plus(limits.start_ahead + Duration::seconds(1)));
    assert!(matches!(
        limit(gate.request(later).await.unwrap_err()),
        LimitError::StartTooFarAhead { .. }
    ));
    let big = jitgate_core::Action::new(restart("a").scope.action, restart("a").scope.resource)
        .with_attr("blob", "y".repeat(limits.attributes_bytes));
    let mut big_ask = ask(restart("a"), 30);
    big_ask.action = big;
    assert!(matches!(
        limit(gate.request(big_ask).await.unwrap_err()),
        LimitError::TooLong {
            field: Field::Attribute,
            ..
        }
    ));
    assert!(
        store.pending_request(&sam(), &scope).await.unwrap().is_none(),
        "nothing stored"
    );

    let RequestOutcome::Pending(req) = gate.request(ask(restart("a"), 30)).await.unwrap() else {
        panic!("expected a pending request")
    };
    let after_request = audit_len().await;
    let err = limit(gate.approve(req.id, &lee(), Some(long.as_str())).await.unwrap_err());
    assert!(
        matches!(
            err,
            LimitError::TooLong {
                field: Field::Comment,
                ..
            }
        ),
        "{err}"
    );
    let stored = store.read_request(req.id).await.unwrap().expect("stored");
    assert_eq!(
        (stored.state, stored.version),
        (RequestState::Pending, 1),
        "the review was not stored"
    );
    let grant = gate
        .approve(req.id, &lee(), None)
        .await
        .unwrap()
        .grant
        .expect("granted");
    let err = limit(gate.revoke(grant.id, &lee(), Some(long.as_str())).await.unwrap_err());
    assert!(
        matches!(
            err,
            LimitError::TooLong {
                field: Field::Reason,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        store.read_grant(grant.id).await.unwrap().unwrap().state,
        GrantState::Active
    );
    let err = limit(
        gate.pending_for_reviewer(&lee(), &PageRequest::first(limits.page_size + 1))
            .await
            .unwrap_err(),
    );
    assert!(matches!(err, LimitError::PageTooLarge { .. }), "{err}");
    if store.audit_log().is_some() {
        assert!(after_request > before, "the good request was audited");
        assert_eq!(
            audit_len().await,
            after_request + 3,
            "only the good approval's records were added"
        );
    }
}

/// A principal can hold only so many pending requests; asking again for a pending scope still
/// answers the pending request, and lapsed requests (even before a sweep) do not count.
pub async fn pending_requests_per_principal_are_bounded(store: Arc<dyn Store>) {
    use jitgate_core::{LimitError, Limits};
    let clock = Arc::new(ManualClock::default());
    let gate = Gate::builder()
        .policy(Arc::new(fixtures::policy()))
        .destination(crate::fixtures::security_alerts())
        .store(store.clone())
        .clock(clock.clone())
        .limits(Limits::default().with_pending_per_principal(3))
        .build()
        .expect("gate");
    for i in 0..3 {
        let out = gate
            .request(ask(restart(&format!("p{i}")), 30))
            .await
            .expect("under the limit");
        assert!(matches!(out, RequestOutcome::Pending(_)), "{out:?}");
    }
    match gate.request(ask(restart("p3"), 30)).await {
        Err(Error::Limit(LimitError::TooManyPending { pending: 3, max: 3 })) => {}
        other => panic!("expected TooManyPending, got {other:?}"),
    }
    assert!(
        store
            .pending_request(&sam(), &restart("p3").scope)
            .await
            .unwrap()
            .is_none(),
        "nothing stored over the limit"
    );
    assert!(matches!(
        gate.request(ask(restart("p0"), 30)).await,
        Ok(RequestOutcome::AlreadyPending(_))
    ));
    assert_eq!(
        store
            .principal_counts(&sam(), clock.now_plus(Duration::zero()))
            .await
            .unwrap()
            .pending,
        3
    );
    clock.advance(Duration::hours(2));
    assert_eq!(
        store
            .principal_counts(&sam(), clock.now_plus(Duration::zero()))
            .await
            .unwrap()
            .pending,
        0,
        "lapsed"
    );
    let out = gate
        .request(ask(restart("p3"), 30))
        .await
        .expect("lapsed requests do not count");
    assert!(matches!(out, RequestOutcome::Pending(_)), "{out:?}");
    // Unacknowledged break-glass grants are counted by the store too.
    let RequestOutcome::Granted { grant, .. } = gate.request(ask(restart("bg"), 10).break_glass()).await.unwrap()
    else {
        panic!("break-glass is granted at once")
    };
    let now = clock.now_plus(Duration::zero());
    assert_eq!(
        store
            .principal_counts(&sam(), now)
            .await
            .unwrap()
            .unacknowledged_break_glass,
        1
    );
    assert_eq!(
        store
            .principal_counts(&lee(), now)
            .await
            .unwrap()
            .unacknowledged_break_glass,
        0
    );
    gate.acknowledge(grant.id, &lee(), None).await.unwrap();
    assert_eq!(
        store
            .principal_counts(&sam(), now)
            .await
            .unwrap()
            .unacknowledged_break_glass,
        0
    );
}
