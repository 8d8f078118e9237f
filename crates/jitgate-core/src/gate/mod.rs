//! The [`Gate`] engine: ties a policy, a store, a notifier and a clock together and exposes
//! the verbs a service uses. Every verb that changes state goes through one pipeline,
//! [`Gate::transact`]: load, decide (the pure state machine), commit, and on a version
//! conflict load again.

mod authorize;
mod checkpoints;
mod decision;
pub(crate) mod error;
mod lifecycle;
pub(crate) mod limits;
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

pub use checkpoints::Checkpointer;
pub use decision::{Basis, Decision, DenyReason, Explanation, Offboarding, RequestOutcome, ReviewOutcome};
pub use queries::{AuditError, AuditReport};
pub use recording::{UseBuffer, UseRecording};
pub use streaming::{AuditStreamer, StreamReport};
pub use sweep::SweepReport;

use crate::gate::error::Error;
use crate::gate::limits::Limits;
use crate::machine::Transition;

use crate::delivery::destination::Destination;
use crate::delivery::dispatch::{DispatchConfig, Dispatcher};
use crate::ports::clock::{Clock, SystemClock};
use crate::ports::notify::{Notifier, NullNotifier};
use crate::ports::policy::Policy;
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
    policy: Arc<dyn Policy>,
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

/// A part a [`Gate`] cannot be built without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GatePart {
    /// The policy (`.policy(...)`).
    Policy,
    /// The store (`.store(...)`).
    Store,
}

impl std::fmt::Display for GatePart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GatePart::Policy => "a policy (call .policy(...))",
            GatePart::Store => "a store (call .store(...), e.g. Arc::new(MemoryStore::new()))",
        })
    }
}

/// [`GateBuilder::build`] was called without required parts, or with parts that do not fit
/// together: every missing part and every problem is named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct BuildError {
    missing: Vec<GatePart>,
    problems: Vec<String>,
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            let missing: Vec<_> = self.missing.iter().map(ToString::to_string).collect();
            parts.push(format!("Gate::builder() needs {}", missing.join(" and ")));
        }
        parts.extend(self.problems.iter().cloned());
        f.write_str(&parts.join("; "))
    }
}

impl BuildError {
    /// The missing parts.
    pub fn missing(&self) -> &[GatePart] {
        &self.missing
    }

