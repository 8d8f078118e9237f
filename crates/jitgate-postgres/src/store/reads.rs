//! Listings and the audit log: keyset-paginated reads.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jitgate_core::audit::AuditRecord;
use jitgate_core::{
    AccessRequest, AuditLog, EntityRef, Grant, Listings, Page, PageRequest, RequestFilter, RequestId, StoreError,
    Unsealed,
};
use uuid::Uuid;

use super::codec::{after_uuid, audit_record, limit_param, page_of_bodies, principal_key};
use super::PgStore;
use crate::error::backend;
use crate::seal;

impl PgStore {
    /// One page of a principal's rows by a query taking the principal (`$1`), the id to start
    /// after (`$2`) and the limit (`$3`), ordered by id.
    async fn page_of_principal<T: serde::de::DeserializeOwned, K: std::fmt::Display>(
        &self,
        sql: &'static str,
        what: &str,
        principal: &EntityRef,
        page: &PageRequest,
        key: impl Fn(&T) -> K,
    ) -> Result<Page<T>, StoreError> {
        let rows = sqlx::query(sql)
            .bind(principal_key(principal))
            .bind(after_uuid(page)?.unwrap_or(Uuid::nil()))
            .bind(limit_param(page.limit))
            .fetch_all(self.db()?)
            .await
            .map_err(backend)?;
        page_of_bodies::<T, _>(&rows, what, page.limit, key)
    }

    /// The creation time of the request a cursor names (`after`), which must be `principal`'s
    /// when one is given: the anchor of a page ordered by creation time.
    async fn created_at_of(
        &self,
        after: Option<Uuid>,
        principal: Option<&str>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let Some(after) = after else { return Ok(None) };
        let created_at: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT created_at FROM requests WHERE id = $1 AND ($2::text IS NULL OR principal = $2)",
        )
        .bind(after)
        .bind(principal)
        .fetch_optional(self.db()?)
        .await
        .map_err(backend)?;
        created_at.map(Some).ok_or_else(|| StoreError::InvalidCursor {
            cursor: after.to_string(),
        })
    }

    /// One page of pending requests, oldest first, optionally only those whose flows name one
    /// of `reviewers` (matched as JSON: the keys are the reviewers' normalized `jsonb` text on
    /// both sides, so no encoding is written twice).
    async fn pending_page(
        &self,
        reviewers: Option<&[EntityRef]>,
        page: &PageRequest,
    ) -> Result<Page<AccessRequest>, StoreError> {
        const ALL: &str = "SELECT body FROM requests WHERE state = 'pending' \
             AND (created_at, id) > (COALESCE($1, '-infinity'::timestamptz), $2) \
             ORDER BY created_at, id LIMIT $3";
        // The candidates come from the GIN index first (MATERIALIZED), then are ordered: left
        // to itself the planner may walk `requests_pending_order` and evaluate the keys of
        // every pending request, which is the scan the index exists to avoid.
        const FOR_REVIEWERS: &str = "WITH mine AS MATERIALIZED ( \
               SELECT id, created_at, body FROM requests WHERE state = 'pending' \
               AND request_reviewer_keys(body) && ARRAY(SELECT g::text FROM jsonb_array_elements($4::jsonb) g) \
               AND (created_at, id) > (COALESCE($1, '-infinity'::timestamptz), $2)) \
             SELECT body FROM mine ORDER BY created_at, id LIMIT $3";
        let after = after_uuid(page)?;
        let anchor = self.created_at_of(after, None).await?;
        let query = match reviewers {
            None => sqlx::query(ALL),
            Some(_) => sqlx::query(FOR_REVIEWERS),
        }
        .bind(anchor)
        .bind(after.unwrap_or(Uuid::nil()))
        .bind(limit_param(page.limit));
        let query = match reviewers {
            None => query,
            Some(groups) => query.bind(serde_json::to_value(groups).map_err(backend)?),
        };
        let rows = query.fetch_all(self.db()?).await.map_err(backend)?;
        page_of_bodies::<AccessRequest, _>(&rows, "requests", page.limit, |r| r.id)
    }
}

#[async_trait]
impl Listings for PgStore {
    async fn live_grants_of(&self, principal: &EntityRef, page: &PageRequest) -> Result<Page<Grant>, StoreError> {
        self.page_of_principal(
            "SELECT body FROM grants WHERE principal = $1 AND state IN ('scheduled', 'active') AND id > $2 ORDER BY id LIMIT $3",
            "grants",
            principal,
            page,
            |g: &Grant| g.id,
        )
        .await
    }

    async fn pending_requests_of(
        &self,
        principal: &EntityRef,
        page: &PageRequest,
    ) -> Result<Page<AccessRequest>, StoreError> {
        self.page_of_principal(
            "SELECT body FROM requests WHERE principal = $1 AND state = 'pending' AND id > $2 ORDER BY id LIMIT $3",
            "requests",
            principal,
            page,
            |r: &AccessRequest| r.id,
        )
        .await
    }

