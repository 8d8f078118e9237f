//! The verbs that change state: request, review, cancel, revoke, extend, acknowledge.

use std::sync::Arc;

use super::{Gate, RequestOutcome, ReviewOutcome};
use crate::machine::{self, TransitionError};
use crate::policy::PolicyDecision;
use crate::request::{NewRequest, Verdict};
use crate::store::{PageRequest, StoreError};
use crate::{AccessRequest, EntityRef, Error, Flow, Grant, GrantId, GrantState, RequestId};

impl Gate {
    /// Asks for an action.
    ///
    /// Returns [`RequestOutcome::Pending`] for a request that waits for review,
    /// [`RequestOutcome::Granted`] when the flow auto-approves or the request is break-glass,
    /// [`RequestOutcome::AlreadyCovered`] when an active grant already allows it,
    /// [`RequestOutcome::AlreadyPending`] when the same principal already waits for the same
    /// scope, and [`RequestOutcome::NotNeeded`] under standing permission.
    ///
    /// # Errors
    /// [`Error::Forbidden`], [`Error::NotEligible`], a [`TransitionError`] (reason required,
    /// duration above the maximum, break-glass not allowed, ...), a policy or store error.
    pub async fn request(&self, ask: NewRequest) -> Result<RequestOutcome, Error> {
        let flow = match self.policy.evaluate(&ask.principal, &ask.action)? {
            PolicyDecision::Forbidden { policy_ids } => {
                return Err(Error::Forbidden {
                    principal: ask.principal,
                    scope: ask.action.scope,
                    policy_ids,
                });
            }
            PolicyDecision::NotEligible => {
                return Err(Error::NotEligible {
                    principal: ask.principal,
                    scope: ask.action.scope,
                })
            }
            PolicyDecision::Standing { .. } => return Ok(RequestOutcome::NotNeeded),
            PolicyDecision::Eligible { flow } => flow,
        };
        let now = self.clock.now();
        let binding = ask.action.binding();
        let grants = self.store.live_grants(&ask.principal, &ask.action.scope).await?;
        if let Some(g) = grants.into_iter().find(|g| g.allows(now, || binding.clone())) {
            return Ok(RequestOutcome::AlreadyCovered(g));
        }
        self.open(ask, &flow, None).await
    }

