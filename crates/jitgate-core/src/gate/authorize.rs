//! `authorize` and `explain`: the hot path.

use std::sync::Arc;

use super::{Basis, Decision, DenyReason, Explanation, Gate};
use crate::audit::AuditAction;
use crate::machine;
use crate::model::policy_version::PolicyVersion;
use crate::ports::policy::{PolicyDecision, PolicyError};

use crate::gate::error::Error;
use crate::model::entity::{Action, EntityRef};
use crate::model::grant::Grant;
use crate::model::ids::GrantId;
use crate::ports::store::{StoreError, Subject};
use crate::report::ErrorChain;

impl Gate {
    /// May `principal` perform `action` now?
    ///
    /// - A `forbid` wins over everything; standing permission allows.
    /// - If the principal is eligible, an active grant for this exact scope allows (consuming
    ///   one use of a use-limited grant, atomically); without one the answer is
    ///   [`Decision::NeedsApproval`] with the flow to ask through.
    /// - A grant allows only while the policy still makes its holder eligible, and never
    ///   after its expiry, whether or not [`Gate::sweep`] has run.
    /// - Any policy or store error denies (fail closed) and is logged.
    /// - Each call is counted and timed ([`metrics`](crate::metrics)) and logged at DEBUG
    ///   in a DEBUG span `jitgate.authorize` (principal, scope, outcome).
    pub async fn authorize(&self, action: &Action, principal: &EntityRef) -> Decision {
        let started = self.metrics.start();
        let evaluate = || {
            let in_force = self.policy.load();
            (in_force.policy.evaluate(principal, action), in_force.version)
        };
        let span = tracing::debug_span!("jitgate.authorize", %principal, scope = %action.scope, outcome = tracing::field::Empty);
        let decision = if span.is_disabled() {
            self.decide(action, principal, true, evaluate).await.0
        } else {
            let decided = tracing::Instrument::instrument(self.decide(action, principal, true, evaluate), span.clone());
            let decision = decided.await.0;
            span.record("outcome", tracing::field::display(&decision));
            span.in_scope(|| tracing::debug!(%decision, "decided"));
            decision
        };
        self.metrics.decided(&decision, started);
        decision
    }

    /// Why `authorize` would answer what it answers, without consuming any grant use.
    pub async fn explain(&self, action: &Action, principal: &EntityRef) -> Explanation {
        let in_force = self.policy.load_full();
        let evaluate = || (in_force.policy.evaluate(principal, action), in_force.version);
        let (decision, policy, grants) = self.decide(action, principal, false, evaluate).await;
        let grants = grants.into_iter().map(Arc::unwrap_or_clone).collect();
        let policy = policy.unwrap_or(PolicyDecision::NotEligible);
        let ids: &[String] = match &policy {
            PolicyDecision::Standing { policy_ids } | PolicyDecision::Forbidden { policy_ids } => policy_ids,
            PolicyDecision::Eligible { flow } => &flow.policy_ids,
            PolicyDecision::NotEligible => &[],
        };
        let metadata = ids
            .iter()
            .map(|id| (id.clone(), in_force.policy.metadata(id).into_iter().collect()))
            .filter(|(_, pairs): &(String, std::collections::BTreeMap<_, _>)| !pairs.is_empty())
            .collect();
        Explanation {
            policy_version: decision.policy_version(),
            decision,
            policy,
            grants,
            metadata,
        }
    }

