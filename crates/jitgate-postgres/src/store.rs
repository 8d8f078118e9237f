//! [`PgStore`]: the `Store` trait on PostgreSQL.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jitgate_core::audit::{AuditEntry, AuditRecord};
use jitgate_core::{
    AccessRequest, AuditLog, Commit, Cursor, DueWork, EntityRef, Grant, GrantId, Listings, Outbox, OutboxEntry, Page,
    PageRequest, RequestId, Scope, Store, StoreError, Subject, Write,
};
use serde::de::DeserializeOwned;
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use crate::cache::{run_feed, Feed, GrantCache};
use crate::error::{backend, CorruptRow};
use crate::seal;
use crate::{PgError, PgStoreOptions};

/// A [`Store`] on PostgreSQL, shared by any number of replicas.
///
/// See the [crate documentation](crate) for the design. Build it with [`PgStore::connect`],
/// then call [`PgStore::migrate`] once per deployment (it is safe on every start).
pub struct PgStore {
    pool: PgPool,
    options: PgStoreOptions,
    cache: Arc<GrantCache>,
    channel: String,
    sealer: Arc<tokio::sync::Notify>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.options.schema)
            .finish_non_exhaustive()
    }
}

fn principal_key(e: &EntityRef) -> String {
    e.to_string()
}

fn scope_key(s: &Scope) -> String {
    s.to_string()
}

