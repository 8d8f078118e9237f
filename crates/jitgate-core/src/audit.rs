//! The tamper-evident audit log: records chained by SHA-256.
//!
//! Each record's hash covers a domain tag, its sequence number, the previous record's hash
//! and the canonical JSON of its entry (length-prefixed). [`verify`] recomputes the chain and
//! reports the first record that was edited, removed or reordered.

use std::io::{self, BufRead, Read, Write};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::entity::{EntityRef, Scope};
use crate::model::ids::{GrantId, RequestId};

/// What an audit record records.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Debug)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditAction {
    /// A request was made.
    RequestCreated,
    /// A reviewer approved.
    ReviewApproved,
    /// A reviewer denied (this closes the request).
    ReviewDenied,
    /// Every requirement was met (or the flow auto-approves, or break-glass).
    RequestApproved,
    /// The requester cancelled.
    RequestCancelled,
    /// The request's TTL passed.
    RequestExpired,
    /// A grant was created.
    GrantCreated,
    /// A scheduled grant came into force.
    GrantActivated,
    /// A use of a use-limited grant was consumed.
    GrantUsed,
    /// The last use was consumed.
    GrantExhausted,
    /// The grant's time ran out.
    GrantExpired,
    /// The grant was revoked.
    GrantRevoked,
    /// A break-glass grant was taken.
    BreakGlassUsed,
    /// A break-glass grant was reviewed after the fact.
    BreakGlassAcknowledged,
    /// The grant's holder was reminded that it ends soon.
    GrantExpiryReminded,
    /// A notification could not be delivered after every attempt and was parked as dead.
    NotificationDead,
}

/// One audited step, before it is chained.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who acted (the requester, a reviewer, or the system for sweeps).
    pub actor: EntityRef,
    /// What happened.
    pub action: AuditAction,
    /// The request concerned.
    pub request_id: RequestId,
    /// The grant concerned.
    pub grant_id: Option<GrantId>,
    /// The requester / grant holder.
    pub principal: EntityRef,
    /// The scope.
    pub scope: Scope,
    /// Justification, comment or reason.
    pub text: Option<String>,
    /// The policies that decided.
    pub policy_ids: Vec<String>,
}

/// A chained audit record.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub struct AuditRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// Hex hash of the previous record (all zeros for the first).
    pub prev_hash: String,
    /// Hex hash of this record.
    pub hash: String,
    /// What it records.
    pub entry: AuditEntry,
}

/// The end of a chain: what the next record links to.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub struct ChainHead {
    /// Sequence number of the last record (0 for an empty chain).
    pub seq: u64,
    /// Hash of the last record.
    pub hash: String,
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl Default for ChainHead {
    fn default() -> Self {
        Self::genesis()
    }
}

impl ChainHead {
    /// The head of an empty chain.
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }

    /// Chains `entry` after this head, returning the record and moving the head to it.
    pub fn append(&mut self, entry: AuditEntry) -> AuditRecord {
        let seq = self.seq + 1;
        let hash = record_hash(seq, &self.hash, &entry);
        let record = AuditRecord {
            seq,
            prev_hash: std::mem::replace(&mut self.hash, hash.clone()),
            hash,
            entry,
        };
        self.seq = seq;
        record
    }
}

/// The hash of a record with these contents.
pub fn record_hash(seq: u64, prev_hash: &str, entry: &AuditEntry) -> String {
    // Plain data with no maps keyed by non-strings: serialisation cannot fail.
    let body = serde_json::to_vec(entry).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(b"jitgate-audit-v1\0");
    h.update(seq.to_be_bytes());
    h.update((prev_hash.len() as u64).to_be_bytes());
    h.update(prev_hash.as_bytes());
    h.update((body.len() as u64).to_be_bytes());
    h.update(&body);
    hex::encode(h.finalize())
}