    /// What does not fit (a destination named twice, an unknown event kind, ...).
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

/// Builds a [`Gate`]; refuses to build without a policy and a store.
#[derive(Default)]
pub struct GateBuilder {
    policy: Option<Arc<dyn Policy>>,
    store: Option<Arc<dyn Store>>,
    notifier: Option<Arc<dyn Notifier>>,
    destinations: Vec<Destination>,
    clock: Option<Arc<dyn Clock>>,
    max_attempts: Option<u32>,
    background_delivery: Option<bool>,
    dispatch: Option<DispatchConfig>,
    reminder_lead: Option<chrono::Duration>,
    limits: Option<Limits>,
    authorize_deadline: Option<std::time::Duration>,
    verb_deadline: Option<std::time::Duration>,
    use_recording: Option<UseRecording>,
    replica: Option<String>,
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
    /// A destination named `default` taking every event through `notifier` (without any
    /// destination: a [`NullNotifier`]). For several, or to subscribe to some events only,
    /// use [`destination`](Self::destination).
    #[must_use]
    pub fn notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Adds a destination: a named notifier with its own delivery state (attempts, backoff,
    /// dead letters), taking the events it subscribes to. Any number may be added.
    #[must_use]
    pub fn destination(mut self, destination: Destination) -> Self {
        self.destinations.push(destination);
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
    /// Whether [`build`](Self::build) starts the gate's dispatcher in the background, on the
    /// tokio runtime it is called in (default `true`). No verb, and never `authorize`, waits
    /// on a notifier: a commit that queues events wakes the dispatcher, which delivers them
    /// (and retries by time). It stops when the last clone of the gate is dropped. Turn it off
    /// when a dispatcher of your own drains the outbox ([`Gate::dispatcher`]), or deliver with
    /// [`Gate::deliver_outbox`].
    #[must_use]
    pub fn background_delivery(mut self, yes: bool) -> Self {
        self.background_delivery = Some(yes);
        self
    }

    /// Retry, dead-letter and routing settings of the gate's dispatcher.
    #[must_use]
    pub fn dispatch_config(mut self, config: DispatchConfig) -> Self {
        self.dispatch = Some(config);
        self
    }

    /// Bounds on what callers may hand the gate (default [`Limits::default`]).
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// How long any one store call of [`Gate::authorize`] (and [`Gate::explain`]) may take
    /// (default [`DEFAULT_AUTHORIZE_DEADLINE`], 250 ms); past it, the answer is
    /// [`DenyReason::Timeout`]. Consuming a use of a use-limited grant is a read and a commit,
    /// each under this deadline. The timer needs no runtime support (see
    /// [`within`](crate::deadline::within)); [`std::time::Duration::MAX`] turns it off.
    #[must_use]
    pub fn authorize_deadline(mut self, deadline: std::time::Duration) -> Self {
        self.authorize_deadline = Some(deadline);
        self
    }

    /// How long any one store call of the other verbs (`request`, `approve`, `revoke`,
    /// listings, `sweep`, ...) may take (default [`DEFAULT_VERB_DEADLINE`], 5 s); past it,
    /// the verb returns [`StoreError::Timeout`] (inside [`Error::Store`]). Each call has its own
    /// deadline, so a verb that reads and then commits may take up to twice this. A commit that
    /// timed out may or may not have been applied, as with any timeout on a remote call.
    /// [`std::time::Duration::MAX`] turns it off.
    #[must_use]
    pub fn verb_deadline(mut self, deadline: std::time::Duration) -> Self {
        self.verb_deadline = Some(deadline);
        self
    }

    /// How `authorize` records the uses of grants without a use limit (default
    /// [`UseRecording::Buffered`]: spawn [`Gate::run_audit_writer`] next to the gate).
    #[must_use]
    pub fn use_recording(mut self, recording: UseRecording) -> Self {
        self.use_recording = Some(recording);
        self
    }

    /// The name of this replica in the records of grant uses (default: the `HOSTNAME`
    /// environment variable, else `jitgate`, then `:` and the process id).
    #[must_use]
    pub fn replica(mut self, name: impl Into<String>) -> Self {
        self.replica = Some(name.into());
        self
    }

    /// Makes [`Gate::sweep`] send one `GrantExpiring` reminder per grant, `lead` before it ends
    /// (default: no reminders).
    #[must_use]
    pub fn expiry_reminder(mut self, lead: chrono::Duration) -> Self {
        self.reminder_lead = Some(lead);
        self
    }

    /// Builds the gate. A store without some [capabilities](Capability) still builds a gate:
    /// the verbs they serve answer [`Error::Unsupported`], and the build logs (at WARN) which
    /// verbs are off; [`Gate::missing_capabilities`] lists them.
    ///
    /// # Errors
    /// [`BuildError`] naming every missing part.
    pub fn build(self) -> Result<Gate, BuildError> {
        let (policy, store) = match (self.policy, self.store) {
            (Some(policy), Some(store)) => (policy, store),
            (policy, store) => {
                let missing = [(policy.is_none(), GatePart::Policy), (store.is_none(), GatePart::Store)];
                return Err(BuildError {
                    missing: missing
                        .into_iter()
                        .filter(|(gone, _)| *gone)
                        .map(|(_, part)| part)
                        .collect(),
                    problems: Vec::new(),
                });
            }
        };
        let mut destinations = self.destinations;
        if let Some(notifier) = self.notifier {
            destinations.insert(0, Destination::new("default", notifier));
        }
        let dispatch = self.dispatch.unwrap_or_default();
        let mut problems = destination_problems(&destinations);
        let break_glass = policy.break_glass_policies();
        // (A store without an outbox notifies nobody at all, which the build logs above.)
        let notifies = store.outbox().is_some();
        if notifies && !break_glass.is_empty() && !takes_break_glass_alerts(&destinations, &dispatch.routing) {
            problems.push(format!(
                "the policy allows break-glass ({}) but no destination takes its alerts: add a destination \
                 subscribing to `break_glass_used` (Destination::kinds), or name a security audience \
                 (Routing::with_security) for a destination that takes every event",
                break_glass.join(", ")
            ));
        }
        if destinations.is_empty() {
            destinations.push(Destination::new("default", Arc::new(NullNotifier)));
        }
        if !problems.is_empty() {
            return Err(BuildError {
                missing: Vec::new(),
                problems,
            });
        }
        for capability in Capability::ALL {
            if !capability.of(store.as_ref()) {
                tracing::warn!(
                    %capability,
                    verbs = ?capability.verbs(),
                    "the store does not implement {capability}: these Gate verbs are off"
                );
            }
        }
        let clock: Arc<dyn Clock> = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let dispatcher = destinations
            .into_iter()
            .fold(Dispatcher::new(store.clone(), clock.clone()), Dispatcher::destination)
            .config(dispatch);
        let alive = Arc::new(dispatcher.liveness());
        if self.background_delivery.unwrap_or(true) && store.outbox().is_some() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(dispatcher.clone().run_while(Arc::downgrade(&alive)));
                }
                Err(_) => tracing::warn!(
                    "Gate built outside a tokio runtime: no background delivery; run gate.dispatcher().run(..) or call deliver_outbox"
                ),
            }
        }
        Ok(Gate {
            _alive: alive,
            policy,
            store,
            clock,
            dispatcher,
            max_attempts: self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
            reminder_lead: self.reminder_lead,
            limits: Arc::new(self.limits.unwrap_or_default()),
            authorize_deadline: self.authorize_deadline.unwrap_or(DEFAULT_AUTHORIZE_DEADLINE),
            verb_deadline: self.verb_deadline.unwrap_or(DEFAULT_VERB_DEADLINE),
            uses: Arc::new(recording::UseLog::new(
                self.use_recording.unwrap_or_default(),
                self.replica.unwrap_or_else(default_replica),
            )),
        })
    }
}

