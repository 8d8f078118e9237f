//! [`Config::start`]: a configuration made into a running gate.

use std::sync::Arc;
use std::time::Duration;

use jitgate_cedar::{CedarErrors, CedarPolicy, JsonEntitiesFile, LiveCedar};
use jitgate_core::audit::{CheckpointSigner, JsonLinesCheckpoints, JsonLinesRecords, TracingCheckpoints};
use jitgate_core::runtime::{Backoff, Intervals, Runtime, RuntimeHandle, ShutdownReport};
use jitgate_core::{
    BuildError, Destination, DispatchConfig, EntityRef, Gate, Limits, MemoryStore, Notifier, Routing, Store,
    TracingNotifier, UseBuffer, UseRecording,
};

use super::{resolved, Config, ConfigError, DestinationConfig, DestinationKind, StoreKind, UseRecordingConfig};

/// Why a configured deployment did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A field is wrong (names it).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The policies, schema or entities do not load: every error, located.
    #[error("the configured policies do not load: {0}")]
    Policy(#[source] CedarErrors),
    /// The parts do not fit together (a destination named twice, break-glass with nobody to
    /// alert, ...).
    #[error("the configured gate does not build: {0}")]
    Gate(#[source] BuildError),
    /// The store could not be reached or migrated.
    #[error("the configured store did not start: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A started deployment: the gate, its live policy, and its runtime.
#[derive(Debug)]
pub struct Running {
    /// The gate, for the service's `authorize` and the other verbs.
    pub gate: Gate,
    /// The policy kept current (reloads, entity refreshes).
    pub policy: LiveCedar,
    /// The background tasks.
    pub runtime: RuntimeHandle,
    shutdown_within: Duration,
}

impl Running {
    /// Stops the background tasks within the configured `runtime.shutdown_within`, flushing
    /// buffered audit records and taking a last checkpoint.
    pub async fn shutdown(self) -> ShutdownReport {
        self.runtime.shutdown(self.shutdown_within).await
    }
}

impl Config {
    /// Builds the store, the Cedar policy, the destinations and the gate this configuration
    /// describes, and starts its runtime (sweeper, dispatcher, audit writer, policy reloader,
    /// entity refresher, and the checkpointer and streamer if configured) on the current tokio
    /// runtime.
    ///
    /// # Errors
    /// [`StartError`]: a field that names something unusable (an unset secret variable, a
    /// feature not built in), policies that do not load, a store that does not answer.
    pub async fn start(&self) -> Result<Running, StartError> {
        // Secrets first: a missing one fails before anything connects.
        let signer = match &self.audit.checkpoint_key_env {
            Some(var) => {
                let field = "audit.checkpoint_key_env";
                let seed = secret(field, var)?;
                Some(
                    CheckpointSigner::from_seed_hex(seed.trim())
                        .map_err(|e| ConfigError::invalid(field, format!("${var} is not a checkpoint key: {e}")))?,
                )
            }
            None => None,
        };
        let (gate, live) = self.gate().await?;
        let mut intervals = Intervals::default();
        intervals.sweep = self.runtime.sweep_every;
        let mut runtime = Runtime::for_gate(&gate, intervals)
            .backoff(Backoff::new(self.runtime.backoff_first, self.runtime.backoff_max))
            .task(live.reloader(self.policy.reload_every))
            .task(live.entity_refresher(self.entities.refresh_every));
        if let Some(signer) = signer {
            let checkpointer = match &self.audit.checkpoints_file {
                Some(path) => gate
                    .checkpointer(signer)
                    .sink(Arc::new(JsonLinesCheckpoints::new(resolved(path)))),
                None => gate.checkpointer(signer).sink(Arc::new(TracingCheckpoints)),
            };
            runtime = runtime.checkpoints(checkpointer, self.audit.checkpoint_every);
        }
        if let Some(path) = &self.audit.stream_file {
            let file = resolved(path);
            let cursor = self
                .audit
                .stream_cursor
                .as_ref()
                .map(resolved)
                .unwrap_or_else(|| file.with_extension("cursor"));
            let streamer = gate
                .audit_streamer()
                .sink(Arc::new(JsonLinesRecords::new(file)))
                .cursor_file(cursor);
            runtime = runtime.streaming(streamer, self.audit.stream_every);
        }
        Ok(Running {
            gate,
            policy: live,
            runtime: runtime.start(),
            shutdown_within: self.runtime.shutdown_within,
        })
    }

    /// Builds the store, the Cedar policy, the destinations and the gate, and starts nothing:
    /// for one-shot operations (the `jitgate` command approving a request or exporting the
    /// audit trail). A service calls [`Config::start`]. With buffered use recording (the
    /// default), call `Gate::flush_audit_buffer` before the process ends: nothing else writes
    /// the refusals and uses the buffer holds.
    ///
    /// # Errors
    /// As [`Config::start`].
    pub async fn gate(&self) -> Result<(Gate, LiveCedar), StartError> {
        let destinations = self
            .destinations
            .iter()
            .enumerate()
            .map(|(i, d)| destination(i, d))
            .collect::<Result<Vec<_>, _>>()?;
        let store = self.store().await?;
        let recipe = self.recipe();
        let policy = Arc::new(recipe.clone().build().await.map_err(StartError::Policy)?);
        let mut builder = Gate::builder()
            .policy(policy.clone())
            .store(store)
            .background_delivery(false)
            .max_attempts(self.gate.max_attempts)
            .authorize_deadline(self.gate.authorize_deadline)
            .verb_deadline(self.gate.verb_deadline)
            .use_recording(match self.gate.use_recording {
                UseRecordingConfig::Buffered => UseRecording::Buffered(UseBuffer::default()),
                UseRecordingConfig::Synchronous => UseRecording::Synchronous,
                UseRecordingConfig::Off => UseRecording::Off,
            })
            .limits(self.limits())
            .dispatch_config(self.dispatch()?);
        if let Some(replica) = &self.gate.replica {
            builder = builder.replica(replica.clone());
        }
        if let Some(lead) = self.gate.expiry_reminder {
            let lead = chrono::Duration::from_std(lead)
                .map_err(|_| ConfigError::invalid("gate.expiry_reminder", "too long"))?;
            builder = builder.expiry_reminder(lead);
        }
        for d in destinations {
            builder = builder.destination(d);
        }
        let gate = builder.build().map_err(StartError::Gate)?;
        let live = LiveCedar::new(gate.clone(), recipe, policy);
        Ok((gate, live))
    }

    async fn store(&self) -> Result<Arc<dyn Store>, StartError> {
        match self.store.kind {
            StoreKind::Memory => {
                let store = match self.store.retention {
                    Some(keep) => MemoryStore::with_retention(
                        chrono::Duration::from_std(keep)
                            .map_err(|_| ConfigError::invalid("store.retention", "too long"))?,
                    ),
                    None => MemoryStore::new(),
                };
                Ok(Arc::new(if self.store.release_streamed_audit {
                    store.releasing_streamed_audit()
                } else {
                    store
                }))
            }
            StoreKind::Postgres => self.postgres().await,
        }
    }

    #[cfg(feature = "postgres")]
    async fn postgres(&self) -> Result<Arc<dyn Store>, StartError> {
        use jitgate_postgres::{PgStore, PgStoreOptions};
        let url = self.store.url.as_deref().unwrap_or_default();
        let options = PgStoreOptions::new(url)
            .schema(&self.store.schema)
            .max_connections(self.store.max_connections)
            .staleness_bound(self.store.staleness_bound)
            .primary_check(self.store.primary_check)
            .connect_timeout(self.store.connect_timeout);
        let store = PgStore::connect(options)
            .await
            .map_err(|e| StartError::Store(Box::new(e)))?;
        if self.store.migrate {
            store.migrate().await.map_err(|e| StartError::Store(Box::new(e)))?;
        }
        Ok(Arc::new(store))
    }

    #[cfg(not(feature = "postgres"))]
    async fn postgres(&self) -> Result<Arc<dyn Store>, StartError> {
        Err(ConfigError::invalid(
            "store.kind",
            "`postgres` needs jitgate built with the `postgres` feature",
        )
        .into())
    }

    /// The Cedar policy this configuration describes (schema, policies, links, principal types,
    /// entities), not yet built: what [`Config::start`] builds, and what `jitgate check` checks.
    pub fn recipe(&self) -> jitgate_cedar::CedarPolicyBuilder {
        let p = &self.policy;
        let mut recipe = CedarPolicy::builder()
            .entities_max_age(self.entities.max_age)
            .decision_cache(p.decision_cache);
        if let Some(schema) = &p.schema {
            recipe = recipe.schema_file(resolved(schema));
        }
        for path in p.policies.iter().map(resolved) {
            recipe = if path.is_dir() {
                recipe.policy_dir(path)
            } else {
                recipe.policy_file(path)
            };
        }
        for path in p.links.iter().map(resolved) {
            recipe = recipe.template_links_file(path);
        }
        if !p.principal_types.is_empty() {
            recipe = recipe.principal_types(&p.principal_types);
        }
        if let Some(file) = &self.entities.file {
            recipe = recipe.entities(Arc::new(JsonEntitiesFile::new(resolved(file))));
        }
        recipe
    }

    fn limits(&self) -> Limits {
        let l = &self.limits;
        let mut limits = Limits::default();
        let days = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = l.$field { limits.$field = v; } )* };
        }
        set!(
            text_bytes,
            entity_id_bytes,
            attributes_bytes,
            attributes_depth,
            page_size,
            pending_per_principal,
            unacknowledged_break_glass
        );
        if let Some(d) = l.start_ahead {
            limits.start_ahead = days(d);
        }
        if let Some(d) = l.duration {
            limits.duration = days(d);
        }
        limits
    }

    fn dispatch(&self) -> Result<DispatchConfig, ConfigError> {
        let d = &self.delivery;
        let mut routing = Routing::default();
        for (i, who) in d.security.iter().enumerate() {
            let entity: EntityRef = who
                .parse()
                .map_err(|e| ConfigError::invalid(format!("delivery.security[{i}]"), format!("{e}")))?;
            routing = routing.with_security(entity);
        }
        let chrono_of = |field: &str, v: Duration| {
            chrono::Duration::from_std(v).map_err(|_| ConfigError::invalid(field, "too long"))
        };
        let mut config = DispatchConfig::default();
        config.max_attempts = d.max_attempts;
        config.base_backoff = chrono_of("delivery.base_backoff", d.base_backoff)?;
        config.max_backoff = chrono_of("delivery.max_backoff", d.max_backoff)?;
        config.poll_interval = d.poll_interval;
        config.routing = routing;
        Ok(config)
    }
}

