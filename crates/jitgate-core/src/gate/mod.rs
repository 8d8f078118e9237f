//! The [`Gate`] engine: ties a policy, a store, a notifier and a clock together and exposes
//! the verbs a service uses. Every verb that changes state goes through one pipeline,
//! [`Gate::transact`]: load, decide (the pure state machine), commit, and on a version
//! conflict load again.

mod authorize;
mod builder;
mod checkpoints;
mod decision;
pub(crate) mod error;
mod gauges;
mod lifecycle;
pub(crate) mod limits;
mod policies;
mod queries;
mod recording;
mod refusals;
mod rounds;
mod send_check;
mod streaming;
mod sweep;

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use builder::{BuildError, GateBuilder, GatePart};
pub use checkpoints::Checkpointer;
pub use decision::{Basis, Decision, DenyReason, Explanation, Offboarding, RequestOutcome, ReviewOutcome};
pub use queries::{AuditError, AuditReport};
pub use recording::{UseBuffer, UseRecording};
pub use streaming::{AuditStreamer, StreamReport};
pub use sweep::SweepReport;

use crate::gate::error::Error;
use crate::gate::limits::Limits;
use crate::machine::Transition;

use crate::delivery::dispatch::Dispatcher;
use crate::ports::clock::Clock;
use crate::ports::store::{Capability, Commit, Store, StoreError, Subject};

/// How many times a transition is recomputed after a version conflict before giving up.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 16;

/// How long one store call made by [`Gate::authorize`] may take before it denies (see
/// [`GateBuilder::authorize_deadline`]).
pub const DEFAULT_AUTHORIZE_DEADLINE: std::time::Duration = std::time::Duration::from_millis(250);

