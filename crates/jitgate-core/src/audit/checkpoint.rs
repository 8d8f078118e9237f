//! Signed checkpoints: the chain's head (sequence, hash, time) signed with an Ed25519 key the
//! store never sees, published outside the store. Verifying a chain or an export against a
//! checkpoint finds a cut tail (the chain ends before the checkpoint) and a rewritten chain
//! (the record at the checkpoint's sequence has another hash).

use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::{canonical_bytes, sha256_hex, ChainHead};

/// The checkpoint format this version of jitgate writes.
pub const CHECKPOINT_VERSION: u32 = 1;

/// The head of an audit chain at a moment, signed. Its `signature` is the Ed25519 signature
/// (hex) of the RFC 8785 canonical JSON of the checkpoint without its `signature` member, so
/// any language can check it with the public key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub struct Checkpoint {
    /// The checkpoint format (1).
    pub v: u32,
    /// The sequence number of the chain's last record.
    pub seq: u64,
    /// That record's hash.
    pub hash: String,
    /// When the checkpoint was signed.
    pub at: DateTime<Utc>,
    /// Which key signed it: the first 16 hex digits of the SHA-256 of the public key.
    pub key_id: String,
    /// The signature (hex).
    pub signature: String,
}

/// What a signature covers: the checkpoint without its signature.
#[derive(Serialize)]
struct Signed<'a> {
    v: u32,
    seq: u64,
    hash: &'a str,
    at: DateTime<Utc>,
    key_id: &'a str,
}

impl Checkpoint {
    fn signed_bytes(&self) -> Vec<u8> {
        let signed = Signed {
            v: self.v,
            seq: self.seq,
            hash: &self.hash,
            at: self.at,
            key_id: &self.key_id,
        };
        canonical_bytes(&signed)
    }

    /// Checks the signature with `public_key_hex` (64 hex digits).
    ///
    /// # Errors
    /// [`CheckpointError::BadKey`], [`CheckpointError::UnknownFormat`] or
    /// [`CheckpointError::BadSignature`].
    pub fn verify_signature(&self, public_key_hex: &str) -> Result<(), CheckpointError> {
        let key = parse_public_key(public_key_hex)?;
        if self.v != CHECKPOINT_VERSION {
            return Err(CheckpointError::UnknownFormat { v: self.v });
        }
        let signature = hex::decode(&self.signature)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .ok_or(CheckpointError::BadSignature { seq: self.seq })?;
        key.verify(&self.signed_bytes(), &signature)
            .map_err(|_| CheckpointError::BadSignature { seq: self.seq })
    }
}

fn parse_public_key(hex_key: &str) -> Result<VerifyingKey, CheckpointError> {
    let bytes: [u8; 32] =
        hex::decode(hex_key.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(CheckpointError::BadKey {
                problem: "a public key is 64 hex digits (32 bytes)",
            })?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| CheckpointError::BadKey {
        problem: "not an Ed25519 public key",
    })
}

fn key_id(key: &VerifyingKey) -> String {
    sha256_hex(key.as_bytes())[..16].to_owned()
}

/// Signs checkpoints. Holds the private key: keep it out of the store's reach (a secret
/// store, a separate service). `Debug` never shows the key.
#[derive(Clone)]
pub struct CheckpointSigner {
    key: SigningKey,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("public_key", &self.public_key_hex())
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// A signer from a 32-byte Ed25519 seed (the private key).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// A signer from the seed in hex (64 digits, e.g. from `openssl rand -hex 32`).
    ///
    /// # Errors
    /// [`CheckpointError::BadKey`].
    pub fn from_seed_hex(seed_hex: &str) -> Result<Self, CheckpointError> {
        let seed: [u8; 32] = hex::decode(seed_hex.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(CheckpointError::BadKey {
                problem: "a signing key seed is 64 hex digits (32 bytes)",
            })?;
        Ok(Self::from_seed(seed))
    }

    /// The public key (hex), which verifiers need.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// Signs `head` as of `at`.
    pub fn sign(&self, head: &ChainHead, at: DateTime<Utc>) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            v: CHECKPOINT_VERSION,
            seq: head.seq,
            hash: head.hash.clone(),
            at,
            key_id: key_id(&self.key.verifying_key()),
            signature: String::new(),
        };
        checkpoint.signature = hex::encode(self.key.sign(&checkpoint.signed_bytes()).to_bytes());
        checkpoint
    }
}

