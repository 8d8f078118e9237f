//! The storage trait: one atomic, conditional commit per transition, and the reads the engine
//! and a platform team's API need.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEntry, AuditRecord};
use crate::event::Event;
use crate::{AccessRequest, EntityRef, Grant, GrantId, RequestId, Scope};

/// A row to write: a new one, or a new version of an existing one guarded by compare-and-swap.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Write<T> {
    /// Insert; fails if the id exists.
    Insert(T),
    /// Replace the stored row only if its version is still `expected_version`.
    Update {
        /// The version the transition was computed from.
        expected_version: u64,
        /// The new row (its version is `expected_version + 1`).
        value: T,
    },
}

impl<T> Write<T> {
    /// The row being written.
    pub fn value(&self) -> &T {
        match self {
            Write::Insert(v) | Write::Update { value: v, .. } => v,
        }
    }
}

/// Everything one transition writes, committed together or not at all.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Commit {
    /// The request's new state.
    pub request: Option<Write<AccessRequest>>,
    /// Grants created or changed.
    pub grants: Vec<Write<Grant>>,
    /// Audit entries, chained by the store in order.
    pub audit: Vec<AuditEntry>,
    /// Events for the outbox.
    pub events: Vec<Event>,
}

/// An opaque position in a paginated listing.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Debug)]
#[serde(transparent)]
pub struct Cursor(pub String);

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which page of a listing to read.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PageRequest {
    /// Start after this cursor (from the previous page's `next`); `None` for the first page.
    pub after: Option<Cursor>,
    /// At most this many items (at least 1).
    pub limit: usize,
}

impl PageRequest {
    /// The first page of at most `limit` items.
    pub fn first(limit: usize) -> Self {
        Self {
            after: None,
            limit: limit.max(1),
        }
    }

    /// The page after `cursor`.
    pub fn after(cursor: Cursor, limit: usize) -> Self {
        Self {
            after: Some(cursor),
            limit: limit.max(1),
        }
    }
}

/// A page of a listing.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Page<T> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// The cursor of the next page, if there may be one.
    pub next: Option<Cursor>,
}

/// An event in the outbox.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OutboxEntry {
    /// The outbox position.
    pub seq: u64,
    /// The event.
    pub event: Event,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// The last delivery error, if any.
    pub last_error: Option<String>,
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Compare-and-swap failed: someone else changed the row first. The engine reloads and retries.
    #[error("version conflict on {what}: expected version {expected}, found {found:?}")]
    Conflict {
        /// The row (`request req_…` or `grant grant_…`).
        what: String,
        /// The version the transition was computed from.
        expected: u64,
        /// The stored version (`None` if the row is gone).
        found: Option<u64>,
    },
    /// A pending request for the same principal and scope exists already.
    #[error("{principal} already has pending request {existing} for this scope")]
    DuplicatePending {
        /// The pending request.
        existing: RequestId,
        /// Its principal.
        principal: EntityRef,
    },
    /// An insert hit an existing id.
    #[error("{what} already exists")]
    AlreadyExists {
        /// The row.
        what: String,
    },
    /// A cursor that this store did not issue.
    #[error("cursor `{cursor}` is not valid for this listing")]
    InvalidCursor {
        /// The cursor.
        cursor: String,
    },
    /// The backend failed.
    #[error("storage backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Durable state of requests, grants, the audit chain and the outbox.
///
/// Implementations take `&self` and lock inside; they never decide anything the state
/// machine decides, they only apply [`Commit`]s atomically and answer reads. Every
/// implementation must pass the conformance suite in `jitgate-testkit`.
#[async_trait]
pub trait Store: Send + Sync {
    /// Applies a commit atomically: every compare-and-swap must hold, then the request, the
    /// grants, the audit entries (chained after the current head) and the events are written
    /// together.
    ///
    /// # Errors
    /// [`StoreError::Conflict`], [`StoreError::DuplicatePending`],
    /// [`StoreError::AlreadyExists`] (nothing written), or a backend error.
    async fn commit(&self, commit: Commit) -> Result<(), StoreError>;

