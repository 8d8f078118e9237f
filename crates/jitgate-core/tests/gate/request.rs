//! `request`: the life cycle, flow rules, covered and repeated requests.

use super::*;

#[tokio::test]
async fn the_full_life_cycle_ends_in_an_allow_and_then_expires() {
    let (gate, clock, notifier, _) = setup();
    let req = pending(&gate, ask(restart("orders-prod"), 30)).await;
    assert_eq!(req.deadline, req.created_at + Duration::minutes(30));
    let approved_at = clock.now() + Duration::minutes(5);
    clock.set(approved_at);
    let out = gate.approve(req.id, &lee(), Some("go ahead")).await.unwrap();
    let grant = out.grant.expect("one lead is enough");
    assert_eq!(out.request.state, RequestState::Approved);
    assert_eq!(grant.window.not_before(), approved_at, "the grant starts at approval");
    assert_eq!(
        grant.window.expires_at(),
        approved_at + Duration::minutes(30),
        "counted from approval"
    );
    assert_eq!(
        gate.authorize(&restart("orders-prod"), &sam()).await,
        Decision::Allow {
            basis: Basis::Grant(grant.id),
            policy_version: gate.policy_version()
        }
    );
    assert!(
        !gate.authorize(&restart("orders-other"), &sam()).await.is_allowed(),
        "grant is scoped to one resource"
    );
    clock.advance(Duration::minutes(30));
    assert!(matches!(
        gate.authorize(&restart("orders-prod"), &sam()).await,
        Decision::NeedsApproval { .. }
    ));
    gate.deliver_outbox().await.unwrap();
    let kinds: Vec<_> = notifier.events().into_iter().map(|e| e.kind).collect();
    assert!(matches!(kinds[0], EventKind::ApprovalNeeded { .. }));
    assert!(kinds.contains(&EventKind::Approved));
    assert!(kinds.contains(&EventKind::GrantActive));
    gate.verify_audit().await.expect("audit verifies");
}

#[tokio::test]
async fn a_reason_is_required_where_the_flow_says_so() {
    let (gate, ..) = setup();
    let mut a = ask(migrate("db"), 30);
    a.justification = Some("   ".into());
    let err = transition(gate.request(a).await.unwrap_err());
    assert!(matches!(err, TransitionError::ReasonRequired { .. }));
}

#[tokio::test]
async fn a_duration_above_the_maximum_is_refused() {
    let (gate, ..) = setup();
    let err = transition(gate.request(ask(restart("db"), 61)).await.unwrap_err());
    assert!(matches!(
        err,
        TransitionError::Time(TimeError::DurationAboveMaximum {
            wanted_seconds: 3660,
            max_seconds: 3600
        })
    ));
}

#[tokio::test]
async fn a_covered_request_returns_the_grant_and_a_repeated_one_the_pending_request() {
    let (gate, ..) = setup();
    let req = pending(&gate, ask(restart("db"), 30)).await;
    match gate.request(ask(restart("db"), 20)).await.unwrap() {
        RequestOutcome::AlreadyPending(r) => assert_eq!(r.id, req.id),
        other => panic!("{other:?}"),
    }
    let grant = gate.approve(req.id, &lee(), None).await.unwrap().grant.unwrap();
    match gate.request(ask(restart("db"), 20)).await.unwrap() {
        RequestOutcome::AlreadyCovered(g) => assert_eq!(g.id, grant.id),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        gate.request(ask(read_logs(), 5)).await.unwrap(),
        RequestOutcome::NotNeeded
    );
    assert!(matches!(
        gate.request(ask(drop_db("db"), 5)).await,
        Err(Error::Forbidden { .. })
    ));
    let mut nobody = ask(restart("db"), 5);
    nobody.principal = user("nobody");
    assert!(matches!(gate.request(nobody).await, Err(Error::NotEligible { .. })));
}

#[tokio::test]
async fn overlapping_grants_are_independent() {
    let (gate, clock, ..) = setup();
    let req = pending(&gate, ask(restart("db"), 30)).await;
    let first = gate.approve(req.id, &lee(), None).await.unwrap().grant.unwrap();
    clock.advance(Duration::minutes(20));
    let RequestOutcome::Pending(ext) = gate
        .extend(first.id, &sam(), Duration::minutes(30), Some("still busy"))
        .await
        .unwrap()
    else {
        panic!("an extension is a new request")
    };
    assert_eq!(ext.extends, Some(first.id));
    let second = gate.approve(ext.id, &lin(), None).await.unwrap().grant.unwrap();
    gate.revoke(first.id, &lee(), Some("rotate")).await.unwrap();
    assert_eq!(
        gate.authorize(&restart("db"), &sam()).await,
        Decision::Allow {
            basis: Basis::Grant(second.id),
            policy_version: gate.policy_version()
        }
    );
    assert!(matches!(
        gate.extend(second.id, &lee(), Duration::minutes(5), None).await,
        Err(Error::NotGrantHolder { .. })
    ));
}

#[tokio::test]
async fn auto_approved_flows_grant_without_review() {
    let (gate, ..) = setup();
    let out = gate.request(ask(restart_staging(), 60)).await.unwrap();
    let RequestOutcome::Granted { grant, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(
        gate.authorize(&restart_staging(), &sam()).await,
        Decision::Allow {
            basis: Basis::Grant(grant.id),
            policy_version: gate.policy_version()
        }
    );
}

#[tokio::test]
async fn a_lapsed_pending_request_does_not_block_a_new_one_before_the_sweep() {
    let (gate, clock, ..) = setup();
    let old = pending(&gate, ask(restart("a"), 30)).await;
    clock.advance(Duration::minutes(31));
    let new = pending(&gate, ask(restart("a"), 30)).await;
    assert_ne!(new.id, old.id);
    assert_eq!(gate.read_request(old.id).await.unwrap().state, RequestState::Expired);
}
