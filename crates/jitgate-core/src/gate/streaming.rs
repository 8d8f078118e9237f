//! [`AuditStreamer`]: sealed audit records out to sinks (a SIEM), at least once.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{AuditError, Gate};
use crate::audit::{RecordSink, SinkError};
use crate::ports::store::{Capability, StoreError};
use crate::report::ErrorChain;

/// Records read from the store per page while streaming.
const STREAM_PAGE: usize = 1_000;

/// Streams the records of a gate's audit chain, as they are sealed, to its sinks (a
/// JSON-lines file, standard output, `tracing`, a webhook, one of your own).
///
/// Delivery is at least once, in chain order, per sink: each sink has its own position (the
/// last `seq` it took) and is offered only what comes after it, so a failing sink is retried
/// at the next round without holding the others back. With a [cursor file](Self::cursor_file)
/// the lowest position survives a restart; without one, a new streamer starts from the first
/// record (or [`starting_after`](Self::starting_after)). Either way a sink may see a record
/// again: deduplicate by `seq`.
///
/// The store's audit chain is the durable queue: a record is streamed from where it is kept,
/// never copied elsewhere first, and what a sink has not taken is still there at the next
/// round. After each round the streamer tells the store which records every sink took
/// ([`AuditLog::release`](crate::AuditLog::release)): a
/// [`MemoryStore::releasing_streamed_audit`](crate::MemoryStore::releasing_streamed_audit)
/// then lets go of them, so its memory does not grow with the chain. Give such a store one
/// streamer, with every sink on it.
pub struct AuditStreamer {
    gate: Gate,
    sinks: Vec<Arc<dyn RecordSink>>,
    start: u64,
    cursor: Option<PathBuf>,
    positions: tokio::sync::Mutex<Option<Vec<u64>>>,
}

impl std::fmt::Debug for AuditStreamer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditStreamer")
            .field("sinks", &self.sinks.iter().map(|s| s.name()).collect::<Vec<_>>())
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

/// What one round of [`AuditStreamer::stream_once`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct StreamReport {
    /// Records handed to sinks (a record taken by two sinks counts twice).
    pub published: u64,
    /// The lowest position over the sinks after the round: every record up to it was taken
    /// by every sink.
    pub position: u64,
    /// The sinks that failed this round (they are offered the same records next round).
    pub failed: Vec<SinkError>,
}

impl Gate {
    /// An [`AuditStreamer`] for this gate's audit chain; add sinks with
    /// [`AuditStreamer::sink`].
    pub fn audit_streamer(&self) -> AuditStreamer {
        AuditStreamer {
            gate: self.clone(),
            sinks: Vec::new(),
            start: 0,
            cursor: None,
            positions: tokio::sync::Mutex::new(None),
        }
    }
}

impl AuditStreamer {
    /// Streams to `sink` too.
    #[must_use]
    pub fn sink(mut self, sink: Arc<dyn RecordSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Starts after record `seq` (default 0: from the first record), unless the cursor file
    /// holds a position.
    #[must_use]
    pub fn starting_after(mut self, seq: u64) -> Self {
        self.start = seq;
        self
    }

    /// Keeps the lowest position over the sinks in `path` (a decimal `seq`, replaced
    /// atomically after each round), and starts from it when the file exists.
    #[must_use]
    pub fn cursor_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cursor = Some(path.into());
        self
    }

    /// The position saved in the cursor file, if there is one.
    ///
    /// # Errors
    /// [`AuditError::StreamCursor`] if the file cannot be read or does not hold a number.
    pub fn saved_position(&self) -> Result<Option<u64>, AuditError> {
        let Some(path) = &self.cursor else { return Ok(None) };
        let cursor_error = |problem, source| AuditError::StreamCursor {
            path: path.clone(),
            problem,
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| cursor_error("does not hold a sequence number", None)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(cursor_error("cannot be read", Some(e))),
        }
    }

    /// Offers every sink the sealed records after its position, page by page, then saves the
    /// lowest position to the cursor file. A sink that fails keeps its position and is named
    /// in the report; the others go on.
    ///
    /// # Errors
    /// A store error ([`StoreError::Unsupported`] without an [`AuditLog`](crate::AuditLog)),
    /// or [`AuditError::StreamCursor`].
    pub async fn stream_once(&self) -> Result<StreamReport, AuditError> {
        let log = self.gate.store.audit_log().ok_or(StoreError::Unsupported {
            capability: Capability::AuditLog,
        })?;
        let mut guard = self.positions.lock().await;
        let start = match *guard {
            None => self.saved_position()?.unwrap_or(self.start),
            Some(_) => self.start,
        };
        let positions = guard.get_or_insert_with(|| vec![start; self.sinks.len()]);
        let mut report = StreamReport::default();
        let mut failed = vec![false; self.sinks.len()];
        let mut after = positions.iter().copied().min().unwrap_or(self.start);
        loop {
            // No per-call deadline, as for every read of the chain: a store may seal first.
            let page = log.records(after, STREAM_PAGE).await?;
            let Some(last) = page.last().map(|r| r.seq) else { break };
            for (i, sink) in self.sinks.iter().enumerate() {
                if failed[i] || positions[i] >= last {
                    continue;
                }
                let from = page.partition_point(|r| r.seq <= positions[i]);
                match sink.publish(&page[from..]).await {
                    Ok(()) => {
                        report.published += (page.len() - from) as u64;
                        positions[i] = last;
                    }
                    Err(e) => {
                        tracing::warn!(sink = sink.name(), error = %ErrorChain(&e), after = positions[i], "an audit record sink failed; offering the records again next round");
                        failed[i] = true;
                        report.failed.push(e);
                    }
                }
            }
            if last <= after || failed.iter().all(|f| *f) {
                break;
            }
            after = last;
        }
        report.position = positions.iter().copied().min().unwrap_or(after);
        if let Some(path) = &self.cursor {
            save_cursor(path, report.position).map_err(|e| AuditError::StreamCursor {
                path: path.clone(),
                problem: "cannot be written",
                source: Some(e),
            })?;
        }
        if !self.sinks.is_empty() && report.position > 0 {
            // Every sink holds the records through the position: a store that keeps the
            // chain in memory may let go of them.
            log.release(report.position).await?;
        }
        Ok(report)
    }

    /// Streams at once, then every `every`, until `shutdown` completes (then once more, so
    /// what was sealed before a clean stop goes out). Failures are logged and retried at the
    /// next round.
    pub async fn run(&self, every: Duration, shutdown: impl Future<Output = ()>) {
        super::rounds::every_until_shutdown("audit streaming", every, shutdown, || async {
            self.stream_once().await.map(drop)
        })
        .await;
    }
}

/// Writes `position` to `path` through a temporary file and a rename, so a crash leaves the
/// old position or the new one.
fn save_cursor(path: &std::path::Path, position: u64) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    writeln!(file, "{position}")?;
    file.sync_data()?;
    std::fs::rename(&tmp, path)
}
