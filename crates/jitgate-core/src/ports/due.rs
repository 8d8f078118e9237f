//! The [`DueWork`] capability: what time has made due, for sweeps and reminders.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::store::{Store, StoreError};
use crate::model::grant::Grant;
use crate::model::request::AccessRequest;

/// What time has made due (a [`Store`] capability): `Gate::sweep` needs it.
#[async_trait]
pub trait DueWork: Store {
    /// Up to `limit` pending requests whose deadline is at or before `now`. Like
    /// [`Outbox::claim`](super::outbox::Outbox::claim), a shared store may claim them for a while.
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

    /// Up to `limit` grants, stored `Active`, not yet reminded, with `expires_at <= before`
    /// (a sweep sends their expiry reminders). A shared store may claim them for a while.
    ///
    /// # Errors
    /// A backend error.
    async fn due_reminders(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Grant>, StoreError>;
}