/// The value of the environment variable `var`, named by `field`.
fn secret(field: &str, var: &str) -> Result<String, ConfigError> {
    std::env::var(var).map_err(|_| ConfigError::invalid(field, format!("the environment variable ${var} is not set")))
}

fn destination(i: usize, d: &DestinationConfig) -> Result<Destination, ConfigError> {
    let notifier: Arc<dyn Notifier> = match d.kind {
        DestinationKind::Tracing => Arc::new(TracingNotifier),
        DestinationKind::Webhook | DestinationKind::Slack => webhook(i, d)?,
    };
    let mut destination = Destination::new(d.name.clone(), notifier);
    if !d.events.is_empty() {
        destination = destination.kinds(d.events.iter().cloned());
    }
    if !d.recipients.is_empty() {
        let recipients = d
            .recipients
            .iter()
            .enumerate()
            .map(|(j, who)| {
                who.parse::<EntityRef>()
                    .map_err(|e| ConfigError::invalid(format!("destinations[{i}].recipients[{j}]"), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        destination = destination.recipients(recipients);
    }
    Ok(destination)
}

#[cfg(feature = "webhook")]
fn webhook(i: usize, d: &DestinationConfig) -> Result<Arc<dyn Notifier>, ConfigError> {
    use jitgate_webhook::{key_from_secret, PayloadFormat, WebhookNotifier};
    let field = |name: &str| format!("destinations[{i}].{name}");
    let url = match (&d.url, &d.url_env) {
        (Some(url), None) => url.clone(),
        (None, Some(var)) => secret(&field("url_env"), var)?,
        _ => {
            return Err(ConfigError::invalid(
                field("url"),
                "set exactly one of `url` and `url_env`",
            ))
        }
    };
    let var = d
        .secret_env
        .as_deref()
        .ok_or_else(|| ConfigError::invalid(field("secret_env"), "a webhook needs a signing secret"))?;
    let key = key_from_secret(&secret(&field("secret_env"), var)?)
        .map_err(|e| ConfigError::invalid(field("secret_env"), format!("${var}: {e}")))?;
    let format = match d.kind {
        DestinationKind::Slack => PayloadFormat::Slack,
        _ => PayloadFormat::Json,
    };
    let notifier = WebhookNotifier::builder(key)
        .url(url)
        .format(format)
        .build()
        .map_err(|e| ConfigError::invalid(field("url"), e.to_string()))?;
    Ok(Arc::new(notifier))
}

#[cfg(not(feature = "webhook"))]
fn webhook(i: usize, _: &DestinationConfig) -> Result<Arc<dyn Notifier>, ConfigError> {
    Err(ConfigError::invalid(
        format!("destinations[{i}].kind"),
        "webhook and slack destinations need jitgate built with the `webhook` feature",
    ))
}