    /// Through `requests_by_principal` (migration 7). The cursor's request must be the
    /// principal's: its creation time is read with the principal in the condition.
    async fn requests_of(
        &self,
        principal: &EntityRef,
        filter: &RequestFilter,
        page: &PageRequest,
    ) -> Result<Page<AccessRequest>, StoreError> {
        const PAGE: &str = "SELECT body FROM requests WHERE principal = $1 \
             AND (cardinality($2::text[]) = 0 OR state = ANY($2)) \
             AND created_at >= COALESCE($3, '-infinity'::timestamptz) \
             AND created_at < COALESCE($4, 'infinity'::timestamptz) \
             AND (created_at, id) < (COALESCE($5, 'infinity'::timestamptz), $6) \
             ORDER BY created_at DESC, id DESC LIMIT $7";
        let key = principal_key(principal);
        let after = after_uuid(page)?;
        let anchor = self.created_at_of(after, Some(&key)).await?;
        let states: Vec<String> = filter.states.iter().map(ToString::to_string).collect();
        let rows = sqlx::query(PAGE)
            .bind(&key)
            .bind(&states)
            .bind(filter.created_from)
            .bind(filter.created_before)
            .bind(anchor)
            .bind(after.unwrap_or(Uuid::max()))
            .bind(limit_param(page.limit))
            .fetch_all(self.db()?)
            .await
            .map_err(backend)?;
        page_of_bodies::<AccessRequest, _>(&rows, "requests", page.limit, |r| r.id)
    }

    async fn pending_requests(&self, page: &PageRequest) -> Result<Page<AccessRequest>, StoreError> {
        self.pending_page(None, page).await
    }

    /// Through the partial GIN index `requests_pending_reviewers` (migration 3).
    async fn pending_requests_for(
        &self,
        reviewers: &[EntityRef],
        page: &PageRequest,
    ) -> Result<Page<AccessRequest>, StoreError> {
        self.pending_page(Some(reviewers), page).await
    }

    async fn unacknowledged_break_glass(&self, page: &PageRequest) -> Result<Page<Grant>, StoreError> {
        let after = after_uuid(page)?.unwrap_or(Uuid::nil());
        let rows = sqlx::query("SELECT body FROM grants WHERE awaits_ack AND id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit_param(page.limit))
            .fetch_all(self.db()?)
            .await
            .map_err(backend)?;
        page_of_bodies::<Grant, _>(&rows, "grants", page.limit, |g| g.id)
    }
}

#[async_trait]
impl AuditLog for PgStore {
    async fn request_records(&self, id: RequestId, page: &PageRequest) -> Result<Page<AuditRecord>, StoreError> {
        let after: i64 = page.after_key()?.unwrap_or(0);
        self.seal_before_reading(after == 0).await?;
        let rows = sqlx::query(
            "SELECT v, seq, prev_hash, hash, entry FROM audit WHERE request_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(id.0)
        .bind(after)
        .bind(limit_param(page.limit))
        .fetch_all(self.db()?)
        .await
        .map_err(backend)?;
        let items = rows.iter().map(audit_record).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, page.limit, |r| r.seq))
    }

    async fn records(&self, after_seq: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.seal_before_reading(after_seq == 0).await?;
        let rows = sqlx::query("SELECT v, seq, prev_hash, hash, entry FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(i64::try_from(after_seq).unwrap_or(i64::MAX))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.db()?)
            .await
            .map_err(backend)?;
        rows.iter().map(audit_record).collect()
    }

    async fn unsealed(&self) -> Result<Unsealed, StoreError> {
        seal::unsealed(self.db()?).await.map_err(backend)
    }
}

impl PgStore {
    /// Seals what is committed before a read of the chain. A read from the start waits (up to
    /// `seal_wait`) for transactions running when it began, so a replica reads its own writes;
    /// its later pages only seal what is ready, so a transaction left open delays a long read
    /// once, not once per page.
    async fn seal_before_reading(&self, from_start: bool) -> Result<(), StoreError> {
        let wait = if from_start {
            self.options.seal_wait
        } else {
            std::time::Duration::ZERO
        };
        seal::seal_committed(&self.pool, wait).await.map_err(backend)
    }
}

impl PgStore {
    /// The runtime's gauges: pending requests (the one-pending index), active grants, and per
    /// destination the outbox entries waiting and dead (the two partial outbox indexes); one
    /// round trip.
    pub(super) async fn count_gauges(&self, now: DateTime<Utc>) -> Result<jitgate_core::StoreGauges, StoreError> {
        use sqlx::Row as _;
        let rows = sqlx::query(
            "SELECT 'requests' AS what, '' AS destination, count(*) AS n FROM requests WHERE state = 'pending' \
             UNION ALL SELECT 'grants', '', count(*) FROM grants WHERE state = 'active' AND expires_at > $1 \
             UNION ALL (SELECT 'pending', destination, count(*) FROM outbox \
                        WHERE done_at IS NULL AND dead_at IS NULL GROUP BY destination) \
             UNION ALL (SELECT 'dead', destination, count(*) FROM outbox WHERE dead_at IS NOT NULL GROUP BY destination)",
        )
        .bind(now)
        .fetch_all(self.db()?)
        .await
        .map_err(backend)?;
        let (mut pending_requests, mut active_grants) = (0, 0);
        let mut outbox: std::collections::BTreeMap<String, (u64, u64)> = std::collections::BTreeMap::new();
        for row in rows {
            let what: String = row.try_get("what").map_err(backend)?;
            let destination: String = row.try_get("destination").map_err(backend)?;
            let n = u64::try_from(row.try_get::<i64, _>("n").map_err(backend)?).unwrap_or(0);
            match what.as_str() {
                "requests" => pending_requests = n,
                "grants" => active_grants = n,
                "pending" => outbox.entry(destination).or_default().0 = n,
                _ => outbox.entry(destination).or_default().1 = n,
            }
        }
        let outbox = outbox
            .into_iter()
            .map(|(d, (pending, dead))| jitgate_core::OutboxGauge::new(d, pending, dead))
            .collect();
        Ok(jitgate_core::StoreGauges::new(pending_requests, active_grants, outbox))
    }
}
