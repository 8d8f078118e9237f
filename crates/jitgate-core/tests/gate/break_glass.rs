//! Break-glass: granted at once, bounded, flagged for review.

use super::*;

#[tokio::test]
async fn break_glass_is_granted_at_once_bounded_and_flagged_for_review() {
    let (gate, clock, notifier, _) = setup();
    let now = clock.now();
    let RequestOutcome::Granted { request, grant } = gate.request(ask(restart("db"), 60).break_glass()).await.unwrap()
    else {
        panic!("break-glass is granted at once")
    };
    assert_eq!(request.state, RequestState::Approved);
    assert_eq!(
        grant.window.expires_at(),
        now + Duration::minutes(15),
        "clamped to the break-glass bound"
    );
    assert!(gate.authorize(&restart("db"), &sam()).await.is_allowed());
    gate.deliver_outbox().await.unwrap();
    assert!(notifier
        .events()
        .iter()
        .any(|e| matches!(e.kind, EventKind::BreakGlassUsed { .. })));
    let listed = gate.unacknowledged_break_glass(&PageRequest::first(10)).await.unwrap();
    assert_eq!(listed.items.iter().map(|g| g.id).collect::<Vec<_>>(), vec![grant.id]);

    let self_ack = transition(gate.acknowledge(grant.id, &sam(), None).await.unwrap_err());
    assert!(matches!(self_ack, TransitionError::SelfApproval { .. }));
    let outsider = transition(gate.acknowledge(grant.id, &sec(), None).await.unwrap_err());
    assert!(matches!(outsider, TransitionError::NotEligibleReviewer { .. }));
    let acked = gate.acknowledge(grant.id, &lee(), Some("justified")).await.unwrap();
    assert_eq!(acked.acknowledged.as_ref().map(|a| a.by.clone()), Some(lee()));
    assert!(gate
        .unacknowledged_break_glass(&PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
    let again = transition(gate.acknowledge(grant.id, &lin(), None).await.unwrap_err());
    assert!(matches!(again, TransitionError::AlreadyAcknowledged { .. }));
}

#[tokio::test]
async fn break_glass_needs_a_reason_and_a_flow_that_allows_it() {
    let (gate, ..) = setup();
    let mut no_reason = ask(restart("db"), 10).break_glass();
    no_reason.justification = None;
    assert!(matches!(
        transition(gate.request(no_reason).await.unwrap_err()),
        TransitionError::ReasonRequired { .. }
    ));
    let err = transition(gate.request(ask(migrate("db"), 10).break_glass()).await.unwrap_err());
    assert!(matches!(err, TransitionError::BreakGlassNotAllowed { .. }));
}

#[tokio::test]
async fn the_holder_never_acknowledges_their_own_break_glass_even_where_self_approval_is_allowed() {
    let e = EntityRef::new;
    let policy = RuleTable::builder()
        .member(sam(), e("Team", "sre-leads"))
        .member(lee(), e("Team", "sre-leads"))
        .eligible(
            "self-serve",
            Pattern::In(e("Team", "sre-leads")),
            Pattern::Any,
            Pattern::Any,
            Flow::new(Duration::hours(1))
                .with_requirement(Requirement::new(e("Team", "sre-leads"), 1))
                .with_break_glass(Duration::minutes(15))
                .with_self_approval(true),
        )
        .build()
        .unwrap();
    let gate = Gate::builder()
        .policy(Arc::new(policy))
        .destination(jitgate_testkit::fixtures::security_alerts())
        .store(Arc::new(MemoryStore::new()))
        .build()
        .unwrap();
    // Self-approval is allowed for ordinary requests of this flow...
    let req = pending(&gate, ask(restart("db"), 30)).await;
    assert!(gate.approve(req.id, &sam(), None).await.unwrap().grant.is_some());
    // ...but not for the after-the-fact review of an emergency.
    let RequestOutcome::Granted { grant, .. } = gate.request(ask(restart("other"), 10).break_glass()).await.unwrap()
    else {
        panic!("break-glass is granted at once")
    };
    let err = transition(gate.acknowledge(grant.id, &sam(), None).await.unwrap_err());
    assert!(matches!(err, TransitionError::SelfApproval { .. }), "{err}");
    gate.acknowledge(grant.id, &lee(), Some("fine"))
        .await
        .expect("another lead may");
}

#[tokio::test]
async fn break_glass_again_while_earlier_uses_are_unacknowledged_is_refused() {
    let (gate, ..) = setup();
    for db in ["a", "b"] {
        assert!(matches!(
            gate.request(ask(restart(db), 10).break_glass()).await,
            Ok(RequestOutcome::Granted { .. })
        ));
    }
    match gate.request(ask(restart("c"), 10).break_glass()).await {
        Err(Error::Limit(LimitError::UnacknowledgedBreakGlass {
            unacknowledged: 2,
            max: 2,
        })) => {}
        other => panic!("a third break-glass must wait for a review, got {other:?}"),
    }
    let first = gate
        .unacknowledged_break_glass(&PageRequest::first(10))
        .await
        .unwrap()
        .items[0]
        .id;
    gate.acknowledge(first, &lee(), Some("fine")).await.unwrap();
    assert!(
        matches!(
            gate.request(ask(restart("c"), 10).break_glass()).await,
            Ok(RequestOutcome::Granted { .. })
        ),
        "allowed again once one is acknowledged"
    );
}
