//! Approval flows: what must happen before an eligible action is granted.

use std::fmt;

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::model::entity::EntityRef;

/// One requirement of a flow: `min_approvals` approvals from members of `reviewers`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
#[non_exhaustive]
pub struct Requirement {
    /// The reviewer set (a group such as `Team::"sre-leads"`, or a single principal).
    pub reviewers: EntityRef,
    /// How many distinct approvals from that set are needed (at least 1).
    pub min_approvals: u32,
}

impl Requirement {
    /// `n` approvals from `reviewers`.
    pub fn new(reviewers: EntityRef, min_approvals: u32) -> Self {
        Self {
            reviewers,
            min_approvals,
        }
    }
}

/// How a break-glass request is bounded.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
#[non_exhaustive]
pub struct BreakGlass {
    /// The longest a break-glass grant may last (usually much shorter than the flow's maximum).
    #[serde(with = "crate::model::serde_duration")]
    pub max_duration: Duration,
}

/// The approval flow of an eligible action: every requirement must be met, each approver
/// counting toward at most one requirement.
///
/// Build one with [`Flow::new`] and the `with_*` methods; [`Flow::validate`] checks it.
///
/// # Examples
/// ```
/// use chrono::Duration;
/// use jitgate_core::{EntityRef, Flow, Requirement};
/// let flow = Flow::new(Duration::hours(1))
///     .with_requirement(Requirement::new(EntityRef::new("Team", "sre-leads"), 1))
///     .with_requirement(Requirement::new(EntityRef::new("Team", "security"), 1))
///     .with_reason_required(true);
/// assert!(flow.validate().is_ok());
/// assert_eq!(flow.approvals_needed(), 2);
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
#[non_exhaustive]
pub struct Flow {
    /// The requirements, all of which must be met.
    pub requirements: Vec<Requirement>,
    /// The longest a grant from this flow may last, counted from its `not_before`.
    #[serde(with = "crate::model::serde_duration")]
    pub max_duration: Duration,
    /// How long a request may wait for a decision before it expires.
    #[serde(with = "crate::model::serde_duration")]
    pub request_ttl: Duration,
    /// Whether the requester must give a justification.
    pub require_reason: bool,
    /// Break-glass bound, if break-glass is allowed at all.
    pub break_glass: Option<BreakGlass>,
    /// Granted at once, without reviews.
    pub auto_approve: bool,
    /// Whether the requester may approve their own request (off unless a policy says so).
    pub allow_self_approval: bool,
    /// Limit on uses of the resulting grant (`Some(1)`: one-shot).
    pub max_uses: Option<u32>,
    /// Whether the grant is bound to the exact action parameters of the request.
    pub bind_parameters: bool,
    /// Context attributes the grant is bound to (a ticket, a command): it allows only actions
    /// whose values for these match the request's. Empty: none (see also `bind_parameters`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bind_attributes: Vec<String>,
    /// The policies that defined this flow, for audit and explanations.
    pub policy_ids: Vec<String>,
}

/// A flow that cannot work as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// `max_duration`, `request_ttl` or the break-glass bound is zero or negative.
    #[error("flow {field} must be positive, got {value}")]
    NonPositiveDuration {
        /// Which field.
        field: &'static str,
        /// Its value, in seconds.
        value: i64,
    },
    /// A requirement asks for zero approvals.
    #[error(
        "requirement {index} (reviewers {reviewers}) asks for 0 approvals; use auto_approve for flows without review"
    )]
    ZeroApprovals {
        /// Index of the requirement.
        index: usize,
        /// Its reviewer set.
        reviewers: EntityRef,
    },
    /// A flow with no requirement that is not auto-approved could never be approved.
    #[error("flow has no requirement and is not auto-approved: nobody could ever approve it")]
    NoRequirements,
    /// `max_uses` is zero.
    #[error("max_uses must be at least 1")]
    ZeroUses,
}

impl Flow {
    /// A flow with no requirements yet, the given maximum grant duration, a request TTL of
    /// one hour, and everything else off.
    pub fn new(max_duration: Duration) -> Self {
        Self {
            requirements: Vec::new(),
            max_duration,
            request_ttl: Duration::hours(1),
            require_reason: false,
            break_glass: None,
            auto_approve: false,
            allow_self_approval: false,
            max_uses: None,
            bind_parameters: false,
            bind_attributes: Vec::new(),
            policy_ids: Vec::new(),
        }
    }