fn decode<T: DeserializeOwned>(row: &PgRow, column: &str, what: &str) -> Result<T, StoreError> {
    let value: serde_json::Value = row.try_get(column).map_err(backend)?;
    serde_json::from_value(value).map_err(|source| {
        backend(CorruptRow {
            what: what.to_owned(),
            source,
        })
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(v).map_err(backend)
}

fn after_uuid(page: &PageRequest) -> Result<Option<Uuid>, StoreError> {
    page.after
        .as_ref()
        .map(|c| {
            let s = c.0.rsplit('_').next().unwrap_or_default();
            Uuid::parse_str(s).map_err(|_| StoreError::InvalidCursor { cursor: c.0.clone() })
        })
        .transpose()
}

fn page_of<T>(mut items: Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> Page<T> {
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more {
        items.last().map(|t| Cursor(cursor(t)))
    } else {
        None
    };
    Page { items, next }
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}

impl PgStore {
    /// Connects a pool whose sessions use the configured schema, and starts the change feed
    /// that keeps this replica's grant cache fresh (on the current tokio runtime).
    ///
    /// # Errors
    /// [`PgError::Connect`].
    pub async fn connect(options: PgStoreOptions) -> Result<Self, PgError> {
        let connect = options
            .connect
            .clone()
            .options([("search_path", options.schema.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .connect_with(connect)
            .await
            .map_err(PgError::Connect)?;
        let cache = Arc::new(GrantCache::new(options.staleness_bound));
        let channel = format!("jitgate_grants_{}", options.schema);
        let feed = Feed {
            pool: pool.clone(),
            channel: channel.clone(),
            heartbeat: options.heartbeat,
            resync_every: options.resync_every,
        };
        let feed_task = tokio::spawn(run_feed(Arc::downgrade(&cache), feed));
        let sealer = Arc::new(tokio::sync::Notify::new());
        let seal_task = tokio::spawn(seal::run_sealer(Arc::downgrade(&sealer), pool.clone()));
        Ok(Self {
            pool,
            options,
            cache,
            channel,
            sealer,
            tasks: vec![feed_task, seal_task],
        })
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
        Ok(())
    }

    /// The connection pool (its sessions use jitgate's schema).
    pub fn pool(&self) -> &PgPool {
        &self.pool
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

    /// Runs one commit's transaction. `Ok(Err(..))` is a refusal (conflict, duplicate) after
    /// which the transaction was rolled back.
    async fn try_commit(&self, c: &Commit) -> Result<Result<bool, Refusal>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        if let Some(w) = c.request() {
            if let Some(refusal) = write_request(&mut tx, w).await? {
                return Ok(Err(refusal));
            }
        }
        let mut grant_ids: Vec<Uuid> = Vec::with_capacity(c.grants().len());
        for w in c.grants() {
            if let Some(refusal) = write_grant(&mut tx, w).await? {
                return Ok(Err(refusal));
            }
            grant_ids.push(w.value().id.0);
        }
        let reqs: Vec<Uuid> = c.audit().iter().map(|e| e.request_id.0).collect();
        let entries = c.audit().iter().map(to_json).collect::<Result<Vec<_>, _>>()?;
        let event_ids: Vec<String> = c.events().iter().map(|e| e.id.0.clone()).collect();
        let events = c.events().iter().map(to_json).collect::<Result<Vec<_>, _>>()?;
        let changed_grants = !grant_ids.is_empty();
        // One statement: the audit entries (sealed into the chain later, in commit order), the
        // events, and a NOTIFY for the change feed (sent only if the transaction commits).
        // No lock is taken: commits on any number of replicas proceed in parallel.
        sqlx::query(
            "WITH entries AS ( \
                 INSERT INTO audit_entries (request_id, entry) SELECT * FROM UNNEST($1::uuid[], $2::jsonb[])), \
             queued AS ( \
                 INSERT INTO outbox (event_id, body) SELECT * FROM UNNEST($3::text[], $4::jsonb[]) \
                 ON CONFLICT (event_id) DO NOTHING) \
             SELECT pg_notify($5, 'grants') WHERE $6",
        )
        .bind(reqs)
        .bind(entries)
        .bind(event_ids)
        .bind(events)
        .bind(&self.channel)
        .bind(changed_grants)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(Ok(changed_grants))
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
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(|r| decode(r, "body", what)).collect()
    }

    async fn live_grants_from_db(&self, principal: &EntityRef, scope: &Scope) -> Result<Vec<Grant>, StoreError> {
        let rows = sqlx::query(
            "SELECT body FROM grants WHERE principal = $1 AND scope_key = $2 AND state IN ('scheduled', 'active')",
        )
        .bind(principal_key(principal))
        .bind(scope_key(scope))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(|r| decode(r, "body", "grants")).collect()
    }
}

enum Refusal {
    Conflict {
        table: &'static str,
        id: Uuid,
        expected: u64,
    },
    DuplicatePending {
        request: RequestId,
        principal: EntityRef,
        scope: String,
    },
    Exists(Subject),
}

fn is_unique_violation(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => Some(db.constraint().unwrap_or_default().to_owned()),
        _ => None,
    }
}

async fn write_request(
    tx: &mut Transaction<'static, Postgres>,
    w: &Write<AccessRequest>,
) -> Result<Option<Refusal>, StoreError> {
    let r = w.value();
    let body = to_json(r)?;
    let result = match w {
        Write::Insert(_) => sqlx::query(
            "INSERT INTO requests (id, principal, scope_key, state, version, created_at, deadline, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(r.id.0)
        .bind(principal_key(&r.principal))
        .bind(scope_key(r.scope()))
        .bind(r.state.to_string())
        .bind(r.version as i64)
        .bind(r.created_at)
        .bind(r.deadline)
        .bind(body)
        .execute(&mut **tx)
        .await,
        Write::Update { expected_version, .. } => sqlx::query(
            "UPDATE requests SET state = $3, version = $4, body = $5, claimed_until = NULL WHERE id = $1 AND version = $2",
        )
        .bind(r.id.0)
        .bind(*expected_version as i64)
        .bind(r.state.to_string())
        .bind(r.version as i64)
        .bind(body)
        .execute(&mut **tx)
        .await,
    };
    let duplicate_pending = || Refusal::DuplicatePending {
        request: r.id,
        principal: r.principal.clone(),
        scope: scope_key(r.scope()),
    };
    refusal(result, w, ("requests", r.id.0, Subject::Request(r.id)), |constraint| {
        (constraint == "requests_one_pending").then(duplicate_pending)
    })
}

async fn write_grant(tx: &mut Transaction<'static, Postgres>, w: &Write<Grant>) -> Result<Option<Refusal>, StoreError> {
    let g = w.value();
    let body = to_json(g)?;
    let result = match w {
        Write::Insert(_) => sqlx::query(
            "INSERT INTO grants (id, request_id, principal, scope_key, state, version, not_before, expires_at, awaits_ack, body, reminded) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(g.id.0)
        .bind(g.request_id.0)
        .bind(principal_key(&g.principal))
        .bind(scope_key(&g.scope))
        .bind(g.state.to_string())
        .bind(g.version as i64)
        .bind(g.window.not_before())
        .bind(g.window.expires_at())
        .bind(g.awaits_acknowledgement())
        .bind(body)
        .bind(g.reminded_at.is_some())
        .execute(&mut **tx)
        .await,
        Write::Update { expected_version, .. } => sqlx::query(
            "UPDATE grants SET state = $3, version = $4, awaits_ack = $5, body = $6, claimed_until = NULL, \
             change_xid = pg_current_xact_id(), reminded = $7 WHERE id = $1 AND version = $2",
        )
        .bind(g.id.0)
        .bind(*expected_version as i64)
        .bind(g.state.to_string())
        .bind(g.version as i64)
        .bind(g.awaits_acknowledgement())
        .bind(body)
        .bind(g.reminded_at.is_some())
        .execute(&mut **tx)
        .await,
    };
    refusal(result, w, ("grants", g.id.0, Subject::Grant(g.id)), |_| None)
}

/// What a row write's result means: applied (`None`), refused (a lost compare-and-swap, an
/// existing id, or what `on_unique` makes of a named unique constraint), or a backend error.
fn refusal<T>(
    result: Result<sqlx::postgres::PgQueryResult, sqlx::Error>,
    w: &Write<T>,
    (table, id, what): (&'static str, Uuid, Subject),
    on_unique: impl FnOnce(&str) -> Option<Refusal>,
) -> Result<Option<Refusal>, StoreError> {
    match (result, w) {
        (Ok(done), _) if done.rows_affected() == 1 => Ok(None),
        (Ok(_), Write::Update { expected_version, .. }) => Ok(Some(Refusal::Conflict {
            table,
            id,
            expected: *expected_version,
        })),
        (Ok(_), Write::Insert(_)) => Ok(Some(Refusal::Exists(what))),
        (Err(e), _) => match is_unique_violation(&e) {
            Some(constraint) => Ok(Some(on_unique(&constraint).unwrap_or(Refusal::Exists(what)))),
            None => Err(backend(e)),
        },
    }
}

#[async_trait]
impl Store for PgStore {
    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        match self.try_commit(&commit).await? {
            Ok(changed_grants) => {
                self.sealer.notify_one();
                if changed_grants {
                    // Read-your-writes on this replica; the feed covers the others.
                    if let Err(e) = self.cache.catch_up(&self.pool).await {
                        tracing::warn!(error = %jitgate_core::ErrorChain(&e), "grant cache catch-up after commit failed");
                    }
                }
                Ok(())
            }
            Err(Refusal::Conflict { table, id, expected }) => {
                let found = self.version_of(table, id).await;
                let subject = if table == "requests" {
                    Subject::Request(RequestId(id))
                } else {
                    Subject::Grant(GrantId(id))
                };
                Err(StoreError::Conflict {
                    subject,
                    expected,
                    found,
                })
            }
            Err(Refusal::DuplicatePending {
                request,
                principal,
                scope,
            }) => {
                let existing: Option<Uuid> = sqlx::query_scalar(
                    "SELECT id FROM requests WHERE principal = $1 AND scope_key = $2 AND state = 'pending'",
                )
                .bind(principal_key(&principal))
                .bind(scope)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
                match existing {
                    Some(id) => Err(StoreError::DuplicatePending {
                        existing: RequestId(id),
                        principal,
                    }),
                    // It closed in the meantime: the caller's retry will get through.
                    None => Err(StoreError::Conflict {
                        subject: Subject::Request(request),
                        expected: 0,
                        found: None,
                    }),
                }
            }
            Err(Refusal::Exists(subject)) => Err(StoreError::AlreadyExists { subject }),
        }
    }

    async fn read_request(&self, id: RequestId) -> Result<Option<AccessRequest>, StoreError> {
        let row = sqlx::query("SELECT body FROM requests WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| decode(&r, "body", "requests")).transpose()
    }

    async fn read_grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        let row = sqlx::query("SELECT body FROM grants WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| decode(&r, "body", "grants")).transpose()
    }

    async fn live_grants(&self, principal: &EntityRef, scope: &Scope) -> Result<Vec<Grant>, StoreError> {
        if let Some(grants) = self.cache.get(principal, scope) {
            return Ok(grants);
        }
        tracing::warn!(schema = %self.options.schema, "grant cache is stale (change feed lost?); reading grants from the database");
        self.live_grants_from_db(principal, scope).await
    }

    async fn pending_request(&self, principal: &EntityRef, scope: &Scope) -> Result<Option<AccessRequest>, StoreError> {
        let row =
            sqlx::query("SELECT body FROM requests WHERE principal = $1 AND scope_key = $2 AND state = 'pending'")
                .bind(principal_key(principal))
                .bind(scope_key(scope))
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        row.map(|r| decode(&r, "body", "requests")).transpose()
    }

    fn listings(&self) -> Option<&dyn Listings> {
        Some(self)
    }

    fn due_work(&self) -> Option<&dyn DueWork> {
        Some(self)
    }

    fn outbox(&self) -> Option<&dyn Outbox> {
        Some(self)
    }

    fn audit_log(&self) -> Option<&dyn AuditLog> {
        Some(self)
    }
}

#[async_trait]
impl Listings for PgStore {
    async fn live_grants_of(&self, principal: &EntityRef, page: &PageRequest) -> Result<Page<Grant>, StoreError> {
        let after = after_uuid(page)?.unwrap_or(Uuid::nil());
        let rows = sqlx::query(
            "SELECT body FROM grants WHERE principal = $1 AND state IN ('scheduled', 'active') AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(principal_key(principal))
        .bind(after)
        .bind(limit_param(page.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let items = rows
            .iter()
            .map(|r| decode(r, "body", "grants"))
            .collect::<Result<Vec<Grant>, _>>()?;
        Ok(page_of(items, page.limit, |g| g.id.to_string()))
    }

    async fn pending_requests(&self, page: &PageRequest) -> Result<Page<AccessRequest>, StoreError> {
        let rows = match after_uuid(page)? {
            None => sqlx::query("SELECT body FROM requests WHERE state = 'pending' ORDER BY created_at, id LIMIT $1")
                .bind(limit_param(page.limit))
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?,
            Some(after) => {
                let anchor: Option<DateTime<Utc>> = sqlx::query_scalar("SELECT created_at FROM requests WHERE id = $1")
                    .bind(after)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(backend)?;
                let Some(created_at) = anchor else {
                    return Err(StoreError::InvalidCursor {
                        cursor: after.to_string(),
                    });
                };
                sqlx::query(
                    "SELECT body FROM requests WHERE state = 'pending' AND (created_at, id) > ($1, $2) \
                     ORDER BY created_at, id LIMIT $3",
                )
                .bind(created_at)
                .bind(after)
                .bind(limit_param(page.limit))
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?
            }
        };
        let items = rows
            .iter()
            .map(|r| decode(r, "body", "requests"))
            .collect::<Result<Vec<AccessRequest>, _>>()?;
        Ok(page_of(items, page.limit, |r| r.id.to_string()))
    }

    async fn unacknowledged_break_glass(&self, page: &PageRequest) -> Result<Page<Grant>, StoreError> {
        let after = after_uuid(page)?.unwrap_or(Uuid::nil());
        let rows = sqlx::query("SELECT body FROM grants WHERE awaits_ack AND id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit_param(page.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let items = rows
            .iter()
            .map(|r| decode(r, "body", "grants"))
            .collect::<Result<Vec<Grant>, _>>()?;
        Ok(page_of(items, page.limit, |g| g.id.to_string()))
    }
}

#[async_trait]
impl DueWork for PgStore {
    async fn due_requests(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<AccessRequest>, StoreError> {
        self.claim(
            "UPDATE requests SET claimed_until = clock_timestamp() + $3 WHERE id IN ( \
                 SELECT id FROM requests WHERE state = 'pending' AND deadline <= $1 \
                 AND (claimed_until IS NULL OR claimed_until < clock_timestamp()) \
                 ORDER BY deadline LIMIT $2 FOR UPDATE SKIP LOCKED) \
             RETURNING body",
            now,
            limit,
            "requests",
        )
        .await
    }

    async fn due_grants(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Grant>, StoreError> {
        self.claim(
            "UPDATE grants SET claimed_until = clock_timestamp() + $3 WHERE id IN ( \
                 SELECT id FROM grants WHERE state IN ('scheduled', 'active') \
                 AND (expires_at <= $1 OR (state = 'scheduled' AND not_before <= $1)) \
                 AND (claimed_until IS NULL OR claimed_until < clock_timestamp()) \
                 ORDER BY least(expires_at, not_before) LIMIT $2 FOR UPDATE SKIP LOCKED) \
             RETURNING body",
            now,
            limit,
            "grants",
        )
        .await
    }

    async fn due_reminders(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Grant>, StoreError> {
        self.claim(
            "UPDATE grants SET claimed_until = clock_timestamp() + $3 WHERE id IN ( \
                 SELECT id FROM grants WHERE state = 'active' AND NOT reminded AND expires_at <= $1 \
                 AND (claimed_until IS NULL OR claimed_until < clock_timestamp()) \
                 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
             RETURNING body",
            before,
            limit,
            "grants",
        )
        .await
    }
}

#[async_trait]
impl Outbox for PgStore {
    async fn claim(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(
            "UPDATE outbox SET claimed_until = clock_timestamp() + $2 WHERE seq IN ( \
                 SELECT seq FROM outbox WHERE done_at IS NULL AND dead_at IS NULL \
                 AND (next_attempt_at IS NULL OR next_attempt_at <= $3) \
                 AND (claimed_until IS NULL OR claimed_until < clock_timestamp()) \
                 ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING seq, body, attempts, last_error",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(self.options.claim_lease)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let mut out = rows.iter().map(outbox_entry).collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by_key(|e| e.seq);
        Ok(out)
    }

    async fn retry(
        &self,
        seq: u64,
        attempts: u32,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET attempts = $2, next_attempt_at = $3, last_error = $4, claimed_until = NULL WHERE seq = $1",
        )
        .bind(seq as i64)
        .bind(attempts as i32)
        .bind(next_attempt_at)
        .bind(error)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn park(&self, seq: u64, attempts: u32, error: &str, audit: AuditEntry) -> Result<(), StoreError> {
        let entry = to_json(&audit)?;
        sqlx::query(
            "WITH parked AS ( \
                 UPDATE outbox SET attempts = $2, last_error = $3, dead_at = clock_timestamp(), claimed_until = NULL \
                 WHERE seq = $1 AND dead_at IS NULL RETURNING seq) \
             INSERT INTO audit_entries (request_id, entry) SELECT $4, $5 FROM parked",
        )
        .bind(seq as i64)
        .bind(attempts as i32)
        .bind(error)
        .bind(audit.request_id.0)
        .bind(entry)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        self.sealer.notify_one();
        Ok(())
    }

    async fn dead(&self, page: &PageRequest) -> Result<Page<OutboxEntry>, StoreError> {
        let after: i64 = match &page.after {
            None => 0,
            Some(c) => {
                c.0.parse()
                    .map_err(|_| StoreError::InvalidCursor { cursor: c.0.clone() })?
            }
        };
        let rows = sqlx::query(
            "SELECT seq, body, attempts, last_error FROM outbox WHERE dead_at IS NOT NULL AND seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit_param(page.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let items = rows.iter().map(outbox_entry).collect::<Result<Vec<_>, StoreError>>()?;
        Ok(page_of(items, page.limit, |e| e.seq.to_string()))
    }

    async fn mark_done(&self, seqs: &[u64]) -> Result<(), StoreError> {
        let seqs: Vec<i64> = seqs.iter().map(|s| *s as i64).collect();
        sqlx::query("UPDATE outbox SET done_at = clock_timestamp() WHERE seq = ANY($1)")
            .bind(seqs)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl AuditLog for PgStore {
    async fn request_records(&self, id: RequestId, page: &PageRequest) -> Result<Page<AuditRecord>, StoreError> {
        seal::seal_committed(&self.pool).await.map_err(backend)?;
        let after: i64 = match &page.after {
            None => 0,
            Some(c) => {
                c.0.parse()
                    .map_err(|_| StoreError::InvalidCursor { cursor: c.0.clone() })?
            }
        };
        let rows = sqlx::query(
            "SELECT seq, prev_hash, hash, entry FROM audit WHERE request_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(id.0)
        .bind(after)
        .bind(limit_param(page.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let items = rows.iter().map(audit_record).collect::<Result<Vec<_>, _>>()?;
        Ok(page_of(items, page.limit, |r| r.seq.to_string()))
    }

    async fn records(&self, after_seq: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        seal::seal_committed(&self.pool).await.map_err(backend)?;
        let rows = sqlx::query("SELECT seq, prev_hash, hash, entry FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(i64::try_from(after_seq).unwrap_or(i64::MAX))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(audit_record).collect()
    }
}

fn outbox_entry(row: &PgRow) -> Result<OutboxEntry, StoreError> {
    let seq: i64 = row.try_get("seq").map_err(backend)?;
    let attempts: i32 = row.try_get("attempts").map_err(backend)?;
    Ok(OutboxEntry {
        seq: seq as u64,
        event: decode(row, "body", "outbox")?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        last_error: row.try_get("last_error").map_err(backend)?,
    })
}

fn audit_record(row: &PgRow) -> Result<AuditRecord, StoreError> {
    let seq: i64 = row.try_get("seq").map_err(backend)?;
    Ok(AuditRecord {
        seq: seq as u64,
        prev_hash: row.try_get("prev_hash").map_err(backend)?,
        hash: row.try_get("hash").map_err(backend)?,
        entry: decode(row, "entry", "audit")?,
    })
}

impl Drop for PgStore {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if !self.options.ephemeral {
            return;
        }
        // Tests' throw-away schemas: drop them on a thread of its own, since Drop cannot await
        // and the runtime that owns the pool may be shutting down.
        let connect = self.options.connect.clone();
        let drop_sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.options.schema);
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                use sqlx::Connection;
                // Connections of the aborted tasks may still hold locks for a moment: retry.
                for _ in 0..20 {
                    if let Ok(mut conn) = sqlx::PgConnection::connect_with(&connect).await {
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
