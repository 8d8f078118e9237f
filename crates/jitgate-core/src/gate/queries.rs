//! Reads a platform team needs to build its own API and UI.

use super::Gate;
use crate::audit::{AuditRecord, ChainHead, Checkpoint, CheckpointError, Verifier};
use crate::gate::error::Error;
use crate::model::entity::EntityRef;
use crate::model::grant::Grant;
use crate::model::ids::RequestId;
use crate::model::request::AccessRequest;
use crate::ports::audit_log::Unsealed;
use crate::ports::listings::{Cursor, Page, PageRequest, RequestFilter};
use crate::ports::outbox::OutboxEntry;
use crate::ports::store::{Capability, Store, StoreError};

/// The audit chain failed verification, or could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The chain is broken.
    #[error(transparent)]
    Chain(#[from] crate::audit::ChainError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the export failed.
    #[error("audit export failed")]
    Io(#[from] std::io::Error),
    /// A checkpoint could not be trusted or published.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// An [`AuditStreamer`](crate::AuditStreamer)'s cursor file cannot be read, written, or
    /// does not hold a sequence number.
    #[error("the audit stream cursor {} {problem}", path.display())]
    StreamCursor {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        problem: &'static str,
        /// The I/O error, if any.
        #[source]
        source: Option<std::io::Error>,
    },
}

/// What [`Gate::verify_audit`] found: the verified chain's head, and the entries committed but
/// not in the chain yet, which it could not cover (a store that seals later, such as
/// PostgreSQL, chains them once no older transaction of the database is running).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct AuditReport {
    /// The last verified record.
    pub head: ChainHead,
    /// Committed, not yet sealed, not verified.
    pub unsealed: Unsealed,
    /// Where the verified records start: after the last record the store released to its
    /// audit sinks ([`AuditLog::released`](crate::AuditLog::released)), whose copies there are
    /// verified with `verify_jsonl`; the genesis head when the store keeps the whole chain.
    pub released: ChainHead,
}

const AUDIT_PAGE: usize = 1_000;

