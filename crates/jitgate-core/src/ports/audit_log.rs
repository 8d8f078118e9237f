//! The [`AuditLog`] capability: reading the audit chain back.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::listings::{Page, PageRequest};
use super::store::{Store, StoreError};
use crate::audit::{AuditRecord, ChainHead};
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

    /// The committed audit entries not yet in the chain, which reads do not return yet. A store
    /// that chains entries in the commit itself has none (the default); one that seals later
    /// (PostgreSQL) says how many wait and since when.
    ///
    /// # Errors
    /// A backend error.
    async fn unsealed(&self) -> Result<Unsealed, StoreError> {
        Ok(Unsealed::default())
    }

    /// Told that every audit sink durably holds the records through `through` (the
    /// [`AuditStreamer`](crate::AuditStreamer) says so after each round). A store that keeps
    /// the chain only in memory may drop them, keeping the head of what it dropped
    /// ([`released`](Self::released)); a durable store keeps them (the default: nothing
    /// happens).
    ///
    /// # Errors
    /// A backend error.
    async fn release(&self, through: u64) -> Result<(), StoreError> {
        let _ = through;
        Ok(())
    }

    /// The last record the store let go of after [`release`](Self::release): the kept chain
    /// starts after it, and [`records`](Self::records) returns nothing before it. The genesis
    /// head (sequence 0) when the store keeps the whole chain (the default).
    ///
    /// # Errors
    /// A backend error.
    async fn released(&self) -> Result<ChainHead, StoreError> {
        Ok(ChainHead::genesis())
    }
}

/// Committed audit entries that are not in the chain yet ([`AuditLog::unsealed`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Unsealed {
    /// How many.
    pub records: u64,
    /// The earliest `at` among them.
    pub oldest: Option<DateTime<Utc>>,
}

impl Unsealed {
    /// `records` entries waiting, the earliest from `oldest`.
    pub fn new(records: u64, oldest: Option<DateTime<Utc>>) -> Self {
        Self { records, oldest }
    }

    /// None waits.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }
}
