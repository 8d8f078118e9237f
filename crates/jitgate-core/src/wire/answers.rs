//! The wire form of what the verbs answer: decisions with their flow, outcomes, explanations.

use std::collections::BTreeMap;

use serde::Serialize;

use super::display_opt;
use super::records::{Grant, Request};
use crate::{EntityRef, ErrorCode, GrantId, PolicyDecision, PolicyVersion};

/// `authorize`'s answer: `{"outcome": "allow" | "needs_approval" | "deny", …}`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Decision {
    /// Go ahead: `basis` is `standing`, or `grant` with the grant's id in `grant`.
    Allow {
        /// `standing` or `grant`.
        basis: &'static str,
        /// The grant that allows it, when `basis` is `grant`.
        #[serde(serialize_with = "display_opt", skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        grant: Option<GrantId>,
        /// The policy set it was decided under.
        #[serde(serialize_with = "display_opt", skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        policy_version: Option<PolicyVersion>,
    },
    /// Not now: ask through `flow`.
    NeedsApproval {
        /// The approval flow a request would go through.
        flow: Flow,
        /// The policy set it was decided under.
        #[serde(serialize_with = "display_opt", skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        policy_version: Option<PolicyVersion>,
    },
    /// No: `reason` is a stable code (`forbidden`, `not_eligible`, `policy_error`,
    /// `store_error`, `timeout`, `over_limit`), `message` says it for people, `policy_ids`
    /// names the forbidding policies.
    Deny {
        /// Why, as a stable code.
        reason: &'static str,
        /// Why, for people.
        message: String,
        /// The forbidding policies (for `forbidden`).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        policy_ids: Vec<String>,
        /// For `over_limit`: the limit's own error code (`too_long`, …).
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<&'static str>,
        /// The policy set it was decided under.
        #[serde(serialize_with = "display_opt", skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        policy_version: Option<PolicyVersion>,
    },
}

impl From<&crate::Decision> for Decision {
    fn from(d: &crate::Decision) -> Self {
        match d {
            crate::Decision::Allow { basis, policy_version } => {
                let (basis, grant) = match basis {
                    crate::Basis::Standing => ("standing", None),
                    crate::Basis::Grant(id) => ("grant", Some(*id)),
                };
                Decision::Allow {
                    basis,
                    grant,
                    policy_version: *policy_version,
                }
            }
            crate::Decision::NeedsApproval { flow, policy_version } => Decision::NeedsApproval {
                flow: Flow::from(flow.as_ref()),
                policy_version: *policy_version,
            },
            crate::Decision::Deny { reason, policy_version } => {
                let (code, policy_ids, limit) = match reason {
                    crate::DenyReason::Forbidden { policy_ids } => ("forbidden", policy_ids.clone(), None),
                    crate::DenyReason::NotEligible => ("not_eligible", Vec::new(), None),
                    crate::DenyReason::PolicyError(_) => ("policy_error", Vec::new(), None),
                    crate::DenyReason::StoreError(_) => ("store_error", Vec::new(), None),
                    crate::DenyReason::Timeout { .. } => ("timeout", Vec::new(), None),
                    crate::DenyReason::OverLimit(e) => ("over_limit", Vec::new(), Some(e.code())),
                };
                Decision::Deny {
                    reason: code,
                    message: reason.to_string(),
                    policy_ids,
                    limit,
                    policy_version: *policy_version,
                }
            }
        }
    }
}

/// An approval flow: who must approve, how long a grant may last, and its options.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Flow {
    /// Every requirement must be met (one approval per person).
    pub requirements: Vec<Requirement>,
    /// The longest grant the flow allows.
    pub max_duration_seconds: i64,
    /// How long a request may wait for a decision.
    pub request_ttl_seconds: i64,
    /// Whether a justification is required.
    pub require_reason: bool,
    /// The longest break-glass grant, when break-glass is allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub break_glass_max_duration_seconds: Option<i64>,
    /// Whether requests are approved at once.
    pub auto_approve: bool,
    /// Whether the requester may approve their own request.
    pub allow_self_approval: bool,
    /// How many uses a grant allows (none: unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
    /// Whether a grant is bound to the parameters it was requested with.
    pub bind_parameters: bool,
    /// The context attributes a grant is bound to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bind_attributes: Vec<String>,
    /// The policies that made the principal eligible.
    pub policy_ids: Vec<String>,
}

