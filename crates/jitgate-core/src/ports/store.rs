//! The core storage port: one atomic, conditional commit per transition, and the reads the
//! engine needs to decide. Everything else a store may offer is a capability
//! ([`Listings`], [`DueWork`], [`Outbox`], [`AuditLog`]) that it announces through the
//! accessors at the end of [`Store`].

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::audit_log::AuditLog;
use super::due::DueWork;
use super::listings::Listings;
use super::outbox::Outbox;
use crate::audit::AuditEntry;
use crate::model::entity::{EntityRef, Scope};
use crate::model::event::Event;
use crate::model::grant::Grant;
use crate::model::ids::{GrantId, RequestId};
use crate::model::request::AccessRequest;

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

/// A [`Commit`] taken apart: the request's write, the grants' writes, the audit entries and
/// the events.
pub type CommitParts = (
    Option<Write<AccessRequest>>,
    Vec<Write<Grant>>,
    Vec<AuditEntry>,
    Vec<Event>,
);

/// Everything one transition writes, committed together or not at all.
///
/// Only the state machine makes commits: a store reads them and applies them. (The
/// `testing` feature, for `jitgate-testkit`, can take one apart to build a bad one.)
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Commit {
    pub(crate) request: Option<Write<AccessRequest>>,
    pub(crate) grants: Vec<Write<Grant>>,
    pub(crate) audit: Vec<AuditEntry>,
    pub(crate) events: Vec<Event>,
    /// Per event, the destinations it goes to (set by the gate before committing); empty when
    /// the commit was not routed.
    pub(crate) routes: Vec<Vec<String>>,
}

impl Commit {
    /// A commit that only appends audit records (a refusal, uses of grants).
    pub(crate) fn audit_only(audit: Vec<AuditEntry>) -> Self {
        Self {
            audit,
            ..Self::default()
        }
    }

    /// The request's new state, if the transition changes it.
    pub fn request(&self) -> Option<&Write<AccessRequest>> {
        self.request.as_ref()
    }

    /// Grants created or changed.
    pub fn grants(&self) -> &[Write<Grant>] {
        &self.grants
    }

    /// Audit entries, to be chained by the store in order.
    pub fn audit(&self) -> &[AuditEntry] {
        &self.audit
    }

    /// Events for the outbox.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The outbox rows to write: each event once per destination the gate routed it to (an
    /// event no destination subscribes to has none). An event of a commit the gate did not
    /// route goes out once, to destination `""`: every notifier of the dispatcher that claims it.
    pub fn outbox_rows(&self) -> Vec<(&Event, &str)> {
        if self.routes.len() != self.events.len() {
            return self.events.iter().map(|e| (e, "")).collect();
        }
        self.events
            .iter()
            .zip(&self.routes)
            .flat_map(|(e, names)| names.iter().map(move |n| (e, n.as_str())))
            .collect()
    }

    /// The rows a commit writes, by subject: the request first, then the grants.
    pub fn subjects(&self) -> impl Iterator<Item = Subject> + '_ {
        let request = self.request.as_ref().map(|w| Subject::Request(w.value().id));
        request
            .into_iter()
            .chain(self.grants.iter().map(|w| Subject::Grant(w.value().id)))
    }

    /// Takes the commit apart (request, grants, audit entries, events), for a store that
    /// moves the rows into place.
    pub fn into_parts(self) -> CommitParts {
        (self.request, self.grants, self.audit, self.events)
    }

    /// The same commit with its events routed to destinations (one list of names per event),
    /// as the gate routes them, for store tests.
    #[cfg(feature = "testing")]
    #[must_use]
    pub fn routed(mut self, routes: Vec<Vec<String>>) -> Self {
        self.routes = routes;
        self
    }

    /// Builds a commit from its parts, for tests that need one the state machine would never
    /// make (a conflicting write, a duplicate id).
    #[cfg(feature = "testing")]
    pub fn from_parts(
        request: Option<Write<AccessRequest>>,
        grants: Vec<Write<Grant>>,
        audit: Vec<AuditEntry>,
        events: Vec<Event>,
    ) -> Self {
        Self {
            request,
            grants,
            audit,
            events,
            routes: Vec::new(),
        }
    }
}

