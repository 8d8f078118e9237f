//! How to connect (to one server, or to the writable one of several), where to live, and how
//! fresh the grant cache must be.

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
/// Its `Debug` shows where it connects (user, hosts, database), never the password.
///
/// ## Several servers (a primary and its standbys)
///
/// A URL may name several hosts, as libpq's do:
/// `postgres://app@db1:5432,db2:5432/jit?target_session_attrs=read-write`. The store connects
/// to the one that accepts writes (`pg_is_in_recovery()` is false), watches it, and when it
/// stops answering or turns read-only, looks for the writable one again, with backoff (see
/// [`PgStoreOptions::primary_check`]). Meanwhile verbs fail with
/// [`StoreError::Unavailable`](jitgate_core::StoreError::Unavailable). jitgate writes, so
/// `target_session_attrs`, if given, must be `read-write` or `primary`.
///
/// ```
/// use jitgate_postgres::PgStoreOptions;
/// let opts = PgStoreOptions::new("postgres://app@db1:5432,db2:5433/jit?target_session_attrs=read-write");
/// let hosts = opts.validate().unwrap();
/// assert_eq!(hosts.len(), 2);
/// assert_eq!((hosts[1].get_host(), hosts[1].get_port()), ("db2", 5433));
/// assert!(PgStoreOptions::new("postgres://db1,db2/jit?target_session_attrs=read-only").validate().is_err());
/// ```
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
    pub(crate) primary_check: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) ephemeral: bool,
}

impl std::fmt::Debug for PgStoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = match self.hosts() {
            Ok(hosts) => hosts.iter().map(place).collect::<Vec<_>>().join(", "),
            Err(_) => "<invalid URL>".to_owned(),
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

/// Where to connect: a URL (parsed by `connect`) or ready options, one per server.
#[derive(Clone)]
pub(crate) enum Target {
    Url(String),
    Options(Vec<PgConnectOptions>),
}

/// The URL of each host of a libpq-style URL (`scheme://[userinfo@]h1[:p1],h2[:p2]/rest`),
/// without `target_session_attrs` (checked here: jitgate needs a writable server).
fn host_urls(url: &str) -> Result<Vec<String>, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "a PostgreSQL URL starts with postgres:// or postgresql://".to_owned())?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("target_session_attrs", "read-write" | "primary")) => {}
            Some(("target_session_attrs", other)) => {
                return Err(format!(
                    "target_session_attrs={other}: jitgate writes, so it needs `read-write` (or `primary`)"
                ))
            }
            _ => kept.push(pair),
        }
    }
    let query = if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    };
    hosts
        .split(',')
        .map(|host| {
            if host.is_empty() && hosts.contains(',') {
                Err(format!("an empty host in the host list `{hosts}`"))
            } else {
                Ok(format!("{scheme}://{userinfo}{host}{path}{query}"))
            }
        })
        .collect()
}

impl PgStoreOptions {
    /// Options for the database at `url`, schema `jitgate`, and the defaults below. The URL is
    /// parsed by [`validate`](Self::validate) (and so by `connect`).
    pub fn new(url: &str) -> Self {
        Self::with_target(Target::Url(url.to_owned()))
    }

    /// Options from ready connect options (TLS, credentials... as the host service set them).
    pub fn from_connect_options(connect: PgConnectOptions) -> Self {
        Self::with_target(Target::Options(vec![connect]))
    }

