//! [`LiveCedar`]: a Cedar policy kept current in a running gate — its entities refreshed, its
//! files watched and reloaded off the hot path, a new set swapped in atomically, an invalid
//! one refused with its located errors while the old one stays in force.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use jitgate_core::runtime::{Rounds, Task, TaskError};
use jitgate_core::{BuildError, Gate, Policy, PolicyVersion};

use crate::{CedarErrors, CedarPolicy, CedarPolicyBuilder};

/// `jitgate_policy_reloads_total{result="loaded"|"refused"}`: reloads of the policy files.
pub const POLICY_RELOADS: &str = "jitgate_policy_reloads_total";
/// `jitgate_entities_age_seconds`: the age of the entities in use, after each refresh round.
pub const ENTITIES_AGE: &str = "jitgate_entities_age_seconds";

/// Why a new policy set was not put in force. The old one stays.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The new set does not load: every error, located (file, line, span).
    #[error("the new policy set does not load, the previous one stays in force: {0}")]
    Invalid(#[source] CedarErrors),
    /// It loads but does not fit the gate (e.g. break-glass without a destination for alerts).
    #[error("the new policy set does not fit the gate, the previous one stays in force: {0}")]
    Refused(#[source] BuildError),
}

/// What the last reload did, for operators ([`LiveCedar::last_reload`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReloadOutcome {
    /// A new set is in force.
    Loaded(PolicyVersion),
    /// The files are as loaded; nothing to do.
    Unchanged,
    /// The new files were refused; the message names every error and where it is.
    Refused {
        /// The fingerprint of the refused files (not retried until they change).
        fingerprint: PolicyVersion,
        /// What was wrong.
        message: String,
    },
}

/// A Cedar policy kept current in a gate. Cheap to clone.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use jitgate_cedar::{CedarPolicy, LiveCedar};
/// use jitgate_core::{Gate, MemoryStore, runtime::{Intervals, Runtime}};
/// let recipe = CedarPolicy::builder().schema_file("app.cedarschema").policy_dir("policies");
/// let policy = Arc::new(recipe.clone().build().await?);
/// let gate = Gate::builder().policy(policy.clone()).store(Arc::new(MemoryStore::new())).build()?;
/// let live = LiveCedar::new(gate.clone(), recipe, policy);
/// let runtime = Runtime::for_gate(&gate, Intervals::default())
///     .task(live.reloader(Duration::from_secs(5)))
///     .task(live.entity_refresher(Duration::from_secs(60)))
///     .start();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LiveCedar {
    inner: Arc<Inner>,
}

struct Inner {
    gate: Gate,
    recipe: Mutex<CedarPolicyBuilder>,
    current: ArcSwap<CedarPolicy>,
    /// The fingerprint of the last files refused, so they are reported once, not every round.
    refused: Mutex<Option<PolicyVersion>>,
    last: Mutex<ReloadOutcome>,
    reloads: AtomicU64,
    failures: AtomicU64,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for LiveCedar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCedar")
            .field("version", &self.version())
            .field("reloads", &self.reloads())
            .field("failures", &self.failures())
            .finish_non_exhaustive()
    }
}

