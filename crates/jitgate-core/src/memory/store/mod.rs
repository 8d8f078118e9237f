//! The in-memory [`Store`].

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::{AuditRecord, ChainHead};
use crate::model::entity::{EntityRef, Scope};
use crate::model::event::Event;
use crate::model::grant::{Grant, GrantState};
use crate::model::ids::{GrantId, RequestId};
use crate::model::request::{AccessRequest, RequestState};
use crate::ports::audit_log::AuditLog;
use crate::ports::due::DueWork;
use crate::ports::listings::{Listings, Page};
use crate::ports::outbox::{Outbox, OutboxEntry};
use crate::ports::store::{Commit, OutboxGauge, PrincipalCounts, Store, StoreError, StoreGauges, Subject, Write};
use by_id::ById;
use live::LiveIndex;
use names::Names;
use retention::Closed;

/// A thread-safe in-memory [`Store`].
///
/// Active grants are indexed by principal, then scope, so `live_grants` is two hash
/// look-ups whatever the number of grants. By default nothing is ever deleted; with
/// [`with_retention`](Self::with_retention) closed requests and ended grants leave memory once
/// they have been closed that long (their audit records stay in the chain).
#[derive(Default, Debug)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
}

#[derive(Debug)]
struct OutboxRow {
    entry: OutboxEntry,
    next_attempt_at: Option<DateTime<Utc>>,
    claimed_until: Option<DateTime<Utc>>,
}

/// How long a claimed outbox entry is hidden from other dispatchers in this process.
const CLAIM_LEASE_SECONDS: i64 = 30;

