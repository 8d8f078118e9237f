//! `cancel` and `revoke`: who may act.

use super::*;

#[tokio::test]
async fn cancel_and_revoke_check_who_acts() {
    let (gate, ..) = setup();
    let r = pending(&gate, ask(restart("a"), 30)).await;
    let err = transition(gate.cancel(r.id, &lee()).await.unwrap_err());
    assert!(matches!(err, TransitionError::NotRequester { .. }));
    assert_eq!(gate.cancel(r.id, &sam()).await.unwrap().state, RequestState::Cancelled);
    assert!(matches!(
        transition(gate.cancel(r.id, &sam()).await.unwrap_err()),
        TransitionError::RequestClosed { .. }
    ));

    let r = pending(&gate, ask(restart("b"), 30)).await;
    let g = gate.approve(r.id, &lee(), None).await.unwrap().grant.unwrap();
    assert!(matches!(
        gate.revoke(g.id, &user("mallory"), None).await,
        Err(Error::NotPermittedToRevoke { .. })
    ));
    assert_eq!(
        gate.revoke(g.id, &sam(), Some("done")).await.unwrap().state,
        GrantState::Revoked
    );
    assert!(matches!(
        transition(gate.revoke(g.id, &sam(), None).await.unwrap_err()),
        TransitionError::GrantNotActive {
            state: GrantState::Revoked,
            ..
        }
    ));
    assert!(matches!(
        gate.revoke(GrantId::new_random(), &sam(), None).await,
        Err(Error::GrantNotFound(_))
    ));
}

#[tokio::test]
async fn offboarding_closes_pending_requests_only_with_the_authority_to_revoke() {
    let (gate, ..) = setup();
    let req = pending(&gate, ask(restart("db"), 30)).await;
    match gate.revoke_all(&sam(), &sec(), Some("left")).await {
        Err(Error::NotPermittedToWithdraw { actor, request }) => {
            assert_eq!((actor, request), (sec(), req.id));
        }
        other => panic!("an outsider may not close sam's request, got {other:?}"),
    }
    assert_eq!(gate.read_request(req.id).await.unwrap().state, RequestState::Pending);
    let done = gate.revoke_all(&sam(), &lee(), Some("left")).await.unwrap();
    assert_eq!(done.withdrawn.len(), 1, "a lead of the flow may");
    assert_eq!(gate.read_request(req.id).await.unwrap().state, RequestState::Cancelled);
}
