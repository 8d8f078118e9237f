//! The verbs that change state: request, review, cancel, revoke, extend, acknowledge. Each
//! goes through [`Gate::transact`].

use std::sync::Arc;

use super::refusals::Attempted;
use super::{Gate, Offboarding, RequestOutcome, ReviewOutcome};
use crate::gate::error::Error;
use crate::gate::limits::Field;
use crate::machine::{self, TransitionError};
use crate::model::entity::{EntityRef, Scope};
use crate::model::flow::Flow;
use crate::model::grant::{Grant, GrantState};
use crate::model::ids::{GrantId, RequestId};
use crate::model::policy_version::PolicyVersion;
use crate::model::request::{AccessRequest, NewRequest, Verdict};
use crate::ports::listings::PageRequest;
use crate::ports::policy::PolicyDecision;
use crate::ports::store::{Capability, Store, StoreError, Subject};

/// A value with the version of the policy set that gave it.
type Versioned<T> = (T, Option<PolicyVersion>);

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
    #[tracing::instrument(name = "jitgate.request", level = "info", skip_all, fields(principal = %ask.principal, scope = %ask.action.scope, break_glass = ask.break_glass, request_id, outcome))]
    pub async fn request(&self, ask: NewRequest) -> Result<RequestOutcome, Error> {
        self.limits.request(&ask, self.clock.now())?;
        let (who, scope) = (ask.principal.clone(), ask.action.scope.clone());
        let result = self.request_within_limits(ask).await;
        self.audited("request", &who, Attempted::Ask(&who, &scope), result)
            .await
    }

    async fn request_within_limits(&self, ask: NewRequest) -> Result<RequestOutcome, Error> {
        self.ensure_principal(&ask.principal)?;
        let Some((flow, version)) = self.eligible_flow(&ask.principal, &ask.action)? else {
            return Ok(RequestOutcome::NotNeeded);
        };
        let now = self.clock.now();
        let grants = self
            .call("live_grants", self.store.live_grants(&ask.principal, &ask.action.scope))
            .await?;
        if let Some(g) = grants.into_iter().find(|g| g.allows(now, &ask.action)) {
            return Ok(RequestOutcome::AlreadyCovered(Arc::unwrap_or_clone(g)));
        }
        self.open(ask, &flow, None, version).await
    }

    /// The flow through which `principal` may ask for `action`, with the version of the policy
    /// set that names it; `None` under standing permission.
    fn eligible_flow(
        &self,
        principal: &EntityRef,
        action: &crate::model::entity::Action,
    ) -> Result<Option<Versioned<Arc<Flow>>>, Error> {
        let in_force = self.policy.load();
        match in_force.policy.evaluate(principal, action)? {
            PolicyDecision::Eligible { flow } => Ok(Some((flow, in_force.version))),
            PolicyDecision::Standing { .. } => Ok(None),
            PolicyDecision::Forbidden { policy_ids } => Err(Error::Forbidden {
                principal: principal.clone(),
                scope: action.scope.clone(),
                policy_ids,
            }),
            PolicyDecision::NotEligible => Err(Error::NotEligible {
                principal: principal.clone(),
                scope: action.scope.clone(),
            }),
        }
    }

    async fn open(
        &self,
        ask: NewRequest,
        flow: &Arc<Flow>,
        extends: Option<GrantId>,
        version: Option<PolicyVersion>,
    ) -> Result<RequestOutcome, Error> {
        // The counts leave out lapsed requests, so the one expired below is not counted.
        let (pending, counts) = self
            .call(
                "pending_and_counts",
                self.store
                    .pending_and_counts(&ask.principal, &ask.action.scope, self.clock.now()),
            )
            .await?;
        if let Some(existing) = pending {
            if self.clock.now() < existing.deadline {
                return Ok(RequestOutcome::AlreadyPending(existing));
            }
            // It lapsed but no sweep has closed it yet: close it now, so the new request can open.
            self.advance_request(&existing, machine::expire_request).await?;
        }
        if ask.break_glass {
            if let Err(e) = self.limits.break_glass(counts.unacknowledged_break_glass) {
                tracing::warn!(
                    target: "jitgate::security",
                    principal = %ask.principal,
                    scope = %ask.action.scope,
                    unacknowledged = counts.unacknowledged_break_glass,
                    "break-glass refused: earlier break-glass grants are still unacknowledged"
                );
                return Err(e.into());
            }
        } else {
            // A break-glass request is granted at once: it never waits among the pending.
            self.limits.pending(counts.pending)?;
        }
        let id = RequestId::new_random();
        tracing::Span::current().record("request_id", tracing::field::display(id));
        let opened = self
            .transact(Subject::Request(id), |at| {
                let ask = ask.clone();
                async move { Ok(machine::open(id, GrantId::new_random(), ask, flow, extends, at.now)?.under(version)) }
            })
            .await;
        match opened {
            Ok((request, Some(grant))) => Ok(RequestOutcome::Granted { request, grant }),
            Ok((request, None)) => Ok(RequestOutcome::Pending(request)),
            Err(Error::Store(StoreError::DuplicatePending { existing, .. })) => {
                Ok(RequestOutcome::AlreadyPending(self.read_request(existing).await?))
            }
            Err(e) => Err(e),
        }
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

    #[tracing::instrument(name = "jitgate.review", level = "info", skip_all, fields(reviewer = %reviewer, request_id = %id, verdict = ?verdict, outcome))]
    async fn review(
        &self,
        id: RequestId,
        reviewer: &EntityRef,
        verdict: Verdict,
        comment: Option<&str>,
    ) -> Result<ReviewOutcome, Error> {
        self.limits.entity(reviewer)?;
        self.limits.text(Field::Comment, comment)?;
        // The request's principal and scope, once read: a refusal is recorded without reading
        // it again.
        let read = std::sync::OnceLock::<(EntityRef, Scope)>::new();
        let result = async {
            self.ensure_principal(reviewer)?;
            let read = &read;
            self.transact(Subject::Request(id), |at| async move {
                let req = self.read_request(id).await?;
                let _ = read.set((req.principal.clone(), req.scope().clone()));
                let in_force = self.policy.load_full();
                let standing = in_force.policy.reviewer_standing(reviewer, &req)?;
                let comment = comment.map(str::to_owned);
                Ok(machine::review(
                    &req,
                    reviewer,
                    verdict,
                    comment,
                    &standing,
                    GrantId::new_random(),
                    at.now,
                )?
                .under(in_force.version))
            })
            .await
        }
        .await;
        let verb = match verdict {
            Verdict::Approve => "approve",
            Verdict::Deny => "deny",
        };
        let attempted = match read.get() {
            Some((principal, scope)) => Attempted::ReadRequest(id, principal, scope),
            None => Attempted::Request(id),
        };
        let (request, grant) = self.audited(verb, reviewer, attempted, result).await?;
        if let Some(g) = &grant {
            self.metrics.approved_after(g.created_at - request.created_at);
        }
        Ok(ReviewOutcome { request, grant })
    }

    /// Cancels a pending request; only its requester may.
    ///
    /// # Errors
    /// [`Error::RequestNotFound`], [`TransitionError::NotRequester`],
    /// [`TransitionError::RequestClosed`], store errors.
    #[tracing::instrument(name = "jitgate.cancel", level = "info", skip_all, fields(actor = %actor, request_id = %id, outcome))]
    pub async fn cancel(&self, id: RequestId, actor: &EntityRef) -> Result<AccessRequest, Error> {
        self.limits.entity(actor)?;
        let result = self
            .transact(Subject::Request(id), |at| async move {
                let req = self.read_request(id).await?;
                Ok(machine::cancel(&req, actor, at.now)?)
            })
            .await;
        self.audited("cancel", actor, Attempted::Request(id), result).await
    }

    /// Revokes one grant. The holder may always give up their own grant; others need the
    /// policy's permission.
    ///
    /// # Errors
    /// [`Error::GrantNotFound`], [`Error::NotPermittedToRevoke`],
    /// [`TransitionError::GrantNotActive`] (already ended), policy and store errors.
    #[tracing::instrument(name = "jitgate.revoke", level = "info", skip_all, fields(actor = %actor, grant_id = %id, outcome))]
    pub async fn revoke(&self, id: GrantId, actor: &EntityRef, reason: Option<&str>) -> Result<Grant, Error> {
        self.limits.entity(actor)?;
        self.limits.text(Field::Reason, reason)?;
        let result = self
            .transact(Subject::Grant(id), |at| async move {
                let (grant, req) = self.grant_and_request(id).await?;
                let in_force = self.policy.load_full();
                if !in_force.policy.may_revoke(actor, &grant, &req)? {
                    return Err(Error::NotPermittedToRevoke {
                        actor: actor.clone(),
                        grant: id,
                    });
                }
                Ok(machine::revoke(&grant, actor, reason.map(str::to_owned), at.now)?.under(in_force.version))
            })
            .await;
        self.audited("revoke", actor, Attempted::Grant(id), result).await
    }

    /// Off-boarding: revokes every scheduled or active grant of `principal` and closes each of
    /// their pending requests (cancelled, audited with `actor` and `reason`). Grants that ended
    /// and requests that closed meanwhile are skipped.
    ///
    /// # Errors
    /// [`Error::Unsupported`] without [`Listings`](crate::Listings);
    /// [`Error::NotPermittedToRevoke`] / [`Error::NotPermittedToWithdraw`]; the first other
    /// error (what was done before it stays done).
    #[tracing::instrument(name = "jitgate.revoke_all", level = "info", skip_all, fields(principal = %principal, actor = %actor, outcome))]
    pub async fn revoke_all(
        &self,
        principal: &EntityRef,
        actor: &EntityRef,
        reason: Option<&str>,
    ) -> Result<Offboarding, Error> {
        self.limits.entity(principal)?;
        self.limits.entity(actor)?;
        self.limits.text(Field::Reason, reason)?;
        let listings = self.capability("revoke_all", Capability::Listings, Store::listings)?;
        let mut done = Offboarding::default();
        let mut page = PageRequest::first(100);
        loop {
            let batch = self
                .call("live_grants_of", listings.live_grants_of(principal, &page))
                .await?;
            for g in &batch.items {
                match self.revoke(g.id, actor, reason).await {
                    Ok(g) => done.revoked.push(g),
                    Err(Error::Transition(TransitionError::GrantNotActive { .. })) => {}
                    Err(e) => return Err(e),
                }
            }
            match batch.next {
                Some(c) => page = PageRequest::after(c, 100),
                None => break,
            }
        }
        let mut page = PageRequest::first(100);
        loop {
            let batch = self
                .call("pending_requests_of", listings.pending_requests_of(principal, &page))
                .await?;
            for req in &batch.items {
                match self.withdraw(req.id, actor, reason).await {
                    Ok(r) => done.withdrawn.push(r),
                    Err(Error::Transition(TransitionError::RequestClosed { .. })) => {}
                    Err(e) => return Err(e),
                }
            }
            match batch.next {
                Some(c) => page = PageRequest::after(c, 100),
                None => return Ok(done),
            }
        }
    }

    async fn withdraw(&self, id: RequestId, actor: &EntityRef, reason: Option<&str>) -> Result<AccessRequest, Error> {
        let result = self
            .transact(Subject::Request(id), |at| async move {
                let req = self.read_request(id).await?;
                let in_force = self.policy.load_full();
                if !in_force.policy.may_withdraw(actor, &req)? {
                    return Err(Error::NotPermittedToWithdraw {
                        actor: actor.clone(),
                        request: id,
                    });
                }
                Ok(machine::withdraw(&req, actor, reason.map(str::to_owned), at.now)?.under(in_force.version))
            })
            .await;
        self.audited("revoke_all", actor, Attempted::Request(id), result).await
    }

    /// Asks to extend an active grant: a new request for the same action, linked to the
    /// grant, through the flow the policy names now. The grant it yields starts at its
    /// approval; the old grant keeps running independently until its own end.
    ///
    /// # Errors
    /// [`Error::GrantNotFound`], [`Error::NotGrantHolder`],
    /// [`TransitionError::GrantNotActive`], and the errors of [`Gate::request`].
    #[tracing::instrument(name = "jitgate.extend", level = "info", skip_all, fields(actor = %actor, grant_id = %id, request_id, outcome))]
    pub async fn extend(
        &self,
        id: GrantId,
        actor: &EntityRef,
        duration: chrono::Duration,
        justification: Option<&str>,
    ) -> Result<RequestOutcome, Error> {
        self.limits.entity(actor)?;
        self.limits.text(Field::Justification, justification)?;
        self.limits.wanted_duration(duration)?;
        let result = self.extend_within_limits(id, actor, duration, justification).await;
        self.audited("extend", actor, Attempted::Grant(id), result).await
    }

    async fn extend_within_limits(
        &self,
        id: GrantId,
        actor: &EntityRef,
        duration: chrono::Duration,
        justification: Option<&str>,
    ) -> Result<RequestOutcome, Error> {
        let grant = self.read_grant(id).await?;
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
        let original = self.read_request(grant.request_id).await?;
        let mut ask = NewRequest::new(actor.clone(), original.action.clone(), duration);
        ask.justification = justification.map(str::to_owned);
        let Some((flow, version)) = self.eligible_flow(actor, &original.action)? else {
            return Ok(RequestOutcome::NotNeeded);
        };
        self.open(ask, &flow, Some(id), version).await
    }

    /// Records the after-the-fact review of a break-glass grant by an eligible reviewer
    /// (not its holder).
    ///
    /// # Errors
    /// [`Error::GrantNotFound`], [`TransitionError::NotBreakGlass`],
    /// [`TransitionError::AlreadyAcknowledged`], [`TransitionError::SelfApproval`],
    /// [`TransitionError::NotEligibleReviewer`], policy and store errors.
    #[tracing::instrument(name = "jitgate.acknowledge", level = "info", skip_all, fields(reviewer = %reviewer, grant_id = %id, outcome))]
    pub async fn acknowledge(&self, id: GrantId, reviewer: &EntityRef, comment: Option<&str>) -> Result<Grant, Error> {
        self.limits.entity(reviewer)?;
        self.limits.text(Field::Comment, comment)?;
        let result = async {
            self.ensure_principal(reviewer)?;
            self.transact(Subject::Grant(id), |at| async move {
                let (grant, req) = self.grant_and_request(id).await?;
                let in_force = self.policy.load_full();
                let standing = in_force.policy.reviewer_standing(reviewer, &req)?;
                let comment = comment.map(str::to_owned);
                Ok(machine::acknowledge(&grant, &req, reviewer, &standing, comment, at.now)?.under(in_force.version))
            })
            .await
        }
        .await;
        self.audited("acknowledge", reviewer, Attempted::Grant(id), result)
            .await
    }

    /// [`Error::NotAPrincipal`] unless the policy counts `entity` as a principal.
    fn ensure_principal(&self, entity: &EntityRef) -> Result<(), Error> {
        if self.policy.load().policy.is_principal(entity) {
            Ok(())
        } else {
            Err(Error::NotAPrincipal { entity: entity.clone() })
        }
    }

    /// Reads a request by id.
    ///
    /// # Errors
    /// [`Error::RequestNotFound`] or a store error.
    pub async fn read_request(&self, id: RequestId) -> Result<AccessRequest, Error> {
        self.call("read_request", self.store.read_request(id))
            .await?
            .ok_or(Error::RequestNotFound(id))
    }

    /// Reads a grant by id.
    ///
    /// # Errors
    /// [`Error::GrantNotFound`] or a store error.
    pub async fn read_grant(&self, id: GrantId) -> Result<Grant, Error> {
        self.call("read_grant", self.store.read_grant(id))
            .await?
            .ok_or(Error::GrantNotFound(id))
    }

    /// A grant and the request it came from, in one store call.
    async fn grant_and_request(&self, id: GrantId) -> Result<(Grant, AccessRequest), Error> {
        let (grant, request) = self
            .call("grant_and_request", self.store.grant_and_request(id))
            .await?
            .ok_or(Error::GrantNotFound(id))?;
        let request = request.ok_or(Error::RequestNotFound(grant.request_id))?;
        Ok((grant, request))
    }
}
