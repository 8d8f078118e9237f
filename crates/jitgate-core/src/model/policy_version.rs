//! [`PolicyVersion`]: which policy set made a decision.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The version of a policy set: the first 128 bits of a SHA-256 over what it was loaded from
/// (for Cedar: the schema, the policies and the template links, as text). Decisions,
/// explanations and audit records name it, so "which rules allowed this?" can be answered
/// from the files in version control long after the set was replaced. Written as 32 lowercase
/// hex digits. `Copy`: naming it costs the hot path nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyVersion([u8; 16]);

impl PolicyVersion {
    /// The version of a set loaded from `parts`, in order. Each part is length-prefixed, so
    /// moving text from one part to the next changes the version.
    pub fn digest<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        let full = hasher.finalize();
        let mut bytes = [0; 16];
        bytes.copy_from_slice(&full[..16]);
        Self(bytes)
    }

    /// The version made of these 16 bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// Its 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for PolicyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PolicyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PolicyVersion({self})")
    }
}

/// A policy version that is not 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a policy version is 32 hex digits, not {0:?}")]
pub struct PolicyVersionParseError(String);

impl FromStr for PolicyVersion {
    type Err = PolicyVersionParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0; 16];
        match hex::decode_to_slice(s, &mut bytes) {
            Ok(()) => Ok(Self(bytes)),
            Err(_) => Err(PolicyVersionParseError(s.chars().take(80).collect())),
        }
    }
}

impl serde::Serialize for PolicyVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PolicyVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_hex_and_json() {
        let v = PolicyVersion::digest([b"schema".as_slice(), b"permit(principal, action, resource);"]);
        let text = v.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text.parse::<PolicyVersion>().unwrap(), v);
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<PolicyVersion>(&json).unwrap(), v);
        assert!("xyz".parse::<PolicyVersion>().is_err());
        assert!(serde_json::from_str::<PolicyVersion>("\"00\"").is_err());
    }

    #[test]
    fn parts_are_length_prefixed() {
        let a = PolicyVersion::digest([b"ab".as_slice(), b"c"]);
        let b = PolicyVersion::digest([b"a".as_slice(), b"bc"]);
        assert_ne!(a, b);
        assert_eq!(a, PolicyVersion::digest([b"ab".as_slice(), b"c"]));
    }
}
