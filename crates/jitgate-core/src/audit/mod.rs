//! The tamper-evident audit log: records chained by SHA-256.
//!
//! Each record's hash covers the RFC 8785 canonical JSON of the record without its hash
//! (format 2; see [`AuditRecord::v`]). [`verify`] recomputes the chain and reports the first
//! record that was edited, removed or reordered; [`verify_jsonl`] does the same for an export,
//! streaming; [`Checkpoint`]s signed with a key the store never sees anchor the chain's head
//! outside the store, so a cut tail or a rewritten chain is found too.

mod canonical;
mod checkpoint;
mod export;
mod stream;

pub use checkpoint::{
    Checkpoint, CheckpointError, CheckpointSigner, CheckpointSink, JsonLinesCheckpoints, TracingCheckpoints,
};
pub use export::{verify_jsonl, verify_jsonl_against, write_jsonl, ExportError, MAX_JSONL_LINE};
pub use stream::{JsonLinesRecords, RecordSink, SinkError, StdoutRecords, TracingRecords};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::entity::{EntityRef, Scope};
use crate::model::ids::{GrantId, RequestId};
use crate::model::policy_version::PolicyVersion;

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
    /// Someone tried something the rules refused (a self-approval, an ineligible reviewer, a
    /// closed request, a forbidden request, ...): `actor` tried, `text` says what and why.
    Refused,
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
    /// For a use ([`AuditAction::GrantUsed`]): the digest of the exact parameters of the
    /// allowed call, [`Action::binding`](crate::Action::binding) (SHA-256 over its action,
    /// resource and context attributes). Absent from other records, and from the hashed form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
    /// For a use: the gate replica that allowed it ([`GateBuilder::replica`](crate::GateBuilder::replica)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// The version of the policy set the step was decided under ([`PolicyVersion`]); absent
    /// from steps no policy decided (sweeps, delivery) and from records written before policy
    /// sets had versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<PolicyVersion>,
}

/// The record format this version of jitgate writes (see [`AuditRecord::v`]).
pub const RECORD_VERSION: u32 = 2;

fn version_1() -> u32 {
    1
}

/// A chained audit record.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub struct AuditRecord {
    /// The record format. 2: `hash` is the SHA-256 of the RFC 8785 canonical JSON of the
    /// record without its `hash` member, so any tool can recompute it from an export line, and
    /// a field added one day is covered without breaking older records. 1 (records written
    /// before format 2, which have no `v`): [`record_hash`] over jitgate's own serialisation of
    /// the entry.
    #[serde(default = "version_1")]
    pub v: u32,
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
        let mut record = AuditRecord {
            v: RECORD_VERSION,
            seq,
            prev_hash: self.hash.clone(),
            hash: String::new(),
            entry,
        };
        record.hash = record.content_hash().unwrap_or_default();
        self.hash.clone_from(&record.hash);
        self.seq = seq;
        record
    }
}

/// What a format-2 hash covers: the record without its hash (member order is irrelevant, RFC
/// 8785 sorts members).
#[derive(Serialize)]
struct Hashed<'a> {
    v: u32,
    seq: u64,
    prev_hash: &'a str,
    entry: &'a AuditEntry,
}

impl AuditRecord {
    /// The hash this record's contents call for, by its format; `None` for a format this
    /// version of jitgate does not know.
    pub fn content_hash(&self) -> Option<String> {
        match self.v {
            1 => Some(record_hash(self.seq, &self.prev_hash, &self.entry)),
            2 => {
                let hashed = Hashed {
                    v: 2,
                    seq: self.seq,
                    prev_hash: &self.prev_hash,
                    entry: &self.entry,
                };
                canonical_hash(&serde_json::to_value(&hashed).ok()?)
            }
            _ => None,
        }
    }
}

pub(crate) fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(Sha256::digest(bytes.as_ref()))
}

/// The format-2 hash of a record as it stands in an export line (a JSON object): the SHA-256
/// of the RFC 8785 canonical JSON of the object without its `hash` member. Members this
/// version of jitgate does not know are covered too.
pub(crate) fn line_hash(mut value: serde_json::Value) -> Option<String> {
    value.as_object_mut()?.remove("hash");
    canonical_hash(&value)
}

/// The SHA-256 (hex) of the RFC 8785 canonical JSON of `value`; `None` if it holds a
/// fractional number. Stores use it to fix an audit entry's content when it is committed
/// (before it is chained), so an edit in between is found.
pub fn canonical_hash(value: &serde_json::Value) -> Option<String> {
    let mut hasher = Sha256::new();
    canonical::write(value, &mut hasher)
        .ok()?
        .then(|| hex::encode(hasher.finalize()))
}