/// How long one store call made by any other verb may take before the verb fails (see
/// [`GateBuilder::verb_deadline`]).
pub const DEFAULT_VERB_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

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
    policy: Arc<policies::PolicySlot>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    dispatcher: Dispatcher,
    max_attempts: u32,
    /// Held by every clone; the background dispatcher stops when the last one is dropped.
    _alive: Arc<crate::delivery::dispatch::Liveness>,
    reminder_lead: Option<chrono::Duration>,
    limits: Arc<Limits>,
    authorize_deadline: std::time::Duration,
    verb_deadline: std::time::Duration,
    uses: Arc<recording::UseLog>,
    /// The handles metrics are recorded through.
    metrics: Arc<crate::metrics::GateMetrics>,
    /// Whether the build spawned a dispatcher of its own (see
    /// [`GateBuilder::background_delivery`]).
    background_delivery: bool,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("max_attempts", &self.max_attempts)
            .field("authorize_deadline", &self.authorize_deadline)
            .field("verb_deadline", &self.verb_deadline)
            .field("use_recording", &self.uses.mode)
            .field("replica", &self.uses.replica())
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// Starts building a gate.
    pub fn builder() -> GateBuilder {
        GateBuilder::default()
    }

    /// The store this gate uses, for tests that write past the rules (feature `testing`,
    /// which only `jitgate-testkit` turns on).
    #[cfg(feature = "testing")]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The store capabilities this gate's store lacks; [`Capability::verbs`] names the verbs
    /// each one turns off.
    pub fn missing_capabilities(&self) -> Vec<Capability> {
        Capability::ALL
            .into_iter()
            .filter(|c| !c.of(self.store.as_ref()))
            .collect()
    }

    /// The store's capability `capability` of this gate, or [`Error::Unsupported`] naming `verb`.
    fn capability<'a, T: ?Sized>(
        &'a self,
        verb: &'static str,
        capability: Capability,
        get: impl FnOnce(&'a dyn Store) -> Option<&'a T>,
    ) -> Result<&'a T, Error> {
        get(self.store.as_ref()).ok_or(Error::Unsupported { verb, capability })
    }

    /// The one write pipeline. Runs `step` (which loads what it needs — the given state on
    /// the first attempt, a fresh read after a conflict — and asks the state machine for the
    /// transition at `attempt.now`), commits the transition's commit, and returns its outcome.
    /// On a version conflict, runs `step` again, up to the gate's maximum attempts.
    ///
    /// # Errors
    /// What `step` returns, a store error, or [`Error::Contention`] naming `subject`.
    async fn transact<T, F, Fut>(&self, subject: Subject, step: F) -> Result<T, Error>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<Transition<T>, Error>>,
    {
        self.transact_within(self.verb_deadline, subject, step).await
    }

    /// [`Gate::transact`] with its commits under `deadline`.
    async fn transact_within<T, F, Fut>(
        &self,
        deadline: std::time::Duration,
        subject: Subject,
        mut step: F,
    ) -> Result<T, Error>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<Transition<T>, Error>>,
    {
        for n in 1..=self.max_attempts {
            let attempt = Attempt {
                now: self.clock.now(),
                first: n == 1,
            };
            let Transition { commit, outcome } = step(attempt).await?;
            match self.commit(commit, deadline).await {
                Ok(()) => return Ok(outcome),
                Err(StoreError::Conflict { subject, .. }) => {
                    tracing::debug!(%subject, attempt = n, "version conflict; reloading and retrying");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Contention {
            subject,
            attempts: self.max_attempts,
        })
    }

    /// Runs one store call of a verb under the verb deadline.
    fn call<T, F>(&self, operation: &'static str, call: F) -> StoreCall<F>
    where
        F: Future<Output = Result<T, StoreError>> + Unpin,
    {
        self.call_within(self.verb_deadline, operation, call)
    }

    /// Runs one store call under `deadline`.
    fn call_within<T, F>(&self, deadline: std::time::Duration, operation: &'static str, call: F) -> StoreCall<F>
    where
        F: Future<Output = Result<T, StoreError>> + Unpin,
    {
        StoreCall {
            call: crate::deadline::within(deadline, call),
            operation,
        }
    }

    /// The current time by this gate's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Commits, then wakes the dispatcher if the commit queued events (never waits on it).
    async fn commit(&self, mut commit: Commit, deadline: std::time::Duration) -> Result<(), StoreError> {
        let has_events = !commit.events.is_empty();
        if has_events {
            commit.routes = self.dispatcher.routes(&commit.events);
        }
        self.call_within(deadline, "commit", self.store.commit(commit)).await?;
        if has_events {
            self.dispatcher.wake();
        }
        Ok(())
    }

    /// Delivers due outbox events through this gate's dispatcher (see [`Dispatcher`]): retried
    /// with backoff on failure, parked as dead after the last attempt. Returns how many were
    /// delivered.
    ///
    /// # Errors
    /// A store error ([`StoreError::Unsupported`] without an [`Outbox`](crate::Outbox)).
    pub async fn deliver_outbox(&self) -> Result<usize, StoreError> {
        Ok(self.dispatcher.dispatch_once().await?.delivered)
    }

    /// Whether the gate delivers its outbox in the background itself (a dispatcher spawned at
    /// build, see [`GateBuilder::background_delivery`]); the [`Runtime`](crate::runtime::Runtime)
    /// then starts no second one.
    pub fn delivers_in_background(&self) -> bool {
        self.background_delivery
    }

    /// This gate's dispatcher (store, notifier, clock, configuration, and the wake-up its
    /// commits send), e.g. to spawn `dispatcher.run(shutdown)` with background delivery off.
    pub fn dispatcher(&self) -> Dispatcher {
        self.dispatcher.clone()
    }
}

/// A store call under a deadline: its result, or [`StoreError::Timeout`] naming it.
struct StoreCall<F> {
    call: crate::deadline::Within<F>,
    operation: &'static str,
}

impl<T, F> Future for StoreCall<F>
where
    F: Future<Output = Result<T, StoreError>> + Unpin,
{
    type Output = Result<T, StoreError>;

    #[inline(always)]
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let this = self.get_mut();
        match std::pin::Pin::new(&mut this.call).poll(cx) {
            std::task::Poll::Pending => std::task::Poll::Pending,
            std::task::Poll::Ready(Ok(result)) => std::task::Poll::Ready(result),
            std::task::Poll::Ready(Err(elapsed)) => {
                std::task::Poll::Ready(Err(StoreError::timeout(this.operation, elapsed)))
            }
        }
    }
}

/// One try of a transition in [`Gate::transact`].
#[derive(Clone, Copy, Debug)]
struct Attempt {
    /// The time to decide at.
    now: DateTime<Utc>,
    /// The first try: the state the caller already holds is fresh enough.
    first: bool,
}