/// How a chain is broken, at the first record where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// A record's contents do not match its hash.
    #[error("audit record {seq} was edited: its hash does not match its contents")]
    Edited {
        /// The record.
        seq: u64,
    },
    /// One or more records before `found` are missing.
    #[error("audit record {expected} is missing (the next one found is {found})")]
    Missing {
        /// The first missing sequence number.
        expected: u64,
        /// The sequence number found instead.
        found: u64,
    },
    /// A record is out of order.
    #[error("audit record {found} is out of order (expected {expected})")]
    Reordered {
        /// The sequence number expected here.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// A record does not link to the one before it (rewritten or spliced chain).
    #[error("audit record {seq} does not link to the record before it")]
    BrokenLink {
        /// The record.
        seq: u64,
    },
}

/// Checks a chain record by record, so a long chain can be verified page by page.
#[derive(Clone, Debug, Default)]
pub struct Verifier {
    head: ChainHead,
}

impl Verifier {
    /// A verifier expecting the first record of a chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next record.
    ///
    /// # Errors
    /// The [`ChainError`] of this record; the verifier does not advance.
    pub fn push(&mut self, r: &AuditRecord) -> Result<(), ChainError> {
        let expected = self.head.seq + 1;
        if r.seq > expected {
            return Err(ChainError::Missing { expected, found: r.seq });
        }
        if r.seq < expected {
            return Err(ChainError::Reordered { expected, found: r.seq });
        }
        if record_hash(r.seq, &r.prev_hash, &r.entry) != r.hash {
            return Err(ChainError::Edited { seq: r.seq });
        }
        if r.prev_hash != self.head.hash {
            return Err(ChainError::BrokenLink { seq: r.seq });
        }
        self.head = ChainHead {
            seq: r.seq,
            hash: r.hash.clone(),
        };
        Ok(())
    }

    /// The head of what was verified so far.
    pub fn head(&self) -> &ChainHead {
        &self.head
    }
}

/// Verifies a whole chain, from its first record, in order, returning its head.
///
/// # Errors
/// The first [`ChainError`] found.
pub fn verify<'a>(records: impl IntoIterator<Item = &'a AuditRecord>) -> Result<ChainHead, ChainError> {
    let mut v = Verifier::new();
    for r in records {
        v.push(r)?;
    }
    Ok(v.head)
}

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
    /// The line (from 1) where verification stopped.
    pub fn line(&self) -> u64 {
        match self {
            ExportError::NotARecord { line, .. }
            | ExportError::LineTooLong { line, .. }
            | ExportError::Chain { line, .. }
            | ExportError::Io { line, .. } => *line,
        }
    }
}

