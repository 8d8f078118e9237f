//! What the engine asks of a policy: may this principal do this now, may they ask for it
//! (and through which flow), may this reviewer review, may this actor revoke.
//!
//! The Cedar implementation lives in `jitgate-cedar`; [`RuleTable`](crate::RuleTable) is a
//! small implementation for tests, examples and services with simple needs.

use std::sync::Arc;

use crate::model::entity::{Action, EntityRef};
use crate::model::flow::Flow;
use crate::model::grant::Grant;
use crate::model::policy_version::PolicyVersion;
use crate::model::request::AccessRequest;

/// The policy's answer for a (principal, action).
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum PolicyDecision {
    /// Allowed without any request.
    Standing {
        /// The policies that permitted it.
        policy_ids: Vec<String>,
    },
    /// Not allowed now, but the principal may ask through this flow (a grant, if one is
    /// active, allows it).
    Eligible {
        /// The flow; its `policy_ids` name the policies that made the principal eligible.
        flow: Arc<Flow>,
    },
    /// Forbidden: beats standing permission and every grant.
    Forbidden {
        /// The forbidding policies.
        policy_ids: Vec<String>,
    },
    /// Neither allowed nor eligible.
    NotEligible,
}

/// Which requirements of a request's flow a reviewer may count toward.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct ReviewerStanding {
    /// Indexes into `request.flow.requirements`; empty when the reviewer may not review.
    pub eligible_for: Vec<usize>,
    /// The policies that decided.
    pub policy_ids: Vec<String>,
    /// Whether a policy explicitly lets this reviewer, the requester, review their own request
    /// (besides a flow that allows self-approval).
    pub self_approval: bool,
}

impl ReviewerStanding {
    /// A reviewer who counts toward the requirements at `eligible_for` (indexes into the
    /// flow's requirements; empty: may not review), by `policy_ids`.
    pub fn new(eligible_for: Vec<usize>, policy_ids: Vec<String>) -> Self {
        Self {
            eligible_for,
            policy_ids,
            self_approval: false,
        }
    }

    /// Whether the policy lets this reviewer review their own request.
    #[must_use]
    pub fn with_self_approval(mut self, yes: bool) -> Self {
        self.self_approval = yes;
        self
    }
}

/// A policy failed to evaluate. On the authorize path this denies.
#[derive(Debug, thiserror::Error)]
#[error("policy evaluation failed: {message}")]
#[non_exhaustive]
pub struct PolicyError {
    /// What went wrong.
    pub message: String,
    /// The underlying error, if any.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl PolicyError {
    /// An error with a message only.
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error with a message, caused by `source` (kept whole, reachable through `source()`).
    pub fn with_source(message: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// The policy the engine consults. Implementations must be cheap to call: `evaluate` runs on
/// every `authorize`.
pub trait Policy: Send + Sync {
    /// Standing, eligible (with the flow), forbidden or not eligible.
    ///
    /// # Errors
    /// A [`PolicyError`] when the policy cannot be evaluated; callers deny.
    fn evaluate(&self, principal: &EntityRef, action: &Action) -> Result<PolicyDecision, PolicyError>;

    /// Which of the request's requirements `reviewer` may count toward (none: may not review).
    ///
    /// # Errors
    /// A [`PolicyError`] when the policy cannot be evaluated; callers refuse the review.
    fn reviewer_standing(&self, reviewer: &EntityRef, request: &AccessRequest)
        -> Result<ReviewerStanding, PolicyError>;

    /// Whether `actor` may revoke `grant` (which came from `request`).
    ///
    /// # Errors
    /// A [`PolicyError`] when the policy cannot be evaluated; callers refuse the revoke.
    fn may_revoke(&self, actor: &EntityRef, grant: &Grant, request: &AccessRequest) -> Result<bool, PolicyError>;

    /// Whether `actor` may close `request`, still pending, on its requester's behalf (off-boarding
    /// with [`Gate::revoke_all`](crate::Gate::revoke_all)): the authority to revoke the grant it
    /// would become. Default: only its requester.
    ///
    /// # Errors
    /// A [`PolicyError`] when the policy cannot be evaluated; callers refuse.
    fn may_withdraw(&self, actor: &EntityRef, request: &AccessRequest) -> Result<bool, PolicyError> {
        Ok(*actor == request.principal)
    }

    /// Whether `caller` may read, export and verify the audit trail (an auditor): reading it
    /// is a policy decision, as acting is. Default: nobody may (an HTTP surface then serves
    /// the trail to no one; an operator's own code can still call
    /// [`Gate::export_audit`](crate::Gate::export_audit)).
    ///
    /// # Errors
    /// A [`PolicyError`] when the policy cannot be evaluated; callers refuse.
    fn may_read_audit(&self, caller: &EntityRef) -> Result<bool, PolicyError> {
        let _ = caller;
        Ok(false)
    }

    /// The authors' own metadata on the policy `policy_id` (for Cedar: the annotations that
    /// are not jitgate's, such as `@advice` or a team's `@owner`), as (key, value) pairs.
    /// [`Gate::explain`](crate::Gate::explain) shows it for the policies that decided. Default:
    /// none.
    fn metadata(&self, policy_id: &str) -> Vec<(String, String)> {
        let _ = policy_id;
        Vec::new()
    }

    /// Every entity whose requirements `reviewer` could count toward: `reviewer` itself and
    /// each group it is in, directly or through other groups. [`Gate::pending_for_reviewer`]
    /// then reads only the pending requests whose flows name one of them (an index in the
    /// store), so a reviewer's queue costs the same however many unrelated requests wait.
    /// A policy that answers must never make a reviewer eligible for a requirement whose
    /// reviewers are not in this list. `None` (the default): the policy cannot say, and the
    /// gate reads every pending request.
    ///
    /// [`Gate::pending_for_reviewer`]: crate::Gate::pending_for_reviewer
    ///
    /// # Errors
    /// A [`PolicyError`] when the policy cannot be evaluated; the listing fails.
    fn reviewer_groups(&self, reviewer: &EntityRef) -> Result<Option<Vec<EntityRef>>, PolicyError> {
        let _ = reviewer;
        Ok(None)
    }

    /// The ids of the policies whose flows allow break-glass. A gate over a policy that has any
    /// refuses to build without a destination for break-glass alerts. Default: none.
    fn break_glass_policies(&self) -> Vec<String> {
        Vec::new()
    }

    /// This policy set's version, named by every decision, explanation and audit record made
    /// under it (see [`PolicyVersion`]). Default: none (the records then name no version).
    fn version(&self) -> Option<PolicyVersion> {
        None
    }

    /// Whether `entity` is a principal — a person or service account who may request, review
    /// and hold grants — rather than a group. A group never asks, and never counts towards a
    /// quorum. Default: every entity is.
    fn is_principal(&self, entity: &EntityRef) -> bool {
        let _ = entity;
        true
    }
}
