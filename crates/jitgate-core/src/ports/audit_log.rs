//! The [`AuditLog`] capability: reading the audit chain back.

use async_trait::async_trait;

use super::listings::{Page, PageRequest};
use super::store::{Store, StoreError};
use crate::audit::AuditRecord;
use crate::model::ids::RequestId;

/// Reads the audit chain (a [`Store`] capability): verification and export need it.
#[async_trait]
pub trait AuditLog: Store {
    /// Up to `limit` audit records with `seq > after_seq`, in chain order.
    ///
    /// # Errors
    /// A backend error.
    async fn records(&self, after_seq: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;

    /// The audit records of one request (and its grant), in chain order.
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] or a backend error.
    async fn request_records(&self, id: RequestId, page: &PageRequest) -> Result<Page<AuditRecord>, StoreError>;
}
