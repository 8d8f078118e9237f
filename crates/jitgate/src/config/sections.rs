//! The sections of a [`Config`](super::Config), each with its defaults.

use std::time::Duration;

use figment::value::magic::RelativePathBuf;
use serde::Deserialize;

/// Which store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum StoreKind {
    /// The in-memory store: one process, nothing survives a restart (the default).
    #[default]
    Memory,
    /// PostgreSQL, shared by any number of replicas (feature `postgres`).
    Postgres,
}

/// `[store]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct StoreConfig {
    /// `memory` (default) or `postgres`.
    pub kind: StoreKind,
    /// PostgreSQL: the connection URL (required for `postgres`; put it in `JITGATE_STORE__URL`
    /// when it holds a password). A primary and its standbys: name every host,
    /// `postgres://app@db1:5432,db2:5432/jit?target_session_attrs=read-write`; the store
    /// writes to whichever accepts writes and finds it again after a failover.
    pub url: Option<String>,
    /// PostgreSQL: the schema jitgate's tables live in (default `jitgate`).
    pub schema: String,
    /// PostgreSQL: the pool's size (default 16).
    pub max_connections: u32,
    /// PostgreSQL: apply migrations at start (default true).
    pub migrate: bool,
    /// PostgreSQL: how old the grant cache may be before `authorize` reads the database, and
    /// how long it answers from the cache while no server can be reached (default 5 s).
    #[serde(with = "humantime_serde")]
    pub staleness_bound: Duration,
    /// PostgreSQL: how often the server written to is checked (default 500 ms).
    #[serde(with = "humantime_serde")]
    pub primary_check: Duration,
    /// PostgreSQL: how long to wait for a server to accept a connection (default 5 s).
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Memory: how long closed requests and ended grants stay (default: forever).
    #[serde(with = "humantime_serde")]
    pub retention: Option<Duration>,
    /// Memory: let go of the audit records once the `[audit]` stream file holds them
    /// (default false: the whole chain stays in memory). Needs `audit.stream_file`.
    pub release_streamed_audit: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Memory,
            url: None,
            schema: "jitgate".into(),
            max_connections: 16,
            migrate: true,
            staleness_bound: Duration::from_secs(5),
            primary_check: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(5),
            retention: None,
            release_streamed_audit: false,
        }
    }
}

/// `[policy]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PolicyConfig {
    /// The Cedar schema file (required).
    pub schema: Option<RelativePathBuf>,
    /// Policy files, and directories whose `*.cedar` files are all loaded (required: one at
    /// least).
    pub policies: Vec<RelativePathBuf>,
    /// Template-link files (Cedar CLI form).
    pub links: Vec<RelativePathBuf>,
    /// The entity types that request, review and hold grants (default: those of the schema's
    /// actions).
    pub principal_types: Vec<String>,
    /// How often the files are checked for edits (default 5 s); an edited set is validated and
    /// swapped in without a restart, an invalid one is reported and the old one stays.
    #[serde(with = "humantime_serde")]
    pub reload_every: Duration,
    /// Decisions kept in the decision cache (default 0: off).
    pub decision_cache: usize,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            schema: None,
            policies: Vec::new(),
            links: Vec::new(),
            principal_types: Vec::new(),
            reload_every: Duration::from_secs(5),
            decision_cache: 0,
        }
    }
}

/// `[entities]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct EntitiesConfig {
    /// A Cedar entities JSON file, read at every refresh (default: no entities).
    pub file: Option<RelativePathBuf>,
    /// How often they are refreshed (default 60 s).
    #[serde(with = "humantime_serde")]
    pub refresh_every: Duration,
    /// Entities older than this deny every decision (default 1 h; must exceed `refresh_every`).
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
}

impl Default for EntitiesConfig {
    fn default() -> Self {
        Self {
            file: None,
            refresh_every: Duration::from_secs(60),
            max_age: jitgate_cedar::DEFAULT_ENTITIES_MAX_AGE,
        }
    }
}

/// How grant uses are recorded in the audit chain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum UseRecordingConfig {
    /// Buffered and written in batches (default).
    #[default]
    Buffered,
    /// Each allow commits its record before it returns.
    Synchronous,
    /// Not recorded.
    Off,
}

/// `[gate]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct GateConfig {
    /// This replica's name in use records (default `$HOSTNAME:pid`).
    pub replica: Option<String>,
    /// How long one store call of `authorize` may take before it denies (default 250 ms).
    #[serde(with = "humantime_serde")]
    pub authorize_deadline: Duration,
    /// How long one store call of any other verb may take (default 5 s).
    #[serde(with = "humantime_serde")]
    pub verb_deadline: Duration,
    /// Tries of a transition after version conflicts (default 16).
    pub max_attempts: u32,
    /// `buffered` (default), `synchronous` or `off`.
    pub use_recording: UseRecordingConfig,
    /// Reminds a grant's holder this long before it ends (default: no reminders).
    #[serde(with = "humantime_serde")]
    pub expiry_reminder: Option<Duration>,
}

