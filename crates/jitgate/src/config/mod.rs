//! One configuration for a whole deployment (feature `config`): the store, the Cedar policies
//! and their entities, limits, delivery destinations, the background intervals and the audit
//! checkpoint key, read from a TOML file with environment overrides, then started as a gate with
//! its runtime ([`Config::start`]).
//!
//! - Every field has a default; a file names only what it changes. `docs/configuration.md`
//!   shows a complete file.
//! - Environment variables override the file: `JITGATE_` then the field's path with `__`
//!   between sections, e.g. `JITGATE_STORE__URL=postgres://…`, `JITGATE_RUNTIME__SWEEP_EVERY=10s`
//!   (any section but `destinations`; other `JITGATE_…` variables are ignored).
//! - Durations are written as `250ms`, `30s`, `5m`, `1h 30m`. Paths are relative to the file
//!   that names them.
//! - Secrets never sit in the file: a destination's signing secret and the checkpoint key are
//!   read from the environment variables the file names.
//! - An error names the field (`store.url`), and the file or variable the bad value came from.

mod sections;
mod start;

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::value::magic::RelativePathBuf;
use figment::Figment;
use serde::Deserialize;

pub use sections::{
    AuditConfig, DeliveryConfig, DestinationConfig, DestinationKind, EntitiesConfig, GateConfig, LimitsConfig,
    PolicyConfig, RuntimeConfig, StoreConfig, StoreKind, UseRecordingConfig,
};
pub use start::{Running, StartError};

/// A whole deployment's configuration.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Where requests, grants and the audit chain live.
    pub store: StoreConfig,
    /// The Cedar schema and policies.
    pub policy: PolicyConfig,
    /// The entities (users, groups) the policies are evaluated against.
    pub entities: EntitiesConfig,
    /// The gate's deadlines, retries and use recording.
    pub gate: GateConfig,
    /// Bounds on input ([`Limits`](crate::Limits)); unset fields keep their defaults.
    pub limits: LimitsConfig,
    /// Delivery of notifications: retries and routing.
    pub delivery: DeliveryConfig,
    /// Where notifications go; none: nowhere (a null notifier).
    pub destinations: Vec<DestinationConfig>,
    /// How often the background tasks run, and how long shutdown may take.
    pub runtime: RuntimeConfig,
    /// Audit checkpoints and streaming.
    pub audit: AuditConfig,
}

/// The configuration could not be read, or a field is wrong: the message names the field and
/// where its value came from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Reading or parsing failed (a TOML syntax error, an unknown field, a value of the wrong
    /// type); figment's message names the field and its source (file or variable).
    #[error("{}", figment_message(.0))]
    Read(#[source] Box<figment::Error>),
    /// A field's value is not usable.
    #[error("configuration field `{field}`: {problem}")]
    Invalid {
        /// The field's path (`store.url`, `destinations[1].url_env`).
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            problem: problem.into(),
        }
    }

    /// The field the error is about, if it names one.
    pub fn field(&self) -> Option<String> {
        match self {
            ConfigError::Read(e) => (!e.path.is_empty()).then(|| e.path.join(".")),
            ConfigError::Invalid { field, .. } => Some(field.clone()),
        }
    }
}

fn figment_message(e: &figment::Error) -> String {
    let mut out = String::from("configuration");
    if !e.path.is_empty() {
        out.push_str(&format!(" field `{}`", e.path.join(".")));
    }
    out.push_str(&format!(": {}", e.kind));
    if let Some(meta) = &e.metadata {
        out.push_str(&format!(" (from {}", meta.name));
        if let Some(source) = &meta.source {
            out.push_str(&format!(", {source}"));
        }
        out.push(')');
    }
    out
}

/// The prefix of environment overrides.
pub const ENV_PREFIX: &str = "JITGATE_";

