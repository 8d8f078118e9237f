//! Notification events, written to the outbox in the same commit as the transition that caused them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::entity::{EntityRef, Scope};
use crate::model::ids::{EventId, GrantId, RequestId};

/// What happened.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A request waits for review by these reviewer sets.
    ApprovalNeeded {
        /// The reviewer sets of the flow's requirements.
        reviewers: Vec<EntityRef>,
        /// The flow, for people ("approval: 1 from Team::\"sre-leads\"; at most 60 min; …").
        #[serde(default)]
        flow: String,
        /// The requester's justification.
        justification: Option<String>,
    },
    /// A request was approved and its grant created.
    Approved,
    /// A request was denied.
    Denied {
        /// The reviewer who denied it.
        by: EntityRef,
        /// Their comment.
        comment: Option<String>,
    },
    /// The requester cancelled the request.
    Cancelled,
    /// Nobody decided in time.
    RequestExpired,
    /// A grant came into force.
    GrantActive,
    /// A grant ran out of time.
    GrantExpired,
    /// A grant was revoked.
    Revoked {
        /// Who revoked it.
        by: EntityRef,
        /// Why.
        reason: Option<String>,
    },
    /// A use-limited grant used its last use.
    GrantExhausted,
    /// A break-glass grant was taken; it needs an after-the-fact review.
    BreakGlassUsed {
        /// The requester's justification.
        justification: Option<String>,
    },
    /// A break-glass grant received its after-the-fact review.
    BreakGlassAcknowledged {
        /// The reviewer.
        by: EntityRef,
    },
    /// A request left `Pending` (approved, denied, cancelled or expired): its other eligible
    /// reviewers need not act on it any more.
    RequestResolved {
        /// How it ended.
        state: crate::model::request::RequestState,
        /// Who decided it, if a person did.
        by: Option<EntityRef>,
        /// The reviewer sets of its flow.
        reviewers: Vec<EntityRef>,
    },
    /// A grant ends soon (sent once per grant, by the sweep).
    GrantExpiring {
        /// When it ends.
        expires_at: DateTime<Utc>,
    },
}

impl EventKind {
    /// Every kind's `type`, as in JSON.
    pub const TYPES: &'static [&'static str] = &[
        "approval_needed",
        "approved",
        "denied",
        "cancelled",
        "request_expired",
        "grant_active",
        "grant_expired",
        "revoked",
        "grant_exhausted",
        "break_glass_used",
        "break_glass_acknowledged",
        "request_resolved",
        "grant_expiring",
    ];

    /// This kind's `type`, as in JSON (`approval_needed`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::ApprovalNeeded { .. } => "approval_needed",
            EventKind::Approved => "approved",
            EventKind::Denied { .. } => "denied",
            EventKind::Cancelled => "cancelled",
            EventKind::RequestExpired => "request_expired",
            EventKind::GrantActive => "grant_active",
            EventKind::GrantExpired => "grant_expired",
            EventKind::Revoked { .. } => "revoked",
            EventKind::GrantExhausted => "grant_exhausted",
            EventKind::BreakGlassUsed { .. } => "break_glass_used",
            EventKind::BreakGlassAcknowledged { .. } => "break_glass_acknowledged",
            EventKind::RequestResolved { .. } => "request_resolved",
            EventKind::GrantExpiring { .. } => "grant_expiring",
        }
    }
}

/// A notification event.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
#[non_exhaustive]
pub struct Event {
    /// Stable id for de-duplication.
    pub id: EventId,
    /// When the transition happened.
    pub at: DateTime<Utc>,
    /// The requester / grant holder.
    pub principal: EntityRef,
    /// The scope concerned.
    pub scope: Scope,
    /// The request concerned.
    pub request_id: RequestId,
    /// The grant concerned, if any.
    pub grant_id: Option<GrantId>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}
