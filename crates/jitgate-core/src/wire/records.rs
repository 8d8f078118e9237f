//! The wire form of requests, reviews and grants.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::answers::Flow;
use super::{attributes_json, display, display_opt, seconds};
use crate::{EntityRef, GrantId, RequestId};

/// An action: its scope (action and resource entities) and context, as plain JSON.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Action {
    /// The action entity (`Action::"db_restart"`).
    pub action: EntityRef,
    /// The resource entity.
    pub resource: EntityRef,
    /// The context, as plain JSON.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, serde_json::Value>,
}

impl From<&crate::Action> for Action {
    fn from(a: &crate::Action) -> Self {
        Self {
            action: a.scope.action.clone(),
            resource: a.scope.resource.clone(),
            context: attributes_json(&a.context),
        }
    }
}

/// An access request.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Request {
    /// `req_…`.
    #[serde(serialize_with = "display")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: RequestId,
    /// Who asks.
    pub principal: EntityRef,
    /// For what.
    pub action: Action,
    /// Why, in their words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    /// How long the grant should last.
    pub duration_seconds: i64,
    /// When the grant should start, if later than approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_at: Option<DateTime<Utc>>,
    /// Whether it is a break-glass request.
    pub break_glass: bool,
    /// The grant it extends (`grant_…`).
    #[serde(serialize_with = "display_opt", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub extends: Option<GrantId>,
    /// The approval flow it goes through.
    pub flow: Flow,
    /// `pending`, `approved`, `denied`, `cancelled` or `expired`.
    pub state: crate::RequestState,
    /// The reviews so far.
    pub reviews: Vec<Review>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it expires if still pending.
    pub deadline: DateTime<Utc>,
    /// When it was closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    /// Its grant, once approved (`grant_…`).
    #[serde(serialize_with = "display_opt", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub grant: Option<GrantId>,
    /// Bumped by every change (for conditional updates).
    pub version: u64,
}

impl From<&crate::AccessRequest> for Request {
    fn from(r: &crate::AccessRequest) -> Self {
        Self {
            id: r.id,
            principal: r.principal.clone(),
            action: (&r.action).into(),
            justification: r.justification.clone(),
            duration_seconds: seconds(&r.duration),
            start_at: r.start_at,
            break_glass: r.break_glass,
            extends: r.extends,
            flow: Flow::from(&*r.flow),
            state: r.state,
            reviews: r.reviews.iter().map(Review::from).collect(),
            created_at: r.created_at,
            deadline: r.deadline,
            closed_at: r.closed_at,
            grant: r.grant_id,
            version: r.version,
        }
    }
}

/// One reviewer's decision on a request.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Review {
    /// Who.
    pub reviewer: EntityRef,
    /// `approve` or `deny`.
    pub verdict: crate::Verdict,
    /// Their comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
    /// The policies that made them an eligible reviewer.
    pub policy_ids: Vec<String>,
}

impl From<&crate::Review> for Review {
    fn from(r: &crate::Review) -> Self {
        Self {
            reviewer: r.reviewer.clone(),
            verdict: r.verdict,
            comment: r.comment.clone(),
            at: r.at,
            policy_ids: r.policy_ids.clone(),
        }
    }
}

/// A grant.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Grant {
    /// `grant_…`.
    #[serde(serialize_with = "display")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: GrantId,
    /// The request it came from (`req_…`).
    #[serde(serialize_with = "display")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub request: RequestId,
    /// Who holds it.
    pub principal: EntityRef,
    /// The action entity it allows.
    pub action: EntityRef,
    /// On which resource.
    pub resource: EntityRef,
    /// From when.
    pub not_before: DateTime<Utc>,
    /// Until when.
    pub expires_at: DateTime<Utc>,
    /// `scheduled`, `active`, `expired`, `revoked` or `exhausted`.
    pub state: crate::GrantState,
    /// How many uses it allows, when limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
    /// How many were used, when limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<u32>,
    /// The context attributes it is bound to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_attributes: Vec<String>,
    /// Whether it came from break-glass.
    pub break_glass: bool,
    /// Who acknowledged the break-glass grant, when, and what they said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<crate::Acknowledgement>,
    /// How it ended early (revoked: by whom and why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<crate::Ending>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Bumped by every change.
    pub version: u64,
}

impl From<&crate::Grant> for Grant {
    fn from(g: &crate::Grant) -> Self {
        Self {
            id: g.id,
            request: g.request_id,
            principal: g.principal.clone(),
            action: g.scope.action.clone(),
            resource: g.scope.resource.clone(),
            not_before: g.window.not_before(),
            expires_at: g.window.expires_at(),
            state: g.state,
            max_uses: g.uses.as_ref().map(|u| u.limit),
            used: g.uses.as_ref().map(|u| u.used),
            bound_attributes: g.bound_attributes.clone(),
            break_glass: g.break_glass,
            acknowledged: g.acknowledged.as_deref().cloned(),
            ended: g.ended.as_deref().cloned(),
            created_at: g.created_at,
            version: g.version,
        }
    }
}
