//! [`GateBuilder`]: the parts of a [`Gate`], their defaults, and the checks that refuse a gate
//! whose parts do not fit together.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::policies::PolicySlot;
use super::recording::{self, UseRecording};
use super::{Gate, DEFAULT_AUTHORIZE_DEADLINE, DEFAULT_MAX_ATTEMPTS, DEFAULT_VERB_DEADLINE};
use crate::delivery::destination::Destination;
use crate::delivery::dispatch::{DispatchConfig, Dispatcher};
use crate::gate::limits::Limits;
use crate::ports::clock::{Clock, SystemClock};
use crate::ports::notify::{Notifier, NullNotifier};
use crate::ports::policy::Policy;
use crate::ports::store::{Capability, Store};

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
    /// An error naming `problems` (nothing missing).
    pub(crate) fn with_problems(problems: Vec<String>) -> Self {
        Self {
            missing: Vec::new(),
            problems,
        }
    }

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
    /// [`DenyReason::Timeout`](crate::DenyReason::Timeout). Consuming a use of a use-limited grant is a read and a commit,
    /// each under this deadline. The timer needs no runtime support (see
    /// [`within`](crate::deadline::within)); [`std::time::Duration::MAX`] turns it off.
    #[must_use]
    pub fn authorize_deadline(mut self, deadline: std::time::Duration) -> Self {
        self.authorize_deadline = Some(deadline);
        self
    }

    /// How long any one store call of the other verbs (`request`, `approve`, `revoke`,
    /// listings, `sweep`, ...) may take (default [`DEFAULT_VERB_DEADLINE`], 5 s); past it,
    /// the verb returns [`StoreError::Timeout`](crate::StoreError::Timeout) (inside [`Error::Store`](crate::Error::Store)). Each call has its own
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
    /// the verbs they serve answer [`Error::Unsupported`](crate::Error::Unsupported), and the build logs (at WARN) which
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
        // (A store without an outbox notifies nobody at all, which the build logs above.)
        let notifies = store.outbox().is_some();
        let alerted = !notifies || takes_break_glass_alerts(&destinations, &dispatch.routing);
        let policy = PolicySlot::new(policy, alerted).map_err(|problem| problems.push(problem));
        if destinations.is_empty() {
            destinations.push(Destination::new("default", Arc::new(NullNotifier)));
        }
        let policy = match policy {
            Ok(policy) if problems.is_empty() => policy,
            _ => return Err(BuildError::with_problems(problems)),
        };
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
        let mut background_delivery = false;
        if self.background_delivery.unwrap_or(true) && store.outbox().is_some() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(dispatcher.clone().run_while(Arc::downgrade(&alive)));
                    background_delivery = true;
                }
                Err(_) => tracing::warn!(
                    "Gate built outside a tokio runtime: no background delivery; run gate.dispatcher().run(..), start a Runtime, or call deliver_outbox"
                ),
            }
        }
        Ok(Gate {
            metrics: Arc::new(crate::metrics::GateMetrics::register()),
            background_delivery,
            _alive: alive,
            policy: Arc::new(policy),
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
