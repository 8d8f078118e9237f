//! Uses of grants in the audit chain: every `Allow` through a grant leaves an
//! [`AuditAction::GrantUsed`] record (grant, scope, the call's parameters' digest, time,
//! replica).
//!
//! A use-limited grant's record is written in the same commit that counts the use. A grant
//! without a limit would cost `authorize` a store round trip per call, so by default its record
//! goes into a bounded in-memory buffer that [`Gate::run_use_writer`] writes in batches
//! ([`UseRecording`] chooses).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Gate;
use crate::audit::{AuditAction, AuditEntry};
use crate::gate::error::Error;
use crate::model::entity::{Action, EntityRef};
use crate::model::grant::Grant;
use crate::model::ids::{GrantId, RequestId};
use crate::ports::store::Commit;
use crate::report::ErrorChain;

/// How [`Gate::authorize`] records the uses of grants without a use limit. (A use-limited
/// grant's use is always recorded, with its count, in the commit that consumes it.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UseRecording {
    /// Kept in a bounded buffer and written in batches by [`Gate::run_use_writer`] (the
    /// default): no store round trip on the hot path. A crash loses the records not yet
    /// written: at most one [`UseBuffer::interval`] of uses, never more than
    /// [`UseBuffer::capacity`]. When the buffer is full (the writer is behind, not running, or
    /// the store is failing), `authorize` writes its own record as in `Synchronous`.
    Buffered(UseBuffer),
    /// Each `Allow` commits its record before it returns: a store round trip under the
    /// authorize deadline, nothing lost on a crash. A record that cannot be written denies.
    Synchronous,
    /// No record for grants without a use limit.
    Off,
}

impl Default for UseRecording {
    fn default() -> Self {
        UseRecording::Buffered(UseBuffer::default())
    }
}

/// The buffer of [`UseRecording::Buffered`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UseBuffer {
    capacity: usize,
    batch: usize,
    interval: Duration,
}

impl Default for UseBuffer {
    /// 8,192 records, written in batches of 256, at least every 200 ms.
    fn default() -> Self {
        Self {
            capacity: 8_192,
            batch: 256,
            interval: Duration::from_millis(200),
        }
    }
}

impl UseBuffer {
    /// How many records the buffer holds at most (at least 1).
    #[must_use]
    pub fn capacity(mut self, records: usize) -> Self {
        self.capacity = records.max(1);
        self
    }
    /// How many records one commit writes at most; the writer also wakes as soon as this many
    /// are waiting (at least 1).
    #[must_use]
    pub fn batch(mut self, records: usize) -> Self {
        self.batch = records.max(1);
        self
    }
    /// How often the writer writes what is waiting: the most a crash can lose, in time.
    #[must_use]
    pub fn interval(mut self, every: Duration) -> Self {
        self.interval = every;
        self
    }
    /// The capacity, in records.
    pub fn get_capacity(&self) -> usize {
        self.capacity
    }
    /// The batch size, in records.
    pub fn get_batch(&self) -> usize {
        self.batch
    }
    /// The interval.
    pub fn get_interval(&self) -> Duration {
        self.interval
    }
}

/// One allowed call, waiting to be written. The digest is computed by the writer, off the
/// hot path.
struct PendingUse {
    at: DateTime<Utc>,
    grant: GrantId,
    request: RequestId,
    principal: EntityRef,
    action: Action,
}

/// A gate's use recording: the setting, the replica's name and the buffer.
pub(super) struct UseLog {
    pub(super) mode: UseRecording,
    replica: String,
    buffer: Mutex<VecDeque<PendingUse>>,
    /// Wakes the writer when a batch is waiting.
    wake: tokio::sync::Notify,
    /// One write at a time, so batches reach the chain in the order they were taken.
    writing: tokio::sync::Mutex<()>,
    /// A full buffer was logged since the last write.
    warned_full: AtomicBool,
}

impl UseLog {
    pub(super) fn new(mode: UseRecording, replica: String) -> Self {
        Self {
            mode,
            replica,
            buffer: Mutex::new(VecDeque::new()),
            wake: tokio::sync::Notify::new(),
            writing: tokio::sync::Mutex::new(()),
            warned_full: AtomicBool::new(false),
        }
    }

