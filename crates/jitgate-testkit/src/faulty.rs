//! [`FaultyStore`]: the in-memory store behind switches, for tests of what the gate does when
//! its store fails, hangs, or lacks capabilities.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jitgate_core::{
    AccessRequest, AuditLog, Commit, DueWork, EntityRef, Grant, GrantId, Listings, MemoryStore, Outbox, Page,
    PageRequest, PrincipalCounts, RequestFilter, RequestId, Scope, Store, StoreError,
};

/// What a [`FaultyStore`] shows of its capabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capabilities {
    /// The core `Store` trait only: every capability is missing.
    CoreOnly,
    /// Every capability. Its [`Listings`] is the in-memory store's, except for
    /// `pending_requests_for`, which is the trait's default (a scan of every pending
    /// request), so the conformance suite checks that default too.
    All,
}

/// The in-memory store, whose calls fail or hang on demand.
///
/// `fail("live_grants")` makes that call answer a backend error ("connection reset");
/// `hang("commit")` makes it never answer; `hang("*")` makes every call hang; `heal()` ends it.
pub struct FaultyStore {
    inner: MemoryStore,
    capabilities: Capabilities,
    failing: Mutex<HashSet<&'static str>>,
    hanging: Mutex<HashSet<&'static str>>,
}

impl FaultyStore {
    /// A healthy store showing `capabilities`.
    pub fn new(capabilities: Capabilities) -> Self {
        Self {
            inner: MemoryStore::new(),
            capabilities,
            failing: Mutex::default(),
            hanging: Mutex::default(),
        }
    }

    /// From now on, `operation` answers a backend error.
    pub fn fail(&self, operation: &'static str) {
        self.failing.lock().unwrap_or_else(|p| p.into_inner()).insert(operation);
    }

    /// From now on, `operation` (`"*"`: every call) never answers.
    pub fn hang(&self, operation: &'static str) {
        self.hanging.lock().unwrap_or_else(|p| p.into_inner()).insert(operation);
    }

    /// Every call answers again.
    pub fn heal(&self) {
        self.failing.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.hanging.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Fails or hangs `operation` as switched, else lets it through.
    async fn enter(&self, operation: &'static str) -> Result<(), StoreError> {
        let hangs = {
            let hanging = self.hanging.lock().unwrap_or_else(|p| p.into_inner());
            hanging.contains(operation) || hanging.contains("*")
        };
        if hangs {
            std::future::pending::<()>().await;
        }
        if self
            .failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(operation)
        {
            return Err(StoreError::Backend(
                format!("connection reset during {operation}").into(),
            ));
        }
        Ok(())
    }

    fn all(&self) -> bool {
        self.capabilities == Capabilities::All
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn commit(&self, c: Commit) -> Result<(), StoreError> {
        self.enter("commit").await?;
        self.inner.commit(c).await
    }
    async fn read_request(&self, id: RequestId) -> Result<Option<AccessRequest>, StoreError> {
        self.enter("read_request").await?;
        self.inner.read_request(id).await
    }
    async fn read_grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
        self.enter("read_grant").await?;
        self.inner.read_grant(id).await
    }
    async fn live_grants(&self, p: &EntityRef, s: &Scope) -> Result<Vec<Arc<Grant>>, StoreError> {
        self.enter("live_grants").await?;
        self.inner.live_grants(p, s).await
    }
    async fn pending_request(&self, p: &EntityRef, s: &Scope) -> Result<Option<AccessRequest>, StoreError> {
        self.enter("pending_request").await?;
        self.inner.pending_request(p, s).await
    }
    async fn principal_counts(&self, p: &EntityRef, now: DateTime<Utc>) -> Result<PrincipalCounts, StoreError> {
        self.enter("principal_counts").await?;
        self.inner.principal_counts(p, now).await
    }
    fn listings(&self) -> Option<&dyn Listings> {
        self.all().then_some(self as &dyn Listings)
    }
    fn due_work(&self) -> Option<&dyn DueWork> {
        self.all().then(|| self.inner.due_work()).flatten()
    }
    fn outbox(&self) -> Option<&dyn Outbox> {
        self.all().then(|| self.inner.outbox()).flatten()
    }
    fn audit_log(&self) -> Option<&dyn AuditLog> {
        self.all().then(|| self.inner.audit_log()).flatten()
    }
}

#[async_trait]
impl Listings for FaultyStore {
    async fn live_grants_of(&self, p: &EntityRef, page: &PageRequest) -> Result<Page<Grant>, StoreError> {
        self.enter("live_grants_of").await?;
        self.inner.live_grants_of(p, page).await
    }
    async fn requests_of(
        &self,
        p: &EntityRef,
        filter: &RequestFilter,
        page: &PageRequest,
    ) -> Result<Page<AccessRequest>, StoreError> {
        self.enter("requests_of").await?;
        self.inner.requests_of(p, filter, page).await
    }

    async fn pending_requests_of(&self, p: &EntityRef, page: &PageRequest) -> Result<Page<AccessRequest>, StoreError> {
        self.enter("pending_requests_of").await?;
        self.inner.pending_requests_of(p, page).await
    }
    async fn pending_requests(&self, page: &PageRequest) -> Result<Page<AccessRequest>, StoreError> {
        self.enter("pending_requests").await?;
        self.inner.pending_requests(page).await
    }
    async fn unacknowledged_break_glass(&self, page: &PageRequest) -> Result<Page<Grant>, StoreError> {
        self.enter("unacknowledged_break_glass").await?;
        self.inner.unacknowledged_break_glass(page).await
    }
}
