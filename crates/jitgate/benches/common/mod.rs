//! What the `authorize` benches share: the policy and the action.

use chrono::Duration;
use jitgate::{Action, EntityRef, Flow, Pattern, RuleTable};

/// A standing rule (SREs read logs), an auto-approved eligibility rule (any user may restart a
/// database) and a forbid (nobody drops one).
pub fn policy() -> RuleTable {
    let e = EntityRef::new;
    RuleTable::builder()
        .member(e("User", "holder"), e("Team", "sre"))
        .standing(
            "read-logs",
            Pattern::In(e("Team", "sre")),
            Pattern::Is(e("Action", "read_logs")),
            Pattern::Any,
        )
        .eligible(
            "restart",
            Pattern::Type("User".into()),
            Pattern::Is(e("Action", "db_restart")),
            Pattern::Any,
            Flow::new(Duration::hours(8)).with_auto_approve(true),
        )
        .forbid(
            "no-drop",
            Pattern::Any,
            Pattern::Is(e("Action", "db_drop")),
            Pattern::Any,
        )
        .build()
        .expect("valid policy")
}

/// Restarting database `db`.
pub fn restart(db: &str) -> Action {
    Action::new(EntityRef::new("Action", "db_restart"), EntityRef::new("Database", db))
}

/// A store that keeps everything except audit-only commits (the batches of use records),
/// which it counts and drops: the `authorize` bench writes millions of use records between
/// samples, and measures `authorize`, not the in-memory chain growing to gigabytes.
#[allow(dead_code)]
pub struct DropUses {
    /// The store that keeps the rest.
    pub inner: std::sync::Arc<jitgate::MemoryStore>,
    /// How many records were dropped.
    pub dropped: std::sync::atomic::AtomicU64,
}

#[jitgate::async_trait]
impl jitgate::Store for DropUses {
    async fn commit(&self, c: jitgate::Commit) -> Result<(), jitgate::StoreError> {
        if c.request().is_none() && c.grants().is_empty() && c.events().is_empty() {
            self.dropped
                .fetch_add(c.audit().len() as u64, std::sync::atomic::Ordering::Relaxed);
            return Ok(());
        }
        self.inner.commit(c).await
    }
    async fn read_request(
        &self,
        id: jitgate::RequestId,
    ) -> Result<Option<jitgate::AccessRequest>, jitgate::StoreError> {
        self.inner.read_request(id).await
    }
    async fn read_grant(&self, id: jitgate::GrantId) -> Result<Option<jitgate::Grant>, jitgate::StoreError> {
        self.inner.read_grant(id).await
    }
    async fn live_grants(
        &self,
        principal: &EntityRef,
        scope: &jitgate::Scope,
    ) -> Result<Vec<std::sync::Arc<jitgate::Grant>>, jitgate::StoreError> {
        self.inner.live_grants(principal, scope).await
    }
    async fn pending_request(
        &self,
        principal: &EntityRef,
        scope: &jitgate::Scope,
    ) -> Result<Option<jitgate::AccessRequest>, jitgate::StoreError> {
        self.inner.pending_request(principal, scope).await
    }
    async fn principal_counts(
        &self,
        principal: &EntityRef,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<jitgate::PrincipalCounts, jitgate::StoreError> {
        self.inner.principal_counts(principal, now).await
    }
}
