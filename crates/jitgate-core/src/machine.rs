//! The pure state machine: every transition is a function of (state, command, now, policy
//! facts) that returns the [`Commit`] to apply — the new state, grants, audit entries and
//! events — or a [`TransitionError`]. Nothing here reads a clock or does I/O.

use chrono::{DateTime, Utc};

use crate::audit::{AuditAction, AuditEntry};
use crate::event::{Event, EventKind};
use crate::grant::{Acknowledgement, Ending, Grant, GrantState, Uses};
use crate::policy::ReviewerStanding;
use crate::request::{AccessRequest, NewRequest, RequestState, Review, Verdict};
use crate::store::{Commit, Write};
use crate::time::{self, TimeError, WindowInputs};
use crate::{quorum, EntityRef, EventId, Flow, GrantId, RequestId, Scope};

/// The actor recorded for transitions nobody in particular caused (expiry sweeps).
pub fn system_actor() -> EntityRef {
    EntityRef::new("Jit::System", "sweeper")
}

/// A command that the state machine refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransitionError {
    /// The request is no longer pending.
    #[error("request {request} is {state}; only pending requests can be reviewed, cancelled or expired")]
    RequestClosed {
        /// The request.
        request: RequestId,
        /// Its state.
        state: RequestState,
    },
    /// The requester tried to approve their own request.
    #[error("{reviewer} requested {request} and may not review it: self-approval is not allowed by this flow")]
    SelfApproval {
        /// The request.
        request: RequestId,
        /// The requester.
        reviewer: EntityRef,
    },
    /// The reviewer already reviewed this request.
    #[error("{reviewer} already reviewed request {request}; a second review by the same person does not count")]
    DuplicateReview {
        /// The request.
        request: RequestId,
        /// The reviewer.
        reviewer: EntityRef,
    },
    /// The reviewer is in none of the flow's reviewer sets.
    #[error("{reviewer} is not an eligible reviewer of request {request} (flow: {flow})")]
    NotEligibleReviewer {
        /// The request.
        request: RequestId,
        /// The reviewer.
        reviewer: EntityRef,
        /// The flow, so the message says who may review.
        flow: String,
    },
    /// The flow requires a justification and none was given.
    #[error("a justification is required to request {scope}")]
    ReasonRequired {
        /// The scope asked for.
        scope: Scope,
    },
    /// Break-glass was asked for but the flow does not allow it.
    #[error("break-glass is not allowed for {scope}; make a normal request")]
    BreakGlassNotAllowed {
        /// The scope asked for.
        scope: Scope,
    },
    /// Someone other than the requester tried to cancel.
    #[error("only the requester may cancel request {request}, not {actor}")]
    NotRequester {
        /// The request.
        request: RequestId,
        /// Who tried.
        actor: EntityRef,
    },
    /// A sweep step was applied to something not yet due.
    #[error("{what} is not due at {now}")]
    NotDue {
        /// What was not due.
        what: String,
        /// The time given.
        now: DateTime<Utc>,
    },
    /// The grant is not in force (scheduled, expired, revoked or exhausted).
    #[error("grant {grant} is {state}, not active")]
    GrantNotActive {
        /// The grant.
        grant: GrantId,
        /// Its effective state.
        state: GrantState,
    },
    /// The grant is not a break-glass grant.
    #[error("grant {grant} is not a break-glass grant; there is nothing to acknowledge")]
    NotBreakGlass {
        /// The grant.
        grant: GrantId,
    },
    /// The break-glass grant was already acknowledged.
    #[error("break-glass grant {grant} was already acknowledged by {by}")]
    AlreadyAcknowledged {
        /// The grant.
        grant: GrantId,
        /// Who acknowledged it.
        by: EntityRef,
    },
    /// The grant has no use limit, so there is nothing to consume.
    #[error("grant {grant} has no use limit")]
    Unlimited {
        /// The grant.
        grant: GrantId,
    },
    /// A time rule was broken (duration, TTL, range).
    #[error(transparent)]
    Time(#[from] TimeError),
}

type Result<T> = std::result::Result<T, TransitionError>;

/// Collects the pieces of a commit with stable event ids.
struct Builder {
    commit: Commit,
    subject: String,
    at: DateTime<Utc>,
}

