//! [`PgStore`]: the `Store` trait and its capabilities on PostgreSQL.
//!
//! - `commit`: `Store::commit` and the core reads (`Store`); `single`: a commit as one
//!   statement;
//! - `reads`: listings and the audit log (`Listings`, `AuditLog`);
//! - `claims`: work shared by replicas with `SKIP LOCKED` leases (`DueWork`, `Outbox`);
//! - `codec`: rows to and from jitgate's types, keys, and the one pagination helper.

/// The CTEs every commit statement carries: its audit entries (sealed into the chain later)
/// and its outbox rows, bound as `$1`–`$4`, `$7` and `$8` ([`commit::AuditRows::bind`]).
macro_rules! audit_ctes {
    () => {
        "entries AS ( \
             INSERT INTO audit_entries (request_id, entry, digest) \
             SELECT * FROM UNNEST($1::uuid[], $2::jsonb[], $7::text[])), \
         queued AS ( \
             INSERT INTO outbox (event_id, body, destination) SELECT * FROM UNNEST($3::text[], $4::jsonb[], $8::text[]) \
             ON CONFLICT (event_id, destination) DO NOTHING)"
    };
}

mod claims;
mod codec;
mod commit;
mod reads;
mod single;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jitgate_core::{EntityRef, Grant, Scope, StoreError};
use serde::de::DeserializeOwned;
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};
use uuid::Uuid;

use self::codec::{decode, principal_key, scope_key};
use crate::cache::{run_feed, Feed, GrantCache};
use crate::error::backend;
use crate::primary::{run_watch, Primary};
use crate::seal;
use crate::{PgError, PgStoreOptions};

