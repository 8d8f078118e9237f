//! What `authorize`, `request` and `explain` answer.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::gate::limits::LimitError;
use crate::model::flow::Flow;
use crate::model::grant::Grant;
use crate::model::ids::GrantId;
use crate::model::policy_version::PolicyVersion;
use crate::model::request::AccessRequest;
use crate::ports::policy::PolicyDecision;

/// Why an action is allowed.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Basis {
    /// Standing permission: no request needed.
    Standing,
    /// An active grant.
    Grant(GrantId),
}

/// Why an action is denied.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum DenyReason {
    /// A forbid policy matched; it beats standing permission and grants.
    Forbidden {
        /// The forbidding policies.
        policy_ids: Vec<String>,
    },
    /// Policy neither allows the action nor lets the principal ask for it.
    NotEligible,
    /// The policy could not be evaluated (fail closed).
    PolicyError(String),
    /// The store could not be read or written (fail closed).
    StoreError(String),
    /// A store call did not answer within the gate's deadline (fail closed).
    Timeout {
        /// The store call that hung.
        operation: &'static str,
        /// The deadline that passed.
        after: std::time::Duration,
    },
    /// The input is over one of the gate's [`Limits`](crate::Limits).
    OverLimit(LimitError),
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::Forbidden { policy_ids } => write!(f, "forbidden by {}", policy_ids.join(", ")),
            DenyReason::NotEligible => f.write_str("no policy allows it or makes the principal eligible"),
            DenyReason::PolicyError(e) => write!(f, "policy error (denied, fail closed): {e}"),
            DenyReason::StoreError(e) => write!(f, "store error (denied, fail closed): {e}"),
            DenyReason::Timeout { operation, after } => {
                write!(
                    f,
                    "the store's {operation} did not answer within {after:?} (denied, fail closed)"
                )
            }
            DenyReason::OverLimit(e) => write!(f, "input over a limit (denied): {e}"),
        }
    }
}

/// The answer of [`Gate::authorize`](crate::gate::Gate::authorize). Each names the version
/// of the policy set it was made under ([`Policy::version`](crate::Policy::version); `None`
/// when the policy has none, or when no policy was consulted, as for input over a limit).
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Decision {
    /// Go ahead.
    Allow {
        /// Standing permission, or the grant that allows it.
        basis: Basis,
        /// The policy set it was decided under.
        policy_version: Option<PolicyVersion>,
    },
    /// Not now; ask through this flow.
    NeedsApproval {
        /// The approval flow a request would go through.
        flow: Arc<Flow>,
        /// The policy set it was decided under.
        policy_version: Option<PolicyVersion>,
    },
    /// No.
    Deny {
        /// Why.
        reason: DenyReason,
        /// The policy set it was decided under.
        policy_version: Option<PolicyVersion>,
    },
}

impl Decision {
    /// Whether the action may go ahead.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// The version of the policy set this decision was made under.
    pub fn policy_version(&self) -> Option<PolicyVersion> {
        match self {
            Decision::Allow { policy_version, .. }
            | Decision::NeedsApproval { policy_version, .. }
            | Decision::Deny { policy_version, .. } => *policy_version,
        }
    }

    /// A denial for `reason` under `policy_version`.
    pub(crate) fn deny(reason: DenyReason, policy_version: Option<PolicyVersion>) -> Self {
        Decision::Deny { reason, policy_version }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allow {
                basis: Basis::Standing, ..
            } => f.write_str("Allow (standing permission)"),
            Decision::Allow {
                basis: Basis::Grant(id),
                ..
            } => write!(f, "Allow (grant {id})"),
            Decision::NeedsApproval { flow, .. } => write!(f, "NeedsApproval ({flow})"),
            Decision::Deny { reason, .. } => write!(f, "Deny ({reason})"),
        }
    }
}

/// The answer of [`Gate::request`](crate::gate::Gate::request).
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // returned once per request, never on the hot path
pub enum RequestOutcome {
    /// The request waits for review.
    Pending(AccessRequest),
    /// Granted at once (auto-approval or break-glass).
    Granted {
        /// The approved request.
        request: AccessRequest,
        /// Its grant.
        grant: Grant,
    },
    /// An active grant already covers it; no new request was made.
    AlreadyCovered(Grant),
    /// The same principal already has a pending request for this scope.
    AlreadyPending(AccessRequest),
    /// Standing permission allows it; there is nothing to ask for.
    NotNeeded,
}

/// What [`Gate::revoke_all`](crate::gate::Gate::revoke_all) did.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct Offboarding {
    /// The grants revoked.
    pub revoked: Vec<Grant>,
    /// The pending requests closed.
    pub withdrawn: Vec<AccessRequest>,
}

/// The answer of a review ([`Gate::approve`](crate::gate::Gate::approve) or [`Gate::deny`](crate::gate::Gate::deny)).
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct ReviewOutcome {
    /// The request after the review.
    pub request: AccessRequest,
    /// The grant, if this review completed the approval.
    pub grant: Option<Grant>,
}

/// Why `authorize` would answer what it answers, for people: the policy's verdict, the
/// grants considered, and the decision. Printable as text.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Explanation {
    /// The decision (computed without consuming any use of a use-limited grant).
    pub decision: Decision,
    /// What the policy said.
    pub policy: PolicyDecision,
    /// The version of the policy set that said it (as in [`Decision::policy_version`]).
    pub policy_version: Option<PolicyVersion>,
    /// The principal's live grants for this scope.
    pub grants: Vec<Grant>,
    /// The authors' metadata ([`Policy::metadata`](crate::Policy::metadata)) of each policy
    /// that decided, by policy id; policies without metadata are left out.
    pub metadata: BTreeMap<String, BTreeMap<String, String>>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "decision: {}", self.decision)?;
        if let Some(v) = self.policy_version {
            writeln!(f, "policy set: {v}")?;
        }
        match &self.policy {
            PolicyDecision::Standing { policy_ids } => {
                writeln!(f, "policy: standing permission from {}", policy_ids.join(", "))?
            }
            PolicyDecision::Forbidden { policy_ids } => writeln!(f, "policy: forbidden by {}", policy_ids.join(", "))?,
            PolicyDecision::Eligible { flow } => {
                writeln!(f, "policy: eligible through {}", flow.policy_ids.join(", "))?;
                writeln!(f, "flow: {flow}")?;
                for r in &flow.requirements {
                    writeln!(
                        f,
                        "  candidate reviewers: {} ({} approval(s))",
                        r.reviewers, r.min_approvals
                    )?;
                }
            }
            PolicyDecision::NotEligible => writeln!(f, "policy: no rule allows it or makes the principal eligible")?,
        }
        for (id, pairs) in &self.metadata {
            for (key, value) in pairs {
                writeln!(f, "{id}: @{key}({value:?})")?;
            }
        }
        for g in &self.grants {
            writeln!(
                f,
                "grant {}: {}, {} .. {}",
                g.id,
                g.state,
                g.window.not_before(),
                g.window.expires_at()
            )?;
        }
        Ok(())
    }
}
