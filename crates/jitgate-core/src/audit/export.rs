//! JSON-lines exports: writing them, and verifying them as a stream.

use std::io::{self, BufRead, Read, Write};

use serde::Deserialize;

use super::{line_hash, AuditRecord, ChainError, ChainHead, Checkpoint, CheckpointError, Verifier};

/// Writes records as JSON lines, one record per line.
///
/// # Errors
/// Any I/O error of `out`.
pub fn write_jsonl<'a>(records: impl IntoIterator<Item = &'a AuditRecord>, mut out: impl Write) -> io::Result<()> {
    for r in records {
        serde_json::to_writer(&mut out, r).map_err(io::Error::other)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The longest line [`verify_jsonl`] reads: far above any record within the gate's
/// [`Limits`](crate::Limits), and a bound on the memory one line may take.
pub const MAX_JSONL_LINE: usize = 1 << 20;

/// A JSON-lines export failed verification; `line` counts from 1.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The line is not an audit record (not JSON, not UTF-8, blank, or another shape).
    #[error("line {line} is not an audit record")]
    NotARecord {
        /// The line.
        line: u64,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// The line is longer than [`MAX_JSONL_LINE`] bytes.
    #[error("line {line} is longer than {max} bytes")]
    LineTooLong {
        /// The line.
        line: u64,
        /// The maximum.
        max: usize,
    },
    /// The record on the line breaks the chain.
    #[error("line {line} breaks the audit chain")]
    Chain {
        /// The line.
        line: u64,
        /// How.
        #[source]
        source: ChainError,
    },
    /// The checkpoint given to verify against is not trustworthy (bad signature or key).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Reading failed.
    #[error("reading line {line} failed")]
    Io {
        /// The line.
        line: u64,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

impl ExportError {
    /// The line (from 1) where verification stopped; 0 when the checkpoint was refused before
    /// any line was read.
    pub fn line(&self) -> u64 {
        match self {
            ExportError::NotARecord { line, .. }
            | ExportError::LineTooLong { line, .. }
            | ExportError::Chain { line, .. }
            | ExportError::Io { line, .. } => *line,
            ExportError::Checkpoint(_) => 0,
        }
    }
}

/// Verifies a JSON-lines export (as [`write_jsonl`] writes it) from its first record,
/// streaming: one line in memory at a time, whatever the size. Returns the chain's head.
///
/// # Errors
/// An [`ExportError`] naming the first bad line.
pub fn verify_jsonl(input: impl io::BufRead) -> Result<ChainHead, ExportError> {
    verify_lines(input, Verifier::new())
}

/// [`verify_jsonl`], and also against `checkpoint`, signed by the key `public_key_hex`: the
/// export must reach the checkpoint's record (else its tail was cut) and hold the record the
/// checkpoint signed (else the chain was rewritten).
///
/// # Errors
/// [`ExportError::Checkpoint`] when the checkpoint's signature does not verify; otherwise an
/// [`ExportError`] naming the first bad line ([`ChainError::EndsBeforeCheckpoint`] on the line
/// after the last).
pub fn verify_jsonl_against(
    input: impl io::BufRead,
    checkpoint: &Checkpoint,
    public_key_hex: &str,
) -> Result<ChainHead, ExportError> {
    checkpoint.verify_signature(public_key_hex)?;
    verify_lines(input, Verifier::anchored(checkpoint))
}

fn verify_lines(mut input: impl io::BufRead, mut verifier: Verifier) -> Result<ChainHead, ExportError> {
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        line += 1;
        buf.clear();
        let read = (&mut input)
            .take(MAX_JSONL_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|source| ExportError::Io { line, source })?;
        if read == 0 {
            return verifier.finish().map_err(|source| ExportError::Chain { line, source });
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() > MAX_JSONL_LINE {
            return Err(ExportError::LineTooLong {
                line,
                max: MAX_JSONL_LINE,
            });
        }
        let not_a_record = |source| ExportError::NotARecord { line, source };
        let value: serde_json::Value = serde_json::from_slice(&buf).map_err(not_a_record)?;
        let record = AuditRecord::deserialize(&value).map_err(not_a_record)?;
        // Format 2 is checked against the line itself, unknown members included.
        let hash = match record.v {
            2 => line_hash(value),
            _ => record.content_hash(),
        }
        .ok_or(ExportError::Chain {
            line,
            source: ChainError::UnknownFormat {
                seq: record.seq,
                v: record.v,
            },
        })?;
        verifier
            .push_hashed(&record, &hash)
            .map_err(|source| ExportError::Chain { line, source })?;
    }
}