/// Verifies a JSON-lines export (as [`write_jsonl`] writes it) from its first record,
/// streaming: one line in memory at a time, whatever the size. Returns the chain's head.
///
/// # Errors
/// An [`ExportError`] naming the first bad line.
pub fn verify_jsonl(mut input: impl io::BufRead) -> Result<ChainHead, ExportError> {
    let mut verifier = Verifier::new();
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
            return Ok(verifier.head);
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() > MAX_JSONL_LINE {
            return Err(ExportError::LineTooLong {
                line,
                max: MAX_JSONL_LINE,
            });
        }
        let record: AuditRecord =
            serde_json::from_slice(&buf).map_err(|source| ExportError::NotARecord { line, source })?;
        verifier
            .push(&record)
            .map_err(|source| ExportError::Chain { line, source })?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn entry(n: i64) -> AuditEntry {
        let e = |t: &str, i: &str| EntityRef::new(t, i);
        AuditEntry {
            at: Utc.timestamp_opt(1_700_000_000 + n, 0).unwrap(),
            actor: e("User", "alice"),
            action: AuditAction::RequestCreated,
            request_id: RequestId(uuid::Uuid::from_u128(n as u128)),
            grant_id: None,
            principal: e("User", "alice"),
            scope: Scope::new(e("Action", "restart"), e("Db", "x")),
            text: Some(format!("reason {n}")),
            policy_ids: vec!["p1".into()],
        }
    }

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut head = ChainHead::genesis();
        (0..n).map(|i| head.append(entry(i))).collect()
    }

    #[test]
    fn an_intact_chain_verifies_to_its_head() {
        let c = chain(5);
        let head = verify(&c).unwrap();
        assert_eq!(head.seq, 5);
        assert_eq!(head.hash, c[4].hash);
        assert_eq!(verify(&[]).unwrap(), ChainHead::genesis());
    }

    #[test]
    fn an_edited_record_is_found() {
        let mut c = chain(5);
        c[2].entry.text = Some("nothing to see".into());
        assert_eq!(verify(&c), Err(ChainError::Edited { seq: 3 }));
    }

    #[test]
    fn a_removed_record_is_found() {
        let mut c = chain(5);
        c.remove(1);
        assert_eq!(verify(&c), Err(ChainError::Missing { expected: 2, found: 3 }));
        let mut tail = chain(5);
        tail.remove(0);
        assert_eq!(verify(&tail), Err(ChainError::Missing { expected: 1, found: 2 }));
    }

    #[test]
    fn reordered_records_are_found() {
        let mut c = chain(5);
        c.swap(1, 2);
        assert_eq!(verify(&c), Err(ChainError::Missing { expected: 2, found: 3 }));
        let mut d = chain(5);
        d.swap(3, 1);
        assert!(verify(&d).is_err());
        let mut e = chain(3);
        e.push(e[1].clone());
        assert_eq!(verify(&e), Err(ChainError::Reordered { expected: 4, found: 2 }));
    }

    #[test]
    fn a_rehashed_record_breaks_the_link() {
        let mut c = chain(4);
        c[1].entry.text = None;
        c[1].hash = record_hash(c[1].seq, &c[1].prev_hash, &c[1].entry);
        assert_eq!(verify(&c), Err(ChainError::BrokenLink { seq: 3 }));
    }

    #[test]
    fn jsonl_export_round_trips() {
        let c = chain(3);
        let mut buf = Vec::new();
        write_jsonl(&c, &mut buf).unwrap();
        let back: Vec<AuditRecord> = String::from_utf8(buf)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, c);
        assert!(verify(&back).is_ok());
    }

    fn export(c: &[AuditRecord]) -> Vec<u8> {
        let mut buf = Vec::new();
        write_jsonl(c, &mut buf).unwrap();
        buf
    }

    #[test]
    fn an_export_verifies_streaming_and_the_first_bad_line_is_named() {
        let c = chain(4);
        let good = export(&c);
        assert_eq!(verify_jsonl(&good[..]).unwrap(), verify(&c).unwrap());
        assert_eq!(verify_jsonl(&b""[..]).unwrap(), ChainHead::genesis());

        let text = String::from_utf8(good).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines[2] = lines[2].replace("reason 2", "reason X");
        let edited = lines.join("\n") + "\n";
        let e = verify_jsonl(edited.as_bytes()).unwrap_err();
        assert!(
            matches!(
                e,
                ExportError::Chain {
                    line: 3,
                    source: ChainError::Edited { seq: 3 }
                }
            ),
            "{e:?}"
        );

        let mut garbage = text.lines().map(str::to_owned).collect::<Vec<_>>();
        garbage[1] = "{\"seq\": 2, oops".into();
        let e = verify_jsonl((garbage.join("\n") + "\n").as_bytes()).unwrap_err();
        assert!(matches!(e, ExportError::NotARecord { line: 2, .. }), "{e:?}");
        assert_eq!(e.line(), 2);
        assert_eq!(e.to_string(), "line 2 is not an audit record");

        let e = verify_jsonl(&b"\n"[..]).unwrap_err();
        assert!(
            matches!(e, ExportError::NotARecord { line: 1, .. }),
            "a blank line is not a record"
        );
        let e = verify_jsonl(&[0xff, 0xfe, b'\n'][..]).unwrap_err();
        assert!(
            matches!(e, ExportError::NotARecord { line: 1, .. }),
            "nor bytes that are not UTF-8"
        );
        let long = vec![b' '; MAX_JSONL_LINE + 10];
        let e = verify_jsonl(&long[..]).unwrap_err();
        assert!(matches!(e, ExportError::LineTooLong { line: 1, .. }), "{e:?}");
    }
}