/// One requirement of a flow: `min_approvals` from members of `reviewers`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Requirement {
    /// The group (or person) whose members may approve.
    pub reviewers: EntityRef,
    /// How many of them must.
    pub min_approvals: u32,
}

impl From<&crate::Flow> for Flow {
    fn from(f: &crate::Flow) -> Self {
        Self {
            requirements: f
                .requirements
                .iter()
                .map(|r| Requirement {
                    reviewers: r.reviewers.clone(),
                    min_approvals: r.min_approvals,
                })
                .collect(),
            max_duration_seconds: f.max_duration.num_seconds(),
            request_ttl_seconds: f.request_ttl.num_seconds(),
            require_reason: f.require_reason,
            break_glass_max_duration_seconds: f.break_glass.as_ref().map(|b| b.max_duration.num_seconds()),
            auto_approve: f.auto_approve,
            allow_self_approval: f.allow_self_approval,
            max_uses: f.max_uses,
            bind_parameters: f.bind_parameters,
            bind_attributes: f.bind_attributes.clone(),
            policy_ids: f.policy_ids.clone(),
        }
    }
}

/// `request`'s answer: `{"outcome": "pending" | "granted" | "already_covered" |
/// "already_pending" | "not_needed", …}`.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
// A view built to be serialized once: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum RequestOutcome {
    /// Waiting for reviewers.
    Pending {
        /// The request.
        request: Request,
    },
    /// Approved at once (auto-approval or break-glass).
    Granted {
        /// The request.
        request: Request,
        /// Its grant.
        grant: Grant,
    },
    /// A live grant already covers it.
    AlreadyCovered {
        /// That grant.
        grant: Grant,
    },
    /// The same principal already asked for this scope.
    AlreadyPending {
        /// That request.
        request: Request,
    },
    /// Standing permission already allows it.
    NotNeeded,
}

impl From<&crate::RequestOutcome> for RequestOutcome {
    fn from(o: &crate::RequestOutcome) -> Self {
        match o {
            crate::RequestOutcome::Pending(r) => RequestOutcome::Pending { request: r.into() },
            crate::RequestOutcome::Granted { request, grant } => RequestOutcome::Granted {
                request: request.into(),
                grant: grant.into(),
            },
            crate::RequestOutcome::AlreadyCovered(g) => RequestOutcome::AlreadyCovered { grant: g.into() },
            crate::RequestOutcome::AlreadyPending(r) => RequestOutcome::AlreadyPending { request: r.into() },
            crate::RequestOutcome::NotNeeded => RequestOutcome::NotNeeded,
        }
    }
}

/// `approve`'s and `deny`'s answer: the request as it now is, and its grant once approved.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct ReviewOutcome {
    /// The request after the review.
    pub request: Request,
    /// The grant, when this review approved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<Grant>,
}

impl From<&crate::ReviewOutcome> for ReviewOutcome {
    fn from(o: &crate::ReviewOutcome) -> Self {
        Self {
            request: (&o.request).into(),
            grant: o.grant.as_ref().map(Grant::from),
        }
    }
}

/// `explain`'s answer.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Explanation {
    /// The decision.
    pub decision: Decision,
    /// What the policy said: `standing`, `eligible`, `forbidden` or `not_eligible`.
    pub policy: &'static str,
    /// The policies that said it.
    pub policy_ids: Vec<String>,
    /// The flow, when eligible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<Flow>,
    /// The version of the policy set.
    #[serde(serialize_with = "display_opt", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub policy_version: Option<PolicyVersion>,
    /// The principal's live grants for this scope.
    pub grants: Vec<Grant>,
    /// The authors' metadata of each deciding policy, by policy id.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, BTreeMap<String, String>>,
}

impl From<&crate::Explanation> for Explanation {
    fn from(e: &crate::Explanation) -> Self {
        let (policy, policy_ids, flow) = match &e.policy {
            PolicyDecision::Standing { policy_ids } => ("standing", policy_ids.clone(), None),
            PolicyDecision::Eligible { flow } => ("eligible", flow.policy_ids.clone(), Some(Flow::from(flow.as_ref()))),
            PolicyDecision::Forbidden { policy_ids } => ("forbidden", policy_ids.clone(), None),
            PolicyDecision::NotEligible => ("not_eligible", Vec::new(), None),
        };
        Self {
            decision: (&e.decision).into(),
            policy,
            policy_ids,
            flow,
            policy_version: e.policy_version,
            grants: e.grants.iter().map(Grant::from).collect(),
            metadata: e.metadata.clone(),
        }
    }
}
