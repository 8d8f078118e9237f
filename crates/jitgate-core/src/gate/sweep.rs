//! `sweep`: move what time has made due. Idempotent and safe on many replicas at once:
//! every step is a compare-and-swap, and a step someone else already took is skipped.

use super::Gate;
use crate::machine::{self, TransitionError};
use crate::store::{Commit, StoreError};
use crate::{Error, GrantState};

/// What one [`Gate::sweep`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SweepReport {
    /// Pending requests expired.
    pub requests_expired: usize,
    /// Scheduled grants that came into force.
    pub grants_activated: usize,
    /// Grants expired.
    pub grants_expired: usize,
    /// Expiry reminders sent (with [`GateBuilder::expiry_reminder`](crate::GateBuilder::expiry_reminder)).
    pub reminders_sent: usize,
}

const BATCH: usize = 256;
const MAX_PASSES: usize = 1_000;

impl Gate {
    /// Expires pending requests past their TTL and grants past their end, records the start of
    /// scheduled grants, and sends expiry reminders if configured. Run it periodically; `authorize` never depends on it (an
    /// expired grant never allows), but events and audit records come from it.
    ///
    /// # Errors
    /// A store error; steps done before it stay done.
    pub async fn sweep(&self) -> Result<SweepReport, Error> {
        let mut report = SweepReport::default();
        for _ in 0..MAX_PASSES {
            let now = self.clock.now();
            let mut progressed = false;
            for req in self.store.due_requests(now, BATCH).await? {
                if self.sweep_step(machine::expire_request(&req, now)).await? {
                    report.requests_expired += 1;
                    progressed = true;
                }
            }
            for g in self.store.due_grants(now, BATCH).await? {
                let (step, counter) = if g.status_at(now) == GrantState::Expired {
                    (machine::expire_grant(&g, now), &mut report.grants_expired)
                } else {
                    (machine::activate(&g, now), &mut report.grants_activated)
                };
                if self.sweep_step(step).await? {
                    *counter += 1;
                    progressed = true;
                }
            }
            if let Some(lead) = self.reminder_lead {
                for g in self.store.due_reminders(now + lead, BATCH).await? {
                    if self.sweep_step(machine::remind(&g, now)).await? {
                        report.reminders_sent += 1;
                        progressed = true;
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        Ok(report)
    }

    /// Commits one sweep step; `false` when another replica (or call) got there first.
    async fn sweep_step(&self, step: Result<Commit, TransitionError>) -> Result<bool, Error> {
        let Ok(commit) = step else { return Ok(false) };
        match self.commit(commit).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