impl LiveCedar {
    /// Keeps `policy`, built from `recipe` and in force in `gate`, current: the reloader
    /// rebuilds from `recipe` when its files change.
    pub fn new(gate: Gate, recipe: CedarPolicyBuilder, policy: Arc<CedarPolicy>) -> Self {
        let version = policy.version().unwrap_or(PolicyVersion::from_bytes([0; 16]));
        Self {
            inner: Arc::new(Inner {
                gate,
                recipe: Mutex::new(recipe),
                current: ArcSwap::new(policy),
                refused: Mutex::new(None),
                last: Mutex::new(ReloadOutcome::Loaded(version)),
                reloads: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                reloading: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The policy in force.
    pub fn current(&self) -> Arc<CedarPolicy> {
        self.inner.current.load_full()
    }

    /// The version of the policy in force.
    pub fn version(&self) -> Option<PolicyVersion> {
        self.inner.current.load().version()
    }

    /// How many new sets were put in force.
    pub fn reloads(&self) -> u64 {
        self.inner.reloads.load(Ordering::Relaxed)
    }

    /// How many new sets were refused.
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    /// What the last reload did.
    pub fn last_reload(&self) -> ReloadOutcome {
        self.inner.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reloads if the files changed since the set in force was loaded (and since the last
    /// refused ones): builds and validates the new set off the hot path, then swaps it in.
    ///
    /// # Errors
    /// [`ReloadError`]; the set in force stays, and the same files are not tried again.
    pub async fn reload_if_changed(&self) -> Result<ReloadOutcome, ReloadError> {
        let _one = self.inner.reloading.lock().await;
        let recipe = self.recipe();
        let probe = recipe.clone();
        let fingerprint = tokio::task::spawn_blocking(move || probe.fingerprint())
            .await
            .unwrap_or_else(|_| PolicyVersion::from_bytes([0xff; 16]));
        let refused = *self.inner.refused.lock().unwrap_or_else(|p| p.into_inner());
        if Some(fingerprint) == self.version() || Some(fingerprint) == refused {
            return Ok(ReloadOutcome::Unchanged);
        }
        self.put_in_force(recipe, fingerprint).await
    }

    /// Builds a new set from `recipe` (handed in through the API, not read from watched files)
    /// and puts it in force; later reloads rebuild from it.
    ///
    /// # Errors
    /// [`ReloadError`]; the set in force stays.
    pub async fn load(&self, recipe: CedarPolicyBuilder) -> Result<PolicyVersion, ReloadError> {
        let _one = self.inner.reloading.lock().await;
        let fingerprint = recipe.fingerprint();
        match self.put_in_force(recipe, fingerprint).await? {
            ReloadOutcome::Loaded(v) => Ok(v),
            _ => Ok(fingerprint),
        }
    }

    async fn put_in_force(
        &self,
        recipe: CedarPolicyBuilder,
        fingerprint: PolicyVersion,
    ) -> Result<ReloadOutcome, ReloadError> {
        let built = recipe.clone().build().await.map_err(ReloadError::Invalid);
        let checked = built.and_then(|policy| {
            self.inner
                .gate
                .check_policy(&policy)
                .map(|()| Arc::new(policy))
                .map_err(ReloadError::Refused)
        });
        let outcome = match checked {
            Ok(policy) => {
                let version = policy.version().unwrap_or(fingerprint);
                // The bookkeeping first: whoever sees the new set decide also sees it counted.
                self.inner.current.store(policy.clone());
                *self.inner.recipe.lock().unwrap_or_else(|p| p.into_inner()) = recipe;
                *self.inner.refused.lock().unwrap_or_else(|p| p.into_inner()) = None;
                self.inner.reloads.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(POLICY_RELOADS, "result" => "loaded").increment(1);
                // Checked above, and what it checks does not change: this cannot refuse.
                self.inner.gate.replace_policy(policy).map_err(ReloadError::Refused)?;
                tracing::info!(version = %version, "policy set reloaded");
                ReloadOutcome::Loaded(version)
            }
            Err(e) => {
                *self.inner.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(fingerprint);
                self.inner.failures.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(POLICY_RELOADS, "result" => "refused").increment(1);
                tracing::error!(error = %e, in_force = ?self.version().map(|v| v.to_string()), "policy reload refused");
                *self.inner.last.lock().unwrap_or_else(|p| p.into_inner()) = ReloadOutcome::Refused {
                    fingerprint,
                    message: e.to_string(),
                };
                return Err(e);
            }
        };
        *self.inner.last.lock().unwrap_or_else(|p| p.into_inner()) = outcome.clone();
        Ok(outcome)
    }

    fn recipe(&self) -> CedarPolicyBuilder {
        self.inner.recipe.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Refreshes the entities of the policy in force.
    ///
    /// # Errors
    /// The provider's error; the previous entities stay (until too old).
    pub async fn refresh_entities(&self) -> Result<(), crate::CedarError> {
        self.current().refresh_entities().await
    }

    /// A runtime task that checks the files every `every` and reloads them when they changed.
    /// A refused set is reported (logged at ERROR with every located error, counted in
    /// [`failures`](Self::failures), kept in [`last_reload`](Self::last_reload)); the task goes
    /// on, and tries again when the files change.
    pub fn reloader(&self, every: Duration) -> impl Task {
        let live = self.clone();
        Rounds::new("policy reloader", every, move || {
            let live = live.clone();
            async move {
                // A refused set is reported by reload_if_changed; the task itself is healthy.
                let _ = live.reload_if_changed().await;
                Ok::<(), TaskError>(())
            }
        })
    }

    /// A runtime task that refreshes the entities every `every` and sets
    /// `jitgate_entities_age_seconds`; a failed refresh fails the round (the runtime reports it
    /// and tries again after its backoff).
    pub fn entity_refresher(&self, every: Duration) -> impl Task {
        let live = self.clone();
        Rounds::new("entity refresher", every, move || {
            let live = live.clone();
            async move {
                let refreshed = live.refresh_entities().await;
                let current = live.current();
                let age = live.inner.gate.now() - current.entities_loaded_at();
                metrics::gauge!(ENTITIES_AGE).set(age.to_std().unwrap_or_default().as_secs_f64());
                refreshed.map_err(TaskError::from)
            }
        })
    }
}
