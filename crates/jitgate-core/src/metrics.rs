//! The gate's metrics, through the [`metrics`] facade: nothing is recorded until the service
//! installs a recorder (e.g. `metrics-exporter-prometheus`), and then the hot path costs one
//! counter increment and one histogram sample per `authorize`. Install the recorder before
//! building the gate: the gate registers its handles when it is built.
//!
//! Label values are bounded: outcomes, reasons, destinations, task names; never a principal,
//! a scope or an id. `docs/metrics.md` lists every metric.

use metrics::{Counter, Histogram};

use crate::gate::{Basis, Decision, DenyReason};

/// `jitgate_decisions_total{outcome, reason}`.
pub const DECISIONS: &str = "jitgate_decisions_total";
/// `jitgate_authorize_duration_seconds`.
pub const AUTHORIZE_DURATION: &str = "jitgate_authorize_duration_seconds";
/// `jitgate_time_to_approval_seconds`.
pub const TIME_TO_APPROVAL: &str = "jitgate_time_to_approval_seconds";
/// `jitgate_requests_pending`.
pub const REQUESTS_PENDING: &str = "jitgate_requests_pending";
/// `jitgate_grants_active`.
pub const GRANTS_ACTIVE: &str = "jitgate_grants_active";
/// `jitgate_outbox_pending{destination}`.
pub const OUTBOX_PENDING: &str = "jitgate_outbox_pending";
/// `jitgate_outbox_dead{destination}`.
pub const OUTBOX_DEAD: &str = "jitgate_outbox_dead";
/// `jitgate_audit_unsealed_records`.
pub const AUDIT_UNSEALED: &str = "jitgate_audit_unsealed_records";
/// `jitgate_task_failures_total{task}`.
pub const TASK_FAILURES: &str = "jitgate_task_failures_total";
/// `jitgate_policy_replacements_total`.
pub const POLICY_REPLACEMENTS: &str = "jitgate_policy_replacements_total";

/// Every (outcome, reason) pair a decision can have, in [`slot`] order.
const KINDS: [(&str, &str); 9] = [
    ("allow", "standing"),
    ("allow", "grant"),
    ("needs_approval", "eligible"),
    ("deny", "forbidden"),
    ("deny", "not_eligible"),
    ("deny", "policy_error"),
    ("deny", "store_error"),
    ("deny", "timeout"),
    ("deny", "over_limit"),
];

/// The index of `decision`'s (outcome, reason) in [`KINDS`].
fn slot(decision: &Decision) -> usize {
    match decision {
        Decision::Allow {
            basis: Basis::Standing, ..
        } => 0,
        Decision::Allow { .. } => 1,
        Decision::NeedsApproval { .. } => 2,
        Decision::Deny { reason, .. } => match reason {
            DenyReason::Forbidden { .. } => 3,
            DenyReason::NotEligible => 4,
            DenyReason::PolicyError(_) => 5,
            DenyReason::StoreError(_) => 6,
            DenyReason::Timeout { .. } => 7,
            DenyReason::OverLimit(_) => 8,
        },
    }
}

/// The handles a gate records through, registered once when it is built.
pub(crate) struct GateMetrics {
    /// The TSC clock `authorize` is timed with: a raw read (`rdtsc`) at the start and the end,
    /// scaled to nanoseconds only to record, costs a fraction of two `clock_gettime` calls.
    clock: quanta::Clock,
    decisions: [Counter; KINDS.len()],
    authorize: Histogram,
    time_to_approval: Histogram,
    policy_replacements: Counter,
}

impl GateMetrics {
    pub(crate) fn register() -> Self {
        Self {
            clock: quanta::Clock::new(),
            decisions: KINDS
                .map(|(outcome, reason)| metrics::counter!(DECISIONS, "outcome" => outcome, "reason" => reason)),
            authorize: metrics::histogram!(AUTHORIZE_DURATION),
            time_to_approval: metrics::histogram!(TIME_TO_APPROVAL),
            policy_replacements: metrics::counter!(POLICY_REPLACEMENTS),
        }
    }

    /// The start of a timed call, for [`decided`](Self::decided).
    #[inline]
    pub(crate) fn start(&self) -> u64 {
        self.clock.raw()
    }

    /// Counts `decision`, and the time since `started` that `authorize` took to make it.
    #[inline]
    pub(crate) fn decided(&self, decision: &Decision, started: u64) {
        let took = self.clock.delta_as_nanos(started, self.clock.raw());
        self.decisions[slot(decision)].increment(1);
        self.authorize.record(took as f64 * 1e-9);
    }

    /// A request was approved `after` it was made.
    pub(crate) fn approved_after(&self, after: chrono::Duration) {
        self.time_to_approval
            .record(after.to_std().unwrap_or_default().as_secs_f64());
    }

    pub(crate) fn policy_replaced(&self) {
        self.policy_replacements.increment(1);
    }
}
