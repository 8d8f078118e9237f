//! Refused attempts leave a record in the audit chain: who tried what, and why it was
//! refused, so an attacker's probing is visible.

use super::Gate;
use crate::audit::{AuditAction, AuditEntry};
use crate::gate::error::Error;
use crate::model::entity::{EntityRef, Scope};
use crate::model::ids::{GrantId, RequestId};
use crate::report::ErrorChain;

/// What was tried.
#[derive(Clone, Copy)]
pub(super) enum Attempted<'a> {
    /// A new request by this principal for this scope: no request exists; the record gets an
    /// id of its own.
    Ask(&'a EntityRef, &'a Scope),
    /// Something done to a request.
    Request(RequestId),
    /// Something done to a grant.
    Grant(GrantId),
    /// Something done to a request already read: its principal and scope (nothing is read
    /// again to record the refusal).
    ReadRequest(RequestId, &'a EntityRef, &'a Scope),
}

impl Gate {
    /// Passes `result` through. A refusal ([`Error::is_refusal`]) first appends a
    /// [`AuditAction::Refused`] record naming `actor`, what was attempted and the refusal,
    /// bounded by the text limit. The record goes through the gate's audit buffer when uses
    /// are buffered ([`UseRecording`](super::UseRecording)), so a flood of refused attempts
    /// costs batched writes. Recording is best effort: if it fails, that is logged and the
    /// refusal is still what the caller gets.
    pub(super) async fn audited<T>(
        &self,
        verb: &'static str,
        actor: &EntityRef,
        attempted: Attempted<'_>,
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        let span = tracing::Span::current();
        let refusal = match result {
            Err(e) if e.is_refusal() => e,
            Ok(done) => {
                span.record("outcome", "ok");
                tracing::debug!(verb, %actor, "done");
                return Ok(done);
            }
            Err(e) => {
                span.record("outcome", "failed");
                tracing::warn!(verb, %actor, error = %ErrorChain(&e), "failed");
                return Err(e);
            }
        };
        span.record("outcome", "refused");
        if let Err(e) = self.record_refusal(verb, actor, attempted, &refusal).await {
            tracing::error!(verb, %actor, error = %ErrorChain(&e), "could not record a refusal in the audit chain");
        }
        Err(refusal)
    }

    async fn record_refusal(
        &self,
        verb: &'static str,
        actor: &EntityRef,
        attempted: Attempted<'_>,
        refusal: &Error,
    ) -> Result<(), Error> {
        let (request_id, grant_id, principal, scope) = match attempted {
            Attempted::Ask(principal, scope) => (RequestId::new_random(), None, principal.clone(), scope.clone()),
            Attempted::Request(id) => {
                let req = self.read_request(id).await?;
                (id, None, req.principal.clone(), req.scope().clone())
            }
            Attempted::ReadRequest(id, principal, scope) => (id, None, principal.clone(), scope.clone()),
            Attempted::Grant(id) => {
                let grant = self.read_grant(id).await?;
                (grant.request_id, Some(id), grant.principal.clone(), grant.scope.clone())
            }
        };
        let policy_ids = match refusal {
            Error::Forbidden { policy_ids, .. } => policy_ids.clone(),
            _ => Vec::new(),
        };
        let mut text = format!("{verb} refused: {refusal}");
        if text.len() > self.limits.text_bytes {
            let mut end = self.limits.text_bytes;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        let entry = AuditEntry {
            at: self.clock.now(),
            actor: actor.clone(),
            action: AuditAction::Refused,
            request_id,
            grant_id,
            principal,
            scope,
            text: Some(text),
            policy_ids,
            binding: None,
            replica: None,
            // The policy set in force when the refusal is recorded.
            policy_version: self.policy.load().version,
        };
        tracing::info!(target: "jitgate::security", verb, %actor, refusal = %refusal, "refused");
        self.record_entry(entry).await
    }
}