impl Gate {
    /// The pending requests `reviewer` may act on (eligible for at least one requirement,
    /// not their own unless the flow allows self-approval, not yet reviewed by them), oldest first.
    ///
    /// When the policy names the reviewer's groups ([`Policy::reviewer_groups`]), only the
    /// requests whose flows name one of them are read, through the store's index by reviewer
    /// group ([`Listings::pending_requests_for`]); otherwise every pending request is.
    ///
    /// [`Policy::reviewer_groups`]: crate::Policy::reviewer_groups
    /// [`Listings::pending_requests_for`]: crate::Listings::pending_requests_for
    ///
    /// # Errors
    /// [`Error::Unsupported`] without [`Listings`](crate::Listings); a policy or store error.
    pub async fn pending_for_reviewer(
        &self,
        reviewer: &EntityRef,
        page: &PageRequest,
    ) -> Result<Page<AccessRequest>, Error> {
        self.limits.entity(reviewer)?;
        self.limits.page(page)?;
        let listings = self.capability("pending_for_reviewer", Capability::Listings, Store::listings)?;
        // One policy for the whole listing, though a swap may come while it reads.
        let policy = self.policy.load_full().policy.clone();
        let groups = policy.reviewer_groups(reviewer)?;
        let mut items = Vec::new();
        let mut cursor = page.after.clone();
        loop {
            let request = PageRequest {
                after: cursor.clone(),
                limit: page.limit,
            };
            let batch = match &groups {
                Some(groups) => {
                    let read = listings.pending_requests_for(groups, &request);
                    self.call("pending_requests_for", read).await?
                }
                None => {
                    self.call("pending_requests", listings.pending_requests(&request))
                        .await?
                }
            };
            for req in batch.items {
                cursor = Some(Cursor::after(req.id));
                if req.reviews.iter().any(|r| r.reviewer == *reviewer) {
                    continue;
                }
                let standing = policy.reviewer_standing(reviewer, &req)?;
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

    /// Reads a request on behalf of `caller`, who may read it when they made it, reviewed it,
    /// or may review it (the policy's [`reviewer_standing`](crate::Policy::reviewer_standing)
    /// says so): what a caller may read is a policy decision, as what they may do is. For an
    /// API that shows requests to the people involved.
    ///
    /// # Errors
    /// [`Error::RequestNotFound`] when there is no such request *or* `caller` may not read it
    /// (so that ids cannot be probed); a policy or store error.
    pub async fn read_request_as(&self, id: RequestId, caller: &EntityRef) -> Result<AccessRequest, Error> {
        self.limits.entity(caller)?;
        let req = self.read_request(id).await?;
        if req.principal == *caller || req.reviews.iter().any(|r| r.reviewer == *caller) {
            return Ok(req);
        }
        let policy = self.policy.load_full().policy.clone();
        if policy.reviewer_standing(caller, &req)?.eligible_for.is_empty() {
            return Err(Error::RequestNotFound(id));
        }
        Ok(req)
    }

    /// The requests `principal` made, newest first, in the states and time range of `filter`
    /// ("my requests": what a requester sees of their own).
    ///
    /// # Errors
    /// [`Error::Unsupported`] without [`Listings`](crate::Listings); a store error
    /// ([`StoreError::InvalidCursor`] for a cursor of another listing or principal).
    pub async fn requests_of(
        &self,
        principal: &EntityRef,
        filter: &RequestFilter,
        page: &PageRequest,
    ) -> Result<Page<AccessRequest>, Error> {
        self.limits.entity(principal)?;
        self.limits.page(page)?;
        let listings = self.capability("requests_of", Capability::Listings, Store::listings)?;
        Ok(self
            .call("requests_of", listings.requests_of(principal, filter, page))
            .await?)
    }

    /// The grants of `principal` that are scheduled or active now, ordered by id. A page may
    /// hold fewer than `limit` items when grants ended by time are left out; keep reading
    /// while `next` is set.
    ///
    /// # Errors
    /// [`Error::Unsupported`] without [`Listings`](crate::Listings); a store error.
    pub async fn active_grants(&self, principal: &EntityRef, page: &PageRequest) -> Result<Page<Grant>, Error> {
        self.limits.entity(principal)?;
        self.limits.page(page)?;
        let listings = self.capability("active_grants", Capability::Listings, Store::listings)?;
        let now = self.clock.now();
        let mut p = self
            .call("live_grants_of", listings.live_grants_of(principal, page))
            .await?;
        p.items.retain(|g| !g.status_at(now).is_ended());
        Ok(p)
    }

    /// Every pending request, oldest first (an operator's view; a reviewer's own queue is
    /// [`Gate::pending_for_reviewer`]). Requests whose deadline has passed but that no sweep has
    /// closed yet are left out.
    ///
    /// # Errors
    /// [`Error::Unsupported`] without [`Listings`](crate::Listings); a store error.
    pub async fn pending_requests(&self, page: &PageRequest) -> Result<Page<AccessRequest>, Error> {
        self.limits.page(page)?;
        let listings = self.capability("pending_requests", Capability::Listings, Store::listings)?;
        let now = self.clock.now();
        let mut p = self.call("pending_requests", listings.pending_requests(page)).await?;
        p.items.retain(|r| now < r.deadline);
        Ok(p)
    }

    /// Break-glass grants still awaiting their after-the-fact review.
    ///
    /// # Errors
    /// [`Error::Unsupported`] without [`Listings`](crate::Listings); a store error.
    pub async fn unacknowledged_break_glass(&self, page: &PageRequest) -> Result<Page<Grant>, Error> {
        self.limits.page(page)?;
        let listings = self.capability("unacknowledged_break_glass", Capability::Listings, Store::listings)?;
        Ok(self
            .call("unacknowledged_break_glass", listings.unacknowledged_break_glass(page))
            .await?)
    }

    /// Notifications parked as dead after their last delivery attempt, oldest first.
    ///
    /// # Errors
    /// [`Error::Unsupported`] without an [`Outbox`](crate::Outbox); a store error.
    pub async fn dead_letters(&self, page: &PageRequest) -> Result<Page<OutboxEntry>, Error> {
        self.limits.page(page)?;
        let outbox = self.capability("dead_letters", Capability::Outbox, Store::outbox)?;
        Ok(self.call("dead", outbox.dead(page)).await?)
    }

    /// The audit records of a request and its grant, in order.
    ///
    /// # Errors
    /// [`Error::Unsupported`] without an [`AuditLog`](crate::AuditLog); a store error.
    pub async fn request_audit(&self, id: RequestId, page: &PageRequest) -> Result<Page<AuditRecord>, Error> {
        self.limits.page(page)?;
        let log = self.capability("request_audit", Capability::AuditLog, Store::audit_log)?;
        Ok(self.call("request_records", log.request_records(id, page)).await?)
    }

    /// Refuses unless the policy makes `caller` an auditor
    /// ([`Policy::may_read_audit`](crate::Policy::may_read_audit)): what an API checks before
    /// it exports or verifies the trail for a caller.
    ///
    /// # Errors
    /// [`Error::NotPermittedToReadAudit`]; a policy error (which also refuses).
    pub fn ensure_auditor(&self, caller: &EntityRef) -> Result<(), Error> {
        self.limits.entity(caller)?;
        let policy = self.policy.load_full().policy.clone();
        if policy.may_read_audit(caller)? {
            Ok(())
        } else {
            Err(Error::NotPermittedToReadAudit { actor: caller.clone() })
        }
    }

    /// A page of the audit chain for `caller`, an auditor: the records after the cursor (a
    /// sequence number; the first page starts at the chain's first record), in chain order and
    /// in their hashed form, so that a client can verify them.
    ///
    /// # Errors
    /// [`Error::NotPermittedToReadAudit`]; [`Error::Unsupported`] without an
    /// [`AuditLog`](crate::AuditLog); a store error ([`StoreError::InvalidCursor`]).
    pub async fn audit_records_as(&self, caller: &EntityRef, page: &PageRequest) -> Result<Page<AuditRecord>, Error> {
        self.ensure_auditor(caller)?;
        self.limits.page(page)?;
        let log = self.capability("audit_records_as", Capability::AuditLog, Store::audit_log)?;
        let after = page.after_key::<u64>()?.unwrap_or(0);
        let records = self.call("records", log.records(after, page.limit + 1)).await?;
        Ok(Page::from_overfetch(records, page.limit, |r| r.seq))
    }

    /// Verifies the whole audit chain, page by page: its head, and what the store has
    /// committed but not yet chained (see [`AuditReport`]). A store that released records to
    /// the audit sinks ([`MemoryStore::releasing_streamed_audit`](crate::MemoryStore::releasing_streamed_audit))
    /// is verified from its release point, linked to the last released record's hash; the
    /// sinks' copies of the released part are verified with `verify_jsonl`.
    ///
    /// # Errors
    /// [`AuditError::Chain`] naming the first edited, missing or reordered record; a store
    /// error ([`StoreError::Unsupported`] without an [`AuditLog`](crate::AuditLog)).
    pub async fn verify_audit(&self) -> Result<AuditReport, AuditError> {
        self.verify_from(Verifier::new()).await
    }

    /// Verifies the whole audit chain and checks it against `checkpoint`, signed by the key
    /// `public_key_hex`: the chain must reach the checkpoint's record (else its tail was cut)
    /// and hold the record the checkpoint signed (else it was rewritten). A checkpoint of a
    /// record the store has released to the audit sinks is checked against their copy
    /// (`verify_jsonl_against`), not here ([`AuditReport::released`] says where the store's
    /// part starts).
    ///
    /// # Errors
    /// [`AuditError::Checkpoint`] if the checkpoint's signature does not verify;
    /// [`AuditError::Chain`] with [`ChainError::EndsBeforeCheckpoint`](crate::audit::ChainError::EndsBeforeCheckpoint)
    /// or [`DiffersFromCheckpoint`](crate::audit::ChainError::DiffersFromCheckpoint), or
    /// naming the first broken record; a store error.
    pub async fn verify_audit_against(
        &self,
        checkpoint: &Checkpoint,
        public_key_hex: &str,
    ) -> Result<AuditReport, AuditError> {
        checkpoint.verify_signature(public_key_hex)?;
        self.verify_from(Verifier::anchored(checkpoint)).await
    }

    /// Verifies the kept chain with `v`, from the store's release point.
    async fn verify_from(&self, mut v: Verifier) -> Result<AuditReport, AuditError> {
        let released = self.released_audit().await?;
        v.resume_after(&released)?;
        let after = v.head().seq;
        self.each_audit_page_after(after, |records| {
            records.iter().try_for_each(|r| v.push(r)).map_err(AuditError::from)
        })
        .await?;
        let head = v.finish()?;
        self.report(head, released).await
    }

    /// The last record the store released to the audit sinks (genesis if none).
    pub(super) async fn released_audit(&self) -> Result<ChainHead, AuditError> {
        let log = self.store.audit_log().ok_or(StoreError::Unsupported {
            capability: Capability::AuditLog,
        })?;
        Ok(self.call("released", log.released()).await?)
    }

    /// The committed audit entries the store has not chained yet (none for stores that chain
    /// at commit; PostgreSQL seals later, and a transaction left open in this database holds
    /// sealing back). Suits a gauge.
    ///
    /// # Errors
    /// A store error ([`StoreError::Unsupported`] without an [`AuditLog`](crate::AuditLog)).
    pub async fn unsealed_audit(&self) -> Result<Unsealed, Error> {
        let log = self.capability("unsealed_audit", Capability::AuditLog, Store::audit_log)?;
        Ok(self.call("unsealed", log.unsealed()).await?)
    }

    async fn report(&self, head: ChainHead, released: ChainHead) -> Result<AuditReport, AuditError> {
        let log = self.store.audit_log().ok_or(StoreError::Unsupported {
            capability: Capability::AuditLog,
        })?;
        let unsealed = self.call("unsealed", log.unsealed()).await?;
        if !unsealed.is_empty() {
            tracing::warn!(
                unsealed = unsealed.records,
                oldest = ?unsealed.oldest,
                verified = head.seq,
                "audit entries are committed but not sealed yet: the verified chain ends before them"
            );
        }
        Ok(AuditReport {
            head,
            unsealed,
            released,
        })
    }

    /// Writes the whole audit chain as JSON lines (what the store keeps: after its release
    /// point, if it released records to the audit sinks).
    ///
    /// # Errors
    /// A store error ([`StoreError::Unsupported`] without an [`AuditLog`](crate::AuditLog)) or
    /// an I/O error.
    pub async fn export_audit(&self, mut out: impl std::io::Write) -> Result<u64, AuditError> {
        let mut n = 0;
        self.each_audit_page(|records| {
            n += records.len() as u64;
            crate::audit::write_jsonl(records, &mut out).map_err(AuditError::from)
        })
        .await?;
        Ok(n)
    }

    /// Reads the chain page by page from its first record.
    async fn each_audit_page(&self, f: impl FnMut(&[AuditRecord]) -> Result<(), AuditError>) -> Result<(), AuditError> {
        self.each_audit_page_after(0, f).await
    }

    /// Reads the chain page by page from the record after `after`.
    pub(super) async fn each_audit_page_after(
        &self,
        mut after: u64,
        mut f: impl FnMut(&[AuditRecord]) -> Result<(), AuditError>,
    ) -> Result<(), AuditError> {
        let log = self.store.audit_log().ok_or(StoreError::Unsupported {
            capability: Capability::AuditLog,
        })?;
        loop {
            // No per-call deadline here: a store may seal a backlog before it answers.
            let records = log.records(after, AUDIT_PAGE).await?;
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