/// A [`Store`](jitgate_core::Store) on PostgreSQL, shared by any number of replicas.
///
/// See the [crate documentation](crate) for the design. Build it with [`PgStore::connect`],
/// then call [`PgStore::migrate`] once per deployment (it is safe on every start).
pub struct PgStore {
    pool: PgPool,
    options: PgStoreOptions,
    cache: Arc<GrantCache>,
    channel: String,
    /// This replica's payload on the change feed's channel.
    origin: String,
    sealer: Arc<tokio::sync::Notify>,
    /// The server written to, among the configured hosts, and its watcher.
    primary: Arc<Primary>,
    watcher: tokio::task::JoinHandle<()>,
    /// The change feed and the sealer: started once jitgate's tables exist (at connect, or
    /// after `migrate`), never before.
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Commits refused in one statement and run again step by step.
    stepwise: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.options.schema)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects a pool whose sessions use the configured schema, on the first of the
    /// configured hosts that accepts writes, and starts (on the current tokio runtime) the
    /// watcher that finds the writable one again after a failover. If jitgate's tables exist,
    /// also starts the change feed that keeps this replica's grant cache fresh and the audit
    /// sealer; otherwise they start when [`PgStore::migrate`] has created them, so a fresh
    /// deployment logs no errors about missing tables.
    ///
    /// # Errors
    /// [`PgError::NoWritableServer`] (saying what each host answered), [`PgError::Connect`];
    /// [`PgError::Query`] if the schema cannot be inspected.
    pub async fn connect(options: PgStoreOptions) -> Result<Self, PgError> {
        let origin = uuid::Uuid::new_v4().simple().to_string();
        let hosts = options
            .validate()?
            .into_iter()
            .map(|h| {
                // Every statement of the store finds its rows by a key or an index; without
                // `enable_seqscan = off`, the generic plans a session makes while the tables
                // are new or small scan `grants` whole and keep doing so as it grows, until
                // autovacuum first analyzes it (docs/PERFORMANCE.md, "What a life cycle
                // writes"). A scan still runs where no index serves (the setting only prices
                // it last).
                let h = h.options([("search_path", options.schema.as_str()), ("enable_seqscan", "off")]);
                // A throw-away store names its sessions, so that dropping it can end them.
                if options.ephemeral {
                    h.application_name(&ephemeral_name(&origin))
                } else {
                    h
                }
            })
            .collect();
        let primary = Arc::new(Primary::new(hosts, options.connect_timeout));
        let (at, watched) = primary.find().await.map_err(|e| PgError::NoWritableServer {
            tried: e
                .tried
                .into_iter()
                .map(|(host, why)| format!("{host} ({why})"))
                .collect(),
        })?;
        primary.settled_at(at);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.connect_timeout)
            .connect_with(primary.current().clone())
            .await
            .map_err(PgError::Connect)?;
        let watcher = tokio::spawn(run_watch(
            Arc::downgrade(&primary),
            pool.clone(),
            options.primary_check,
            watched,
        ));
        let cache = Arc::new(GrantCache::new(options.staleness_bound));
        let channel = format!("jitgate_grants_{}", options.schema);
        let store = Self {
            pool,
            options,
            cache,
            channel,
            origin,
            sealer: Arc::new(tokio::sync::Notify::new()),
            primary,
            watcher,
            tasks: std::sync::Mutex::new(Vec::new()),
            stepwise: std::sync::atomic::AtomicU64::new(0),
        };
        if store.migrated().await? {
            store.start_background();
        } else {
            tracing::info!(
                schema = %store.options.schema,
                "jitgate's tables do not exist yet: the change feed and the audit sealer start after migrate()"
            );
        }
        Ok(store)
    }

    /// Whether jitgate's tables exist in the store's schema.
    async fn migrated(&self) -> Result<bool, PgError> {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'audit_head')",
        )
        .bind(&self.options.schema)
        .fetch_one(&self.pool)
        .await
        .map_err(PgError::Query)
    }

    /// Starts the change feed and the sealer, once.
    fn start_background(&self) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if !tasks.is_empty() {
            return;
        }
        let feed = Feed {
            pool: self.pool.clone(),
            channel: self.channel.clone(),
            origin: self.origin.clone(),
            heartbeat: self.options.heartbeat,
            resync_every: self.options.resync_every,
            primary: Arc::downgrade(&self.primary),
        };
        tasks.push(tokio::spawn(run_feed(Arc::downgrade(&self.cache), feed)));
        tasks.push(tokio::spawn(seal::run_sealer(
            Arc::downgrade(&self.sealer),
            self.pool.clone(),
        )));
    }

    /// Whether the change feed and the audit sealer run (they start once jitgate's tables
    /// exist). For health checks.
    pub fn background_running(&self) -> bool {
        let tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        !tasks.is_empty() && tasks.iter().all(|t| !t.is_finished()) && !self.watcher.is_finished()
    }

    /// Whether the server this store writes to answered its last check (see
    /// [`PgStoreOptions::primary_check`]). While it is `false`, verbs fail with
    /// [`StoreError::Unavailable`] and the store looks for a writable server. For health checks.
    pub fn writable(&self) -> bool {
        self.primary.available()
    }

    /// The server this store writes to now, as `host:port`.
    pub fn server(&self) -> String {
        crate::primary::address(self.primary.current())
    }

    /// How many times this store moved to another server (a failover, or a switchover). For
    /// metrics.
    pub fn server_switches(&self) -> u64 {
        self.primary.switches()
    }

    /// The pool, or [`StoreError::Unavailable`] at once while the server is known to be down,
    /// so that verbs do not wait on connections that cannot be made.
    fn db(&self) -> Result<&PgPool, StoreError> {
        if self.primary.available() {
            return Ok(&self.pool);
        }
        Err(StoreError::Unavailable(
            format!(
                "no writable PostgreSQL server since {} stopped answering; looking for one",
                self.server()
            )
            .into(),
        ))
    }

    /// `e`, after asking the watcher to check the server if `e` says it could not be reached.
    fn noticed(&self, e: StoreError) -> StoreError {
        if matches!(e, StoreError::Unavailable(_)) {
            self.primary.suspect();
        }
        e
    }

    /// Creates the schema if needed and applies the migrations not yet applied. Replicas may
    /// call it at the same time: the migrator takes an advisory lock.
    ///
    /// # Errors
    /// [`PgError::Query`] or [`PgError::Migrate`].
    pub async fn migrate(&self) -> Result<(), PgError> {
        // The schema name was validated as a plain identifier when the options were built.
        let create = format!("CREATE SCHEMA IF NOT EXISTS \"{}\"", self.options.schema);
        sqlx::query(AssertSqlSafe(create))
            .execute(&self.pool)
            .await
            .map_err(PgError::Query)?;
        let mut migrator = sqlx::migrate!("./migrations");
        migrator.dangerous_set_table_name(format!("\"{}\"._sqlx_migrations", self.options.schema));
        migrator.run(&self.pool).await.map_err(PgError::Migrate)?;
        self.start_background();
        Ok(())
    }

    /// The SQL [`PgStore::migrate`] would run on an empty `schema`, for a database administrator
    /// to review and apply by hand (`jitgate migrate --print`): the schema, every migration in
    /// order, and the rows of the migrator's own table that record them, so a later `migrate`
    /// finds them applied. `schema` must be a plain identifier (as [`PgStoreOptions::schema`]
    /// requires).
    pub fn migration_sql(schema: &str) -> String {
        use std::fmt::Write as _;
        let migrator = sqlx::migrate!("./migrations");
        let mut out = format!(
            "-- jitgate migrations for the schema \"{schema}\": run in one session, in order.\n\
             BEGIN;\nCREATE SCHEMA IF NOT EXISTS \"{schema}\";\nSET LOCAL search_path TO \"{schema}\";\n\
             CREATE TABLE IF NOT EXISTS _sqlx_migrations (\n    version BIGINT PRIMARY KEY,\n    description TEXT NOT NULL,\n    \
             installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),\n    success BOOLEAN NOT NULL,\n    checksum BYTEA NOT NULL,\n    \
             execution_time BIGINT NOT NULL\n);\n"
        );
        for m in migrator.iter() {
            let _ = write!(
                out,
                "\n-- {:04} {}\n{}\nINSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                 VALUES ({}, '{}', true, '\\x{}', 0);\n",
                m.version,
                m.description,
                m.sql.as_str().trim_end(),
                m.version,
                m.description.replace('\'', "''"),
                m.checksum.iter().map(|b| format!("{b:02x}")).collect::<String>()
            );
        }
        out.push_str("COMMIT;\n");
        out
    }

    /// The connection pool (its sessions use jitgate's schema).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// How many commits were refused as one statement (a version found changed, or a
    /// duplicate) and run again step by step in a transaction, which names the refusal: the
    /// store's conflicts and duplicates. For metrics.
    pub fn stepwise_commits(&self) -> u64 {
        self.stepwise.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many times this replica's grant cache has caught up with the database: on every
    /// heartbeat, when another replica's commit notified it, and after one of its own commits
    /// that two catch-ups overlapped (its own commits otherwise go into the cache directly).
    /// For metrics.
    pub fn grant_cache_catch_ups(&self) -> u64 {
        self.cache.catch_ups()
    }

    /// Whether this replica's grant cache is confirmed fresh (caught up within the staleness
    /// bound). While it is not, `authorize` reads grants from the database. For health checks.
    pub fn grant_cache_fresh(&self) -> bool {
        self.cache.is_fresh()
    }

    /// The schema this store lives in.
    pub fn schema(&self) -> &str {
        &self.options.schema
    }

    async fn version_of(&self, table: &'static str, id: Uuid) -> Option<u64> {
        let sql = match table {
            "requests" => "SELECT version FROM requests WHERE id = $1",
            _ => "SELECT version FROM grants WHERE id = $1",
        };
        let v: Option<i64> = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .ok()
            .flatten();
        v.and_then(|v| u64::try_from(v).ok())
    }

    /// Claims rows with a claim query taking `$1` a time, `$2` a limit and `$3` the lease, and
    /// returning `body` (see the sweep and reminder methods).
    async fn claim<T: DeserializeOwned>(
        &self,
        sql: &'static str,
        at: DateTime<Utc>,
        limit: usize,
        what: &str,
    ) -> Result<Vec<T>, StoreError> {
        let rows = sqlx::query(sql)
            .bind(at)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(self.options.claim_lease)
            .fetch_all(self.db()?)
            .await
            .map_err(backend)?;
        rows.iter().map(|r| decode(r, "body", what)).collect()
    }

    async fn live_grants_from_db(&self, principal: &EntityRef, scope: &Scope) -> Result<Vec<Arc<Grant>>, StoreError> {
        let rows = sqlx::query(
            "SELECT body FROM grants WHERE principal = $1 AND scope_key = $2 AND state IN ('scheduled', 'active')",
        )
        .bind(principal_key(principal))
        .bind(scope_key(scope))
        .fetch_all(self.db()?)
        .await
        .map_err(backend)?;
        rows.iter().map(|r| decode(r, "body", "grants").map(Arc::new)).collect()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.watcher.abort();
        for task in self.tasks.get_mut().unwrap_or_else(|p| p.into_inner()).iter() {
            task.abort();
        }
        if !self.options.ephemeral {
            return;
        }
        // Tests' throw-away schemas: drop them on a thread of its own, since Drop cannot await
        // and the runtime that owns the pool may be shutting down.
        let connect = self
            .primary
            .current()
            .clone()
            .application_name("jitgate-ephemeral-drop");
        let drop_sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.options.schema);
        let sessions = ephemeral_name(&self.origin);
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                use sqlx::Connection;
                // Connections of the aborted tasks may still hold locks for a moment: retry.
                for _ in 0..20 {
                    if let Ok(mut conn) = sqlx::PgConnection::connect_with(&connect).await {
                        // The aborted tasks may have left a session in a transaction (their
                        // runtime may never run again to roll it back): end this store's
                        // sessions first, and never wait for a lock for long.
                        let _ = sqlx::query(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                             WHERE application_name = $1 AND pid <> pg_backend_pid()",
                        )
                        .bind(&sessions)
                        .execute(&mut conn)
                        .await;
                        let _ = sqlx::query("SET lock_timeout = '5s'").execute(&mut conn).await;
                        let done = sqlx::query(AssertSqlSafe(drop_sql.clone()))
                            .execute(&mut conn)
                            .await
                            .is_ok();
                        let _ = conn.close().await;
                        if done {
                            return;
                        }
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            });
        });
        let _ = done.join();
    }
}

/// The `application_name` of a throw-away store's sessions.
fn ephemeral_name(origin: &str) -> String {
    format!("jitgate-ephemeral-{origin}")
}
