//! `record_gauges`: the store's counts, set on the metrics gauges (run by the runtime).

use super::Gate;
use crate::metrics::{AUDIT_UNSEALED, GRANTS_ACTIVE, OUTBOX_DEAD, OUTBOX_PENDING, REQUESTS_PENDING};
use crate::ports::store::{StoreError, StoreGauges};

impl Gate {
    /// Reads the store's counts ([`Store::gauges`](crate::Store::gauges)) and the audit records
    /// not yet sealed, and sets the gauges `jitgate_requests_pending`, `jitgate_grants_active`,
    /// `jitgate_outbox_pending{destination}`, `jitgate_outbox_dead{destination}` and
    /// `jitgate_audit_unsealed_records`. The runtime does this every
    /// [`Intervals::gauges`](crate::runtime::Intervals::gauges). Returns the counts (`None`: the
    /// store does not count).
    ///
    /// # Errors
    /// A store error.
    pub async fn record_gauges(&self) -> Result<Option<StoreGauges>, StoreError> {
        let gauges = self.call("gauges", self.store.gauges(self.clock.now())).await?;
        if let Some(g) = &gauges {
            metrics::gauge!(REQUESTS_PENDING).set(g.pending_requests as f64);
            metrics::gauge!(GRANTS_ACTIVE).set(g.active_grants as f64);
            for o in &g.outbox {
                let destination = if o.destination.is_empty() {
                    "(all)"
                } else {
                    o.destination.as_str()
                };
                metrics::gauge!(OUTBOX_PENDING, "destination" => destination.to_owned()).set(o.pending as f64);
                metrics::gauge!(OUTBOX_DEAD, "destination" => destination.to_owned()).set(o.dead as f64);
            }
        }
        if let Some(log) = self.store.audit_log() {
            let unsealed = self.call("unsealed", log.unsealed()).await?;
            metrics::gauge!(AUDIT_UNSEALED).set(unsealed.records as f64);
        }
        Ok(gauges)
    }
}
