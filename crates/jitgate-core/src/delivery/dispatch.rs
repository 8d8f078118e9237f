//! The dispatcher: drains the outbox into the notifiers, at least once, with backoff.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};

use crate::audit::{AuditAction, AuditEntry};
use crate::delivery::destination::Destination;
use crate::delivery::routing::{Delivery, Routing};
use crate::machine::system_actor;
use crate::ports::clock::Clock;
use crate::ports::notify::Notifier;
use crate::ports::outbox::{Outbox, OutboxEntry, Retry};
use crate::ports::store::{Capability, Store, StoreError};
use crate::report::ErrorChain;

/// How the dispatcher retries.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatchConfig {
    /// Attempts before an event is parked as dead (default 8).
    pub max_attempts: u32,
    /// Backoff after the first failure; doubles per attempt (default 1 s).
    pub base_backoff: Duration,
    /// Backoff ceiling (default 5 min).
    pub max_backoff: Duration,
    /// Entries claimed per store read (default 64).
    pub batch: usize,
    /// How often `run` looks for due entries when idle (default 1 s).
    pub poll_interval: StdDuration,
    /// Who break-glass events go to.
    pub routing: Routing,
    /// How long one notifier call may take before it counts as a failed attempt (default
    /// 30 s), so a notifier that never answers cannot stall delivery.
    pub notify_timeout: StdDuration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_backoff: Duration::seconds(1),
            max_backoff: Duration::minutes(5),
            batch: 64,
            poll_interval: StdDuration::from_secs(1),
            routing: Routing::default(),
            notify_timeout: StdDuration::from_secs(30),
        }
    }
}

impl DispatchConfig {
    /// Attempts before an event is parked as dead (at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// The backoff after the first failure, and its ceiling.
    #[must_use]
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base_backoff = base;
        self.max_backoff = max;
        self
    }

    /// Entries claimed per store read (at least 1).
    #[must_use]
    pub fn with_batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// How long one notifier call may take before it counts as a failed attempt.
    #[must_use]
    pub fn with_notify_timeout(mut self, timeout: StdDuration) -> Self {
        self.notify_timeout = timeout;
        self
    }

    /// How often `run` looks for due entries when idle.
    #[must_use]
    pub fn with_poll_interval(mut self, every: StdDuration) -> Self {
        self.poll_interval = every;
        self
    }

    /// Who events go to beyond the people they concern.
    #[must_use]
    pub fn with_routing(mut self, routing: Routing) -> Self {
        self.routing = routing;
        self
    }

    /// The delay before attempt `failed + 1`, after `failed` failures: exponential from
    /// `base_backoff`, capped at `max_backoff`, with "equal jitter" (uniform in [d/2, d]) so
    /// replicas retrying the same receiver spread out. `unit` in [0, 1) is the random draw.
    pub fn backoff(&self, failed: u32, unit: f64) -> Duration {
        let exp = 2i32.saturating_pow(failed.saturating_sub(1).min(30));
        let full = self
            .base_backoff
            .checked_mul(exp)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff);
        let half = full / 2;
        let jitter_ms = (half.num_milliseconds() as f64 * unit.clamp(0.0, 1.0)) as i64;
        half + Duration::milliseconds(jitter_ms)
    }
}

/// What one [`Dispatcher::dispatch_once`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct DispatchReport {
    /// Events every notifier accepted.
    pub delivered: usize,
    /// Events that failed and will be retried.
    pub retried: usize,
    /// Events parked as dead after their last attempt.
    pub dead: usize,
}

/// Held (in an `Arc`) by every clone of a gate; dropping the last one wakes the background
/// dispatcher so that it sees it should stop.
pub(crate) struct Liveness(Arc<tokio::sync::Notify>);

