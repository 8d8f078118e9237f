//! Transitions of a grant: activate, remind, expire, revoke, use, acknowledge.

use chrono::{DateTime, Utc};

use super::builder::Builder;
use super::{ensure_eligible, system_actor, DueStep, Result, Transition, TransitionError};
use crate::audit::AuditAction;
use crate::model::entity::EntityRef;
use crate::model::event::EventKind;
use crate::model::grant::{Acknowledgement, Ending, Grant, GrantState, Uses};
use crate::model::request::AccessRequest;
use crate::ports::policy::ReviewerStanding;
use crate::ports::store::{Subject, Write};

fn next_grant(g: &Grant, now: DateTime<Utc>) -> (Grant, Builder) {
    let mut next = g.clone();
    next.version += 1;
    let b = Builder::new(format!("{}/v{}", g.id, next.version), now);
    (next, b)
}

/// Writes `next` over `before` (compare-and-swap on its version); the outcome is `next`.
fn finish_grant(mut b: Builder, before: &Grant, next: Grant) -> Transition<Grant> {
    b.commit.grants.push(Write::Update {
        expected_version: before.version,
        value: next.clone(),
    });
    Transition {
        commit: b.commit,
        outcome: next,
    }
}

/// Records that a scheduled grant came into force.
///
/// # Errors
/// [`TransitionError::NotDue`] unless the stored state is `Scheduled` and `now` is inside the window.
pub fn activate(g: &Grant, now: DateTime<Utc>) -> Result<Transition<Grant>> {
    if g.state != GrantState::Scheduled || g.status_at(now) != GrantState::Active {
        return Err(TransitionError::NotDue {
            subject: Subject::Grant(g.id),
            step: DueStep::Activation,
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
pub fn remind(g: &Grant, now: DateTime<Utc>) -> Result<Transition<Grant>> {
    let state = g.status_at(now);
    if state != GrantState::Active {
        return Err(TransitionError::GrantNotActive { grant: g.id, state });
    }
    if g.reminded_at.is_some() {
        return Err(TransitionError::NotDue {
            subject: Subject::Grant(g.id),
            step: DueStep::Reminder,
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
pub fn expire_grant(g: &Grant, now: DateTime<Utc>) -> Result<Transition<Grant>> {
    if g.state.is_ended() || now < g.window.expires_at() {
        return Err(TransitionError::NotDue {
            subject: Subject::Grant(g.id),
            step: DueStep::Expiry,
            now,
        });
    }
    let (mut next, mut b) = next_grant(g, now);
    next.state = GrantState::Expired;
    next.ended = Some(Box::new(Ending {
        at: now,
        by: None,
        reason: None,
    }));
    b.grant_audit(&system_actor(), AuditAction::GrantExpired, &next, None);
    b.grant_event(&next, EventKind::GrantExpired);
    Ok(finish_grant(b, g, next))
}

/// Revokes a scheduled or active grant.
///
/// # Errors
/// [`TransitionError::GrantNotActive`] if it has already ended (including by time).
pub fn revoke(g: &Grant, actor: &EntityRef, reason: Option<String>, now: DateTime<Utc>) -> Result<Transition<Grant>> {
    let state = g.status_at(now);
    if state.is_ended() {
        return Err(TransitionError::GrantNotActive { grant: g.id, state });
    }
    let (mut next, mut b) = next_grant(g, now);
    next.state = GrantState::Revoked;
    next.ended = Some(Box::new(Ending {
        at: now,
        by: Some(actor.clone()),
        reason: reason.clone(),
    }));
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
pub fn use_grant(g: &Grant, now: DateTime<Utc>) -> Result<Transition<Grant>> {
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
        next.ended = Some(Box::new(Ending {
            at: now,
            by: None,
            reason: None,
        }));
        b.grant_audit(&system_actor(), AuditAction::GrantExhausted, &next, None);
        b.grant_event(&next, EventKind::GrantExhausted);
    }
    Ok(finish_grant(b, g, next))
}

/// Records the after-the-fact review of a break-glass grant by an eligible reviewer other than
/// its holder (even where self-approval is allowed).
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
) -> Result<Transition<Grant>> {
    if !g.break_glass {
        return Err(TransitionError::NotBreakGlass { grant: g.id });
    }
    if let Some(a) = &g.acknowledged {
        return Err(TransitionError::AlreadyAcknowledged {
            grant: g.id,
            by: a.by.clone(),
        });
    }
    // Whatever a flow or policy says about self-approval: an emergency is reviewed by someone
    // other than the person who declared it.
    if *reviewer == g.principal {
        return Err(TransitionError::SelfApproval {
            request: req.id,
            reviewer: reviewer.clone(),
        });
    }
    ensure_eligible(req, reviewer, standing)?;
    let (mut next, mut b) = next_grant(g, now);
    next.acknowledged = Some(Box::new(Acknowledgement {
        by: reviewer.clone(),
        at: now,
        comment: comment.clone(),
    }));
    b.grant_audit(reviewer, AuditAction::BreakGlassAcknowledged, &next, comment);
    if let Some(last) = b.commit.audit.last_mut() {
        last.policy_ids = standing.policy_ids.clone();
    }
    b.grant_event(&next, EventKind::BreakGlassAcknowledged { by: reviewer.clone() });
    Ok(finish_grant(b, g, next))
}
