//! Due work and the outbox of the in-memory store.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::AuditEntry;
use crate::model::grant::{Grant, GrantState};
use crate::model::ids::GrantId;
use crate::model::request::AccessRequest;
use crate::ports::due::DueWork;
use crate::ports::listings::{Page, PageRequest};
use crate::ports::outbox::{Outbox, OutboxEntry};
use crate::ports::store::{Commit, StoreError};

use super::{paginate, MemoryStore, CLAIM_LEASE_SECONDS};

#[async_trait]
impl DueWork for MemoryStore {
    async fn due_requests(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<AccessRequest>, StoreError> {
        let inner = self.read();
        Ok(inner
            .deadlines
            .iter()
            .take_while(|(d, _)| *d <= now)
            .take(limit)
            .filter_map(|(_, id)| inner.requests.get(id).map(|r| AccessRequest::clone(r)))
            .collect())
    }

    async fn due_grants(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Grant>, StoreError> {
        let inner = self.read();
        let expiring = inner.expiries.iter().take_while(|(t, _)| *t <= now).map(|(_, id)| *id);
        let starting = inner.starts.iter().take_while(|(t, _)| *t <= now).map(|(_, id)| *id);
        let ids: BTreeSet<GrantId> = expiring.take(limit).chain(starting.take(limit)).collect();
        Ok(ids
            .iter()
            .take(limit)
            .filter_map(|id| inner.grants.get(id).map(|g| Grant::clone(g)))
            .collect())
    }

    async fn due_reminders(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Grant>, StoreError> {
        let inner = self.read();
        Ok(inner
            .expiries
            .iter()
            .take_while(|(t, _)| *t <= before)
            .filter_map(|(_, id)| inner.grants.get(id))
            .filter(|g| g.state == GrantState::Active && g.reminded_at.is_none())
            .take(limit)
            .map(|g| Grant::clone(g))
            .collect())
    }
}

#[async_trait]
impl Outbox for MemoryStore {
    async fn claim(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut inner = self.write();
        let lease = now + chrono::Duration::seconds(CLAIM_LEASE_SECONDS);
        let mut out = Vec::new();
        for row in inner.outbox.values_mut() {
            if out.len() == limit {
                break;
            }
            let due = row.next_attempt_at.is_none_or(|t| t <= now);
            let free = row.claimed_until.is_none_or(|t| t <= now);
            if due && free {
                row.claimed_until = Some(lease);
                out.push(row.entry.clone());
            }
        }
        Ok(out)
    }

    async fn mark_done(&self, seqs: &[u64]) -> Result<(), StoreError> {
        let mut inner = self.write();
        for s in seqs {
            inner.outbox.remove(s);
        }
        Ok(())
    }

    async fn retry(
        &self,
        seq: u64,
        attempts: u32,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let mut inner = self.write();
        if let Some(row) = inner.outbox.get_mut(&seq) {
            row.entry.attempts = attempts;
            row.entry.last_error = Some(error.to_owned());
            row.next_attempt_at = Some(next_attempt_at);
            row.claimed_until = None;
        }
        Ok(())
    }

    async fn park(&self, seq: u64, attempts: u32, error: &str, audit: AuditEntry) -> Result<(), StoreError> {
        let mut inner = self.write();
        if let Some(mut row) = inner.outbox.remove(&seq) {
            row.entry.attempts = attempts;
            row.entry.last_error = Some(error.to_owned());
            inner.dead.insert(seq, row.entry);
            inner.apply(Commit {
                audit: vec![audit],
                ..Commit::default()
            });
        }
        Ok(())
    }

    async fn dead(&self, page: &PageRequest) -> Result<Page<OutboxEntry>, StoreError> {
        let after = page.after_key::<u64>()?.unwrap_or(0);
        let inner = self.read();
        let keys = inner.dead.range(after + 1..).map(|(k, _)| *k);
        Ok(paginate(
            keys,
            page.limit,
            |k| k.to_string(),
            |k| inner.dead.get(k).cloned(),
        ))
    }
}