impl Drop for Liveness {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

/// Delivers outbox entries to their [`Destination`]s. Cheap to clone.
///
/// Each entry is one event for one destination: if that destination fails, only that entry is
/// retried later (delivery is at least once, and receivers de-duplicate by event id), so a
/// failing destination never causes a re-delivery to a healthy one. After `max_attempts`
/// failures an entry is parked as dead: listed by [`Outbox::dead`] and recorded in the audit
/// log (`NotificationDead`), never dropped silently.
#[derive(Clone)]
pub struct Dispatcher {
    store: Arc<dyn Store>,
    /// Shared by every clone (a gate is cloned per request by tower services): configured
    /// before the dispatcher is shared, copied on write otherwise.
    destinations: Arc<Vec<Destination>>,
    clock: Arc<dyn Clock>,
    config: DispatchConfig,
    /// Woken by commits that queue events (see [`Dispatcher::wake`]).
    wake: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("destinations", &self.destinations)
            .field("config", &self.config)
            .finish()
    }
}

impl Dispatcher {
    /// A dispatcher over `store` with no destinations yet.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            destinations: Arc::new(Vec::new()),
            clock,
            config: DispatchConfig::default(),
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// How often it polls, and what wakes it when a commit queues events (for the runtime).
    pub(crate) fn schedule(&self) -> (std::time::Duration, Arc<tokio::sync::Notify>) {
        (self.config.poll_interval, self.wake.clone())
    }

    /// Tells [`Dispatcher::run`] (of this dispatcher or a clone) that events were queued, so
    /// it delivers them now rather than at its next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Adds a destination taking every event through `n`, named `default` (the first),
    /// `default-2`, ...
    #[must_use]
    pub fn notifier(self, n: Arc<dyn Notifier>) -> Self {
        let name = match self.destinations.len() {
            0 => "default".to_owned(),
            k => format!("default-{}", k + 1),
        };
        self.destination(Destination::new(name, n))
    }

    /// Adds a destination.
    #[must_use]
    pub fn destination(mut self, d: Destination) -> Self {
        Arc::make_mut(&mut self.destinations).push(d);
        self
    }

    /// Its destinations.
    pub fn destinations(&self) -> &[Destination] {
        &self.destinations
    }

    /// Per event, the names of the destinations that subscribe to it: what the gate writes
    /// into the outbox with each commit.
    pub(crate) fn routes(&self, events: &[crate::model::event::Event]) -> Vec<Vec<String>> {
        events
            .iter()
            .map(|e| {
                self.destinations
                    .iter()
                    .filter(|d| d.wants(e, &self.config.routing))
                    .map(|d| d.name().to_owned())
                    .collect()
            })
            .collect()
    }

    /// Sets the retry and routing configuration.
    #[must_use]
    pub fn config(mut self, config: DispatchConfig) -> Self {
        self.config = config;
        self
    }

    /// Delivers every due event once (claiming batches until none is left).
    ///
    /// # Errors
    /// [`StoreError::Unsupported`] if the store has no [`Outbox`]; a store error (what was
    /// delivered before it stays delivered).
    pub async fn dispatch_once(&self) -> Result<DispatchReport, StoreError> {
        let outbox = self.outbox()?;
        let mut report = DispatchReport::default();
        loop {
            let now = self.clock.now();
            let batch = outbox.claim(now, self.config.batch).await?;
            let mut done = Vec::new();
            let mut retries = Vec::new();
            for entry in &batch {
                match self.deliver(entry).await {
                    Ok(()) => done.push(entry.seq),
                    Err(error) => {
                        if let Some(retry) = self.failed(outbox, entry, error, now, &mut report).await? {
                            retries.push(retry);
                        }
                    }
                }
            }
            report.delivered += done.len();
            outbox.mark_done(&done).await?;
            if !retries.is_empty() {
                outbox.retry_many(&retries).await?;
            }
            if batch.len() < self.config.batch {
                return Ok(report);
            }
        }
    }

    async fn deliver(&self, entry: &OutboxEntry) -> Result<(), String> {
        let delivery = Delivery::attempt(entry.event.clone(), &self.config.routing, entry.attempts + 1);
        // An entry of a commit the gate did not route goes to every destination.
        let targets: Vec<&Destination> = self
            .destinations
            .iter()
            .filter(|d| entry.destination.is_empty() || d.name() == entry.destination)
            .collect();
        if targets.is_empty() {
            return Err(format!(
                "no destination named `{}` here (every replica must configure the same destinations)",
                entry.destination
            ));
        }
        for d in targets {
            match crate::deadline::within(self.config.notify_timeout, d.notifier().notify(&delivery)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(ErrorChain(&e).to_string()),
                Err(elapsed) => return Err(format!("the notifier did not answer within {:?}", elapsed.after)),
            }
        }
        Ok(())
    }

