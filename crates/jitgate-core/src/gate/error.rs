//! The engine's error type.

use crate::gate::limits::LimitError;
use crate::machine::TransitionError;
use crate::model::entity::{EntityRef, Scope};
use crate::model::ids::{GrantId, RequestId};
use crate::ports::policy::PolicyError;
use crate::ports::store::{Capability, StoreError, Subject};

/// What went wrong in a [`Gate`](crate::gate::Gate) call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The state machine refused the command (self-approval, closed request, ...).
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// Policy forbids the action; no request can be made.
    #[error("{principal} is forbidden to {scope} by {policy_ids:?}")]
    Forbidden {
        /// Who asked.
        principal: EntityRef,
        /// For what.
        scope: Scope,
        /// The forbidding policies.
        policy_ids: Vec<String>,
    },
    /// Policy makes the principal neither allowed nor eligible.
    #[error("{principal} is not eligible to request {scope}: no policy makes them eligible")]
    NotEligible {
        /// Who asked.
        principal: EntityRef,
        /// For what.
        scope: Scope,
    },
    /// The entity is not a principal (a group, or a type the policy does not let act): it
    /// cannot request, review or hold grants.
    #[error(
        "{entity} is not a principal (a group or another kind of entity): it cannot request, review or hold grants"
    )]
    NotAPrincipal {
        /// The entity.
        entity: EntityRef,
    },
    /// No request with this id.
    #[error("no request {0}")]
    RequestNotFound(RequestId),
    /// No grant with this id.
    #[error("no grant {0}")]
    GrantNotFound(GrantId),
    /// The actor may not revoke this grant.
    #[error("{actor} may not revoke grant {grant}")]
    NotPermittedToRevoke {
        /// Who tried.
        actor: EntityRef,
        /// The grant.
        grant: GrantId,
    },
    /// The actor may not close this pending request (off-boarding).
    #[error("{actor} may not close request {request} of someone else")]
    NotPermittedToWithdraw {
        /// Who tried.
        actor: EntityRef,
        /// The request.
        request: RequestId,
    },
    /// The caller may not read the audit trail: the policy does not make them an auditor
    /// ([`Policy::may_read_audit`](crate::Policy::may_read_audit)).
    #[error("{actor} may not read the audit trail")]
    NotPermittedToReadAudit {
        /// Who tried.
        actor: EntityRef,
    },
    /// Only a grant's holder may extend it.
    #[error("{actor} does not hold grant {grant} and cannot extend it")]
    NotGrantHolder {
        /// Who tried.
        actor: EntityRef,
        /// The grant.
        grant: GrantId,
    },
    /// The policy failed.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An input is over one of the gate's [`Limits`](crate::Limits); nothing was decided or
    /// stored.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// The store lacks a capability this verb needs.
    #[error("Gate::{verb} needs a store that implements {capability}")]
    Unsupported {
        /// The `Gate` method called.
        verb: &'static str,
        /// The capability the store lacks.
        capability: Capability,
    },
    /// Version conflicts persisted through every retry.
    #[error("{subject} kept changing under us: gave up after {attempts} attempts")]
    Contention {
        /// What was being changed.
        subject: Subject,
        /// How many attempts were made.
        attempts: u32,
    },
}

impl Error {
    /// Whether the rules refused what was asked (a state machine refusal, a forbidden or
    /// ineligible request, a group acting, revoking or closing without authority, extending
    /// someone else's grant), as opposed to bad input, a missing record or a failure. Each
    /// refusal leaves an audit record ([`AuditAction::Refused`](crate::audit::AuditAction::Refused)).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Error::Transition(_)
                | Error::Forbidden { .. }
                | Error::NotEligible { .. }
                | Error::NotAPrincipal { .. }
                | Error::NotPermittedToRevoke { .. }
                | Error::NotPermittedToWithdraw { .. }
                | Error::NotGrantHolder { .. }
        )
    }
}
