//! Transitions of a request: open, review, cancel, expire.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::builder::Builder;
use super::time::{self, TimeError, WindowInputs};
use super::{ensure_eligible, ensure_not_own, quorum, system_actor, DueStep, Result, Transition, TransitionError};
use crate::audit::AuditAction;
use crate::model::entity::EntityRef;
use crate::model::event::EventKind;
use crate::model::flow::Flow;
use crate::model::grant::{Grant, GrantState, Uses};
use crate::model::ids::{GrantId, RequestId};
use crate::model::request::{AccessRequest, NewRequest, RequestState, Review, Verdict};
use crate::ports::policy::ReviewerStanding;
use crate::ports::store::{Subject, Write};

fn has_text(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.trim().is_empty())
}

/// Opens a request through `flow`; auto-approved and break-glass requests are granted at once
/// (with `grant_id`). The outcome is the new request and, if granted at once, its grant.
///
/// # Errors
/// [`TransitionError::ReasonRequired`], [`TransitionError::BreakGlassNotAllowed`], or a
/// [`TimeError`] for a duration that is not positive or above the flow's maximum.
pub fn open(
    id: RequestId,
    grant_id: GrantId,
    ask: NewRequest,
    flow: &Arc<Flow>,
    extends: Option<GrantId>,
    now: DateTime<Utc>,
) -> Result<Transition<(AccessRequest, Option<Grant>)>> {
    let scope = ask.action.scope.clone();
    if (flow.require_reason || ask.break_glass) && !has_text(&ask.justification) {
        return Err(TransitionError::ReasonRequired { scope });
    }
    let max = if ask.break_glass {
        let bg = flow
            .break_glass
            .as_ref()
            .ok_or(TransitionError::BreakGlassNotAllowed { scope })?;
        // In an emergency the bound is applied, not argued about: only the sign is checked.
        time::check_wanted_duration(ask.duration, ask.duration.max(bg.max_duration))?;
        bg.max_duration
    } else {
        time::check_wanted_duration(ask.duration, flow.max_duration)?;
        flow.max_duration
    };
    let deadline = time::request_deadline(now, flow.request_ttl)?;
    let (binding, bound_attributes) = if flow.bind_parameters {
        (Some(ask.action.binding()), Vec::new())
    } else if !flow.bind_attributes.is_empty() {
        (
            Some(ask.action.binding_of(&flow.bind_attributes)),
            flow.bind_attributes.clone(),
        )
    } else {
        (None, Vec::new())
    };
    let mut req = AccessRequest {
        id,
        principal: ask.principal,
        action: ask.action,
        binding,
        bound_attributes,
        justification: ask.justification,
        duration: ask.duration,
        start_at: if ask.break_glass { None } else { ask.start_at },
        break_glass: ask.break_glass,
        extends,
        flow: Arc::clone(flow),
        created_at: now,
        deadline,
        state: RequestState::Pending,
        reviews: Vec::new(),
        closed_at: None,
        grant_id: None,
        version: 1,
    };
    let mut b = Builder::new(format!("{id}/v1"), now);
    let who = req.principal.clone();
    b.audit(
        &who,
        AuditAction::RequestCreated,
        &req,
        None,
        req.justification.clone(),
        flow.policy_ids.clone(),
    );
    let mut granted = None;
    if ask.break_glass || flow.auto_approve {
        let grant = approve(&mut req, grant_id, max, now, &who, flow.policy_ids.clone(), &mut b)?;
        if req.break_glass {
            b.audit(
                &who,
                AuditAction::BreakGlassUsed,
                &req,
                Some(grant.id),
                req.justification.clone(),
                flow.policy_ids.clone(),
            );
            b.request_event(
                &req,
                EventKind::BreakGlassUsed {
                    justification: req.justification.clone(),
                },
            );
        }
        b.commit.grants.push(Write::Insert(grant.clone()));
        granted = Some(grant);
    } else {
        let reviewers = flow.requirements.iter().map(|r| r.reviewers.clone()).collect();
        b.request_event(
            &req,
            EventKind::ApprovalNeeded {
                reviewers,
                flow: flow.to_string(),
                justification: req.justification.clone(),
            },
        );
    }
    b.commit.request = Some(Write::Insert(req.clone()));
    Ok(Transition {
        commit: b.commit,
        outcome: (req, granted),
    })
}