    /// A request by id.
    ///
    /// # Errors
    /// A backend error.
    async fn request(&self, id: RequestId) -> Result<Option<AccessRequest>, StoreError>;

    /// A grant by id.
    ///
    /// # Errors
    /// A backend error.
    async fn grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError>;

    /// The grants of `principal` for exactly `scope` whose stored state is scheduled or
    /// active — the hot-path index; must not scan.
    ///
    /// # Errors
    /// A backend error.
    async fn live_grants(&self, principal: &EntityRef, scope: &Scope) -> Result<Vec<Grant>, StoreError>;

    /// All grants of `principal` whose stored state is scheduled or active, ordered by id.
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] or a backend error.
    async fn live_grants_of(&self, principal: &EntityRef, page: &PageRequest) -> Result<Page<Grant>, StoreError>;

    /// The pending request of `principal` for `scope`, if any.
    ///
    /// # Errors
    /// A backend error.
    async fn pending_request(&self, principal: &EntityRef, scope: &Scope) -> Result<Option<AccessRequest>, StoreError>;

    /// Pending requests, oldest first.
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] or a backend error.
    async fn pending_requests(&self, page: &PageRequest) -> Result<Page<AccessRequest>, StoreError>;

    /// Up to `limit` pending requests whose deadline is at or before `now`. Like
    /// [`Store::outbox_claim`], a shared store may claim them for a while.
    ///
    /// # Errors
    /// A backend error.
    async fn due_requests(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<AccessRequest>, StoreError>;

    /// Up to `limit` grants that a sweep must move: stored `Scheduled` with `not_before <= now`,
    /// or stored live with `expires_at <= now`. A shared store may claim them for a while.
    ///
    /// # Errors
    /// A backend error.
    async fn due_grants(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Grant>, StoreError>;

    /// Break-glass grants not yet acknowledged, ordered by id.
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] or a backend error.
    async fn unacknowledged_break_glass(&self, page: &PageRequest) -> Result<Page<Grant>, StoreError>;

    /// The audit records of one request (and its grant), in chain order.
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] or a backend error.
    async fn request_audit(&self, id: RequestId, page: &PageRequest) -> Result<Page<AuditRecord>, StoreError>;

    /// Up to `limit` audit records with `seq > after_seq`, in chain order.
    ///
    /// # Errors
    /// A backend error.
    async fn audit_log(&self, after_seq: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;

    /// Up to `limit` undelivered, not dead outbox entries whose next attempt is due at `now`,
    /// oldest first. A store shared by replicas claims them for a while (a lease), so concurrent
    /// dispatchers skip each other's entries; an entry not marked done, retried or parked is
    /// offered again once its claim lapses.
    ///
    /// # Errors
    /// A backend error.
    async fn outbox_claim(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Marks outbox entries delivered.
    ///
    /// # Errors
    /// A backend error.
    async fn outbox_done(&self, seqs: &[u64]) -> Result<(), StoreError>;

    /// Records a failed attempt: the entry is offered again from `next_attempt_at`.
    ///
    /// # Errors
    /// A backend error.
    async fn outbox_retry(
        &self,
        seq: u64,
        attempts: u32,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Parks an entry as dead (never offered again) and appends `audit` to the chain, together.
    ///
    /// # Errors
    /// A backend error.
    async fn outbox_park(&self, seq: u64, attempts: u32, error: &str, audit: AuditEntry) -> Result<(), StoreError>;

    /// Dead entries, oldest first.
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] or a backend error.
    async fn outbox_dead(&self, page: &PageRequest) -> Result<Page<OutboxEntry>, StoreError>;

    /// Up to `limit` grants, stored `Active`, not yet reminded, with `expires_at <= before`
    /// (a sweep sends their expiry reminders). A shared store may claim them for a while.
    ///
    /// # Errors
    /// A backend error.
    async fn due_reminders(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Grant>, StoreError>;
}