#[derive(Default, Debug)]
struct Inner {
    /// Boxed: the table holds a pointer per request, not the request's few hundred bytes
    /// times the table's spare room (and finds it by the id the request holds).
    requests: ById<Box<AccessRequest>>,
    /// Shared with the live index and the callers of `live_grants` (a read copies no grant).
    grants: ById<Arc<Grant>>,
    /// The live grants by principal and scope (every `authorize`) and by principal.
    live: LiveIndex,
    /// One copy of each type, action and resource name.
    names: Names,
    expiries: BTreeSet<(DateTime<Utc>, GrantId)>,
    starts: BTreeSet<(DateTime<Utc>, GrantId)>,
    unacknowledged: BTreeSet<GrantId>,
    pending: HashMap<EntityRef, HashMap<Scope, RequestId>>,
    pending_order: BTreeSet<(DateTime<Utc>, RequestId)>,
    /// Every stored request by principal, then creation time ("my requests"): one ordered
    /// set for every principal.
    by_principal: BTreeSet<(EntityRef, DateTime<Utc>, RequestId)>,
    /// Pending requests by the reviewer group of each of their requirements, oldest first.
    pending_by_reviewers: HashMap<EntityRef, BTreeSet<(DateTime<Utc>, RequestId)>>,
    deadlines: BTreeSet<(DateTime<Utc>, RequestId)>,
    /// The kept chain: the records after `released`, in order.
    audit: VecDeque<AuditRecord>,
    head: ChainHead,
    /// The last record let go of after every audit sink took it (genesis: none).
    released: ChainHead,
    /// Whether [`AuditLog::release`] lets records go.
    release_streamed: bool,
    /// The `seq`s of each request's kept records, in chain order.
    audit_by_request: HashMap<RequestId, Vec<u64>>,
    outbox: BTreeMap<u64, OutboxRow>,
    dead: BTreeMap<u64, OutboxEntry>,
    outbox_next: u64,
    /// How long closed requests and ended grants stay; `None`: for ever.
    retention: Option<chrono::Duration>,
    /// Closed requests and ended grants, by the time of the commit that closed them.
    closed: BTreeSet<(DateTime<Utc>, Closed)>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store from which closed requests (denied, cancelled, expired, or approved with
    /// every grant ended and acknowledged where that is owed) and ended grants (expired, revoked, exhausted; break-glass ones once
    /// acknowledged) leave memory once `retention` has passed since the commit that closed
    /// them, measured on the times of later commits (the store reads no clock). Reading one
    /// afterwards finds nothing; its audit records stay in the chain (and in
    /// `request_audit`), so a service that must keep them longer streams the chain to a sink.
    pub fn with_retention(retention: chrono::Duration) -> Self {
        Self {
            inner: RwLock::new(Inner {
                retention: Some(retention),
                ..Inner::default()
            }),
        }
    }

    /// This store, letting go of the audit records every sink of the gate's
    /// [`AuditStreamer`](crate::AuditStreamer) has taken ([`AuditLog::release`]): it keeps the
    /// records after them and the last released record's head, so `verify_audit` goes on from
    /// there and the chain's memory stays the streamer's backlog. Without a streamer nothing
    /// is released. Reading a released record (`records`, `request_audit`) finds nothing; the
    /// sinks hold it.
    #[must_use]
    pub fn releasing_streamed_audit(self) -> Self {
        let mut inner = self.inner.into_inner().unwrap_or_else(|p| p.into_inner());
        inner.release_streamed = true;
        Self {
            inner: RwLock::new(inner),
        }
    }

    /// How many audit records the chain holds in memory (after its release point).
    pub fn audit_len(&self) -> usize {
        self.read().audit.len()
    }

    /// How many requests are stored (pending or closed).
    pub fn request_count(&self) -> usize {
        self.read().requests.len()
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied commit (commits are
        // validated before anything is written), so a poisoned lock is still consistent.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Every audit record it holds, in chain order (for verification and export): the whole
    /// chain, or what follows its release point.
    pub fn audit_records(&self) -> Vec<AuditRecord> {
        self.read().audit.iter().cloned().collect()
    }

    /// How many grants are stored (live or ended).
    pub fn grant_count(&self) -> usize {
        self.read().grants.len()
    }
}

fn conflict(subject: Subject, expected: u64, found: Option<u64>) -> StoreError {
    StoreError::Conflict {
        subject,
        expected,
        found,
    }
}

impl Inner {
    fn check(&self, c: &Commit) -> Result<(), StoreError> {
        if let Some(w) = &c.request {
            let r = w.value();
            match w {
                Write::Insert(_) => {
                    if self.requests.contains_key(&r.id) {
                        return Err(StoreError::AlreadyExists {
                            subject: Subject::Request(r.id),
                        });
                    }
                    if r.state == RequestState::Pending {
                        if let Some(existing) = self.pending.get(&r.principal).and_then(|m| m.get(r.scope())) {
                            return Err(StoreError::DuplicatePending {
                                existing: *existing,
                                principal: r.principal.clone(),
                            });
                        }
                    }
                }
                Write::Update { expected_version, .. } => {
                    let found = self.requests.get(&r.id).map(|s| s.version);
                    if found != Some(*expected_version) {
                        return Err(conflict(Subject::Request(r.id), *expected_version, found));
                    }
                }
            }
        }
        for w in &c.grants {
            let g = w.value();
            match w {
                Write::Insert(_) => {
                    if self.grants.contains_key(&g.id) {
                        return Err(StoreError::AlreadyExists {
                            subject: Subject::Grant(g.id),
                        });
                    }
                }
                Write::Update { expected_version, .. } => {
                    let found = self.grants.get(&g.id).map(|s| s.version);
                    if found != Some(*expected_version) {
                        return Err(conflict(Subject::Grant(g.id), *expected_version, found));
                    }
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, c: Commit) {
        // The commit's time: the latest of its audit entries' (every transition writes one).
        let at = c.audit.iter().map(|e| e.at).max();
        if let (Some(_), Some(at)) = (self.retention, at) {
            self.note_closed(&c, at);
        }
        let rows: Vec<(Event, String)> = c
            .outbox_rows()
            .into_iter()
            .map(|(e, d)| (e.clone(), d.to_owned()))
            .collect();
        if let Some(w) = c.request {
            let r = match w {
                Write::Insert(r) | Write::Update { value: r, .. } => r,
            };
            let mut r = Box::new(r);
            if let Some(old) = self.requests.remove(&r.id) {
                self.unindex_request(&old);
            }
            self.names.request(&mut r);
            self.index_request(&r);
            self.requests.insert(r);
        }
        for w in c.grants {
            let g = match w {
                Write::Insert(g) | Write::Update { value: g, .. } => g,
            };
            let mut g = g;
            if let Some(old) = self.grants.remove(&g.id) {
                self.unindex_grant(&old);
            }
            self.names.grant(&mut g);
            let g = Arc::new(g);
            self.index_grant(&g);
            self.grants.insert(g);
        }
        for entry in c.audit {
            let request_id = entry.request_id;
            let record = self.head.append(entry);
            self.audit_by_request.entry(request_id).or_default().push(record.seq);
            self.audit.push_back(record);
        }
        for (event, destination) in rows {
            self.outbox_next += 1;
            let seq = self.outbox_next;
            let entry = OutboxEntry::new(seq, event, 0, None).with_destination(destination);
            self.outbox.insert(
                seq,
                OutboxRow {
                    entry,
                    next_attempt_at: None,
                    claimed_until: None,
                },
            );
        }
        // After the writes, so that nothing this commit touches is gone before it lands.
        if let (Some(retention), Some(at)) = (self.retention, at) {
            self.forget_closed_before(at - retention);
        }
    }

    /// Lets go of the kept records through `through`, keeping the last one's head.
    fn release(&mut self, through: u64) {
        while let Some(first) = self.audit.front() {
            if first.seq > through {
                break;
            }
            let Some(record) = self.audit.pop_front() else { break };
            if let Some(seqs) = self.audit_by_request.get_mut(&record.entry.request_id) {
                // The request's records are in chain order: the released one comes first.
                seqs.retain(|s| *s > record.seq);
                if seqs.is_empty() {
                    self.audit_by_request.remove(&record.entry.request_id);
                }
            }
            self.released = ChainHead {
                seq: record.seq,
                hash: record.hash,
            };
        }
        if self.audit.capacity() > 4 * self.audit.len() + 1_024 {
            self.audit.shrink_to(2 * self.audit.len());
        }
    }

    /// The kept record with sequence number `seq`.
    fn audit_record(&self, seq: u64) -> Option<&AuditRecord> {
        let i = seq.checked_sub(self.released.seq + 1)?;
        self.audit.get(usize::try_from(i).ok()?)
    }

    fn index_request(&mut self, r: &AccessRequest) {
        // Creation time and principal never change: a rewrite inserts the same key again.
        self.by_principal.insert((r.principal.clone(), r.created_at, r.id));
        if r.state == RequestState::Pending {
            self.pending
                .entry(r.principal.clone())
                .or_default()
                .insert(r.scope().clone(), r.id);
            self.pending_order.insert((r.created_at, r.id));
            for q in &r.flow.requirements {
                self.pending_by_reviewers
                    .entry(q.reviewers.clone())
                    .or_default()
                    .insert((r.created_at, r.id));
            }
            self.deadlines.insert((r.deadline, r.id));
        }
    }

    fn unindex_request(&mut self, r: &AccessRequest) {
        if r.state == RequestState::Pending {
            if let Some(m) = self.pending.get_mut(&r.principal) {
                m.remove(r.scope());
            }
            self.pending_order.remove(&(r.created_at, r.id));
            for q in &r.flow.requirements {
                if let Some(set) = self.pending_by_reviewers.get_mut(&q.reviewers) {
                    set.remove(&(r.created_at, r.id));
                    if set.is_empty() {
                        self.pending_by_reviewers.remove(&q.reviewers);
                    }
                }
            }
            self.deadlines.remove(&(r.deadline, r.id));
        }
    }

    fn index_grant(&mut self, g: &Arc<Grant>) {
        if !g.state.is_ended() {
            self.live.insert(g);
            self.expiries.insert((g.window.expires_at(), g.id));
            if g.state == GrantState::Scheduled {
                self.starts.insert((g.window.not_before(), g.id));
            }
        }
        if g.awaits_acknowledgement() {
            self.unacknowledged.insert(g.id);
        }
    }

    fn unindex_grant(&mut self, g: &Grant) {
        self.live.remove(g);
        self.expiries.remove(&(g.window.expires_at(), g.id));
        self.starts.remove(&(g.window.not_before(), g.id));
        self.unacknowledged.remove(&g.id);
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        let mut inner = self.write();
        inner.check(&commit)?;
        inner.apply(commit);
        Ok(())
    }

    async fn read_request(&self, id: RequestId) -> Result<Option<AccessRequest>, StoreError> {
        Ok(self.read().requests.get(&id).map(|r| AccessRequest::clone(r)))
    }

    async fn read_grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        Ok(self.read().grants.get(&id).map(|g| Grant::clone(g)))
    }

    async fn live_grants(&self, principal: &EntityRef, scope: &Scope) -> Result<Vec<Arc<Grant>>, StoreError> {
        Ok(self.read().live.of(principal, scope).cloned().collect())
    }

    async fn pending_request(&self, principal: &EntityRef, scope: &Scope) -> Result<Option<AccessRequest>, StoreError> {
        let inner = self.read();
        let id = inner.pending.get(principal).and_then(|m| m.get(scope));
        Ok(id
            .and_then(|id| inner.requests.get(id))
            .map(|r| AccessRequest::clone(r)))
    }

    async fn principal_counts(&self, principal: &EntityRef, now: DateTime<Utc>) -> Result<PrincipalCounts, StoreError> {
        let inner = self.read();
        let ids = inner.pending.get(principal).into_iter().flat_map(|m| m.values());
        let pending = ids
            .filter_map(|id| inner.requests.get(id))
            .filter(|r| r.deadline > now)
            .count();
        let unacknowledged = inner
            .unacknowledged
            .iter()
            .filter_map(|id| inner.grants.get(id))
            .filter(|g| g.principal == *principal)
            .count();
        Ok(PrincipalCounts::new(pending, unacknowledged))
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

    async fn gauges(&self, now: DateTime<Utc>) -> Result<Option<StoreGauges>, StoreError> {
        let inner = self.read();
        let active = inner
            .live
            .iter()
            .filter(|g| g.status_at(now) == GrantState::Active)
            .count();
        let mut outbox: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for row in inner.outbox.values() {
            outbox.entry(&row.entry.destination).or_default().0 += 1;
        }
        for entry in inner.dead.values() {
            outbox.entry(&entry.destination).or_default().1 += 1;
        }
        let outbox = outbox
            .into_iter()
            .map(|(d, (pending, dead))| OutboxGauge::new(d, pending, dead))
            .collect();
        Ok(Some(StoreGauges::new(
            inner.pending_order.len() as u64,
            active as u64,
            outbox,
        )))
    }
}

/// The one pagination rule (core's [`Page::from_overfetch`]) over an ordered index: the
/// items of the first `limit + 1` keys that still have one.
fn paginate<K, T>(
    keys: impl Iterator<Item = K>,
    limit: usize,
    cursor_of: impl Fn(&K) -> String,
    item: impl Fn(&K) -> Option<T>,
) -> Page<T> {
    let found: Vec<(K, T)> = keys.filter_map(|k| item(&k).map(|t| (k, t))).take(limit + 1).collect();
    Page::from_overfetch(found, limit, |(k, _)| cursor_of(k)).map(|(_, t)| t)
}

mod by_id;
mod listings;
mod live;
mod names;
mod retention;
#[cfg(test)]
mod tests;
mod work;
