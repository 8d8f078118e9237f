//! The in-memory store passes the conformance suite.

use std::sync::Arc;

use jitgate_core::{MemoryStore, Store};

jitgate_testkit::store_conformance!(|| async { Some(Arc::new(MemoryStore::new()) as Arc<dyn Store>) });

mod memory_notifier {
    use std::sync::Arc;

    use jitgate_testkit::conformance::notifier::{MemoryHarness, NotifierHarness};

    jitgate_testkit::notifier_conformance!(|| async {
        Some(Arc::new(MemoryHarness::default()) as Arc<dyn NotifierHarness>)
    });
}

/// The default `Listings::pending_requests_for` (read every pending request, keep the
/// reviewers' ones) passes the same checks as the in-memory store's index.
mod listings_without_a_reviewer_index {
    use std::sync::Arc;

    use jitgate_core::{
        async_trait, AccessRequest, AuditLog, Commit, EntityRef, Grant, GrantId, Listings, MemoryStore, Page,
        PageRequest, PrincipalCounts, RequestId, Scope, Store, StoreError,
    };

    /// The in-memory store with its listings (and audit log), but the trait's default reviewer
    /// listing.
    struct Scanning(MemoryStore);

    #[async_trait]
    impl Store for Scanning {
        async fn commit(&self, c: Commit) -> Result<(), StoreError> {
            self.0.commit(c).await
        }
        async fn read_request(&self, id: RequestId) -> Result<Option<AccessRequest>, StoreError> {
            self.0.read_request(id).await
        }
        async fn read_grant(&self, id: GrantId) -> Result<Option<Grant>, StoreError> {
            self.0.read_grant(id).await
        }
        async fn live_grants(&self, p: &EntityRef, s: &Scope) -> Result<Vec<Grant>, StoreError> {
            self.0.live_grants(p, s).await
        }
        async fn pending_request(&self, p: &EntityRef, s: &Scope) -> Result<Option<AccessRequest>, StoreError> {
            self.0.pending_request(p, s).await
        }
        async fn principal_counts(
            &self,
            p: &EntityRef,
            now: chrono::DateTime<chrono::Utc>,
        ) -> Result<PrincipalCounts, StoreError> {
            self.0.principal_counts(p, now).await
        }
        fn listings(&self) -> Option<&dyn Listings> {
            Some(self)
        }
        fn audit_log(&self) -> Option<&dyn AuditLog> {
            self.0.audit_log()
        }
    }

    #[async_trait]
    impl Listings for Scanning {
        async fn live_grants_of(&self, p: &EntityRef, page: &PageRequest) -> Result<Page<Grant>, StoreError> {
            self.0.live_grants_of(p, page).await
        }
        async fn pending_requests_of(
            &self,
            p: &EntityRef,
            page: &PageRequest,
        ) -> Result<Page<AccessRequest>, StoreError> {
            self.0.pending_requests_of(p, page).await
        }
        async fn pending_requests(&self, page: &PageRequest) -> Result<Page<AccessRequest>, StoreError> {
            self.0.pending_requests(page).await
        }
        async fn unacknowledged_break_glass(&self, page: &PageRequest) -> Result<Page<Grant>, StoreError> {
            self.0.unacknowledged_break_glass(page).await
        }
    }

    jitgate_testkit::store_conformance!(|| async { Some(Arc::new(Scanning(MemoryStore::new())) as Arc<dyn Store>) }; listings);
}
