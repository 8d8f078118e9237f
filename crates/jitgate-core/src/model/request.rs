//! Access requests and their reviews.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::model::entity::{Action, ActionBinding, EntityRef, Scope};
use crate::model::flow::Flow;
use crate::model::ids::{GrantId, RequestId};

/// Where a request is in its life cycle: `Pending -> Approved | Denied | Cancelled | Expired`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Debug)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RequestState {
    /// Waiting for reviews.
    Pending,
    /// Every requirement was met (or auto-approved, or break-glass); a grant exists.
    Approved,
    /// An eligible reviewer denied it.
    Denied,
    /// The requester withdrew it.
    Cancelled,
    /// Nobody decided before its TTL.
    Expired,
}

impl RequestState {
    /// Whether no further transition is possible.
    pub fn is_closed(self) -> bool {
        self != RequestState::Pending
    }
}

impl RequestState {
    /// Every state, in the order of [`Display`](fmt::Display)'s names below.
    pub const ALL: [RequestState; 5] = [
        RequestState::Pending,
        RequestState::Approved,
        RequestState::Denied,
        RequestState::Cancelled,
        RequestState::Expired,
    ];
}

impl std::str::FromStr for RequestState {
    type Err = String;

    /// Parses the name [`Display`](fmt::Display) writes (`pending`, `approved`, ...); the
    /// error says which names there are.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.to_string() == s)
            .ok_or_else(|| {
                let names: Vec<String> = Self::ALL.iter().map(ToString::to_string).collect();
                format!("`{s}` is not a request state (one of {})", names.join(", "))
            })
    }
}

impl fmt::Display for RequestState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Denied => "denied",
            RequestState::Cancelled => "cancelled",
            RequestState::Expired => "expired",
        })
    }
}

/// A reviewer's verdict.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Debug)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Approve the request.
    Approve,
    /// Deny the request (closes it at once).
    Deny,
}

/// One reviewer's recorded verdict.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
#[non_exhaustive]
pub struct Review {
    /// Who reviewed.
    pub reviewer: EntityRef,
    /// What they decided.
    pub verdict: Verdict,
    /// Their comment.
    pub comment: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
    /// Indexes of the flow's requirements this reviewer was eligible for when reviewing.
    pub eligible_for: Vec<usize>,
    /// The policies that made them eligible.
    pub policy_ids: Vec<String>,
}

/// What a principal asks for; the input of [`Gate::request`](crate::gate::Gate::request).
///
/// # Examples
/// ```
/// use chrono::Duration;
/// use jitgate_core::{Action, EntityRef, NewRequest};
/// let ask = NewRequest::new(
///     EntityRef::new("User", "sam"),
///     Action::new(EntityRef::new("Action", "db_restart"), EntityRef::new("Database", "orders-prod")),
///     Duration::minutes(30),
/// )
/// .with_justification("INC-4411: connection pool wedged");
/// assert!(!ask.break_glass);
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
#[non_exhaustive]
pub struct NewRequest {
    /// Who asks.
    pub principal: EntityRef,
    /// For what (the scope, and the parameters a bound grant is tied to).
    pub action: Action,
    /// Why.
    pub justification: Option<String>,
    /// How long they want the grant for.
    #[serde(with = "crate::model::serde_duration")]
    pub duration: Duration,
    /// When the grant should start, if later than approval.
    pub start_at: Option<DateTime<Utc>>,
    /// An emergency: granted at once within the flow's break-glass bound, reviewed afterwards.
    pub break_glass: bool,
}

impl NewRequest {
    /// A request for `action` lasting `duration`, starting at approval.
    pub fn new(principal: EntityRef, action: Action, duration: Duration) -> Self {
        Self {
            principal,
            action,
            justification: None,
            duration,
            start_at: None,
            break_glass: false,
        }
    }

    /// Gives a justification.
    #[must_use]
    pub fn with_justification(mut self, why: impl Into<String>) -> Self {
        self.justification = Some(why.into());
        self
    }

    /// Asks for a grant starting at `at` (if later than the approval).
    #[must_use]
    pub fn starting_at(mut self, at: DateTime<Utc>) -> Self {
        self.start_at = Some(at);
        self
    }

    /// Marks the request as break-glass.
    #[must_use]
    pub fn break_glass(mut self) -> Self {
        self.break_glass = true;
        self
    }
}

/// An access request and everything that happened to it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
#[non_exhaustive]
pub struct AccessRequest {
    /// Its id.
    pub id: RequestId,
    /// Who asked.
    pub principal: EntityRef,
    /// What for, with the call's parameters.
    pub action: Action,
    /// The binding hash, when the flow binds grants to exact parameters or named attributes.
    pub binding: Option<ActionBinding>,
    /// The context attributes the binding covers (empty: all parameters, if bound).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bound_attributes: Vec<String>,
    /// Why.
    pub justification: Option<String>,
    /// The wanted duration.
    #[serde(with = "crate::model::serde_duration")]
    pub duration: Duration,
    /// The wanted start.
    pub start_at: Option<DateTime<Utc>>,
    /// Whether it is a break-glass request.
    pub break_glass: bool,
    /// The grant this request extends, if it is an extension.
    pub extends: Option<GrantId>,
    /// The flow policy named when the request was made (shared with the policy that named
    /// it, and between the requests a store holds).
    pub flow: Arc<Flow>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it expires if nobody decides (`created_at + flow.request_ttl`).
    pub deadline: DateTime<Utc>,
    /// Its state.
    pub state: RequestState,
    /// Reviews in the order they were recorded.
    pub reviews: Vec<Review>,
    /// When it left `Pending`.
    pub closed_at: Option<DateTime<Utc>>,
    /// The grant it produced.
    pub grant_id: Option<GrantId>,
    /// Optimistic-concurrency version, incremented by every transition.
    pub version: u64,
}

impl AccessRequest {
    /// The scope asked for.
    pub fn scope(&self) -> &Scope {
        &self.action.scope
    }

    /// Whether a requirement of the request's flow is reviewed by one of `reviewers` (an
    /// entity and its groups, see [`Policy::reviewer_groups`](crate::Policy::reviewer_groups)).
    pub fn is_reviewed_by_any(&self, reviewers: &[EntityRef]) -> bool {
        self.flow.requirements.iter().any(|r| reviewers.contains(&r.reviewers))
    }
}