/// Closes `req` as approved and builds its grant. Emits `Approved` and, if in force now, `GrantActive`.
fn approve(
    req: &mut AccessRequest,
    grant_id: GrantId,
    max: chrono::Duration,
    now: DateTime<Utc>,
    actor: &EntityRef,
    policy_ids: Vec<String>,
    b: &mut Builder,
) -> Result<Grant> {
    let window = time::grant_window(WindowInputs {
        deadline: req.deadline,
        wanted_start: req.start_at,
        wanted_duration: req.duration,
        decided_at: now,
        max_duration: max,
    })?;
    let state = if window.contains(now) {
        GrantState::Active
    } else {
        GrantState::Scheduled
    };
    let grant = Grant {
        id: grant_id,
        request_id: req.id,
        principal: req.principal.clone(),
        scope: req.scope().clone(),
        binding: req.binding.clone(),
        bound_attributes: req.bound_attributes.clone(),
        window,
        uses: req.flow.max_uses.map(|limit| Uses { limit, used: 0 }),
        state,
        break_glass: req.break_glass,
        acknowledged: None,
        ended: None,
        reminded_at: None,
        created_at: now,
        version: 1,
    };
    req.state = RequestState::Approved;
    req.closed_at = Some(now);
    req.grant_id = Some(grant_id);
    b.audit(
        actor,
        AuditAction::RequestApproved,
        req,
        Some(grant_id),
        None,
        policy_ids,
    );
    b.audit(actor, AuditAction::GrantCreated, req, Some(grant_id), None, Vec::new());
    b.request_event(req, EventKind::Approved);
    if state == GrantState::Active {
        b.grant_event(&grant, EventKind::GrantActive);
    }
    Ok(grant)
}

fn next_version(req: &AccessRequest, now: DateTime<Utc>) -> (AccessRequest, Builder) {
    let mut next = req.clone();
    next.version += 1;
    let b = Builder::new(format!("{}/v{}", req.id, next.version), now);
    (next, b)
}

/// Writes `next` over `before` (compare-and-swap on its version); the outcome is `next`.
fn finish_request(mut b: Builder, before: &AccessRequest, next: AccessRequest) -> Transition<AccessRequest> {
    b.commit.request = Some(Write::Update {
        expected_version: before.version,
        value: next.clone(),
    });
    Transition {
        commit: b.commit,
        outcome: next,
    }
}

fn ensure_pending(req: &AccessRequest) -> Result<()> {
    if req.state.is_closed() {
        return Err(TransitionError::RequestClosed {
            request: req.id,
            state: req.state,
        });
    }
    Ok(())
}

