//! Cedar calls: the sliced policy set, the decision cache, and flows from `@jit` permits.

use std::sync::Arc;

use cedar_policy::{Decision, Entities, PolicyId, PolicySet, Request};
use jitgate_core::{Attributes, EntityRef, Flow, PolicyDecision, PolicyError, Scope};

use crate::annotations::Kind;
use crate::entities::Snapshot;

use super::CedarPolicy;

impl CedarPolicy {
    pub(super) fn flow_of(&self, ids: &[&PolicyId]) -> Option<Arc<Flow>> {
        let mut flows = ids.iter().filter_map(|id| match self.kinds.get(*id) {
            Some(Kind::Jit(f)) => Some(f),
            _ => None,
        });
        let first = Arc::clone(flows.next()?);
        Some(flows.fold(first, |acc, f| Arc::new(acc.combine(f))))
    }

    /// Runs Cedar; evaluation errors in forbids fail closed, in permits they only skip the permit.
    pub(super) fn decide(
        &self,
        request: &Request,
        set: &PolicySet,
        entities: &Entities,
    ) -> Result<cedar_policy::Response, PolicyError> {
        let response = self.authorizer.is_authorized(request, set, entities);
        for e in response.diagnostics().errors() {
            let cedar_policy::AuthorizationError::PolicyEvaluationError(pe) = e;
            if matches!(self.kinds.get(pe.policy_id()), Some(Kind::Forbid)) {
                return Err(PolicyError::with_source(
                    format!("forbid policy `{}` could not be evaluated (denying)", pe.policy_id()),
                    e.clone(),
                ));
            }
            tracing::warn!(policy = %pe.policy_id(), error = %e, "permit policy could not be evaluated; it does not apply");
        }
        Ok(response)
    }
}

impl CedarPolicy {
    /// The policy decision, on the slice of the access policies for this principal and action,
    /// with `context` (the attributes the action's policies read).
    pub(super) fn evaluate_in(
        &self,
        snapshot: &Snapshot,
        principal: &EntityRef,
        scope: &Scope,
        context: &Attributes,
    ) -> Result<PolicyDecision, PolicyError> {
        let principal_uid = self.types.uid(principal)?;
        let action_uid = self.types.uid(&scope.action)?;
        let slice = snapshot
            .slices
            .get_named(&principal.type_name, &principal_uid, &action_uid, &snapshot.entities);
        let request = Request::new(
            principal_uid,
            action_uid,
            self.types.uid(&scope.resource)?,
            self.types.context(context)?,
            None,
        )
        .map_err(|e| PolicyError::with_source("the Cedar request does not fit the schema", e))?;
        let response = self.decide(&request, &slice, &snapshot.entities)?;
        let determining = ids(&response);
        let names = || determining.iter().map(|id| id.to_string()).collect::<Vec<_>>();
        Ok(match response.decision() {
            Decision::Deny if determining.is_empty() => PolicyDecision::NotEligible,
            Decision::Deny => PolicyDecision::Forbidden { policy_ids: names() },
            Decision::Allow => {
                let standing: Vec<String> = determining
                    .iter()
                    .filter(|id| !matches!(self.kinds.get(**id), Some(Kind::Jit(_))))
                    .map(|id| id.to_string())
                    .collect();
                if !standing.is_empty() {
                    PolicyDecision::Standing { policy_ids: standing }
                } else {
                    match self.flow_of(&determining) {
                        Some(flow) => PolicyDecision::Eligible { flow },
                        None => PolicyDecision::NotEligible,
                    }
                }
            }
        })
    }
}

pub(super) fn ids(response: &cedar_policy::Response) -> Vec<&PolicyId> {
    let mut v: Vec<&PolicyId> = response.diagnostics().reason().collect();
    v.sort_by_key(|id| id.to_string());
    v
}