impl Default for GateConfig {
    fn default() -> Self {
        Self {
            replica: None,
            authorize_deadline: crate::DEFAULT_AUTHORIZE_DEADLINE,
            verb_deadline: crate::DEFAULT_VERB_DEADLINE,
            max_attempts: crate::DEFAULT_MAX_ATTEMPTS,
            use_recording: UseRecordingConfig::Buffered,
            expiry_reminder: None,
        }
    }
}

/// `[limits]`: each set field replaces its default in [`Limits`](crate::Limits).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct LimitsConfig {
    /// Bytes of a justification, comment or reason.
    pub text_bytes: Option<usize>,
    /// Bytes of an entity's type or id.
    pub entity_id_bytes: Option<usize>,
    /// Bytes of an action's context attributes.
    pub attributes_bytes: Option<usize>,
    /// Nesting depth of context attributes.
    pub attributes_depth: Option<usize>,
    /// Items per page of a listing.
    pub page_size: Option<usize>,
    /// How far ahead a wanted start may be.
    #[serde(with = "humantime_serde")]
    pub start_ahead: Option<Duration>,
    /// The longest duration anyone may ask for.
    #[serde(with = "humantime_serde")]
    pub duration: Option<Duration>,
    /// Pending requests per principal.
    pub pending_per_principal: Option<usize>,
    /// Unacknowledged break-glass grants per principal.
    pub unacknowledged_break_glass: Option<usize>,
}

/// `[delivery]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DeliveryConfig {
    /// Attempts per notification before it is parked as dead (default 8).
    pub max_attempts: u32,
    /// The first retry's wait, doubling (default 1 s).
    #[serde(with = "humantime_serde")]
    pub base_backoff: Duration,
    /// The longest wait between retries (default 5 min).
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// How often the outbox is polled for retries that came due (default 1 s).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Who hears of break-glass use, as Cedar entity references (`Team::"security"`).
    pub security: Vec<String>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let d = crate::DispatchConfig::default();
        Self {
            max_attempts: d.max_attempts,
            base_backoff: d.base_backoff.to_std().unwrap_or(Duration::from_secs(2)),
            max_backoff: d.max_backoff.to_std().unwrap_or(Duration::from_secs(600)),
            poll_interval: d.poll_interval,
            security: Vec::new(),
        }
    }
}

/// Which kind of notifier a destination is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DestinationKind {
    /// Logs each event (target `jitgate::events`): for development (the default).
    #[default]
    Tracing,
    /// Signed JSON POSTed to `url` (feature `webhook`).
    Webhook,
    /// A Slack incoming webhook at `url` (feature `webhook`).
    Slack,
}

/// `[[destinations]]`: one named notifier with its own delivery state.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DestinationConfig {
    /// Its name (unique).
    pub name: String,
    /// `tracing` (default), `webhook` or `slack`.
    pub kind: DestinationKind,
    /// The URL to POST to (webhook, slack; a Slack URL is a secret: prefer
    /// `url_env`).
    pub url: Option<String>,
    /// The environment variable holding the URL, instead of `url`.
    pub url_env: Option<String>,
    /// The environment variable holding the signing secret (webhook, slack; `whsec_…` or raw).
    pub secret_env: Option<String>,
    /// The event kinds it takes (default: every event).
    pub events: Vec<String>,
    /// Only events addressed to one of these entities (Cedar references such as
    /// `Team::"sre-leads"`: a team's channel takes what its team must act on; default: all).
    pub recipients: Vec<String>,
}

/// `[runtime]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RuntimeConfig {
    /// Between sweeps (default 30 s).
    #[serde(with = "humantime_serde")]
    pub sweep_every: Duration,
    /// The most a clean shutdown may take (default 10 s).
    #[serde(with = "humantime_serde")]
    pub shutdown_within: Duration,
    /// A failed background task's first backoff (default 200 ms), doubling.
    #[serde(with = "humantime_serde")]
    pub backoff_first: Duration,
    /// Its longest backoff (default 30 s).
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        let backoff = crate::runtime::Backoff::default();
        Self {
            sweep_every: crate::runtime::Intervals::default().sweep,
            shutdown_within: Duration::from_secs(10),
            backoff_first: backoff.first,
            backoff_max: backoff.max,
        }
    }
}

/// `[audit]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AuditConfig {
    /// The environment variable holding the checkpoint signing key (64 hex digits, an Ed25519
    /// seed); without it, no checkpoints.
    pub checkpoint_key_env: Option<String>,
    /// Between checkpoints (default 5 min).
    #[serde(with = "humantime_serde")]
    pub checkpoint_every: Duration,
    /// A JSON-lines file checkpoints are appended to (default: logged only).
    pub checkpoints_file: Option<RelativePathBuf>,
    /// A JSON-lines file every sealed record is streamed to (default: none).
    pub stream_file: Option<RelativePathBuf>,
    /// Where the streamer keeps its position (default: beside `stream_file`, `.cursor`).
    pub stream_cursor: Option<RelativePathBuf>,
    /// Between streaming rounds (default 5 s).
    #[serde(with = "humantime_serde")]
    pub stream_every: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            checkpoint_key_env: None,
            checkpoint_every: Duration::from_secs(300),
            checkpoints_file: None,
            stream_file: None,
            stream_cursor: None,
            stream_every: Duration::from_secs(5),
        }
    }
}
