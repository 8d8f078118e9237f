//! How to connect, where to live, and how fresh the grant cache must be.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use crate::PgError;

/// Options of a [`PgStore`](crate::PgStore).
///
/// ```
/// use std::time::Duration;
/// use jitgate_postgres::PgStoreOptions;
/// let opts = PgStoreOptions::new("postgres://postgres@127.0.0.1:5432/test")
///     .unwrap()
///     .schema("jitgate")
///     .unwrap()
///     .staleness_bound(Duration::from_secs(2));
/// assert_eq!(opts.schema_name(), "jitgate");
/// ```
#[derive(Clone, Debug)]
pub struct PgStoreOptions {
    pub(crate) connect: PgConnectOptions,
    pub(crate) schema: String,
    pub(crate) max_connections: u32,
    pub(crate) staleness_bound: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) resync_every: Duration,
    pub(crate) claim_lease: Duration,
    pub(crate) ephemeral: bool,
}

impl PgStoreOptions {
    /// Options for the database at `url`, schema `jitgate`, and the defaults below.
    ///
    /// # Errors
    /// [`PgError::InvalidUrl`].
    pub fn new(url: &str) -> Result<Self, PgError> {
        Ok(Self::from_connect_options(
            PgConnectOptions::from_str(url).map_err(PgError::InvalidUrl)?,
        ))
    }

    /// Options from ready connect options (TLS, credentials... as the host service set them).
    pub fn from_connect_options(connect: PgConnectOptions) -> Self {
        Self {
            connect,
            schema: "jitgate".into(),
            max_connections: 16,
            staleness_bound: Duration::from_secs(5),
            heartbeat: Duration::from_millis(500),
            resync_every: Duration::from_secs(300),
            claim_lease: Duration::from_secs(30),
            ephemeral: false,
        }
    }

    /// The schema that holds jitgate's tables (default `jitgate`), so jitgate can live in a
    /// service's existing database.
    ///
    /// # Errors
    /// [`PgError::InvalidSchemaName`] unless it is 1 to 63 of `a-z`, `0-9`, `_`, not starting with a digit.
    pub fn schema(mut self, name: &str) -> Result<Self, PgError> {
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(PgError::InvalidSchemaName { name: name.to_owned() });
        }
        self.schema = name.to_owned();
        Ok(self)
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

    /// Drop the schema, with everything in it, when the store is dropped. For tests.
    #[must_use]
    pub fn ephemeral(mut self, yes: bool) -> Self {
        self.ephemeral = yes;
        self
    }
}
