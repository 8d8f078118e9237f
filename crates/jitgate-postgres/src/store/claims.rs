//! Work shared by replicas: due requests, grants and reminders, and the outbox, claimed with
//! `FOR UPDATE SKIP LOCKED` and a lease.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jitgate_core::audit::AuditEntry;
use jitgate_core::{AccessRequest, DueWork, Grant, Outbox, OutboxEntry, Page, PageRequest, Retry, StoreError};

use super::codec::{limit_param, outbox_entry, to_json};
use super::PgStore;
use crate::error::backend;

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
             RETURNING seq, body, attempts, last_error, destination",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(self.options.claim_lease)
        .bind(now)
        .fetch_all(self.db()?)
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
        .execute(self.db()?)
        .await
        .map_err(backend)?;
        Ok(())
    }

    /// A round's failed attempts in one statement.
    async fn retry_many(&self, retries: &[Retry]) -> Result<(), StoreError> {
        let seqs: Vec<i64> = retries.iter().map(|r| r.seq as i64).collect();
        let attempts: Vec<i32> = retries.iter().map(|r| r.attempts as i32).collect();
        let next: Vec<DateTime<Utc>> = retries.iter().map(|r| r.next_attempt_at).collect();
        let errors: Vec<&str> = retries.iter().map(|r| r.error.as_str()).collect();
        sqlx::query(
            "UPDATE outbox o SET attempts = r.attempts, next_attempt_at = r.next, last_error = r.error, claimed_until = NULL \
             FROM UNNEST($1::bigint[], $2::int[], $3::timestamptz[], $4::text[]) AS r(seq, attempts, next, error) \
             WHERE o.seq = r.seq",
        )
        .bind(seqs)
        .bind(attempts)
        .bind(next)
        .bind(errors)
        .execute(self.db()?)
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
        .execute(self.db()?)
        .await
        .map_err(backend)?;
        self.sealer.notify_one();
        Ok(())
    }

    async fn dead(&self, page: &PageRequest) -> Result<Page<OutboxEntry>, StoreError> {
        let after: i64 = page.after_key()?.unwrap_or(0);
        let rows = sqlx::query(
            "SELECT seq, body, attempts, last_error, destination FROM outbox WHERE dead_at IS NOT NULL AND seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit_param(page.limit))
        .fetch_all(self.db()?)
        .await
        .map_err(backend)?;
        let items = rows.iter().map(outbox_entry).collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Page::from_overfetch(items, page.limit, |e| e.seq))
    }

    async fn mark_done(&self, seqs: &[u64]) -> Result<(), StoreError> {
        let seqs: Vec<i64> = seqs.iter().map(|s| *s as i64).collect();
        sqlx::query("UPDATE outbox SET done_at = clock_timestamp() WHERE seq = ANY($1)")
            .bind(seqs)
            .execute(self.db()?)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