/// The row a write is about: a request or a grant.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Subject {
    /// A request.
    Request(RequestId),
    /// A grant.
    Grant(GrantId),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Request(id) => write!(f, "request {id}"),
            Subject::Grant(id) => write!(f, "grant {id}"),
        }
    }
}

/// What [`Store::principal_counts`] counts for one principal.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct PrincipalCounts {
    /// Pending requests not yet lapsed.
    pub pending: usize,
    /// Break-glass grants not yet acknowledged.
    pub unacknowledged_break_glass: usize,
}

impl PrincipalCounts {
    /// The counts.
    pub fn new(pending: usize, unacknowledged_break_glass: usize) -> Self {
        Self {
            pending,
            unacknowledged_break_glass,
        }
    }
}

/// An optional ability of a [`Store`], beyond deciding and committing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Capability {
    /// [`Listings`]: paginated listings of requests and grants.
    Listings,
    /// [`DueWork`]: what time has made due (sweeps, reminders).
    DueWork,
    /// [`Outbox`]: events kept for delivery.
    Outbox,
    /// [`AuditLog`]: reading the audit chain back.
    AuditLog,
}

impl Capability {
    /// Every capability.
    pub const ALL: [Capability; 4] = [
        Capability::Listings,
        Capability::DueWork,
        Capability::Outbox,
        Capability::AuditLog,
    ];

    /// The `Gate` methods that need this capability.
    pub fn verbs(self) -> &'static [&'static str] {
        match self {
            Capability::Listings => &[
                "revoke_all",
                "pending_for_reviewer",
                "active_grants",
                "unacknowledged_break_glass",
            ],
            Capability::DueWork => &["sweep"],
            Capability::Outbox => &["deliver_outbox", "dead_letters", "notifications (events are not kept)"],
            Capability::AuditLog => &["request_audit", "verify_audit", "export_audit"],
        }
    }

    /// Whether `store` has this capability.
    pub fn of(self, store: &dyn Store) -> bool {
        match self {
            Capability::Listings => store.listings().is_some(),
            Capability::DueWork => store.due_work().is_some(),
            Capability::Outbox => store.outbox().is_some(),
            Capability::AuditLog => store.audit_log().is_some(),
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Capability::Listings => "Listings",
            Capability::DueWork => "DueWork",
            Capability::Outbox => "Outbox",
            Capability::AuditLog => "AuditLog",
        })
    }
}

/// A store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Compare-and-swap failed: someone else changed the row first. The engine reloads and retries.
    #[error("version conflict on {subject}: expected version {expected}, found {found:?}")]
    Conflict {
        /// The row.
        subject: Subject,
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
    #[error("{subject} already exists")]
    AlreadyExists {
        /// The row.
        subject: Subject,
    },
    /// A cursor that this store did not issue.
    #[error("cursor `{cursor}` is not valid for this listing")]
    InvalidCursor {
        /// The cursor.
        cursor: String,
    },
    /// The store does not implement a capability the call needs.
    #[error("this store does not implement {capability}")]
    Unsupported {
        /// The missing capability.
        capability: Capability,
    },
    /// The store did not answer within the gate's deadline
    /// ([`GateBuilder::verb_deadline`](crate::GateBuilder::verb_deadline)). A timed-out
    /// `commit` may or may not have been applied, as with any timeout on a remote call.
    #[error("the store's {operation} did not answer within {after:?}")]
    Timeout {
        /// The store call (`live_grants`, `commit`, ...).
        operation: &'static str,
        /// The deadline that passed.
        after: std::time::Duration,
    },
    /// The store cannot reach a database that accepts writes now (its server is down, or a
    /// failover is under way); the cause is the error's `source()`. Worth retrying after a
    /// moment: a store may look for a writable server by itself (PostgreSQL's does). As with a
    /// timeout, a `commit` whose connection was lost while committing may or may not have been
    /// applied; one refused before it reached the database was not.
    #[error("the store's database is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The backend failed; the cause is the error's `source()`.
    #[error("storage backend failed")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// The store's `operation` did not answer within the deadline; logged at ERROR.
    #[cold]
    pub(crate) fn timeout(operation: &'static str, elapsed: crate::deadline::Elapsed) -> Self {
        tracing::error!(operation, after = ?elapsed.after, "a store call did not answer in time");
        StoreError::Timeout {
            operation,
            after: elapsed.after,
        }
    }
}

