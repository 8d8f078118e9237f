//! `Store::commit` (one statement, see `single`; step by step in a transaction when refused) and
//! the core reads.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jitgate_core::{
    AccessRequest, AuditLog, Commit, DueWork, EntityRef, Event, Grant, GrantId, Listings, Outbox, PrincipalCounts,
    RequestId, Scope, Store, StoreError, Subject, Write,
};
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use super::codec::{decode, decode_optional, principal_key, scope_key, to_json};
use super::PgStore;
use crate::error::backend;

impl PgStore {
    /// Runs one commit's transaction. `Ok(Err(..))` is a refusal (conflict, duplicate) after
    /// which the transaction was rolled back.
    async fn try_commit(&self, c: &Commit) -> Result<Result<bool, Refusal>, StoreError> {
        let mut tx = self.db()?.begin().await.map_err(backend)?;
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
        let audit = AuditRows::of(c)?;
        let changed_grants = !grant_ids.is_empty();
        // One statement: the audit entries (sealed into the chain later, in commit order), the
        // events, and a NOTIFY for the change feed (sent only if the transaction commits).
        // No lock is taken: commits on any number of replicas proceed in parallel.
        let statement = sqlx::query(concat!("WITH ", audit_ctes!(), " SELECT pg_notify($5, $9) WHERE $6"));
        audit
            .bind(statement, self, changed_grants)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(Ok(changed_grants))
    }
}

/// A commit's audit entries and outbox rows, as the arrays its statement binds (the events
/// serialized straight from the commit when bound).
pub(super) struct AuditRows<'a> {
    pub(super) requests: Vec<Uuid>,
    pub(super) entries: Vec<serde_json::Value>,
    pub(super) digests: Vec<Option<String>>,
    pub(super) event_ids: Vec<String>,
    pub(super) events: Vec<Json<&'a Event>>,
    pub(super) destinations: Vec<String>,
}

impl<'a> AuditRows<'a> {
    /// Binds `$1`–`$9` of a commit statement: these rows ([`audit_ctes!`]), and the change
    /// feed's channel (`$5`), whether grants changed (`$6`, the `NOTIFY`'s condition) and this
    /// replica's payload (`$9`).
    pub(super) fn bind<'q>(
        self,
        statement: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
        store: &'q PgStore,
        changed_grants: bool,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>
    where
        'a: 'q,
    {
        statement
            .bind(self.requests)
            .bind(self.entries)
            .bind(self.event_ids)
            .bind(self.events)
            .bind(&store.channel)
            .bind(changed_grants)
            .bind(self.digests)
            .bind(self.destinations)
            .bind(&store.origin)
    }

