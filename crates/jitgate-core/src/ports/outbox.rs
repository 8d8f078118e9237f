//! The [`Outbox`] capability: events kept for delivery, at least once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::listings::{Page, PageRequest};
use super::store::{Store, StoreError};
use crate::audit::AuditEntry;
use crate::model::event::Event;

/// An event in the outbox.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct OutboxEntry {
    /// The outbox position.
    pub seq: u64,
    /// The event.
    pub event: Event,
    /// Failed delivery attempts so far.
    pub attempts: u32,
    /// The last delivery error, if any.
    pub last_error: Option<String>,
    /// The destination this entry is for (its name; `""`: every notifier of the dispatcher).
    /// Each destination of an event has an entry of its own, with its own attempts, backoff
    /// and dead letter.
    pub destination: String,
}

impl OutboxEntry {
    /// The entry at outbox position `seq`, after `attempts` failed attempts.
    pub fn new(seq: u64, event: Event, attempts: u32, last_error: Option<String>) -> Self {
        Self {
            seq,
            event,
            attempts,
            last_error,
            destination: String::new(),
        }
    }

    /// For destination `name`.
    #[must_use]
    pub fn with_destination(mut self, name: impl Into<String>) -> Self {
        self.destination = name.into();
        self
    }
}

/// A failed attempt to record: [`Outbox::retry_many`].
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Retry {
    /// The entry's outbox position.
    pub seq: u64,
    /// Failed attempts so far, this one included.
    pub attempts: u32,
    /// When it may be offered again.
    pub next_attempt_at: DateTime<Utc>,
    /// What failed.
    pub error: String,
}

impl Retry {
    /// Entry `seq` failed its `attempts`-th attempt with `error`; due again at `next_attempt_at`.
    pub fn new(seq: u64, attempts: u32, next_attempt_at: DateTime<Utc>, error: String) -> Self {
        Self {
            seq,
            attempts,
            next_attempt_at,
            error,
        }
    }
}

/// Events written by commits, kept until delivered (a [`Store`] capability): the
/// [`Dispatcher`](crate::delivery::dispatch::Dispatcher) needs it.
#[async_trait]
pub trait Outbox: Store {
    /// Up to `limit` undelivered, not dead outbox entries whose next attempt is due at `now`,
    /// oldest first. A store shared by replicas claims them for a while (a lease), so concurrent
    /// dispatchers skip each other's entries; an entry not marked done, retried or parked is
    /// offered again once its claim lapses.
    ///
    /// # Errors
    /// A backend error.
    async fn claim(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Marks outbox entries delivered.
    ///
    /// # Errors
    /// A backend error.
    async fn mark_done(&self, seqs: &[u64]) -> Result<(), StoreError>;

    /// Records a failed attempt: the entry is offered again from `next_attempt_at`.
    ///
    /// # Errors
    /// A backend error.
    async fn retry(
        &self,
        seq: u64,
        attempts: u32,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Records several failed attempts at once (a dispatch round's); by default one
    /// [`retry`](Outbox::retry) each. A store may write them in one statement.
    ///
    /// # Errors
    /// A backend error.
    async fn retry_many(&self, retries: &[Retry]) -> Result<(), StoreError> {
        for r in retries {
            self.retry(r.seq, r.attempts, r.next_attempt_at, &r.error).await?;
        }
        Ok(())
    }

    /// Parks an entry as dead (never offered again) and appends `audit` to the chain, together.
    ///
    /// # Errors
    /// A backend error.
    async fn park(&self, seq: u64, attempts: u32, error: &str, audit: AuditEntry) -> Result<(), StoreError>;

    /// Dead entries, oldest first.
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] or a backend error.
    async fn dead(&self, page: &PageRequest) -> Result<Page<OutboxEntry>, StoreError>;
}