    /// Adds a requirement.
    #[must_use]
    pub fn with_requirement(mut self, r: Requirement) -> Self {
        self.requirements.push(r);
        self
    }
    /// Sets the request TTL.
    #[must_use]
    pub fn with_request_ttl(mut self, ttl: Duration) -> Self {
        self.request_ttl = ttl;
        self
    }
    /// Requires (or not) a justification.
    #[must_use]
    pub fn with_reason_required(mut self, yes: bool) -> Self {
        self.require_reason = yes;
        self
    }
    /// Allows break-glass with the given maximum duration.
    #[must_use]
    pub fn with_break_glass(mut self, max_duration: Duration) -> Self {
        self.break_glass = Some(BreakGlass { max_duration });
        self
    }
    /// Grants without review.
    #[must_use]
    pub fn with_auto_approve(mut self, yes: bool) -> Self {
        self.auto_approve = yes;
        self
    }
    /// Lets the requester count as one of their own approvers.
    #[must_use]
    pub fn with_self_approval(mut self, yes: bool) -> Self {
        self.allow_self_approval = yes;
        self
    }
    /// Limits the grant to `n` uses, each bound to the request's exact parameters when `bind` is set.
    #[must_use]
    pub fn with_max_uses(mut self, n: u32, bind: bool) -> Self {
        self.max_uses = Some(n);
        self.bind_parameters = bind;
        self
    }
    /// Binds the grant to the named context attributes of the request (a ticket, a command):
    /// it allows only actions with the same values for them.
    #[must_use]
    pub fn with_bound_attributes(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.bind_attributes = names.into_iter().map(Into::into).collect();
        self
    }
    /// Records the policy ids that define this flow.
    #[must_use]
    pub fn with_policy_id(mut self, id: impl Into<String>) -> Self {
        self.policy_ids.push(id.into());
        self
    }

    /// Total approvals needed (each from a different person).
    pub fn approvals_needed(&self) -> u32 {
        self.requirements.iter().map(|r| r.min_approvals).sum()
    }

