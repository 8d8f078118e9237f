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