impl Config {
    /// Reads `path` (TOML), then the `JITGATE_…` environment overrides.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        Self::from_figment(Figment::new().merge(Toml::file_exact(path.as_ref())).merge(env()))
    }

    /// Reads TOML text (paths in it are relative to the working directory), then the
    /// environment overrides.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_figment(Figment::new().merge(Toml::string(text)).merge(env()))
    }

    /// Extracts a configuration from any figment (to add providers of one's own).
    ///
    /// # Errors
    /// [`ConfigError`] naming the field.
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: Self = figment.extract().map_err(|e| ConfigError::Read(Box::new(e)))?;
        config.check()?;
        Ok(config)
    }

    /// The checks that need no I/O: what is required is there, intervals make sense.
    fn check(&self) -> Result<(), ConfigError> {
        if self.policy.schema.is_none() {
            return Err(ConfigError::invalid(
                "policy.schema",
                "the Cedar schema file is required",
            ));
        }
        if self.policy.policies.is_empty() {
            return Err(ConfigError::invalid(
                "policy.policies",
                "name at least one policy file or directory",
            ));
        }
        if self.store.kind == StoreKind::Postgres && self.store.url.is_none() {
            return Err(ConfigError::invalid(
                "store.url",
                "a PostgreSQL store needs a URL (or JITGATE_STORE__URL)",
            ));
        }
        if self.store.release_streamed_audit {
            if self.store.kind != StoreKind::Memory {
                return Err(ConfigError::invalid(
                    "store.release_streamed_audit",
                    "only the memory store lets audit records go (PostgreSQL keeps its chain)",
                ));
            }
            if self.audit.stream_file.is_none() {
                return Err(ConfigError::invalid(
                    "store.release_streamed_audit",
                    "nothing streams the audit chain out: set audit.stream_file",
                ));
            }
        }
        if self.entities.refresh_every >= self.entities.max_age {
            return Err(ConfigError::invalid(
                "entities.refresh_every",
                format!(
                    "{} is not shorter than entities.max_age ({}): entities would age out between refreshes and every decision would deny",
                    humantime_serde::re::humantime::format_duration(self.entities.refresh_every),
                    humantime_serde::re::humantime::format_duration(self.entities.max_age)
                ),
            ));
        }
        for (field, every) in [
            ("policy.reload_every", self.policy.reload_every),
            ("entities.refresh_every", self.entities.refresh_every),
            ("runtime.sweep_every", self.runtime.sweep_every),
            ("delivery.poll_interval", self.delivery.poll_interval),
            ("audit.checkpoint_every", self.audit.checkpoint_every),
            ("audit.stream_every", self.audit.stream_every),
            ("store.primary_check", self.store.primary_check),
            ("store.connect_timeout", self.store.connect_timeout),
        ] {
            if every.is_zero() {
                return Err(ConfigError::invalid(field, "must be longer than zero"));
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, d) in self.destinations.iter().enumerate() {
            if d.name.is_empty() {
                return Err(ConfigError::invalid(
                    format!("destinations[{i}].name"),
                    "a destination needs a name",
                ));
            }
            if !names.insert(&d.name) {
                return Err(ConfigError::invalid(
                    format!("destinations[{i}].name"),
                    format!("`{}` is named twice", d.name),
                ));
            }
        }
        Ok(())
    }
}

/// The sections environment variables may override: `JITGATE_<SECTION>__<FIELD>`. Other
/// `JITGATE_…` variables (a test's `JITGATE_REQUIRE_POSTGRES`, say) are not configuration.
const ENV_SECTIONS: [&str; 8] = [
    "store", "policy", "entities", "gate", "limits", "delivery", "runtime", "audit",
];

fn env() -> Env {
    Env::prefixed(ENV_PREFIX)
        .filter(|key| {
            key.as_str()
                .split_once("__")
                .is_some_and(|(section, _)| ENV_SECTIONS.iter().any(|s| section.eq_ignore_ascii_case(s)))
        })
        .split("__")
}

/// A configured path, resolved against the file that named it.
pub(crate) fn resolved(path: &RelativePathBuf) -> PathBuf {
    path.relative()
}