/// Records a review. An approval that completes every requirement approves the request and
/// creates its grant (`grant_id`); an eligible deny closes it.
///
/// # Errors
/// [`TransitionError::RequestClosed`], [`TimeError::RequestExpired`],
/// [`TransitionError::SelfApproval`], [`TransitionError::DuplicateReview`],
/// [`TransitionError::NotEligibleReviewer`].
pub fn review(
    req: &AccessRequest,
    reviewer: &EntityRef,
    verdict: Verdict,
    comment: Option<String>,
    standing: &ReviewerStanding,
    grant_id: GrantId,
    now: DateTime<Utc>,
) -> Result<Transition<(AccessRequest, Option<Grant>)>> {
    ensure_pending(req)?;
    if now >= req.deadline {
        return Err(TimeError::RequestExpired {
            deadline: req.deadline,
            decided_at: now,
        }
        .into());
    }
    ensure_not_own(req, reviewer, standing)?;
    if req.reviews.iter().any(|r| r.reviewer == *reviewer) {
        return Err(TransitionError::DuplicateReview {
            request: req.id,
            reviewer: reviewer.clone(),
        });
    }
    ensure_eligible(req, reviewer, standing)?;
    let (mut next, mut b) = next_version(req, now);
    let mut granted = None;
    next.reviews.push(Review {
        reviewer: reviewer.clone(),
        verdict,
        comment: comment.clone(),
        at: now,
        eligible_for: standing.eligible_for.clone(),
        policy_ids: standing.policy_ids.clone(),
    });
    match verdict {
        Verdict::Deny => {
            next.state = RequestState::Denied;
            next.closed_at = Some(now);
            b.audit(
                reviewer,
                AuditAction::ReviewDenied,
                &next,
                None,
                comment.clone(),
                standing.policy_ids.clone(),
            );
            b.request_event(
                &next,
                EventKind::Denied {
                    by: reviewer.clone(),
                    comment,
                },
            );
            b.resolved(&next, Some(reviewer));
        }
        Verdict::Approve => {
            b.audit(
                reviewer,
                AuditAction::ReviewApproved,
                &next,
                None,
                comment,
                standing.policy_ids.clone(),
            );
            let approvals: Vec<&[usize]> = next
                .reviews
                .iter()
                .filter(|r| r.verdict == Verdict::Approve)
                .map(|r| r.eligible_for.as_slice())
                .collect();
            if quorum::quorum_met(&next.flow.requirements, &approvals) {
                let mut ids: Vec<String> = next.flow.policy_ids.clone();
                for r in &next.reviews {
                    ids.extend(
                        r.policy_ids
                            .iter()
                            .filter(|p| !ids.contains(p))
                            .cloned()
                            .collect::<Vec<_>>(),
                    );
                }
                let max = next.flow.max_duration;
                let grant = approve(&mut next, grant_id, max, now, reviewer, ids, &mut b)?;
                b.resolved(&next, Some(reviewer));
                b.commit.grants.push(Write::Insert(grant.clone()));
                granted = Some(grant);
            }
        }
    }
    let Transition { commit, outcome } = finish_request(b, req, next);
    Ok(Transition {
        commit,
        outcome: (outcome, granted),
    })
}

/// Cancels a pending request; only its requester may.
///
/// # Errors
/// [`TransitionError::NotRequester`], [`TransitionError::RequestClosed`].
pub fn cancel(req: &AccessRequest, actor: &EntityRef, now: DateTime<Utc>) -> Result<Transition<AccessRequest>> {
    if *actor != req.principal {
        return Err(TransitionError::NotRequester {
            request: req.id,
            actor: actor.clone(),
        });
    }
    ensure_pending(req)?;
    let (mut next, mut b) = next_version(req, now);
    next.state = RequestState::Cancelled;
    next.closed_at = Some(now);
    b.audit(actor, AuditAction::RequestCancelled, &next, None, None, Vec::new());
    b.request_event(&next, EventKind::Cancelled);
    b.resolved(&next, Some(actor));
    Ok(finish_request(b, req, next))
}

/// Closes a pending request on someone else's authority (off-boarding): cancelled, with the
/// actor and the reason recorded. Who may do it is the caller's decision (the policy's revoke
/// permission).
///
/// # Errors
/// [`TransitionError::RequestClosed`].
pub fn withdraw(
    req: &AccessRequest,
    actor: &EntityRef,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<Transition<AccessRequest>> {
    ensure_pending(req)?;
    let (mut next, mut b) = next_version(req, now);
    next.state = RequestState::Cancelled;
    next.closed_at = Some(now);
    b.audit(actor, AuditAction::RequestCancelled, &next, None, reason, Vec::new());
    b.request_event(&next, EventKind::Cancelled);
    b.resolved(&next, Some(actor));
    Ok(finish_request(b, req, next))
}

/// Expires a pending request whose deadline has passed.
///
/// # Errors
/// [`TransitionError::RequestClosed`], [`TransitionError::NotDue`].
pub fn expire_request(req: &AccessRequest, now: DateTime<Utc>) -> Result<Transition<AccessRequest>> {
    ensure_pending(req)?;
    if now < req.deadline {
        return Err(TransitionError::NotDue {
            subject: Subject::Request(req.id),
            step: DueStep::Expiry,
            now,
        });
    }
    let (mut next, mut b) = next_version(req, now);
    next.state = RequestState::Expired;
    next.closed_at = Some(now);
    b.audit(
        &system_actor(),
        AuditAction::RequestExpired,
        &next,
        None,
        None,
        Vec::new(),
    );
    b.request_event(&next, EventKind::RequestExpired);
    b.resolved(&next, None);
    Ok(finish_request(b, req, next))
}
