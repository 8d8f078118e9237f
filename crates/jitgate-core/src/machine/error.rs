//! Why the state machine refuses a command.

use std::fmt;

use chrono::{DateTime, Utc};

use super::time::TimeError;
use crate::model::entity::{EntityRef, Scope};
use crate::model::grant::GrantState;
use crate::model::ids::{GrantId, RequestId};
use crate::model::request::RequestState;
use crate::ports::store::Subject;

/// Which time-driven step was not due.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum DueStep {
    /// Expiring a pending request or a grant.
    Expiry,
    /// Recording that a scheduled grant came into force.
    Activation,
    /// Sending a grant's expiry reminder.
    Reminder,
}

impl fmt::Display for DueStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DueStep::Expiry => "expiry",
            DueStep::Activation => "activation",
            DueStep::Reminder => "expiry reminder",
        })
    }
}

/// A command that the state machine refuses, and why.
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
    /// A sweep step was applied to something not yet due (or already done).
    #[error("the {step} of {subject} is not due at {now}")]
    NotDue {
        /// The request or grant.
        subject: Subject,
        /// The step.
        step: DueStep,
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