    /// Checks that the flow can work.
    ///
    /// # Errors
    /// A [`FlowError`] naming the field that is wrong.
    pub fn validate(&self) -> Result<(), FlowError> {
        let positive = |field, d: Duration| {
            if d <= Duration::zero() {
                Err(FlowError::NonPositiveDuration {
                    field,
                    value: d.num_seconds(),
                })
            } else {
                Ok(())
            }
        };
        positive("max_duration", self.max_duration)?;
        positive("request_ttl", self.request_ttl)?;
        if let Some(bg) = &self.break_glass {
            positive("break_glass.max_duration", bg.max_duration)?;
        }
        for (index, r) in self.requirements.iter().enumerate() {
            if r.min_approvals == 0 {
                return Err(FlowError::ZeroApprovals {
                    index,
                    reviewers: r.reviewers.clone(),
                });
            }
        }
        if self.requirements.is_empty() && !self.auto_approve {
            return Err(FlowError::NoRequirements);
        }
        if self.max_uses == Some(0) {
            return Err(FlowError::ZeroUses);
        }
        Ok(())
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.auto_approve {
            write!(f, "auto-approved")?;
        } else {
            let parts: Vec<String> = self
                .requirements
                .iter()
                .map(|r| format!("{} from {}", r.min_approvals, r.reviewers))
                .collect();
            write!(f, "approval: {}", parts.join(" AND "))?;
        }
        write!(
            f,
            "; at most {} min; request expires after {} min",
            self.max_duration.num_minutes(),
            self.request_ttl.num_minutes()
        )?;
        if self.require_reason {
            write!(f, "; reason required")?;
        }
        if let Some(bg) = &self.break_glass {
            write!(f, "; break-glass up to {} min", bg.max_duration.num_minutes())?;
        }
        if let Some(n) = self.max_uses {
            write!(f, "; {n} use(s)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team(n: &str) -> EntityRef {
        EntityRef::new("Team", n)
    }

    #[test]
    fn validate_names_the_bad_field() {
        let ok = Flow::new(Duration::hours(1)).with_requirement(Requirement::new(team("a"), 1));
        assert_eq!(ok.validate(), Ok(()));
        assert!(matches!(
            Flow::new(Duration::zero()).with_auto_approve(true).validate(),
            Err(FlowError::NonPositiveDuration {
                field: "max_duration",
                ..
            })
        ));
        assert!(matches!(
            ok.clone().with_request_ttl(Duration::seconds(-1)).validate(),
            Err(FlowError::NonPositiveDuration {
                field: "request_ttl",
                ..
            })
        ));
        assert!(matches!(
            ok.clone().with_break_glass(Duration::zero()).validate(),
            Err(FlowError::NonPositiveDuration {
                field: "break_glass.max_duration",
                ..
            })
        ));
        assert!(matches!(
            ok.clone().with_requirement(Requirement::new(team("b"), 0)).validate(),
            Err(FlowError::ZeroApprovals { index: 1, .. })
        ));
        assert_eq!(Flow::new(Duration::hours(1)).validate(), Err(FlowError::NoRequirements));
        assert_eq!(ok.with_max_uses(0, false).validate(), Err(FlowError::ZeroUses));
    }

    #[test]
    fn display_names_every_requirement() {
        let f = Flow::new(Duration::hours(1))
            .with_requirement(Requirement::new(team("leads"), 1))
            .with_requirement(Requirement::new(team("security"), 2));
        let s = f.to_string();
        assert!(s.contains(r#"1 from Team::"leads" AND 2 from Team::"security""#), "{s}");
    }
}

impl Flow {
    /// Combines the flows of several matching rules: every requirement of each must be met,
    /// the shortest maximum duration, TTL and break-glass bound win, a reason is required if
    /// any requires it, break-glass and auto-approval only if all allow it, the smallest use
    /// limit and binding if any binds.
    #[must_use]
    pub fn combine(&self, other: &Flow) -> Flow {
        let mut requirements = self.requirements.clone();
        for r in &other.requirements {
            if !requirements.contains(r) {
                requirements.push(r.clone());
            }
        }
        let break_glass = match (&self.break_glass, &other.break_glass) {
            (Some(a), Some(b)) => Some(BreakGlass {
                max_duration: a.max_duration.min(b.max_duration),
            }),
            _ => None,
        };
        let max_uses = match (self.max_uses, other.max_uses) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut policy_ids = self.policy_ids.clone();
        policy_ids.extend(
            other
                .policy_ids
                .iter()
                .filter(|id| !self.policy_ids.contains(id))
                .cloned(),
        );
        Flow {
            requirements,
            max_duration: self.max_duration.min(other.max_duration),
            request_ttl: self.request_ttl.min(other.request_ttl),
            require_reason: self.require_reason || other.require_reason,
            break_glass,
            auto_approve: self.auto_approve && other.auto_approve,
            allow_self_approval: self.allow_self_approval && other.allow_self_approval,
            max_uses,
            bind_parameters: self.bind_parameters || other.bind_parameters,
            bind_attributes: {
                let mut names = self.bind_attributes.clone();
                names.extend(
                    other
                        .bind_attributes
                        .iter()
                        .filter(|n| !self.bind_attributes.contains(n))
                        .cloned(),
                );
                names
            },
            policy_ids,
        }
    }
}

#[cfg(test)]
mod combine_tests {
    use super::*;

    #[test]
    fn combining_keeps_every_requirement_and_the_tightest_bounds() {
        let lead = Requirement::new(EntityRef::new("Team", "leads"), 1);
        let sec = Requirement::new(EntityRef::new("Team", "security"), 1);
        let a = Flow::new(Duration::hours(4))
            .with_requirement(lead.clone())
            .with_break_glass(Duration::minutes(30))
            .with_policy_id("a");
        let b = Flow::new(Duration::hours(1))
            .with_requirement(sec.clone())
            .with_requirement(lead.clone())
            .with_request_ttl(Duration::minutes(10))
            .with_reason_required(true)
            .with_policy_id("b");
        let c = a.combine(&b);
        assert_eq!(c.requirements, vec![lead, sec]);
        assert_eq!(c.max_duration, Duration::hours(1));
        assert_eq!(c.request_ttl, Duration::minutes(10));
        assert!(c.require_reason);
        assert_eq!(c.break_glass, None, "break-glass only when every rule allows it");
        assert_eq!(c.policy_ids, vec!["a".to_string(), "b".to_string()]);
    }
}
