//! Reads a platform team needs to build its own API and UI.

use super::Gate;
use crate::audit::{AuditRecord, ChainHead, Verifier};
use crate::store::{Page, PageRequest};
use crate::{AccessRequest, EntityRef, Error, Grant, GrantId, RequestId};

/// The audit chain failed verification, or could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The chain is broken.
    #[error(transparent)]
    Chain(#[from] crate::audit::ChainError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Writing the export failed.
    #[error("audit export failed: {0}")]
    Io(#[from] std::io::Error),
}

const AUDIT_PAGE: usize = 1_000;

impl Gate {
    /// A request by id.
    ///
    /// # Errors
    /// [`Error::RequestNotFound`] or a store error.
    pub async fn get_request(&self, id: RequestId) -> Result<AccessRequest, Error> {
        self.load_request(id).await
    }

    /// A grant by id.
    ///
    /// # Errors
    /// [`Error::GrantNotFound`] or a store error.
    pub async fn get_grant(&self, id: GrantId) -> Result<Grant, Error> {
        self.load_grant(id).await
    }

    /// The pending requests `reviewer` may act on (eligible for at least one requirement,
    /// not their own unless the flow allows self-approval, not yet reviewed by them), oldest first.
    ///
    /// # Errors
    /// A policy or store error.
    pub async fn pending_for_reviewer(
        &self,
        reviewer: &EntityRef,
        page: &PageRequest,
    ) -> Result<Page<AccessRequest>, Error> {
        let mut items = Vec::new();
        let mut cursor = page.after.clone();
        loop {
            let batch = self
                .store
                .pending_requests(&PageRequest {
                    after: cursor.clone(),
                    limit: page.limit,
                })
                .await?;
            for req in batch.items {
                cursor = Some(crate::store::Cursor(req.id.to_string()));
                if req.reviews.iter().any(|r| r.reviewer == *reviewer) {
                    continue;
                }
                let standing = self.policy.reviewer_standing(reviewer, &req)?;
                let own = req.principal == *reviewer && !(req.flow.allow_self_approval || standing.self_approval);
                if !own && !standing.eligible_for.is_empty() {
                    items.push(req);
                    if items.len() == page.limit {
                        return Ok(Page { items, next: cursor });
                    }
                }
            }
            match batch.next {
                Some(next) => cursor = Some(next),
                None => return Ok(Page { items, next: None }),
            }
        }
    }

    /// The grants of `principal` that are scheduled or active now, ordered by id. A page may
    /// hold fewer than `limit` items when grants ended by time are left out; keep reading
    /// while `next` is set.
    ///
    /// # Errors
    /// A store error.
    pub async fn active_grants(&self, principal: &EntityRef, page: &PageRequest) -> Result<Page<Grant>, Error> {
        let now = self.clock.now();
        let mut p = self.store.live_grants_of(principal, page).await?;
        p.items.retain(|g| !g.status_at(now).is_ended());
        Ok(p)
    }

    /// Break-glass grants still awaiting their after-the-fact review.
    ///
    /// # Errors
    /// A store error.
    pub async fn unacknowledged_break_glass(&self, page: &PageRequest) -> Result<Page<Grant>, Error> {
        Ok(self.store.unacknowledged_break_glass(page).await?)
    }

    /// Notifications parked as dead after their last delivery attempt, oldest first.
    ///
    /// # Errors
    /// A store error.
    pub async fn dead_letters(&self, page: &PageRequest) -> Result<Page<crate::OutboxEntry>, Error> {
        Ok(self.store.outbox_dead(page).await?)
    }

    /// The audit records of a request and its grant, in order.
    ///
    /// # Errors
    /// A store error.
    pub async fn request_audit(&self, id: RequestId, page: &PageRequest) -> Result<Page<AuditRecord>, Error> {
        Ok(self.store.request_audit(id, page).await?)
    }

    /// Verifies the whole audit chain, page by page, returning its head.
    ///
    /// # Errors
    /// [`AuditError::Chain`] naming the first edited, missing or reordered record.
    pub async fn verify_audit(&self) -> Result<ChainHead, AuditError> {
        let mut v = Verifier::new();
        self.each_audit_page(|records| records.iter().try_for_each(|r| v.push(r)).map_err(AuditError::from))
            .await?;
        Ok(v.head().clone())
    }

    /// Writes the whole audit chain as JSON lines.
    ///
    /// # Errors
    /// A store or I/O error.
    pub async fn export_audit(&self, mut out: impl std::io::Write) -> Result<u64, AuditError> {
        let mut n = 0;
        self.each_audit_page(|records| {
            n += records.len() as u64;
            crate::audit::write_jsonl(records, &mut out).map_err(AuditError::from)
        })
        .await?;
        Ok(n)
    }

    async fn each_audit_page(
        &self,
        mut f: impl FnMut(&[AuditRecord]) -> Result<(), AuditError>,
    ) -> Result<(), AuditError> {
        let mut after = 0;
        loop {
            let records = self.store.audit_log(after, AUDIT_PAGE).await?;
            let Some(last) = records.last() else { return Ok(()) };
            let prev = after;
            after = last.seq;
            f(&records)?;
            if after <= prev {
                return Ok(()); // a store that does not advance would loop forever
            }
        }
    }
}