impl Builder {
    fn new(subject: String, at: DateTime<Utc>) -> Self {
        Self {
            commit: Commit::default(),
            subject,
            at,
        }
    }

    fn audit(
        &mut self,
        actor: &EntityRef,
        action: AuditAction,
        req: &AccessRequest,
        grant: Option<GrantId>,
        text: Option<String>,
        policy_ids: Vec<String>,
    ) {
        self.commit.audit.push(AuditEntry {
            at: self.at,
            actor: actor.clone(),
            action,
            request_id: req.id,
            grant_id: grant,
            principal: req.principal.clone(),
            scope: req.scope().clone(),
            text,
            policy_ids,
        });
    }

    fn grant_audit(&mut self, actor: &EntityRef, action: AuditAction, g: &Grant, text: Option<String>) {
        self.commit.audit.push(AuditEntry {
            at: self.at,
            actor: actor.clone(),
            action,
            request_id: g.request_id,
            grant_id: Some(g.id),
            principal: g.principal.clone(),
            scope: g.scope.clone(),
            text,
            policy_ids: Vec::new(),
        });
    }

    fn event(
        &mut self,
        principal: &EntityRef,
        scope: &Scope,
        request_id: RequestId,
        grant_id: Option<GrantId>,
        kind: EventKind,
    ) {
        let id = EventId(format!("{}/{}", self.subject, self.commit.events.len()));
        self.commit.events.push(Event {
            id,
            at: self.at,
            principal: principal.clone(),
            scope: scope.clone(),
            request_id,
            grant_id,
            kind,
        });
    }

    fn request_event(&mut self, req: &AccessRequest, kind: EventKind) {
        self.event(&req.principal, req.scope(), req.id, req.grant_id, kind);
    }

    /// `RequestResolved`, for the reviewers who no longer need to act.
    fn resolved(&mut self, req: &AccessRequest, by: Option<&EntityRef>) {
        let reviewers = req.flow.requirements.iter().map(|r| r.reviewers.clone()).collect();
        self.request_event(
            req,
            EventKind::RequestResolved {
                state: req.state,
                by: by.cloned(),
                reviewers,
            },
        );
    }

    fn grant_event(&mut self, g: &Grant, kind: EventKind) {
        self.event(&g.principal, &g.scope, g.request_id, Some(g.id), kind);
    }
}

fn has_text(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.trim().is_empty())
}

/// Opens a request through `flow`; auto-approved and break-glass requests are granted at once
/// (with `grant_id`). Returns the new request and the commit that inserts it.
///
/// # Errors
/// [`TransitionError::ReasonRequired`], [`TransitionError::BreakGlassNotAllowed`], or a
/// [`TimeError`] for a duration that is not positive or above the flow's maximum.
pub fn open(
    id: RequestId,
    grant_id: GrantId,
    ask: NewRequest,
    flow: &Flow,
    extends: Option<GrantId>,
    now: DateTime<Utc>,
) -> Result<(AccessRequest, Commit)> {
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
    let binding = flow.bind_parameters.then(|| ask.action.binding());
    let mut req = AccessRequest {
        id,
        principal: ask.principal,
        action: ask.action,
        binding,
        justification: ask.justification,
        duration: ask.duration,
        start_at: if ask.break_glass { None } else { ask.start_at },
        break_glass: ask.break_glass,
        extends,
        flow: flow.clone(),
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
        b.commit.grants.push(Write::Insert(grant));
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
    Ok((req, b.commit))
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
) -> Result<Commit> {
    ensure_pending(req)?;
    if now >= req.deadline {
        return Err(TimeError::RequestExpired {
            deadline: req.deadline,
            decided_at: now,
        }
        .into());
    }
    if *reviewer == req.principal && !(req.flow.allow_self_approval || standing.self_approval) {
        return Err(TransitionError::SelfApproval {
            request: req.id,
            reviewer: reviewer.clone(),
        });
    }
    if req.reviews.iter().any(|r| r.reviewer == *reviewer) {
        return Err(TransitionError::DuplicateReview {
            request: req.id,
            reviewer: reviewer.clone(),
        });
    }
    if standing.eligible_for.is_empty() {
        return Err(TransitionError::NotEligibleReviewer {
            request: req.id,
            reviewer: reviewer.clone(),
            flow: req.flow.to_string(),
        });
    }
    let (mut next, mut b) = next_version(req, now);
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
                b.commit.grants.push(Write::Insert(grant));
            }
        }
    }
    b.commit.request = Some(Write::Update {
        expected_version: req.version,
        value: next,
    });
    Ok(b.commit)
}

