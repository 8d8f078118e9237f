//! `authorize` and `explain`: the hot path.

use chrono::{DateTime, Utc};

use super::{Basis, Decision, DenyReason, Explanation, Gate};
use crate::machine;
use crate::policy::PolicyDecision;
use crate::store::StoreError;
use crate::{Action, ActionBinding, EntityRef, Grant};

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
    pub async fn authorize(&self, action: &Action, principal: &EntityRef) -> Decision {
        self.decide(action, principal, true).await.0
    }

    /// Why `authorize` would answer what it answers, without consuming any grant use.
    pub async fn explain(&self, action: &Action, principal: &EntityRef) -> Explanation {
        let (decision, policy, grants) = self.decide(action, principal, false).await;
        Explanation {
            decision,
            policy: policy.unwrap_or(PolicyDecision::NotEligible),
            grants,
        }
    }

    async fn decide(
        &self,
        action: &Action,
        principal: &EntityRef,
        consume: bool,
    ) -> (Decision, Option<PolicyDecision>, Vec<Grant>) {
        let policy = match self.policy.evaluate(principal, action) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(%principal, scope = %action.scope, error = %e, "policy failed; denying");
                return (
                    Decision::Deny {
                        reason: DenyReason::PolicyError(e.to_string()),
                    },
                    None,
                    Vec::new(),
                );
            }
        };
        let flow = match &policy {
            PolicyDecision::Forbidden { policy_ids } => {
                return (
                    Decision::Deny {
                        reason: DenyReason::Forbidden {
                            policy_ids: policy_ids.clone(),
                        },
                    },
                    Some(policy),
                    Vec::new(),
                );
            }
            PolicyDecision::Standing { .. } => {
                return (Decision::Allow { basis: Basis::Standing }, Some(policy), Vec::new())
            }
            PolicyDecision::NotEligible => {
                return (
                    Decision::Deny {
                        reason: DenyReason::NotEligible,
                    },
                    Some(policy),
                    Vec::new(),
                )
            }
            PolicyDecision::Eligible { flow } => flow.clone(),
        };
        let grants = match self.store.live_grants(principal, &action.scope).await {
            Ok(g) => g,
            Err(e) => return (store_denial(principal, action, &e), Some(policy), Vec::new()),
        };
        let decision = match self.use_grant(action, &grants, consume).await {
            Ok(Some(id)) => Decision::Allow {
                basis: Basis::Grant(id),
            },
            Ok(None) => Decision::NeedsApproval { flow },
            Err(e) => store_denial(principal, action, &e),
        };
        (decision, Some(policy), grants)
    }

    /// Finds a grant that allows `action` now. Unlimited grants are preferred; a use-limited
    /// one has a use consumed by compare-and-swap, retried on conflict.
    async fn use_grant(
        &self,
        action: &Action,
        grants: &[Grant],
        consume: bool,
    ) -> Result<Option<crate::GrantId>, StoreError> {
        let now = self.clock.now();
        let mut binding: Option<ActionBinding> = None;
        let mut allows =
            |g: &Grant, now: DateTime<Utc>| g.allows(now, || binding.get_or_insert_with(|| action.binding()).clone());
        if let Some(g) = grants.iter().find(|g| g.uses.is_none() && allows(g, now)) {
            return Ok(Some(g.id));
        }
        for g in grants.iter().filter(|g| g.uses.is_some()) {
            if !consume {
                if allows(g, now) {
                    return Ok(Some(g.id));
                }
                continue;
            }
            let mut current = g.clone();
            for _ in 0..self.max_attempts {
                let now = self.clock.now();
                if !allows(&current, now) {
                    break;
                }
                let Ok(commit) = machine::use_grant(&current, now) else {
                    break;
                };
                match self.commit(commit).await {
                    Ok(()) => return Ok(Some(current.id)),
                    Err(StoreError::Conflict { .. }) => match self.store.grant(current.id).await? {
                        Some(fresh) => current = fresh,
                        None => break,
                    },
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(None)
    }
}

fn store_denial(principal: &EntityRef, action: &Action, e: &StoreError) -> Decision {
    tracing::error!(%principal, scope = %action.scope, error = %e, "store failed; denying");
    Decision::Deny {
        reason: DenyReason::StoreError(e.to_string()),
    }
}