    /// The decision, what the policy said (`None` if it was not asked or failed) and the
    /// grants considered. `evaluate` asks the policy in force and names its version.
    async fn decide(
        &self,
        action: &Action,
        principal: &EntityRef,
        consume: bool,
        evaluate: impl FnOnce() -> (Result<PolicyDecision, PolicyError>, Option<PolicyVersion>),
    ) -> (Decision, Option<PolicyDecision>, Vec<Arc<Grant>>) {
        if let Err(e) = self.limits.authorize_input(principal, action) {
            tracing::warn!(error = %e, "input over a limit; denying");
            return (Decision::deny(DenyReason::OverLimit(e), None), None, Vec::new());
        }
        let (evaluated, version) = evaluate();
        let policy = match evaluated {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(%principal, scope = %action.scope, error = %ErrorChain(&e), "policy failed; denying");
                let reason = DenyReason::PolicyError(ErrorChain(&e).to_string());
                return (Decision::deny(reason, version), None, Vec::new());
            }
        };
        let flow = match &policy {
            PolicyDecision::Forbidden { policy_ids } => {
                let reason = DenyReason::Forbidden {
                    policy_ids: policy_ids.clone(),
                };
                return (Decision::deny(reason, version), Some(policy), Vec::new());
            }
            PolicyDecision::Standing { .. } => {
                let allow = Decision::Allow {
                    basis: Basis::Standing,
                    policy_version: version,
                };
                return (allow, Some(policy), Vec::new());
            }
            PolicyDecision::NotEligible => {
                return (
                    Decision::deny(DenyReason::NotEligible, version),
                    Some(policy),
                    Vec::new(),
                )
            }
            PolicyDecision::Eligible { flow } => flow.clone(),
        };
        // The hottest store call, awaited through the bare deadline future (one poll layer).
        let read = crate::deadline::within(
            self.authorize_deadline,
            self.store.live_grants(principal, &action.scope),
        );
        let grants = match read.await {
            Ok(Ok(g)) => g,
            Ok(Err(e)) => return (store_denial(principal, action, &e, version), Some(policy), Vec::new()),
            Err(elapsed) => {
                let timeout = StoreError::timeout("live_grants", elapsed);
                return (
                    store_denial(principal, action, &timeout, version),
                    Some(policy),
                    Vec::new(),
                );
            }
        };
        let decision = match self.use_grant(action, &grants, consume, version).await {
            Ok(Some(id)) => Decision::Allow {
                basis: Basis::Grant(id),
                policy_version: version,
            },
            Ok(None) => Decision::NeedsApproval {
                flow,
                policy_version: version,
            },
            Err(Error::Store(e)) => store_denial(principal, action, &e, version),
            Err(e) => failure_denial(principal, action, &e, version),
        };
        (decision, Some(policy), grants)
    }

    /// Finds a grant that allows `action` now. Unlimited grants are preferred (the use is
    /// recorded as the gate's [`UseRecording`](super::UseRecording) says); a use-limited one
    /// has a use consumed, and recorded, through [`Gate::transact`] (read again after a
    /// conflict).
    async fn use_grant(
        &self,
        action: &Action,
        grants: &[Arc<Grant>],
        consume: bool,
        version: Option<PolicyVersion>,
    ) -> Result<Option<GrantId>, Error> {
        let now = self.clock.now();
        if let Some(g) = grants.iter().find(|g| g.uses.is_none() && g.allows(now, action)) {
            if consume {
                self.record_use(g, action, now, version).await?;
            }
            return Ok(Some(g.id));
        }
        for g in grants.iter().filter(|g| g.uses.is_some() && g.allows(now, action)) {
            if !consume {
                return Ok(Some(g.id));
            }
            // The binding is fixed for a grant's life; the state machine checks the rest.
            let used = self
                .transact_within(self.authorize_deadline, Subject::Grant(g.id), |at| async move {
                    let current = if at.first {
                        Grant::clone(g)
                    } else {
                        let read = self.store.read_grant(g.id);
                        self.call_within(self.authorize_deadline, "read_grant", read)
                            .await?
                            .ok_or(Error::GrantNotFound(g.id))?
                    };
                    let mut used = machine::use_grant(&current, at.now)?.under(version);
                    for entry in used
                        .commit
                        .audit
                        .iter_mut()
                        .filter(|e| e.action == AuditAction::GrantUsed)
                    {
                        entry.binding = Some(action.binding().0);
                        entry.replica = Some(self.uses.replica().to_owned());
                    }
                    Ok(used)
                })
                .await;
            match used {
                Ok(_) => return Ok(Some(g.id)),
                Err(Error::Transition(_) | Error::GrantNotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}

/// A store error denies; a store that did not answer in time says so in the reason.
fn store_denial(principal: &EntityRef, action: &Action, e: &StoreError, version: Option<PolicyVersion>) -> Decision {
    match e {
        StoreError::Timeout { operation, after } => Decision::deny(
            DenyReason::Timeout {
                operation,
                after: *after,
            },
            version,
        ),
        other => failure_denial(principal, action, other, version),
    }
}

/// Any other failure on the way to a decision denies (fail closed), and is logged.
fn failure_denial(
    principal: &EntityRef,
    action: &Action,
    e: &dyn std::error::Error,
    version: Option<PolicyVersion>,
) -> Decision {
    tracing::error!(%principal, scope = %action.scope, error = %ErrorChain(e), "store failed; denying");
    Decision::deny(DenyReason::StoreError(ErrorChain(e).to_string()), version)
}