    async fn open(&self, ask: NewRequest, flow: &Flow, extends: Option<GrantId>) -> Result<RequestOutcome, Error> {
        if let Some(existing) = self.store.pending_request(&ask.principal, &ask.action.scope).await? {
            let now = self.clock.now();
            if now < existing.deadline {
                return Ok(RequestOutcome::AlreadyPending(existing));
            }
            // It lapsed but no sweep has closed it yet: close it now, so the new request can open.
            if let Ok(commit) = machine::expire_request(&existing, now) {
                match self.commit(commit).await {
                    Ok(()) | Err(StoreError::Conflict { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let (request, commit) = machine::open(
            RequestId::new_random(),
            GrantId::new_random(),
            ask,
            flow,
            extends,
            self.clock.now(),
        )?;
        let grant = commit.grants.first().map(|w| w.value().clone());
        match self.commit(commit).await {
            Ok(()) => {}
            Err(StoreError::DuplicatePending { existing, .. }) => {
                let existing = self
                    .store
                    .request(existing)
                    .await?
                    .ok_or(Error::RequestNotFound(existing))?;
                return Ok(RequestOutcome::AlreadyPending(existing));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(match grant {
            Some(grant) => RequestOutcome::Granted { request, grant },
            None => RequestOutcome::Pending(request),
        })
    }

    /// Approves a request as `reviewer`. The approval that meets every requirement creates
    /// the grant, returned in the outcome.
    ///
    /// # Errors
    /// [`Error::RequestNotFound`]; [`TransitionError::SelfApproval`],
    /// [`TransitionError::DuplicateReview`], [`TransitionError::NotEligibleReviewer`],
    /// [`TransitionError::RequestClosed`], an expired request; policy and store errors;
    /// [`Error::Contention`].
    pub async fn approve(
        &self,
        id: RequestId,
        reviewer: &EntityRef,
        comment: Option<&str>,
    ) -> Result<ReviewOutcome, Error> {
        self.review(id, reviewer, Verdict::Approve, comment).await
    }

    /// Denies a request as `reviewer`; the first eligible deny closes it for good.
    ///
    /// # Errors
    /// As [`Gate::approve`].
    pub async fn deny(
        &self,
        id: RequestId,
        reviewer: &EntityRef,
        comment: Option<&str>,
    ) -> Result<ReviewOutcome, Error> {
        self.review(id, reviewer, Verdict::Deny, comment).await
    }

    async fn review(
        &self,
        id: RequestId,
        reviewer: &EntityRef,
        verdict: Verdict,
        comment: Option<&str>,
    ) -> Result<ReviewOutcome, Error> {
        transact!(self, format!("request {id}"), |now| {
            let req = self.load_request(id).await?;
            let standing = self.policy.reviewer_standing(reviewer, &req)?;
            let commit = machine::review(
                &req,
                reviewer,
                verdict,
                comment.map(str::to_owned),
                &standing,
                GrantId::new_random(),
                now,
            )?;
            let request = commit
                .request
                .as_ref()
                .map_or_else(|| req.clone(), |w| w.value().clone());
            let grant = commit.grants.first().map(|w| w.value().clone());
            (commit, ReviewOutcome { request, grant })
        })
    }

    /// Cancels a pending request; only its requester may.
    ///
    /// # Errors
    /// [`Error::RequestNotFound`], [`TransitionError::NotRequester`],
    /// [`TransitionError::RequestClosed`], store errors.
    pub async fn cancel(&self, id: RequestId, actor: &EntityRef) -> Result<AccessRequest, Error> {
        transact!(self, format!("request {id}"), |now| {
            let req = self.load_request(id).await?;
            let commit = machine::cancel(&req, actor, now)?;
            let next = commit
                .request
                .as_ref()
                .map_or_else(|| req.clone(), |w| w.value().clone());
            (commit, next)
        })
    }

    /// Revokes one grant. The holder may always give up their own grant; others need the
    /// policy's permission.
    ///
    /// # Errors
    /// [`Error::GrantNotFound`], [`Error::NotPermittedToRevoke`],
    /// [`TransitionError::GrantNotActive`] (already ended), policy and store errors.
    pub async fn revoke(&self, id: GrantId, actor: &EntityRef, reason: Option<&str>) -> Result<Grant, Error> {
        transact!(self, format!("grant {id}"), |now| {
            let grant = self.load_grant(id).await?;
            let req = self.load_request(grant.request_id).await?;
            if !self.policy.may_revoke(actor, &grant, &req)? {
                return Err(Error::NotPermittedToRevoke {
                    actor: actor.clone(),
                    grant: id,
                });
            }
            let commit = machine::revoke(&grant, actor, reason.map(str::to_owned), now)?;
            let next = commit
                .grants
                .first()
                .map_or_else(|| grant.clone(), |w| w.value().clone());
            (commit, next)
        })
    }

    /// Revokes every scheduled or active grant of `principal` (off-boarding). Grants that
    /// ended meanwhile are skipped. Returns the grants revoked.
    ///
    /// # Errors
    /// The first error other than a grant having already ended; grants revoked before it
    /// stay revoked.
    pub async fn revoke_all(
        &self,
        principal: &EntityRef,
        actor: &EntityRef,
        reason: Option<&str>,
    ) -> Result<Vec<Grant>, Error> {
        let mut revoked = Vec::new();
        let mut page = PageRequest::first(100);
        loop {
            let batch = self.store.live_grants_of(principal, &page).await?;
            for g in &batch.items {
                match self.revoke(g.id, actor, reason).await {
                    Ok(g) => revoked.push(g),
                    Err(Error::Transition(TransitionError::GrantNotActive { .. })) => {}
                    Err(e) => return Err(e),
                }
            }
            match batch.next {
                Some(c) => page = PageRequest::after(c, 100),
                None => return Ok(revoked),
            }
        }
    }

    /// Asks to extend an active grant: a new request for the same action, linked to the
    /// grant, through the flow the policy names now. The grant it yields starts at its
    /// approval; the old grant keeps running independently until its own end.
    ///
    /// # Errors
    /// [`Error::GrantNotFound`], [`Error::NotGrantHolder`],
    /// [`TransitionError::GrantNotActive`], and the errors of [`Gate::request`].
    pub async fn extend(
        &self,
        id: GrantId,
        actor: &EntityRef,
        duration: chrono::Duration,
        justification: Option<&str>,
    ) -> Result<RequestOutcome, Error> {
        let grant = self.load_grant(id).await?;
        if grant.principal != *actor {
            return Err(Error::NotGrantHolder {
                actor: actor.clone(),
                grant: id,
            });
        }
        let state = grant.status_at(self.clock.now());
        if state != GrantState::Active {
            return Err(TransitionError::GrantNotActive { grant: id, state }.into());
        }
        let original = self.load_request(grant.request_id).await?;
        let mut ask = NewRequest::new(actor.clone(), original.action.clone(), duration);
        ask.justification = justification.map(str::to_owned);
        let flow: Arc<Flow> = match self.policy.evaluate(actor, &original.action)? {
            PolicyDecision::Eligible { flow } => flow,
            PolicyDecision::Forbidden { policy_ids } => {
                return Err(Error::Forbidden {
                    principal: actor.clone(),
                    scope: original.action.scope,
                    policy_ids,
                });
            }
            PolicyDecision::Standing { .. } => return Ok(RequestOutcome::NotNeeded),
            PolicyDecision::NotEligible => {
                return Err(Error::NotEligible {
                    principal: actor.clone(),
                    scope: original.action.scope,
                })
            }
        };
        self.open(ask, &flow, Some(id)).await
    }

    /// Records the after-the-fact review of a break-glass grant by an eligible reviewer
    /// (not its holder).
    ///
    /// # Errors
    /// [`Error::GrantNotFound`], [`TransitionError::NotBreakGlass`],
    /// [`TransitionError::AlreadyAcknowledged`], [`TransitionError::SelfApproval`],
    /// [`TransitionError::NotEligibleReviewer`], policy and store errors.
    pub async fn acknowledge(&self, id: GrantId, reviewer: &EntityRef, comment: Option<&str>) -> Result<Grant, Error> {
        transact!(self, format!("grant {id}"), |now| {
            let grant = self.load_grant(id).await?;
            let req = self.load_request(grant.request_id).await?;
            let standing = self.policy.reviewer_standing(reviewer, &req)?;
            let commit = machine::acknowledge(&grant, &req, reviewer, &standing, comment.map(str::to_owned), now)?;
            let next = commit
                .grants
                .first()
                .map_or_else(|| grant.clone(), |w| w.value().clone());
            (commit, next)
        })
    }

    pub(super) async fn load_request(&self, id: RequestId) -> Result<AccessRequest, Error> {
        self.store.request(id).await?.ok_or(Error::RequestNotFound(id))
    }

    pub(super) async fn load_grant(&self, id: GrantId) -> Result<Grant, Error> {
        self.store.grant(id).await?.ok_or(Error::GrantNotFound(id))
    }
}
