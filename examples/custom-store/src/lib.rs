//! A store of one's own, on the core [`Store`] trait alone, with only `jitgate` as a
//! dependency (`async_trait` comes re-exported from it).
//!
//! [`VecStore`] keeps requests and grants in two maps behind one lock and applies each
//! [`Commit`] all or nothing, with compare-and-swap on versions, as the trait asks. It has none
//! of the capabilities (`Listings`, `DueWork`, `Outbox`, `AuditLog`), so a gate on it serves
//! `authorize`, `request`, `approve`, `deny`, `cancel` and `revoke`, and says which verbs are
//! off. `cargo run -p jitgate-example-custom-store` runs the quickstart's story on it.
//!
//! The state machine is not part of the public API, so nothing here can build a commit by hand:
//!
//! ```compile_fail
//! use jitgate::machine;
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use jitgate::chrono::{DateTime, Utc};
use jitgate::{
    async_trait, AccessRequest, Commit, EntityRef, Grant, GrantId, PrincipalCounts, RequestId, RequestState, Scope,
    Store, StoreError, Subject, Write,
};

/// Requests and grants in memory, behind one lock.
#[derive(Default)]
pub struct VecStore {
    rows: Mutex<Rows>,
}

#[derive(Default)]
struct Rows {
    requests: HashMap<RequestId, AccessRequest>,
    grants: HashMap<GrantId, Grant>,
    /// (principal, scope) → the grants of that principal for that scope: the hot-path index.
    by_scope: HashMap<(EntityRef, Scope), Vec<GrantId>>,
}

impl Rows {
    /// Every compare-and-swap of `c` holds, and no insert hits an existing row or a pending
    /// request of the same principal and scope.
    fn check(&self, c: &Commit) -> Result<(), StoreError> {
        if let Some(w) = c.request() {
            let r = w.value();
            let stored = self.requests.get(&r.id).map(|s| s.version);
            match w {
                Write::Insert(_) if stored.is_some() => {
                    return Err(StoreError::AlreadyExists {
                        subject: Subject::Request(r.id),
                    })
                }
                Write::Insert(_) => {
                    if let Some(existing) = self.pending(&r.principal, r.scope()) {
                        return Err(StoreError::DuplicatePending {
                            existing: existing.id,
                            principal: r.principal.clone(),
                        });
                    }
                }
                Write::Update { expected_version, .. } if stored != Some(*expected_version) => {
                    return Err(StoreError::Conflict {
                        subject: Subject::Request(r.id),
                        expected: *expected_version,
                        found: stored,
                    })
                }
                Write::Update { .. } => {}
            }
        }
        for w in c.grants() {
            let g = w.value();
            let stored = self.grants.get(&g.id).map(|s| s.version);
            match w {
                Write::Insert(_) if stored.is_some() => {
                    return Err(StoreError::AlreadyExists {
                        subject: Subject::Grant(g.id),
                    })
                }
                Write::Update { expected_version, .. } if stored != Some(*expected_version) => {
                    return Err(StoreError::Conflict {
                        subject: Subject::Grant(g.id),
                        expected: *expected_version,
                        found: stored,
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn pending(&self, principal: &EntityRef, scope: &Scope) -> Option<&AccessRequest> {
        self.requests
            .values()
            .find(|r| r.state == RequestState::Pending && r.principal == *principal && r.scope() == scope)
    }
}

#[async_trait]
impl Store for VecStore {
    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        rows.check(&commit)?;
        // The audit entries and events have nowhere to go: this store has no AuditLog and no
        // Outbox capability (a real one would append them here, in the same critical section).
        let (request, grants, _audit, _events) = commit.into_parts();
        if let Some(w) = request {
            let r = w.value().clone();
            rows.requests.insert(r.id, r);
        }
        for w in grants {
            let g = w.value().clone();
            if matches!(w, Write::Insert(_)) {
                rows.by_scope
                    .entry((g.principal.clone(), g.scope.clone()))
                    .or_default()
                    .push(g.id);
            }
            rows.grants.insert(g.id, g);
        }
        Ok(())
    }

    async fn read_request(&self, id: RequestId) -> Result<Option<AccessRequest>, StoreError> {
        Ok(self
            .rows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .requests
            .get(&id)
            .cloned())
    }

    async fn read_grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        Ok(self
            .rows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .grants
            .get(&id)
            .cloned())
    }

    async fn live_grants(&self, principal: &EntityRef, scope: &Scope) -> Result<Vec<Arc<Grant>>, StoreError> {
        let rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let ids = rows.by_scope.get(&(principal.clone(), scope.clone()));
        Ok(ids
            .into_iter()
            .flatten()
            .filter_map(|id| rows.grants.get(id))
            .filter(|g| !g.state.is_ended())
            .map(|g| Arc::new(g.clone()))
            .collect())
    }

    async fn pending_request(&self, principal: &EntityRef, scope: &Scope) -> Result<Option<AccessRequest>, StoreError> {
        Ok(self
            .rows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pending(principal, scope)
            .cloned())
    }

    async fn principal_counts(&self, principal: &EntityRef, now: DateTime<Utc>) -> Result<PrincipalCounts, StoreError> {
        let rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let pending = rows
            .requests
            .values()
            .filter(|r| r.state == RequestState::Pending && r.principal == *principal && r.deadline > now)
            .count();
        let unacknowledged = rows
            .grants
            .values()
            .filter(|g| g.principal == *principal && g.awaits_acknowledgement())
            .count();
        Ok(PrincipalCounts::new(pending, unacknowledged))
    }
}

/// Runs a future to completion on this thread: the `Gate` verbs need no async runtime of their
/// own, so this example needs none either.
pub fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}