/// A checkpoint could not be made, published, read or trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// A key is malformed.
    #[error("bad checkpoint key: {problem}")]
    BadKey {
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The signature does not verify with the given public key: forged, altered, or signed
    /// with another key.
    #[error("the checkpoint at record {seq} is not signed by this key, or was altered")]
    BadSignature {
        /// The checkpoint's sequence number.
        seq: u64,
    },
    /// A checkpoint format this version of jitgate does not know.
    #[error("checkpoint format {v} is not known to this version of jitgate")]
    UnknownFormat {
        /// Its format.
        v: u32,
    },
    /// Publishing or reading checkpoints failed.
    #[error("checkpoint sink failed")]
    Io(#[from] std::io::Error),
    /// A line of a checkpoint file is not a checkpoint.
    #[error("line {line} of the checkpoint file is not a checkpoint")]
    NotACheckpoint {
        /// The line (from 1).
        line: usize,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// Where checkpoints go: somewhere the store's administrators cannot rewrite.
#[async_trait]
pub trait CheckpointSink: Send + Sync {
    /// Publishes one checkpoint.
    ///
    /// # Errors
    /// A [`CheckpointError`] (usually [`CheckpointError::Io`]).
    async fn publish(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError>;
}

/// Appends checkpoints to a JSON-lines file, one per line.
#[derive(Clone, Debug)]
pub struct JsonLinesCheckpoints {
    path: PathBuf,
}

impl JsonLinesCheckpoints {
    /// Appends to `path` (created if missing).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The last checkpoint in the file, if any.
    ///
    /// # Errors
    /// [`CheckpointError::Io`], or [`CheckpointError::NotACheckpoint`] naming the line.
    pub fn latest(&self) -> Result<Option<Checkpoint>, CheckpointError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut last = None;
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            last = Some(
                serde_json::from_str(line).map_err(|source| CheckpointError::NotACheckpoint { line: i + 1, source })?,
            );
        }
        Ok(last)
    }
}

#[async_trait]
impl CheckpointSink for JsonLinesCheckpoints {
    /// One short append per checkpoint (synchronous: a line, not a load).
    async fn publish(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        let mut line = serde_json::to_vec(checkpoint).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        file.write_all(&line)?;
        file.sync_data()?;
        Ok(())
    }
}

/// Logs checkpoints through `tracing` (target `jitgate::audit::checkpoint`, level INFO), for a
/// log pipeline that ships them off the machine.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingCheckpoints;

#[async_trait]
impl CheckpointSink for TracingCheckpoints {
    async fn publish(&self, c: &Checkpoint) -> Result<(), CheckpointError> {
        tracing::info!(
            target: "jitgate::audit::checkpoint",
            v = c.v,
            seq = c.seq,
            hash = %c.hash,
            at = %c.at,
            key_id = %c.key_id,
            signature = %c.signature,
            "audit checkpoint"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> CheckpointSigner {
        CheckpointSigner::from_seed([7; 32])
    }

    #[test]
    fn a_checkpoint_verifies_with_its_key_only_and_not_once_altered() {
        let head = ChainHead {
            seq: 42,
            hash: "ab".repeat(32),
        };
        let c = signer().sign(&head, DateTime::from_timestamp(1_800_000_000, 0).unwrap());
        let key = signer().public_key_hex();
        c.verify_signature(&key).unwrap();
        let other = CheckpointSigner::from_seed([8; 32]).public_key_hex();
        assert!(matches!(
            c.verify_signature(&other),
            Err(CheckpointError::BadSignature { seq: 42 })
        ));
        let mut moved = c.clone();
        moved.seq = 41;
        assert!(matches!(
            moved.verify_signature(&key),
            Err(CheckpointError::BadSignature { .. })
        ));
        let mut garbage = c.clone();
        garbage.signature = "zz".into();
        assert!(matches!(
            garbage.verify_signature(&key),
            Err(CheckpointError::BadSignature { .. })
        ));
        assert!(matches!(c.verify_signature("00"), Err(CheckpointError::BadKey { .. })));
        let mut future = c.clone();
        future.v = 2;
        assert!(matches!(
            future.verify_signature(&key),
            Err(CheckpointError::UnknownFormat { v: 2 })
        ));
        assert!(CheckpointSigner::from_seed_hex("not hex").is_err());
        assert_eq!(
            CheckpointSigner::from_seed_hex(&"07".repeat(32))
                .unwrap()
                .public_key_hex(),
            key
        );
        assert!(
            !format!("{:?}", signer()).contains(&"07".repeat(32)),
            "Debug hides the key"
        );
    }

    #[tokio::test]
    async fn a_checkpoint_file_keeps_every_checkpoint_and_gives_the_latest() {
        let path = std::env::temp_dir().join(format!("jitgate-checkpoints-{}.jsonl", std::process::id()));
        std::fs::remove_file(&path).ok();
        let sink = JsonLinesCheckpoints::new(&path);
        assert!(sink.latest().unwrap().is_none());
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        for seq in 1..=3 {
            let head = ChainHead {
                seq,
                hash: format!("{seq:064}"),
            };
            sink.publish(&signer().sign(&head, at)).await.unwrap();
        }
        assert_eq!(sink.latest().unwrap().unwrap().seq, 3);
        std::fs::write(&path, "{not json\n").unwrap();
        assert!(matches!(
            sink.latest(),
            Err(CheckpointError::NotACheckpoint { line: 1, .. })
        ));
        std::fs::remove_file(&path).ok();
    }
}
