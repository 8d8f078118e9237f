//! The [`Gate`] engine: ties a policy, a store, a notifier and a clock together and exposes
//! the verbs a service uses.

/// Runs `$body` (which loads fresh state, computes a transition at `$now` and evaluates to
/// `(Commit, T)`, returning early with `?` on errors) and commits its commit; on a version
/// conflict, runs it again. A macro rather than a function taking an async closure, so the
/// futures of the `Gate` verbs stay `Send`.
macro_rules! transact {
    ($gate:expr, $what:expr, |$now:ident| $body:block) => {{
        let mut result = None;
        for attempt in 1..=$gate.max_attempts {
            let $now = $gate.clock.now();
            let (commit, out) = $body;
            match $gate.commit(commit).await {
                Ok(()) => {
                    result = Some(Ok(out));
                    break;
                }
                Err($crate::store::StoreError::Conflict { .. }) => {
                    tracing::debug!(what = %$what, attempt, "version conflict; reloading and retrying");
                }
                Err(e) => {
                    result = Some(Err($crate::Error::from(e)));
                    break;
                }
            }
        }
        result.unwrap_or_else(|| Err($crate::Error::Contention { what: $what.to_string(), attempts: $gate.max_attempts }))
    }};
}

mod authorize;
mod decision;
mod lifecycle;
mod queries;
mod sweep;

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use decision::{Basis, Decision, DenyReason, Explanation, RequestOutcome, ReviewOutcome};
pub use queries::AuditError;
pub use sweep::SweepReport;

use crate::clock::{Clock, SystemClock};
use crate::notify::{Notifier, NullNotifier};
use crate::policy::Policy;
use crate::store::{Commit, Store, StoreError};

/// Outbox entries delivered per store read.
const OUTBOX_BATCH: usize = 64;

/// How many times a transition is recomputed after a version conflict before giving up.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 16;

/// The engine. Cheap to clone (every part is shared); `Send + Sync`.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use jitgate_core::{Gate, MemoryStore, RuleTable};
/// let gate = Gate::builder()
///     .policy(Arc::new(RuleTable::builder().build().unwrap()))
///     .store(Arc::new(MemoryStore::new()))
///     .build()
///     .unwrap();
/// # let _ = gate;
/// ```
#[derive(Clone)]
pub struct Gate {
    policy: Arc<dyn Policy>,
    store: Arc<dyn Store>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    max_attempts: u32,
    deliver_inline: bool,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("max_attempts", &self.max_attempts)
            .field("deliver_inline", &self.deliver_inline)
            .finish_non_exhaustive()
    }
}

/// [`GateBuilder::build`] was called without a required part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No policy was given.
    #[error("Gate::builder() needs a policy: call .policy(...)")]
    MissingPolicy,
    /// No store was given.
    #[error("Gate::builder() needs a store: call .store(...), e.g. Arc::new(MemoryStore::new())")]
    MissingStore,
}

/// Builds a [`Gate`]; refuses to build without a policy and a store.
#[derive(Default)]
pub struct GateBuilder {
    policy: Option<Arc<dyn Policy>>,
    store: Option<Arc<dyn Store>>,
    notifier: Option<Arc<dyn Notifier>>,
    clock: Option<Arc<dyn Clock>>,
    max_attempts: Option<u32>,
    deliver_inline: Option<bool>,
}

impl GateBuilder {
    /// The policy to consult (required).
    #[must_use]
    pub fn policy(mut self, policy: Arc<dyn Policy>) -> Self {
        self.policy = Some(policy);
        self
    }
    /// The store (required).
    #[must_use]
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }
    /// The notifier (default: [`NullNotifier`]).
    #[must_use]
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }
    /// The clock (default: [`SystemClock`]).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }
    /// Attempts per transition under version conflicts (default [`DEFAULT_MAX_ATTEMPTS`]).
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n.max(1));
        self
    }
    /// Whether each mutating call delivers the outbox right after its commit (default `true`).
    /// Turn it off when a separate dispatcher drains the outbox.
    #[must_use]
    pub fn deliver_inline(mut self, yes: bool) -> Self {
        self.deliver_inline = Some(yes);
        self
    }

    /// Builds the gate.
    ///
    /// # Errors
    /// [`BuildError::MissingPolicy`] or [`BuildError::MissingStore`].
    pub fn build(self) -> Result<Gate, BuildError> {
        Ok(Gate {
            policy: self.policy.ok_or(BuildError::MissingPolicy)?,
            store: self.store.ok_or(BuildError::MissingStore)?,
            notifier: self.notifier.unwrap_or_else(|| Arc::new(NullNotifier)),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            max_attempts: self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
            deliver_inline: self.deliver_inline.unwrap_or(true),
        })
    }
}

impl Gate {
    /// Starts building a gate.
    pub fn builder() -> GateBuilder {
        GateBuilder::default()
    }

    /// The store this gate uses.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The current time by this gate's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Commits, then (if configured) delivers the outbox.
    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        let has_events = !commit.events.is_empty();
        self.store.commit(commit).await?;
        if has_events && self.deliver_inline {
            if let Err(e) = self.deliver_outbox().await {
                tracing::warn!(error = %e, "outbox delivery failed; events stay in the outbox");
            }
        }
        Ok(())
    }

    /// Delivers undelivered outbox events to the notifier, oldest first, and marks the
    /// delivered ones done. Returns how many were delivered. An event whose delivery fails
    /// stays in the outbox (with everything after it) for the next call.
    ///
    /// # Errors
    /// A store error.
    pub async fn deliver_outbox(&self) -> Result<usize, StoreError> {
        let mut delivered = 0;
        loop {
            let batch = self.store.outbox_pending(OUTBOX_BATCH).await?;
            if batch.is_empty() {
                return Ok(delivered);
            }
            let mut done = Vec::with_capacity(batch.len());
            let mut failed = false;
            for entry in &batch {
                match self.notifier.notify(&entry.event).await {
                    Ok(()) => done.push(entry.seq),
                    Err(e) => {
                        tracing::warn!(event = %entry.event.id, error = %e, "notification failed; will retry");
                        failed = true;
                        break;
                    }
                }
            }
            delivered += done.len();
            self.store.outbox_done(&done).await?;
            if failed || batch.len() < OUTBOX_BATCH {
                return Ok(delivered);
            }
        }
    }
}