/// The RFC 8785 canonical JSON of `value` (plain data: no fractional numbers).
pub(crate) fn canonical_bytes(value: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(v) = serde_json::to_value(value) {
        // A failure leaves what was written: a signature over it will not verify.
        let _ = canonical::write(&v, &mut out);
    }
    out
}

/// The hash of a format-1 record with these contents (records written before format 2).
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
    /// The record at a checkpoint's sequence number is not the one the checkpoint signed: the
    /// chain was rewritten (from this record or before).
    #[error("audit record {seq} is not the record the checkpoint signed: the chain was rewritten")]
    DiffersFromCheckpoint {
        /// The record.
        seq: u64,
    },
    /// The chain ends before a checkpoint's sequence number: records were cut from its end.
    #[error("the audit chain ends at record {ends_at}, but a checkpoint signed record {checkpoint}: its tail was cut")]
    EndsBeforeCheckpoint {
        /// The chain's last record.
        ends_at: u64,
        /// The checkpoint's record.
        checkpoint: u64,
    },
    /// A record of a format this version of jitgate does not know.
    #[error("audit record {seq} has format {v}, which this version of jitgate does not know")]
    UnknownFormat {
        /// The record.
        seq: u64,
        /// Its format.
        v: u32,
    },
}

/// Checks a chain record by record, so a long chain can be verified page by page.
#[derive(Clone, Debug, Default)]
pub struct Verifier {
    head: ChainHead,
    /// A checkpoint's (sequence, hash) the chain must pass through.
    anchor: Option<(u64, String)>,
}

impl Verifier {
    /// A verifier expecting the first record of a chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// A verifier that also checks the chain against `checkpoint` (whose signature the caller
    /// has checked): the record at its sequence number must have its hash, and
    /// [`finish`](Self::finish) fails if the chain ends before it.
    pub fn anchored(checkpoint: &Checkpoint) -> Self {
        Self {
            head: ChainHead::genesis(),
            anchor: Some((checkpoint.seq, checkpoint.hash.clone())),
        }
    }

    /// Moves on to the records after `head` without checking the records up to it: the
    /// store released them to its audit sinks ([`AuditLog::released`](crate::AuditLog::released)),
    /// where their copy is verified (`verify_jsonl`). A checkpoint at `head` must have signed
    /// it; one before it is left to the sinks' copy. Nothing happens if `head` is not past
    /// what was verified.
    ///
    /// # Errors
    /// [`ChainError::DiffersFromCheckpoint`] if the checkpoint signed `head`'s record and
    /// its hash differs; the verifier does not advance.
    pub fn resume_after(&mut self, head: &ChainHead) -> Result<(), ChainError> {
        if head.seq <= self.head.seq {
            return Ok(());
        }
        if let Some((seq, signed)) = &self.anchor {
            if *seq == head.seq && *signed != head.hash {
                return Err(ChainError::DiffersFromCheckpoint { seq: head.seq });
            }
            if *seq <= head.seq {
                self.anchor = None;
            }
        }
        self.head = head.clone();
        Ok(())
    }

    /// Ends verification: the head, unless the chain ended before its checkpoint.
    ///
    /// # Errors
    /// [`ChainError::EndsBeforeCheckpoint`].
    pub fn finish(self) -> Result<ChainHead, ChainError> {
        match self.anchor {
            Some((checkpoint, _)) if self.head.seq < checkpoint => Err(ChainError::EndsBeforeCheckpoint {
                ends_at: self.head.seq,
                checkpoint,
            }),
            _ => Ok(self.head),
        }
    }

    /// Checks the next record.
    ///
    /// # Errors
    /// The [`ChainError`] of this record; the verifier does not advance.
    pub fn push(&mut self, r: &AuditRecord) -> Result<(), ChainError> {
        let hash = r
            .content_hash()
            .ok_or(ChainError::UnknownFormat { seq: r.seq, v: r.v })?;
        self.push_hashed(r, &hash)
    }

    /// Checks the next record against `hash`, the hash its contents call for (computed from
    /// the record as exported, so members unknown to this version count).
    pub(crate) fn push_hashed(&mut self, r: &AuditRecord, hash: &str) -> Result<(), ChainError> {
        let expected = self.head.seq + 1;
        if r.seq > expected {
            return Err(ChainError::Missing { expected, found: r.seq });
        }
        if r.seq < expected {
            return Err(ChainError::Reordered { expected, found: r.seq });
        }
        if hash != r.hash {
            return Err(ChainError::Edited { seq: r.seq });
        }
        if r.prev_hash != self.head.hash {
            return Err(ChainError::BrokenLink { seq: r.seq });
        }
        if let Some((seq, signed)) = &self.anchor {
            if *seq == r.seq && *signed != r.hash {
                return Err(ChainError::DiffersFromCheckpoint { seq: r.seq });
            }
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
    v.finish()
}

#[cfg(test)]
mod tests;