    /// Options for a primary and its standbys, each with ready connect options, in the order to
    /// try them: the store uses whichever accepts writes (see [Several servers](Self#several-servers-a-primary-and-its-standbys)).
    pub fn from_hosts(hosts: impl IntoIterator<Item = PgConnectOptions>) -> Self {
        Self::with_target(Target::Options(hosts.into_iter().collect()))
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
            primary_check: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(5),
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

    /// Checks every option and returns the connect options of each server, in the order the
    /// store tries them.
    ///
    /// # Errors
    /// [`PgError::InvalidUrl`], [`PgError::InvalidSchemaName`], or [`PgError::InvalidOptions`]
    /// holding every problem when there are several.
    pub fn validate(&self) -> Result<Vec<PgConnectOptions>, PgError> {
        let mut problems = Vec::new();
        let connect = self.hosts().map_err(|e| problems.push(e)).ok();
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

    /// The connect options of each server, parsed from the URL.
    fn hosts(&self) -> Result<Vec<PgConnectOptions>, PgError> {
        let hosts = match &self.target {
            Target::Url(url) => host_urls(url)
                .map_err(|e| PgError::InvalidUrl(sqlx::Error::Configuration(e.into())))?
                .iter()
                .map(|u| PgConnectOptions::from_str(u).map_err(PgError::InvalidUrl))
                .collect::<Result<Vec<_>, _>>()?,
            Target::Options(hosts) => hosts.clone(),
        };
        if hosts.is_empty() {
            return Err(PgError::InvalidUrl(sqlx::Error::Configuration(
                "no host to connect to".into(),
            )));
        }
        Ok(hosts)
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

    /// How often the store checks that the server it writes to is still up and writable
    /// (default 500 ms; a failed statement or a lost change feed checks at once). When it is
    /// not, the store looks through its hosts for the one that is, with backoff; until it finds
    /// one, verbs fail with [`StoreError::Unavailable`](jitgate_core::StoreError::Unavailable)
    /// and `authorize` answers from the grant cache only while its last catch-up is within the
    /// [staleness bound](Self::staleness_bound), then denies. At least 10 ms.
    #[must_use]
    pub fn primary_check(mut self, d: Duration) -> Self {
        self.primary_check = d.max(Duration::from_millis(10));
        self
    }

    /// How long to wait for a server to accept a connection, and for a pooled connection
    /// (default 5 s). At least 10 ms.
    #[must_use]
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d.max(Duration::from_millis(10));
        self
    }

    /// Drop the schema, with everything in it, when the store is dropped. For tests.
    #[must_use]
    pub fn ephemeral(mut self, yes: bool) -> Self {
        self.ephemeral = yes;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_naming_several_hosts_gives_one_set_of_options_per_host() {
        let opts = PgStoreOptions::new(
            "postgres://app:secret@db1:5432,db2,[::1]:5434/jit?sslmode=disable&target_session_attrs=read-write&application_name=svc",
        );
        let hosts = opts.validate().unwrap();
        let at: Vec<(String, u16)> = hosts.iter().map(|h| (h.get_host().to_owned(), h.get_port())).collect();
        let expected = [("db1", 5432), ("db2", 5432), ("[::1]", 5434)].map(|(h, p)| (h.to_owned(), p));
        assert_eq!(at, expected);
        for h in &hosts {
            assert_eq!(h.get_username(), "app");
            assert_eq!(h.get_database(), Some("jit"));
            assert_eq!(h.get_application_name(), Some("svc"));
        }
        let shown = format!("{opts:?}");
        assert!(shown.contains("app@db1:5432/jit, app@db2:5432/jit"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
        // One host, as before; `primary` is libpq's other name for a writable server.
        assert_eq!(
            PgStoreOptions::new("postgres://db/jit?target_session_attrs=primary")
                .validate()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_read_only_target_or_an_empty_host_is_refused_before_connecting() {
        for (url, says) in [
            (
                "postgres://db1,db2/jit?target_session_attrs=read-only",
                "needs `read-write`",
            ),
            (
                "postgres://db1,db2/jit?target_session_attrs=standby",
                "needs `read-write`",
            ),
            ("postgres://db1,,db2/jit", "an empty host"),
            ("db1,db2/jit", "starts with postgres://"),
        ] {
            let e = PgStoreOptions::new(url).validate().unwrap_err();
            let chain = jitgate_core::ErrorChain(&e).to_string();
            assert!(matches!(e, PgError::InvalidUrl(_)), "{url}: {chain}");
            assert!(chain.contains(says), "{url}: {chain}");
        }
        let none = PgStoreOptions::from_hosts([]).validate().unwrap_err();
        assert!(
            jitgate_core::ErrorChain(&none).to_string().contains("no host"),
            "{none}"
        );
    }

    #[test]
    fn intervals_have_a_floor() {
        let o = PgStoreOptions::new("postgres://db/jit")
            .primary_check(Duration::ZERO)
            .connect_timeout(Duration::ZERO);
        assert_eq!(
            (o.primary_check, o.connect_timeout),
            (Duration::from_millis(10), Duration::from_millis(10))
        );
    }
}