    pub(super) fn of(c: &'a Commit) -> Result<Self, StoreError> {
        let entries = c.audit().iter().map(to_json).collect::<Result<Vec<_>, _>>()?;
        let rows = c.outbox_rows();
        Ok(Self {
            requests: c.audit().iter().map(|e| e.request_id.0).collect(),
            digests: entries.iter().map(jitgate_core::audit::canonical_hash).collect(),
            entries,
            event_ids: rows.iter().map(|(e, _)| e.id.0.clone()).collect(),
            events: rows.iter().map(|(e, _)| Json(*e)).collect(),
            destinations: rows.iter().map(|(_, d)| (*d).to_owned()).collect(),
        })
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
        let epoch = self.cache.epoch();
        let outcome = match self.commit_in_one(&commit).await.map_err(|e| self.noticed(e))? {
            Some(changed_grants) => Ok(changed_grants),
            // Refused, nothing written: step by step in a transaction, which names the refusal.
            None => {
                self.stepwise.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.try_commit(&commit).await.map_err(|e| self.noticed(e))?
            }
        };
        match outcome {
            Ok(changed_grants) => {
                self.sealer.notify_one();
                // Read-your-writes on this replica (the feed covers the others): the committed
                // grants go into the index as they are, or, if a catch-up began meanwhile, the
                // index catches up.
                let written = commit.grants().iter().map(|w| w.value().clone());
                if changed_grants && !self.cache.apply_own(epoch, written) {
                    if let Err(e) = self.cache.catch_up(&self.pool).await {
                        // The feed then catches up on this commit's notification too.
                        self.cache.own_catch_up_failed();
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
                .fetch_optional(self.db()?)
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
            .fetch_optional(self.db()?)
            .await
            .map_err(backend)?;
        row.map(|r| decode(&r, "body", "requests")).transpose()
    }

    async fn principal_counts(&self, principal: &EntityRef, now: DateTime<Utc>) -> Result<PrincipalCounts, StoreError> {
        // Pending: the partial unique index on (principal, scope_key) WHERE state = 'pending'.
        let (pending, unacknowledged): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM requests WHERE principal = $1 AND state = 'pending' AND deadline > $2),                     (SELECT count(*) FROM grants WHERE principal = $1 AND awaits_ack)",
        )
        .bind(principal_key(principal))
        .bind(now)
        .fetch_one(self.db()?)
        .await
        .map_err(backend)?;
        let n = |v: i64| usize::try_from(v).unwrap_or(usize::MAX);
        Ok(PrincipalCounts::new(n(pending), n(unacknowledged)))
    }

    /// One statement: the pending request and both counts.
    async fn pending_and_counts(
        &self,
        principal: &EntityRef,
        scope: &Scope,
        now: DateTime<Utc>,
    ) -> Result<(Option<AccessRequest>, PrincipalCounts), StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT body FROM requests WHERE principal = $1 AND scope_key = $2 AND state = 'pending') AS body, \
                    (SELECT count(*) FROM requests WHERE principal = $1 AND state = 'pending' AND deadline > $3) AS pending, \
                    (SELECT count(*) FROM grants WHERE principal = $1 AND awaits_ack) AS unacknowledged",
        )
        .bind(principal_key(principal))
        .bind(scope_key(scope))
        .bind(now)
        .fetch_one(self.db()?)
        .await
        .map_err(backend)?;
        let pending = decode_optional(&row, "body", "requests")?;
        let count = |column: &str| -> Result<usize, StoreError> {
            let n: i64 = row.try_get(column).map_err(backend)?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        };
        Ok((
            pending,
            PrincipalCounts::new(count("pending")?, count("unacknowledged")?),
        ))
    }

    /// One statement: the grant joined to its request.
    async fn grant_and_request(&self, id: GrantId) -> Result<Option<(Grant, Option<AccessRequest>)>, StoreError> {
        let row = sqlx::query(
            "SELECT g.body AS grant_body, r.body AS request_body \
             FROM grants g LEFT JOIN requests r ON r.id = g.request_id WHERE g.id = $1",
        )
        .bind(id.0)
        .fetch_optional(self.db()?)
        .await
        .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        let grant = decode(&row, "grant_body", "grants")?;
        Ok(Some((grant, decode_optional(&row, "request_body", "requests")?)))
    }

    async fn read_grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        let row = sqlx::query("SELECT body FROM grants WHERE id = $1")
            .bind(id.0)
            .fetch_optional(self.db()?)
            .await
            .map_err(backend)?;
        row.map(|r| decode(&r, "body", "grants")).transpose()
    }

    async fn live_grants(&self, principal: &EntityRef, scope: &Scope) -> Result<Vec<Arc<Grant>>, StoreError> {
        if let Some(grants) = self.cache.get(principal, scope) {
            return Ok(grants);
        }
        if self.primary.available() {
            tracing::warn!(schema = %self.options.schema, "grant cache is stale (change feed lost?); reading grants from the database");
        }
        // `db()` refuses at once while the server is known to be down.
        let read = self
            .live_grants_from_db(principal, scope)
            .await
            .map_err(|e| self.noticed(e));
        match read {
            // The database cannot be reached: the cache may still answer while its last
            // catch-up is within the staleness bound (the promise made when it is fresh), then
            // `authorize` denies.
            Err(StoreError::Unavailable(e)) => self
                .cache
                .get_within_bound(principal, scope)
                .ok_or(StoreError::Unavailable(e)),
            other => other,
        }
    }

    async fn pending_request(&self, principal: &EntityRef, scope: &Scope) -> Result<Option<AccessRequest>, StoreError> {
        let row =
            sqlx::query("SELECT body FROM requests WHERE principal = $1 AND scope_key = $2 AND state = 'pending'")
                .bind(principal_key(principal))
                .bind(scope_key(scope))
                .fetch_optional(self.db()?)
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

    /// Also sets `jitgate_grant_cache_staleness_seconds`: how long ago this replica's grant
    /// index last caught up with the change feed.
    async fn gauges(&self, now: DateTime<Utc>) -> Result<Option<jitgate_core::StoreGauges>, StoreError> {
        let staleness = self.cache.staleness().map_or(f64::INFINITY, |d| d.as_secs_f64());
        metrics::gauge!(crate::GRANT_CACHE_STALENESS).set(staleness);
        self.count_gauges(now).await.map(Some)
    }
}
