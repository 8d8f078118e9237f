//! Listings and the audit log of the in-memory store: keyset pagination over ordered indexes.

use std::collections::BTreeSet;
use std::ops::Bound;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::{AuditRecord, ChainHead};
use crate::model::entity::EntityRef;
use crate::model::grant::Grant;
use crate::model::ids::{GrantId, RequestId};
use crate::model::request::AccessRequest;
use crate::ports::audit_log::AuditLog;
use crate::ports::listings::{Listings, Page, PageRequest, RequestFilter};
use crate::ports::store::StoreError;

use super::{paginate, MemoryStore};

fn grant_ids_after(set: &BTreeSet<GrantId>, after: Option<GrantId>) -> impl Iterator<Item = GrantId> + '_ {
    let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
    set.range((lower, Bound::Unbounded)).copied()
}

/// Where a page of pending requests (ordered by creation time, then id) starts.
fn pending_lower_bound(
    inner: &super::Inner,
    page: &PageRequest,
) -> Result<Bound<(chrono::DateTime<chrono::Utc>, RequestId)>, StoreError> {
    Ok(match page.after_key::<RequestId>()? {
        None => Bound::Unbounded,
        Some(id) => {
            let r = inner
                .requests
                .get(&id)
                .ok_or_else(|| StoreError::InvalidCursor { cursor: id.to_string() })?;
            Bound::Excluded((r.created_at, id))
        }
    })
}

#[async_trait]
impl Listings for MemoryStore {
    async fn live_grants_of(&self, principal: &EntityRef, page: &PageRequest) -> Result<Page<Grant>, StoreError> {
        let after = page.after_key::<GrantId>()?;
        let inner = self.read();
        let mut live: Vec<&Grant> = inner
            .live
            .of_principal(principal)
            .map(|g| &**g)
            .filter(|g| after.is_none_or(|a| g.id > a))
            .collect();
        live.sort_unstable_by_key(|g| g.id);
        Ok(paginate(
            live.into_iter(),
            page.limit,
            |g| g.id.to_string(),
            |g| Some(Grant::clone(g)),
        ))
    }

    async fn pending_requests_of(
        &self,
        principal: &EntityRef,
        page: &PageRequest,
    ) -> Result<Page<AccessRequest>, StoreError> {
        let after = page.after_key::<RequestId>()?;
        let inner = self.read();
        let mut ids: Vec<RequestId> = inner
            .pending
            .get(principal)
            .into_iter()
            .flat_map(|m| m.values().copied())
            .filter(|id| after.is_none_or(|a| *id > a))
            .collect();
        ids.sort();
        Ok(paginate(
            ids.into_iter(),
            page.limit,
            |id| id.to_string(),
            |id| inner.requests.get(id).map(|r| AccessRequest::clone(r)),
        ))
    }

    async fn requests_of(
        &self,
        principal: &EntityRef,
        filter: &RequestFilter,
        page: &PageRequest,
    ) -> Result<Page<AccessRequest>, StoreError> {
        let after = page.after_key::<RequestId>()?;
        let inner = self.read();
        let key = |at: DateTime<Utc>, id: Uuid| (principal.clone(), at, RequestId(id));
        let upper = match after {
            None => filter.created_before.map_or_else(
                || Bound::Included(key(DateTime::<Utc>::MAX_UTC, Uuid::max())),
                |t| Bound::Excluded(key(t, Uuid::nil())),
            ),
            Some(id) => {
                let r = inner
                    .requests
                    .get(&id)
                    .filter(|r| r.principal == *principal)
                    .ok_or_else(|| StoreError::InvalidCursor { cursor: id.to_string() })?;
                Bound::Excluded(key(r.created_at, id.0))
            }
        };
        let lower = key(filter.created_from.unwrap_or(DateTime::<Utc>::MIN_UTC), Uuid::nil());
        let keys = inner.by_principal.range((Bound::Included(lower), upper)).rev();
        Ok(paginate(
            keys,
            page.limit,
            |(_, _, id)| id.to_string(),
            |(_, _, id)| {
                inner
                    .requests
                    .get(id)
                    .filter(|r| filter.matches(r))
                    .map(|r| AccessRequest::clone(r))
            },
        ))
    }

    async fn pending_requests(&self, page: &PageRequest) -> Result<Page<AccessRequest>, StoreError> {
        let inner = self.read();
        let lower = pending_lower_bound(&inner, page)?;
        let keys = inner.pending_order.range((lower, Bound::Unbounded)).cloned();
        Ok(paginate(
            keys,
            page.limit,
            |(_, id)| id.to_string(),
            |(_, id)| inner.requests.get(id).map(|r| AccessRequest::clone(r)),
        ))
    }

    /// From the index by reviewer group: the first `limit + 1` of each group, merged.
    async fn pending_requests_for(
        &self,
        reviewers: &[EntityRef],
        page: &PageRequest,
    ) -> Result<Page<AccessRequest>, StoreError> {
        let inner = self.read();
        let lower = pending_lower_bound(&inner, page)?;
        let mut keys = BTreeSet::new();
        for group in reviewers {
            if let Some(set) = inner.pending_by_reviewers.get(group) {
                keys.extend(set.range((lower, Bound::Unbounded)).take(page.limit + 1).copied());
            }
        }
        Ok(paginate(
            keys.into_iter(),
            page.limit,
            |(_, id)| id.to_string(),
            |(_, id)| inner.requests.get(id).map(|r| AccessRequest::clone(r)),
        ))
    }

    async fn unacknowledged_break_glass(&self, page: &PageRequest) -> Result<Page<Grant>, StoreError> {
        let after = page.after_key::<GrantId>()?;
        let inner = self.read();
        Ok(paginate(
            grant_ids_after(&inner.unacknowledged, after),
            page.limit,
            |id| id.to_string(),
            |id| inner.grants.get(id).map(|g| Grant::clone(g)),
        ))
    }
}

#[async_trait]
impl AuditLog for MemoryStore {
    async fn request_records(&self, id: RequestId, page: &PageRequest) -> Result<Page<AuditRecord>, StoreError> {
        let after = page.after_key::<u64>()?.unwrap_or(0);
        let inner = self.read();
        let seqs = inner.audit_by_request.get(&id).map(Vec::as_slice).unwrap_or_default();
        Ok(paginate(
            seqs.iter().copied().filter(|seq| *seq > after),
            page.limit,
            u64::to_string,
            |seq| inner.audit_record(*seq).cloned(),
        ))
    }

    async fn records(&self, after_seq: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let inner = self.read();
        let skip = after_seq.saturating_sub(inner.released.seq);
        let start = usize::try_from(skip).unwrap_or(usize::MAX).min(inner.audit.len());
        Ok(inner.audit.range(start..).take(limit).cloned().collect())
    }

    async fn release(&self, through: u64) -> Result<(), StoreError> {
        let mut inner = self.write();
        if inner.release_streamed {
            inner.release(through);
        }
        Ok(())
    }

    async fn released(&self) -> Result<ChainHead, StoreError> {
        Ok(self.read().released.clone())
    }
}
