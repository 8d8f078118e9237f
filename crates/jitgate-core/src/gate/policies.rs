//! The gate's policy, replaceable while the gate serves ([`Gate::replace_policy`]): every verb
//! takes the policy in force once and decides, explains and audits under that one, so a swap
//! in the middle of a verb never mixes two policy sets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{BuildError, Gate};
use crate::model::policy_version::PolicyVersion;
use crate::ports::policy::Policy;

/// A policy with the version it reported when it was put in force.
pub(crate) struct InForce {
    pub(crate) policy: Arc<dyn Policy>,
    pub(crate) version: Option<PolicyVersion>,
}

impl InForce {
    fn new(policy: Arc<dyn Policy>) -> Self {
        let version = policy.version();
        Self { policy, version }
    }
}

/// Where a gate keeps its policy.
pub(crate) struct PolicySlot {
    current: ArcSwap<InForce>,
    /// Whether a break-glass alert reaches someone (or the store notifies nobody at all): a
    /// policy that allows break-glass is refused otherwise, at build and at every swap.
    break_glass_alerted: bool,
    replaced: AtomicU64,
}

impl PolicySlot {
    /// A slot holding `policy`, or the problem that keeps it out.
    pub(crate) fn new(policy: Arc<dyn Policy>, break_glass_alerted: bool) -> Result<Self, String> {
        if let Some(problem) = break_glass_problem(policy.as_ref(), break_glass_alerted) {
            return Err(problem);
        }
        Ok(Self {
            current: ArcSwap::from_pointee(InForce::new(policy)),
            break_glass_alerted,
            replaced: AtomicU64::new(0),
        })
    }

    /// The policy in force, for a call that does not await while holding it.
    #[inline]
    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<InForce>> {
        self.current.load()
    }

    /// The policy in force, to hold across awaits.
    pub(crate) fn load_full(&self) -> Arc<InForce> {
        self.current.load_full()
    }
}

/// Why `policy` cannot be put in force, if it cannot.
fn break_glass_problem(policy: &dyn Policy, alerted: bool) -> Option<String> {
    let break_glass = policy.break_glass_policies();
    (!alerted && !break_glass.is_empty()).then(|| {
        format!(
            "the policy allows break-glass ({}) but no destination takes its alerts: add a destination \
             subscribing to `break_glass_used` (Destination::kinds), or name a security audience \
             (Routing::with_security) for a destination that takes every event",
            break_glass.join(", ")
        )
    })
}

impl Gate {
    /// Puts `policy` in force, atomically: verbs that already took the old policy finish under
    /// it; every later one decides under the new one. The same checks as
    /// [`GateBuilder::build`](crate::GateBuilder::build) run first (a policy that allows
    /// break-glass needs a destination for its alerts); a policy that fails them is refused and
    /// the old one stays. Build and validate the new policy off the hot path first (for Cedar:
    /// `CedarPolicyBuilder::build`, or the runtime's policy reloader).
    ///
    /// # Errors
    /// [`BuildError`] naming why the policy does not fit this gate.
    pub fn replace_policy(&self, policy: Arc<dyn Policy>) -> Result<Option<PolicyVersion>, BuildError> {
        self.check_policy(policy.as_ref())?;
        let next = InForce::new(policy);
        let version = next.version;
        let previous = self.policy.current.swap(Arc::new(next));
        self.policy.replaced.fetch_add(1, Ordering::Relaxed);
        self.metrics.policy_replaced();
        tracing::info!(
            from = ?previous.version.map(|v| v.to_string()),
            to = ?version.map(|v| v.to_string()),
            "policy replaced"
        );
        Ok(version)
    }

    /// The checks [`Gate::replace_policy`] runs, without putting `policy` in force: whether it
    /// fits this gate.
    ///
    /// # Errors
    /// [`BuildError`] naming why it does not.
    pub fn check_policy(&self, policy: &dyn Policy) -> Result<(), BuildError> {
        match break_glass_problem(policy, self.policy.break_glass_alerted) {
            Some(problem) => Err(BuildError::with_problems(vec![problem])),
            None => Ok(()),
        }
    }

    /// The version of the policy in force ([`Policy::version`]).
    pub fn policy_version(&self) -> Option<PolicyVersion> {
        self.policy.load().version
    }

    /// How many times [`Gate::replace_policy`] put a policy in force since the gate was built.
    pub fn policy_replacements(&self) -> u64 {
        self.policy.replaced.load(Ordering::Relaxed)
    }
}
