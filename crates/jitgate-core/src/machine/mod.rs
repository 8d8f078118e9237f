//! The pure state machine: every transition is a function of (state, command, now, policy
//! facts) that returns a `Transition` — the `Commit` to apply (the new state, grants,
//! audit entries and events) together with what the caller gets back — or a
//! `TransitionError`. Nothing here reads a clock or does I/O.
//!
//! - `request`: open, review, cancel and expire requests.
//! - `grant`: activate, remind, expire, revoke, use and acknowledge grants.
//! - `quorum`: whether the approvals meet a flow's requirements.
//! - `time`: the one time model (request TTL, grant start and end).

mod builder;
mod error;
mod grant;
pub mod quorum;
mod request;
pub mod time;

pub use error::{DueStep, TransitionError};
pub use grant::{acknowledge, activate, expire_grant, remind, revoke, use_grant};
pub use request::{cancel, expire_request, open, review, withdraw};

use crate::model::entity::EntityRef;
use crate::model::request::AccessRequest;
use crate::ports::policy::ReviewerStanding;
use crate::ports::store::Commit;

/// What one transition does: the commit that applies it, and the state the caller is given
/// back once the commit holds.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Transition<T> {
    /// Everything the transition writes, all or nothing.
    pub commit: Commit,
    /// The caller's result (the new request or grant).
    pub outcome: T,
}

impl<T> Transition<T> {
    /// Names `version` as the policy set this transition was decided under, in each of its
    /// audit entries.
    #[must_use]
    pub fn under(mut self, version: Option<crate::model::policy_version::PolicyVersion>) -> Self {
        for entry in &mut self.commit.audit {
            entry.policy_version = version;
        }
        self
    }
}

type Result<T> = std::result::Result<T, TransitionError>;

/// A reviewer may not act on their own request unless the flow or a policy allows
/// self-approval.
fn ensure_not_own(req: &AccessRequest, reviewer: &EntityRef, standing: &ReviewerStanding) -> Result<()> {
    if *reviewer == req.principal && !(req.flow.allow_self_approval || standing.self_approval) {
        return Err(TransitionError::SelfApproval {
            request: req.id,
            reviewer: reviewer.clone(),
        });
    }
    Ok(())
}

/// A reviewer must count toward at least one of the flow's requirements.
fn ensure_eligible(req: &AccessRequest, reviewer: &EntityRef, standing: &ReviewerStanding) -> Result<()> {
    if standing.eligible_for.is_empty() {
        return Err(TransitionError::NotEligibleReviewer {
            request: req.id,
            reviewer: reviewer.clone(),
            flow: req.flow.to_string(),
        });
    }
    Ok(())
}

/// The actor recorded for transitions nobody in particular caused (expiry sweeps).
pub fn system_actor() -> EntityRef {
    EntityRef::new("Jit::System", "sweeper")
}
