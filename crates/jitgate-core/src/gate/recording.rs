//! Audit records written off the call path: uses of grants and refused attempts.
//!
//! Every `Allow` through a grant leaves an [`AuditAction::GrantUsed`] record (grant, scope, the
//! call's parameters' digest, time, replica). A use-limited grant's record is written in the
//! same commit that counts the use. A grant without a limit would cost `authorize` a store
//! round trip per call, so by default its record goes into a bounded in-memory buffer that
//! [`Gate::run_audit_writer`] writes in batches ([`UseRecording`] chooses). A refused attempt's
//! record ([`AuditAction::Refused`]) goes into the same buffer, so a flood of refused attempts
//! costs batched writes, not a commit each.

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
use crate::model::policy_version::PolicyVersion;
use crate::ports::store::Commit;
use crate::report::ErrorChain;

/// How [`Gate::authorize`] records the uses of grants without a use limit. (A use-limited
/// grant's use is always recorded, with its count, in the commit that consumes it.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UseRecording {
    /// Kept in a bounded buffer and written in batches by [`Gate::run_audit_writer`] (the
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
    policy_version: Option<PolicyVersion>,
}

/// A record waiting in the buffer.
enum Pending {
    /// A use, turned into its record by the writer.
    Use(PendingUse),
    /// A record made already (a refusal).
    Entry(Box<AuditEntry>),
}

/// A gate's buffered audit records: the setting, the replica's name and the buffer.
pub(super) struct UseLog {
    pub(super) mode: UseRecording,
    replica: String,
    buffer: Mutex<VecDeque<Pending>>,
    /// Wakes the writer when a batch is waiting.
    wake: std::sync::Arc<tokio::sync::Notify>,
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
            wake: std::sync::Arc::new(tokio::sync::Notify::new()),
            writing: tokio::sync::Mutex::new(()),
            warned_full: AtomicBool::new(false),
        }
    }

    pub(super) fn replica(&self) -> &str {
        &self.replica
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Pending>> {
        // A panic while holding the lock leaves a valid queue (pushes and drains only).
        self.buffer.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `item` if the buffer is on and has room; else hands it back, to be written by
    /// the caller. Wakes the writer when a batch is waiting or the buffer is full.
    fn push(&self, item: Pending) -> Option<Pending> {
        let UseRecording::Buffered(buffer) = self.mode else {
            return Some(item);
        };
        let mut queue = self.lock();
        if queue.len() < buffer.capacity {
            queue.push_back(item);
            let waiting = queue.len();
            drop(queue);
            if waiting == buffer.batch {
                self.wake.notify_one();
            }
            return None;
        }
        drop(queue);
        if !self.warned_full.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                capacity = buffer.capacity,
                "the buffer of audit records is full (is Gate::run_audit_writer running?); each call writes its own record until it drains"
            );
        }
        self.wake.notify_one();
        Some(item)
    }

    /// The record a buffered item stands for.
    fn entry(&self, item: &Pending) -> AuditEntry {
        match item {
            Pending::Use(u) => use_entry(u, &self.replica),
            Pending::Entry(e) => (**e).clone(),
        }
    }
}

/// The record of one allowed call.
fn use_entry(u: &PendingUse, replica: &str) -> AuditEntry {
    AuditEntry {
        at: u.at,
        actor: u.principal.clone(),
        action: AuditAction::GrantUsed,
        request_id: u.request,
        grant_id: Some(u.grant),
        principal: u.principal.clone(),
        scope: u.action.scope.clone(),
        text: None,
        policy_ids: Vec::new(),
        binding: Some(u.action.binding().0),
        replica: Some(replica.to_owned()),
        policy_version: u.policy_version,
    }
}

impl Gate {
    /// Records that `grant` (without a use limit) allowed `action` at `at`, as the gate's
    /// [`UseRecording`] says. An error means the record could not be written: the call denies.
    pub(super) async fn record_use(
        &self,
        grant: &Grant,
        action: &Action,
        at: DateTime<Utc>,
        policy_version: Option<PolicyVersion>,
    ) -> Result<(), Error> {
        if self.uses.mode == UseRecording::Off {
            return Ok(());
        }
        let pending = Pending::Use(PendingUse {
            at,
            grant: grant.id,
            request: grant.request_id,
            principal: grant.principal.clone(),
            action: action.clone(),
            policy_version,
        });
        let Some(unbuffered) = self.uses.push(pending) else {
            return Ok(());
        };
        let entry = self.uses.entry(&unbuffered);
        self.commit(Commit::audit_only(vec![entry]), self.authorize_deadline)
            .await?;
        Ok(())
    }

    /// Appends `entry` (a refusal) to the chain: through the buffer when uses are buffered
    /// and it has room, else in a commit of its own under the verb deadline.
    pub(super) async fn record_entry(&self, entry: AuditEntry) -> Result<(), Error> {
        let Some(unbuffered) = self.uses.push(Pending::Entry(Box::new(entry))) else {
            return Ok(());
        };
        let entry = self.uses.entry(&unbuffered);
        self.commit(Commit::audit_only(vec![entry]), self.verb_deadline).await?;
        Ok(())
    }

    /// Writes every buffered audit record (uses, refusals) now, in batches, and returns how
    /// many were written.
    /// Call it before a process stops if [`Gate::run_audit_writer`] is not running (it flushes
    /// at shutdown itself).
    ///
    /// # Errors
    /// A store error; the records not written stay buffered, in order, for the next try.
    pub async fn flush_audit_buffer(&self) -> Result<usize, Error> {
        let batch = match self.uses.mode {
            UseRecording::Buffered(b) => b.batch,
            _ => return Ok(0),
        };
        let _one_writer = self.uses.writing.lock().await;
        let mut written = 0;
        loop {
            let taken: Vec<Pending> = {
                let mut queue = self.uses.lock();
                let n = queue.len().min(batch);
                queue.drain(..n).collect()
            };
            if taken.is_empty() {
                self.uses.warned_full.store(false, Ordering::Relaxed);
                return Ok(written);
            }
            let n = taken.len();
            let commit = Commit::audit_only(taken.iter().map(|p| self.uses.entry(p)).collect());
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

    /// With buffered uses: how often the writer must write at least, and what wakes it when a
    /// batch waits (for the runtime's audit writer).
    pub(crate) fn audit_writer_schedule(&self) -> Option<(Duration, std::sync::Arc<tokio::sync::Notify>)> {
        match self.uses.mode {
            UseRecording::Buffered(b) => Some((b.interval, self.uses.wake.clone())),
            _ => None,
        }
    }

    /// How many audit records (uses, refusals) wait in the buffer.
    pub fn audit_buffer_len(&self) -> usize {
        self.uses.lock().len()
    }

    /// Writes buffered use records as soon as a batch is waiting, and at least every
    /// [`UseBuffer::interval`], until `shutdown` completes; then writes what is left. Spawn it
    /// next to the gate (with [`UseRecording::Synchronous`] or `Off` it returns at shutdown
    /// having nothing to do). Failures are logged and retried at the next tick; the records
    /// stay buffered.
    pub async fn run_audit_writer(&self, shutdown: impl Future<Output = ()>) {
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
            if let Err(e) = self.flush_audit_buffer().await {
                tracing::error!(error = %ErrorChain(&e), pending = self.audit_buffer_len(), "writing grant uses failed; retrying at the next tick");
            }
        }
        if let Err(e) = self.flush_audit_buffer().await {
            tracing::error!(error = %ErrorChain(&e), lost = self.audit_buffer_len(), "writing grant uses at shutdown failed");
        }
    }
}