/// Cancels a pending request; only its requester may.
///
/// # Errors
/// [`TransitionError::NotRequester`], [`TransitionError::RequestClosed`].
pub fn cancel(req: &AccessRequest, actor: &EntityRef, now: DateTime<Utc>) -> Result<Commit> {
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
    b.commit.request = Some(Write::Update {
        expected_version: req.version,
        value: next,
    });
    Ok(b.commit)
}

/// Expires a pending request whose deadline has passed.
///
/// # Errors
/// [`TransitionError::RequestClosed`], [`TransitionError::NotDue`].
pub fn expire_request(req: &AccessRequest, now: DateTime<Utc>) -> Result<Commit> {
    ensure_pending(req)?;
    if now < req.deadline {
        return Err(TransitionError::NotDue {
            what: format!("request {}", req.id),
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
    b.commit.request = Some(Write::Update {
        expected_version: req.version,
        value: next,
    });
    Ok(b.commit)
}

fn next_grant(g: &Grant, now: DateTime<Utc>) -> (Grant, Builder) {
    let mut next = g.clone();
    next.version += 1;
    let b = Builder::new(format!("{}/v{}", g.id, next.version), now);
    (next, b)
}

fn finish_grant(mut b: Builder, before: &Grant, next: Grant) -> Commit {
    b.commit.grants.push(Write::Update {
        expected_version: before.version,
        value: next,
    });
    b.commit
}

/// Records that a scheduled grant came into force.
///
/// # Errors
/// [`TransitionError::NotDue`] unless the stored state is `Scheduled` and `now` is inside the window.
pub fn activate(g: &Grant, now: DateTime<Utc>) -> Result<Commit> {
    if g.state != GrantState::Scheduled || g.status_at(now) != GrantState::Active {
        return Err(TransitionError::NotDue {
            what: format!("activation of grant {}", g.id),
            now,
        });
    }
    let (mut next, mut b) = next_grant(g, now);
    next.state = GrantState::Active;
    b.grant_audit(&system_actor(), AuditAction::GrantActivated, &next, None);
    b.grant_event(&next, EventKind::GrantActive);
    Ok(finish_grant(b, g, next))
}

/// Records the expiry reminder of an active grant (once per grant).
///
/// # Errors
/// [`TransitionError::GrantNotActive`] if it is not active now, [`TransitionError::NotDue`] if
/// it was already reminded.
pub fn remind(g: &Grant, now: DateTime<Utc>) -> Result<Commit> {
    let state = g.status_at(now);
    if state != GrantState::Active {
        return Err(TransitionError::GrantNotActive { grant: g.id, state });
    }
    if g.reminded_at.is_some() {
        return Err(TransitionError::NotDue {
            what: format!("a second reminder for grant {}", g.id),
            now,
        });
    }
    let (mut next, mut b) = next_grant(g, now);
    next.reminded_at = Some(now);
    b.grant_audit(&system_actor(), AuditAction::GrantExpiryReminded, &next, None);
    b.grant_event(
        &next,
        EventKind::GrantExpiring {
            expires_at: g.window.expires_at(),
        },
    );
    Ok(finish_grant(b, g, next))
}

/// Records that a grant ran out of time.
///
/// # Errors
/// [`TransitionError::NotDue`] unless the stored state is live and `now` is past the end.
pub fn expire_grant(g: &Grant, now: DateTime<Utc>) -> Result<Commit> {
    if g.state.is_ended() || now < g.window.expires_at() {
        return Err(TransitionError::NotDue {
            what: format!("expiry of grant {}", g.id),
            now,
        });
    }
    let (mut next, mut b) = next_grant(g, now);
    next.state = GrantState::Expired;
    next.ended = Some(Ending {
        at: now,
        by: None,
        reason: None,
    });
    b.grant_audit(&system_actor(), AuditAction::GrantExpired, &next, None);
    b.grant_event(&next, EventKind::GrantExpired);
    Ok(finish_grant(b, g, next))
}

/// Revokes a scheduled or active grant.
///
/// # Errors
/// [`TransitionError::GrantNotActive`] if it has already ended (including by time).
pub fn revoke(g: &Grant, actor: &EntityRef, reason: Option<String>, now: DateTime<Utc>) -> Result<Commit> {
    let state = g.status_at(now);
    if state.is_ended() {
        return Err(TransitionError::GrantNotActive { grant: g.id, state });
    }
    let (mut next, mut b) = next_grant(g, now);
    next.state = GrantState::Revoked;
    next.ended = Some(Ending {
        at: now,
        by: Some(actor.clone()),
        reason: reason.clone(),
    });
    b.grant_audit(actor, AuditAction::GrantRevoked, &next, reason.clone());
    b.grant_event(
        &next,
        EventKind::Revoked {
            by: actor.clone(),
            reason,
        },
    );
    Ok(finish_grant(b, g, next))
}

/// Consumes one use of a use-limited grant; the last use exhausts it.
///
/// # Errors
/// [`TransitionError::Unlimited`], [`TransitionError::GrantNotActive`].
pub fn use_grant(g: &Grant, now: DateTime<Utc>) -> Result<Commit> {
    let uses = g.uses.ok_or(TransitionError::Unlimited { grant: g.id })?;
    let state = g.status_at(now);
    if state != GrantState::Active || uses.used >= uses.limit {
        return Err(TransitionError::GrantNotActive {
            grant: g.id,
            state: if state == GrantState::Active {
                GrantState::Exhausted
            } else {
                state
            },
        });
    }
    let (mut next, mut b) = next_grant(g, now);
    let used = uses.used + 1;
    next.uses = Some(Uses {
        limit: uses.limit,
        used,
    });
    next.state = GrantState::Active;
    let holder = g.principal.clone();
    b.grant_audit(
        &holder,
        AuditAction::GrantUsed,
        &next,
        Some(format!("use {used} of {}", uses.limit)),
    );
    if used == uses.limit {
        next.state = GrantState::Exhausted;
        next.ended = Some(Ending {
            at: now,
            by: None,
            reason: None,
        });
        b.grant_audit(&system_actor(), AuditAction::GrantExhausted, &next, None);
        b.grant_event(&next, EventKind::GrantExhausted);
    }
    Ok(finish_grant(b, g, next))
}

/// Records the after-the-fact review of a break-glass grant by an eligible reviewer.
///
/// # Errors
/// [`TransitionError::NotBreakGlass`], [`TransitionError::AlreadyAcknowledged`],
/// [`TransitionError::SelfApproval`], [`TransitionError::NotEligibleReviewer`].
pub fn acknowledge(
    g: &Grant,
    req: &AccessRequest,
    reviewer: &EntityRef,
    standing: &ReviewerStanding,
    comment: Option<String>,
    now: DateTime<Utc>,
) -> Result<Commit> {
    if !g.break_glass {
        return Err(TransitionError::NotBreakGlass { grant: g.id });
    }
    if let Some(a) = &g.acknowledged {
        return Err(TransitionError::AlreadyAcknowledged {
            grant: g.id,
            by: a.by.clone(),
        });
    }
    if *reviewer == g.principal && !(req.flow.allow_self_approval || standing.self_approval) {
        return Err(TransitionError::SelfApproval {
            request: req.id,
            reviewer: reviewer.clone(),
        });
    }
    if standing.eligible_for.is_empty() {
        return Err(TransitionError::NotEligibleReviewer {
            request: req.id,
            reviewer: reviewer.clone(),
            flow: req.flow.to_string(),
        });
    }
    let (mut next, mut b) = next_grant(g, now);
    next.acknowledged = Some(Acknowledgement {
        by: reviewer.clone(),
        at: now,
        comment: comment.clone(),
    });
    b.grant_audit(reviewer, AuditAction::BreakGlassAcknowledged, &next, comment);
    if let Some(last) = b.commit.audit.last_mut() {
        last.policy_ids = standing.policy_ids.clone();
    }
    b.grant_event(&next, EventKind::BreakGlassAcknowledged { by: reviewer.clone() });
    Ok(finish_grant(b, g, next))
}