/// Destinations named twice, or subscribing to kinds no event has.
fn destination_problems(destinations: &[Destination]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for d in destinations {
        if !seen.insert(d.name()) {
            problems.push(format!("two destinations are named `{}`", d.name()));
        }
        for kind in d.unknown_kinds() {
            problems.push(format!(
                "destination `{}` subscribes to `{kind}`, which is not an event kind (one of: {})",
                d.name(),
                crate::model::event::EventKind::TYPES.join(", ")
            ));
        }
    }
    problems
}

/// Whether a break-glass alert reaches someone: a destination that subscribes to
/// `break_glass_used` by name, or one that takes it while a security audience is named.
fn takes_break_glass_alerts(destinations: &[Destination], routing: &crate::delivery::routing::Routing) -> bool {
    let alert = crate::model::event::Event {
        id: crate::model::ids::EventId("probe".into()),
        at: DateTime::<Utc>::default(),
        principal: crate::model::entity::EntityRef::new("User", "probe"),
        scope: crate::model::entity::Scope::new(
            crate::model::entity::EntityRef::new("Action", "probe"),
            crate::model::entity::EntityRef::new("Resource", "probe"),
        ),
        request_id: crate::model::ids::RequestId::new_random(),
        grant_id: None,
        kind: crate::model::event::EventKind::BreakGlassUsed { justification: None },
    };
    destinations
        .iter()
        .any(|d| d.wants(&alert, routing) && (d.subscribes_by_kind("break_glass_used") || !routing.security.is_empty()))
}

/// `$HOSTNAME:pid`, or `jitgate:pid`.
fn default_replica() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty());
    format!("{}:{}", host.as_deref().unwrap_or("jitgate"), std::process::id())
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
