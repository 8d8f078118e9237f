//! How to connect, where to live, and how fresh the grant cache must be.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use crate::PgError;

/// Options of a [`PgStore`](crate::PgStore). Setters take the options by value and check
/// nothing; [`PgStore::connect`](crate::PgStore::connect) validates them all (see
/// [`PgStoreOptions::validate`]) before it touches the network.
///
/// ```
/// use std::time::Duration;
/// use jitgate_postgres::PgStoreOptions;
/// let opts = PgStoreOptions::new("postgres://postgres@127.0.0.1:5432/test")
///     .schema("jitgate")
///     .staleness_bound(Duration::from_secs(2));
/// assert_eq!(opts.schema_name(), "jitgate");
/// assert!(opts.validate().is_ok());
/// let bad = PgStoreOptions::new("postgres://[oops").schema("Drop Table");
/// assert!(bad.validate().is_err());
/// ```
///
/// Its `Debug` shows where it connects (user, host, port, database), never the password.
#[derive(Clone)]
pub struct PgStoreOptions {
    pub(crate) target: Target,
    pub(crate) schema: String,
    pub(crate) max_connections: u32,
    pub(crate) staleness_bound: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) resync_every: Duration,
    pub(crate) claim_lease: Duration,
    pub(crate) seal_wait: Duration,
    pub(crate) ephemeral: bool,
}

impl std::fmt::Debug for PgStoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = match &self.target {
            Target::Url(url) => {
                PgConnectOptions::from_str(url).map_or_else(|_| "<invalid URL>".to_owned(), |o| place(&o))
            }
            Target::Options(o) => place(o),
        };
        f.debug_struct("PgStoreOptions")
            .field("at", &at)
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("staleness_bound", &self.staleness_bound)
            .finish_non_exhaustive()
    }
}

/// `user@host:port/database`, without the password.
fn place(o: &PgConnectOptions) -> String {
    format!(
        "{}@{}:{}/{}",
        o.get_username(),
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap_or_default()
    )
}

/// Where to connect: a URL (parsed by `connect`) or ready options.
#[derive(Clone)]
pub(crate) enum Target {
    Url(String),
    Options(Box<PgConnectOptions>),
}

impl PgStoreOptions {
    /// Options for the database at `url`, schema `jitgate`, and the defaults below. The URL is
    /// parsed by [`validate`](Self::validate) (and so by `connect`).
    pub fn new(url: &str) -> Self {
        Self::with_target(Target::Url(url.to_owned()))
    }

    /// Options from ready connect options (TLS, credentials... as the host service set them).
    pub fn from_connect_options(connect: PgConnectOptions) -> Self {
        Self::with_target(Target::Options(Box::new(connect)))
    }

    fn with_target(target: Target) -> Self {
        Self {
            target,
            schema: "jitgate".into(),
            max_connections: 16,
            staleness_bound: Duration::from_secs(5),
            heartbeat: Duration::from_millis(500),
            resync_every: Duration::from_secs(300),
            claim_lease: Duration::from_secs(30),
            seal_wait: Duration::from_secs(1),
            ephemeral: false,
        }
    }

    /// The schema that holds jitgate's tables (default `jitgate`), so jitgate can live in a
    /// service's existing database: 1 to 63 of `a-z`, `0-9`, `_`, not starting with a digit
    /// (checked by [`validate`](Self::validate)).
    #[must_use]
    pub fn schema(mut self, name: &str) -> Self {
        name.clone_into(&mut self.schema);
        self
    }

    /// Checks every option and returns the connect options to use.
    ///
    /// # Errors
    /// [`PgError::InvalidUrl`], [`PgError::InvalidSchemaName`], or [`PgError::InvalidOptions`]
    /// holding every problem when there are several.
    pub fn validate(&self) -> Result<PgConnectOptions, PgError> {
        let mut problems = Vec::new();
        let connect = match &self.target {
            Target::Url(url) => PgConnectOptions::from_str(url)
                .map_err(|e| problems.push(PgError::InvalidUrl(e)))
                .ok(),
            Target::Options(o) => Some(o.as_ref().clone()),
        };
        let name = &self.schema;
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            problems.push(PgError::InvalidSchemaName { name: name.clone() });
        }
        match (connect, problems.len()) {
            (Some(connect), 0) => Ok(connect),
            (_, 1) => Err(problems.remove(0)),
            _ => Err(PgError::InvalidOptions { problems }),
        }
    }

    /// The schema name.
    pub fn schema_name(&self) -> &str {
        &self.schema
    }

    /// Pool size (default 16).
    #[must_use]
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(2);
        self
    }

    /// How old the in-process grant cache may be before `live_grants` reads the database
    /// instead (default 5 s). The cache is confirmed fresh by every change-feed catch-up.
    #[must_use]
    pub fn staleness_bound(mut self, d: Duration) -> Self {
        self.staleness_bound = d;
        self
    }

    /// How often the change feed catches up without a notification (default 500 ms); this
    /// keeps the cache confirmed fresh while nothing changes, and covers lost notifications.
    #[must_use]
    pub fn heartbeat(mut self, d: Duration) -> Self {
        self.heartbeat = d;
        self
    }

    /// How often the grant cache is rebuilt from scratch (default 5 min).
    #[must_use]
    pub fn resync_every(mut self, d: Duration) -> Self {
        self.resync_every = d;
        self
    }

    /// How long a sweep or outbox claim hides rows from other replicas (default 30 s).
    #[must_use]
    pub fn claim_lease(mut self, d: Duration) -> Self {
        self.claim_lease = d;
        self
    }

    /// How long a read of the audit chain waits for transactions that were running when it
    /// started, so that it sees what they commit (default 1 s). A transaction left open in
    /// this database holds sealing back for as long as it stays open: past this wait the read
    /// returns what is sealed, and `AuditLog::unsealed` (the verify report, the
    /// `jitgate_audit_unsealed_records` gauge) says how many entries wait and since when.
    #[must_use]
    pub fn seal_wait(mut self, d: Duration) -> Self {
        self.seal_wait = d;
        self
    }

    /// Drop the schema, with everything in it, when the store is dropped. For tests.
    #[must_use]
    pub fn ephemeral(mut self, yes: bool) -> Self {
        self.ephemeral = yes;
        self
    }
}