    pub(super) fn replica(&self) -> &str {
        &self.replica
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<PendingUse>> {
        // A panic while holding the lock leaves a valid queue (pushes and drains only).
        self.buffer.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The record of one allowed call.
fn use_entry(
    at: DateTime<Utc>,
    grant: GrantId,
    request: RequestId,
    principal: EntityRef,
    action: &Action,
    replica: &str,
) -> AuditEntry {
    AuditEntry {
        at,
        actor: principal.clone(),
        action: AuditAction::GrantUsed,
        request_id: request,
        grant_id: Some(grant),
        principal,
        scope: action.scope.clone(),
        text: None,
        policy_ids: Vec::new(),
        binding: Some(action.binding().0),
        replica: Some(replica.to_owned()),
    }
}

impl Gate {
    /// Records that `grant` (without a use limit) allowed `action` at `at`, as the gate's
    /// [`UseRecording`] says. An error means the record could not be written: the call denies.
    pub(super) async fn record_use(&self, grant: &Grant, action: &Action, at: DateTime<Utc>) -> Result<(), Error> {
        let buffer = match self.uses.mode {
            UseRecording::Off => return Ok(()),
            UseRecording::Synchronous => None,
            UseRecording::Buffered(buffer) => Some(buffer),
        };
        if let Some(buffer) = buffer {
            let mut queue = self.uses.lock();
            if queue.len() < buffer.capacity {
                queue.push_back(PendingUse {
                    at,
                    grant: grant.id,
                    request: grant.request_id,
                    principal: grant.principal.clone(),
                    action: action.clone(),
                });
                let waiting = queue.len();
                drop(queue);
                if waiting == buffer.batch {
                    self.uses.wake.notify_one();
                }
                return Ok(());
            }
            drop(queue);
            if !self.uses.warned_full.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    capacity = buffer.capacity,
                    "the buffer of grant uses is full (is Gate::run_use_writer running?); authorize writes each record itself until it drains"
                );
            }
            self.uses.wake.notify_one();
        }
        let entry = use_entry(
            at,
            grant.id,
            grant.request_id,
            grant.principal.clone(),
            action,
            &self.uses.replica,
        );
        self.commit(Commit::audit_only(vec![entry]), self.authorize_deadline)
            .await?;
        Ok(())
    }

    /// Writes every buffered use record now, in batches, and returns how many were written.
    /// Call it before a process stops if [`Gate::run_use_writer`] is not running (it flushes
    /// at shutdown itself).
    ///
    /// # Errors
    /// A store error; the records not written stay buffered, in order, for the next try.
    pub async fn flush_uses(&self) -> Result<usize, Error> {
        let batch = match self.uses.mode {
            UseRecording::Buffered(b) => b.batch,
            _ => return Ok(0),
        };
        let _one_writer = self.uses.writing.lock().await;
        let mut written = 0;
        loop {
            let taken: Vec<PendingUse> = {
                let mut queue = self.uses.lock();
                let n = queue.len().min(batch);
                queue.drain(..n).collect()
            };
            if taken.is_empty() {
                self.uses.warned_full.store(false, Ordering::Relaxed);
                return Ok(written);
            }
            let n = taken.len();
            let commit = Commit::audit_only(
                taken
                    .iter()
                    .map(|u| {
                        use_entry(
                            u.at,
                            u.grant,
                            u.request,
                            u.principal.clone(),
                            &u.action,
                            &self.uses.replica,
                        )
                    })
                    .collect(),
            );
            if let Err(e) = self.commit(commit, self.verb_deadline).await {
                // Back at the front, in order: the buffer may hold one batch over its capacity
                // until the store answers again.
                let mut queue = self.uses.lock();
                for u in taken.into_iter().rev() {
                    queue.push_front(u);
                }
                return Err(e.into());
            }
            written += n;
        }
    }

    /// How many use records wait in the buffer.
    pub fn pending_uses(&self) -> usize {
        self.uses.lock().len()
    }

    /// Writes buffered use records as soon as a batch is waiting, and at least every
    /// [`UseBuffer::interval`], until `shutdown` completes; then writes what is left. Spawn it
    /// next to the gate (with [`UseRecording::Synchronous`] or `Off` it returns at shutdown
    /// having nothing to do). Failures are logged and retried at the next tick; the records
    /// stay buffered.
    pub async fn run_use_writer(&self, shutdown: impl Future<Output = ()>) {
        let UseRecording::Buffered(buffer) = self.uses.mode else {
            return shutdown.await;
        };
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                () = self.uses.wake.notified() => {}
                () = tokio::time::sleep(buffer.interval) => {}
            }
            if let Err(e) = self.flush_uses().await {
                tracing::error!(error = %ErrorChain(&e), pending = self.pending_uses(), "writing grant uses failed; retrying at the next tick");
            }
        }
        if let Err(e) = self.flush_uses().await {
            tracing::error!(error = %ErrorChain(&e), lost = self.pending_uses(), "writing grant uses at shutdown failed");
        }
    }
}