/// Durable state of requests and grants: what [`Gate`](crate::gate::Gate) needs to decide and to
/// commit.
///
/// This is all a store must implement (`commit` and five reads) to serve `authorize`,
/// `request`, `approve`, `deny`,
/// `cancel`, `revoke`, `extend` and `acknowledge`. The other verbs need capabilities, which a
/// store announces by overriding the accessors below (`fn outbox(&self) -> Option<&dyn Outbox>
/// { Some(self) }`); [`Capability::verbs`] says which verbs each one turns on.
///
/// Implementations take `&self` and lock inside; they never decide anything the state
/// machine decides, they only apply [`Commit`]s atomically and answer reads. Every
/// implementation must pass the conformance suite in `jitgate-testkit`.
///
/// The trait is dyn-compatible through `async_trait` (re-exported as
/// [`jitgate_core::async_trait`](crate::async_trait), and by the `jitgate` facade): put
/// `#[async_trait]` on the `impl` too, or the compiler reports mismatched lifetimes on every
/// method.
///
/// ```
/// use std::sync::Arc;
///
/// use chrono::{DateTime, Utc};
/// use jitgate_core::{
///     async_trait, AccessRequest, Commit, EntityRef, Grant, GrantId, PrincipalCounts, RequestId, Scope, Store, StoreError,
/// };
///
/// /// A store that refuses every write (a read-only replica, say).
/// struct ReadOnly;
///
/// #[async_trait]
/// impl Store for ReadOnly {
///     async fn commit(&self, _: Commit) -> Result<(), StoreError> {
///         Err(StoreError::Backend("read-only".into()))
///     }
///     async fn read_request(&self, _: RequestId) -> Result<Option<AccessRequest>, StoreError> {
///         Ok(None)
///     }
///     async fn read_grant(&self, _: GrantId) -> Result<Option<Grant>, StoreError> {
///         Ok(None)
///     }
///     async fn live_grants(&self, _: &EntityRef, _: &Scope) -> Result<Vec<Arc<Grant>>, StoreError> {
///         Ok(Vec::new())
///     }
///     async fn pending_request(&self, _: &EntityRef, _: &Scope) -> Result<Option<AccessRequest>, StoreError> {
///         Ok(None)
///     }
///     async fn principal_counts(&self, _: &EntityRef, _: DateTime<Utc>) -> Result<PrincipalCounts, StoreError> {
///         Ok(PrincipalCounts::new(0, 0))
///     }
/// }
/// let store: Arc<dyn Store> = Arc::new(ReadOnly);
/// assert!(store.outbox().is_none());
/// ```
#[async_trait]
pub trait Store: Send + Sync {
    /// Applies a commit atomically: every compare-and-swap must hold, then the request, the
    /// grants, the audit entries (chained after the current head) and the events (if the store
    /// has an [`Outbox`]) are written together.
    ///
    /// # Errors
    /// [`StoreError::Conflict`], [`StoreError::DuplicatePending`],
    /// [`StoreError::AlreadyExists`] (nothing written), or a backend error.
    async fn commit(&self, commit: Commit) -> Result<(), StoreError>;

    /// Reads a request by id.
    ///
    /// # Errors
    /// A backend error.
    async fn read_request(&self, id: RequestId) -> Result<Option<AccessRequest>, StoreError>;

    /// Reads a grant by id.
    ///
    /// # Errors
    /// A backend error.
    async fn read_grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError>;

    /// Reads the grants of `principal` for exactly `scope` whose stored state is scheduled or
    /// active — the hot-path index; must not scan. The grants are shared (`Arc`): a store that
    /// keeps them in memory hands out references, not copies, on every `authorize`.
    ///
    /// # Errors
    /// A backend error.
    async fn live_grants(&self, principal: &EntityRef, scope: &Scope) -> Result<Vec<Arc<Grant>>, StoreError>;

