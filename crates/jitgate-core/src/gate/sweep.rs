//! `sweep`: move what time has made due. Idempotent and safe on many replicas at once:
//! every step is a compare-and-swap, and a step someone else already took is skipped.

use chrono::{DateTime, Utc};

use super::Gate;
use crate::gate::error::Error;
use crate::machine::{self, Transition, TransitionError};
use crate::model::grant::{Grant, GrantState};
use crate::model::request::AccessRequest;
use crate::ports::store::{Capability, Store, Subject};

/// What one [`Gate::sweep`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, serde::Serialize)]
#[non_exhaustive]
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

/// A time-driven step of the state machine.
type Step<S> = fn(&S, DateTime<Utc>) -> Result<Transition<S>, TransitionError>;

impl Gate {
    /// Expires pending requests past their TTL and grants past their end, records the start of
    /// scheduled grants, and sends expiry reminders if configured. Run it periodically;
    /// `authorize` never depends on it (an expired grant never allows), but events and audit
    /// records come from it.
    ///
    /// # Errors
    /// [`Error::Unsupported`] without [`DueWork`](crate::DueWork); a store error (steps done
    /// before it stay done).
    #[tracing::instrument(name = "jitgate.sweep", level = "debug", skip_all, fields(outcome))]
    pub async fn sweep(&self) -> Result<SweepReport, Error> {
        let due = self.capability("sweep", Capability::DueWork, Store::due_work)?;
        let mut report = SweepReport::default();
        for _ in 0..MAX_PASSES {
            let now = self.clock.now();
            let mut progressed = false;
            for req in self.call("due_requests", due.due_requests(now, BATCH)).await? {
                if self.advance_request(&req, machine::expire_request).await? {
                    report.requests_expired += 1;
                    progressed = true;
                }
            }
            for g in self.call("due_grants", due.due_grants(now, BATCH)).await? {
                let (step, counter): (Step<Grant>, _) = if g.status_at(now) == GrantState::Expired {
                    (machine::expire_grant, &mut report.grants_expired)
                } else {
                    (machine::activate, &mut report.grants_activated)
                };
                if self.advance_grant(&g, step).await? {
                    *counter += 1;
                    progressed = true;
                }
            }
            if let Some(lead) = self.reminder_lead {
                // A lead too long to add to now reminds of everything still running.
                let before = now
                    .checked_add_signed(lead)
                    .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
                for g in self.call("due_reminders", due.due_reminders(before, BATCH)).await? {
                    if self.advance_grant(&g, machine::remind).await? {
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

    /// Applies a time-driven step to `req` (read again after a conflict); `false` when the
    /// state machine says it is no longer due (another replica, or call, got there first).
    pub(super) async fn advance_request(&self, req: &AccessRequest, step: Step<AccessRequest>) -> Result<bool, Error> {
        let done = self
            .transact(Subject::Request(req.id), |at| async move {
                let current = if at.first {
                    req.clone()
                } else {
                    self.read_request(req.id).await?
                };
                Ok(step(&current, at.now)?)
            })
            .await;
        taken(done)
    }

    /// [`Gate::advance_request`] for a grant.
    async fn advance_grant(&self, g: &Grant, step: Step<Grant>) -> Result<bool, Error> {
        let done = self
            .transact(Subject::Grant(g.id), |at| async move {
                let current = if at.first {
                    g.clone()
                } else {
                    self.read_grant(g.id).await?
                };
                Ok(step(&current, at.now)?)
            })
            .await;
        taken(done)
    }
}

/// Whether a time-driven step was taken here: a refusal of the state machine means it was
/// no longer due.
fn taken<T>(done: Result<T, Error>) -> Result<bool, Error> {
    match done {
        Ok(_) => Ok(true),
        Err(Error::Transition(_)) => Ok(false),
        Err(e) => Err(e),
    }
}