    fn outbox(&self) -> Result<&dyn Outbox, StoreError> {
        self.store.outbox().ok_or(StoreError::Unsupported {
            capability: Capability::Outbox,
        })
    }

    /// Parks `entry` as dead after its last attempt; otherwise returns the retry to record
    /// (written with the batch's others in one call).
    async fn failed(
        &self,
        outbox: &dyn Outbox,
        entry: &OutboxEntry,
        error: String,
        now: DateTime<Utc>,
        report: &mut DispatchReport,
    ) -> Result<Option<Retry>, StoreError> {
        let attempts = entry.attempts + 1;
        if attempts >= self.config.max_attempts {
            tracing::error!(event = %entry.event.id, destination = %entry.destination, attempts, %error, "notification parked as dead");
            let e = &entry.event;
            let audit = AuditEntry {
                at: now,
                actor: system_actor(),
                action: AuditAction::NotificationDead,
                request_id: e.request_id,
                grant_id: e.grant_id,
                principal: e.principal.clone(),
                scope: e.scope.clone(),
                text: Some(format!(
                    "event {} undeliverable after {attempts} attempts: {error}",
                    e.id
                )),
                policy_ids: Vec::new(),
                binding: None,
                replica: None,
                policy_version: None,
            };
            outbox.park(entry.seq, attempts, &error, audit).await?;
            report.dead += 1;
            Ok(None)
        } else {
            let next = now
                .checked_add_signed(self.config.backoff(attempts, fastrand::f64()))
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            tracing::warn!(event = %entry.event.id, destination = %entry.destination, attempts, %next, %error, "notification failed; will retry");
            report.retried += 1;
            Ok(Some(Retry::new(entry.seq, attempts, next, error)))
        }
    }

    /// Dispatches until `shutdown` completes: at once, then whenever a commit queues events
    /// ([`Dispatcher::wake`]) or `poll_interval` passes (retries come due by time). Store
    /// errors are logged and retried at the next tick. Returns after the current round when
    /// `shutdown` fires.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.dispatch_once().await {
                tracing::warn!(error = %ErrorChain(&e), "dispatch round failed; retrying at the next tick");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    /// A guard whose drop wakes this dispatcher: while one is alive, [`Dispatcher::run_while`]
    /// goes on; when the last one is dropped, it stops at once.
    pub(crate) fn liveness(&self) -> Liveness {
        Liveness(self.wake.clone())
    }

    /// [`Dispatcher::run`] for as long as `alive` has a strong reference: the gate's
    /// background delivery, which ends when the last clone of its gate is dropped.
    pub(crate) async fn run_while(self, alive: std::sync::Weak<Liveness>) {
        loop {
            if alive.strong_count() == 0 {
                return;
            }
            if let Err(e) = self.dispatch_once().await {
                tracing::warn!(error = %ErrorChain(&e), "dispatch round failed; retrying at the next tick");
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered_into_the_upper_half() {
        let c = DispatchConfig {
            base_backoff: Duration::seconds(2),
            max_backoff: Duration::seconds(60),
            ..Default::default()
        };
        assert_eq!(c.backoff(1, 0.0), Duration::seconds(1));
        assert_eq!(c.backoff(1, 0.999_999), Duration::milliseconds(1999));
        assert_eq!(c.backoff(2, 0.0), Duration::seconds(2));
        assert_eq!(c.backoff(3, 0.0), Duration::seconds(4));
        assert_eq!(
            c.backoff(10, 0.0),
            Duration::seconds(30),
            "capped at 60 s, half of it without jitter"
        );
        assert_eq!(c.backoff(u32::MAX, 1.0), Duration::seconds(60));
    }
}