    /// Reads the pending request of `principal` for `scope`, if any.
    ///
    /// # Errors
    /// A backend error.
    async fn pending_request(&self, principal: &EntityRef, scope: &Scope) -> Result<Option<AccessRequest>, StoreError>;

    /// Counts what the limits on one principal need: their pending requests whose deadline is
    /// after `now` (not yet lapsed), and their break-glass grants not yet acknowledged.
    ///
    /// # Errors
    /// A backend error.
    async fn principal_counts(&self, principal: &EntityRef, now: DateTime<Utc>) -> Result<PrincipalCounts, StoreError>;

    /// What `request` checks before it opens one: the pending request of `principal` for
    /// `scope` ([`pending_request`](Self::pending_request)) and the principal's counts
    /// ([`principal_counts`](Self::principal_counts)). The default makes both calls; a store
    /// that pays a round trip per call answers both in one.
    ///
    /// # Errors
    /// A backend error.
    async fn pending_and_counts(
        &self,
        principal: &EntityRef,
        scope: &Scope,
        now: DateTime<Utc>,
    ) -> Result<(Option<AccessRequest>, PrincipalCounts), StoreError> {
        let pending = self.pending_request(principal, scope).await?;
        Ok((pending, self.principal_counts(principal, now).await?))
    }

    /// A grant and the request it came from (`None` for a grant not found; the request
    /// `None` if it is not found), for the verbs that need both (revoke, extend,
    /// acknowledge). The default reads one after the other; a store that pays a round trip
    /// per call reads both in one.
    ///
    /// # Errors
    /// A backend error.
    async fn grant_and_request(&self, id: GrantId) -> Result<Option<(Grant, Option<AccessRequest>)>, StoreError> {
        let Some(grant) = self.read_grant(id).await? else {
            return Ok(None);
        };
        let request = self.read_request(grant.request_id).await?;
        Ok(Some((grant, request)))
    }

    /// This store's [`Listings`], if it has them.
    fn listings(&self) -> Option<&dyn Listings> {
        None
    }

    /// This store's [`DueWork`], if it has it.
    fn due_work(&self) -> Option<&dyn DueWork> {
        None
    }

    /// This store's [`Outbox`], if it has one. Without one, events are not kept and nobody is
    /// notified.
    fn outbox(&self) -> Option<&dyn Outbox> {
        None
    }

    /// This store's [`AuditLog`] reader, if it has one.
    fn audit_log(&self) -> Option<&dyn AuditLog> {
        None
    }

    /// Counts for the runtime's gauges (pending requests, active grants, the outbox per
    /// destination), if the store can count them cheaply. Default: `None` (no such gauges).
    ///
    /// # Errors
    /// A backend error.
    async fn gauges(&self, now: DateTime<Utc>) -> Result<Option<StoreGauges>, StoreError> {
        let _ = now;
        Ok(None)
    }
}

/// What [`Store::gauges`] counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreGauges {
    /// Requests waiting for review.
    pub pending_requests: u64,
    /// Grants in force now (active, not past their end).
    pub active_grants: u64,
    /// The outbox, per destination (`""`: entries for every notifier), sorted by name.
    pub outbox: Vec<OutboxGauge>,
}

/// One destination's outbox in [`StoreGauges`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboxGauge {
    /// The destination's name.
    pub destination: String,
    /// Entries waiting for delivery (or a retry).
    pub pending: u64,
    /// Entries parked as dead.
    pub dead: u64,
}

impl StoreGauges {
    /// Counts of `pending_requests` and `active_grants`, with `outbox` per destination.
    pub fn new(pending_requests: u64, active_grants: u64, outbox: Vec<OutboxGauge>) -> Self {
        Self {
            pending_requests,
            active_grants,
            outbox,
        }
    }
}

impl OutboxGauge {
    /// `pending` and `dead` entries of `destination`.
    pub fn new(destination: impl Into<String>, pending: u64, dead: u64) -> Self {
        Self {
            destination: destination.into(),
            pending,
            dead,
        }
    }
}
