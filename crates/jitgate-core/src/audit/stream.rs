//! Sinks for streaming sealed audit records out (to a SIEM): the [`RecordSink`] trait, a
//! JSON-lines file, standard output and `tracing`. [`AuditStreamer`](crate::AuditStreamer)
//! feeds them.

use std::io::Write as _;
use std::path::PathBuf;

use async_trait::async_trait;

use super::{write_jsonl, AuditRecord};

/// A sink refused or failed to take records; the streamer offers them again later.
#[derive(Debug, thiserror::Error)]
#[error("audit record sink `{sink}` failed: {what}")]
pub struct SinkError {
    sink: String,
    what: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SinkError {
    /// `sink` (its name) failed because of `what`.
    pub fn new(sink: impl Into<String>, what: impl Into<String>) -> Self {
        Self {
            sink: sink.into(),
            what: what.into(),
            source: None,
        }
    }

    /// With the underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The sink's name.
    pub fn sink(&self) -> &str {
        &self.sink
    }
}

/// Where sealed audit records go. Delivery is at least once: after a failure, or a restart
/// from a saved position, a sink is offered records it may already hold. Each record's `seq`
/// is unique in the chain: deduplicate by it.
#[async_trait]
pub trait RecordSink: Send + Sync {
    /// A short name for logs and errors (`"siem-file"`, `"stdout"`, ...).
    fn name(&self) -> &str;

    /// Takes `records`: consecutive, in chain order. `Ok` means they are durably the sink's;
    /// an error makes the streamer offer them again at its next round.
    ///
    /// # Errors
    /// A [`SinkError`] saying what failed.
    async fn publish(&self, records: &[AuditRecord]) -> Result<(), SinkError>;
}

/// Appends records as JSON lines to a file (created if missing), synced to disk before it
/// answers: the export format, so `verify_jsonl` and `docs/audit/verify_export.py` read it.
#[derive(Debug, Clone)]
pub struct JsonLinesRecords {
    path: PathBuf,
}

impl JsonLinesRecords {
    /// Appends to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

#[async_trait]
impl RecordSink for JsonLinesRecords {
    fn name(&self) -> &str {
        "jsonl-file"
    }

    async fn publish(&self, records: &[AuditRecord]) -> Result<(), SinkError> {
        let fail = |what: &str, e: std::io::Error| {
            SinkError::new("jsonl-file", format!("{what} {}", self.path.display())).with_source(e)
        };
        let mut lines = Vec::with_capacity(records.len() * 512);
        write_jsonl(records, &mut lines).map_err(|e| fail("serialising for", e))?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| fail("opening", e))?;
        file.write_all(&lines).map_err(|e| fail("writing", e))?;
        file.sync_data().map_err(|e| fail("syncing", e))?;
        Ok(())
    }
}

/// Writes records as JSON lines to standard output (for a log shipper reading the process's
/// output).
#[derive(Debug, Clone, Copy, Default)]
pub struct StdoutRecords;

#[async_trait]
impl RecordSink for StdoutRecords {
    fn name(&self) -> &str {
        "stdout"
    }

    async fn publish(&self, records: &[AuditRecord]) -> Result<(), SinkError> {
        let mut lines = Vec::with_capacity(records.len() * 512);
        write_jsonl(records, &mut lines).map_err(|e| SinkError::new("stdout", "serialising").with_source(e))?;
        let mut out = std::io::stdout().lock();
        out.write_all(&lines)
            .and_then(|()| out.flush())
            .map_err(|e| SinkError::new("stdout", "writing").with_source(e))
    }
}

/// One `tracing` event per record, at INFO on the target `jitgate::audit`, with the record's
/// `seq`, `hash`, action, actor and the whole record as JSON in `record`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingRecords;

#[async_trait]
impl RecordSink for TracingRecords {
    fn name(&self) -> &str {
        "tracing"
    }

    async fn publish(&self, records: &[AuditRecord]) -> Result<(), SinkError> {
        for r in records {
            let json = serde_json::to_string(r).map_err(|e| SinkError::new("tracing", "serialising").with_source(e))?;
            tracing::info!(
                target: "jitgate::audit",
                seq = r.seq,
                hash = %r.hash,
                action = ?r.entry.action,
                actor = %r.entry.actor,
                record = %json,
                "audit record"
            );
        }
        Ok(())
    }
}
