//! The signature scheme: HMAC-SHA256 over `"<timestamp>.<body>"`.
//!
//! Headers on every request:
//! - `X-Jitgate-Timestamp`: Unix seconds when the request was signed.
//! - `X-Jitgate-Signature`: `v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
//! - `X-Jitgate-Event-Id`: the event's stable id (the same on every attempt: de-duplicate on it).
//!
//! A receiver recomputes the HMAC over the exact body bytes, compares in constant time, and
//! rejects a timestamp older than its tolerance (replays) — [`verify`] does all three.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the signing time (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-Jitgate-Timestamp";
/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Jitgate-Signature";
/// Header carrying the event id.
pub const EVENT_ID_HEADER: &str = "X-Jitgate-Event-Id";
/// Header carrying the attempt number.
pub const ATTEMPT_HEADER: &str = "X-Jitgate-Attempt";

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; this cannot fail.
    let mut m =
        <HmacSha256 as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The `X-Jitgate-Signature` value for `body` signed at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let bytes = mac(secret, timestamp, body).finalize().into_bytes();
    let hex = hex::encode(bytes);
    format!("v1={hex}")
}

/// Why a webhook request was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// A header is missing or not of the expected form.
    #[error("malformed signature headers: {0}")]
    Malformed(&'static str),
    /// The timestamp is outside the tolerance (a replay, or a badly wrong clock).
    #[error("signature timestamp is {age_seconds} s away from now, beyond the tolerance")]
    Expired {
        /// How far the timestamp is from now, in seconds.
        age_seconds: i64,
    },
    /// The signature does not match the body: not from the holder of the secret, or altered.
    #[error("signature does not match the body")]
    Mismatch,
}

/// Verifies a received webhook: the header values as received, the raw body, the receiver's
/// clock, and how old a request may be.
///
/// # Errors
/// A [`SignatureError`].
///
/// ```
/// use chrono::{Duration, Utc};
/// use jitgate_webhook::{sign, verify};
/// let now = Utc::now();
/// let body = br#"{"event":{}}"#;
/// let sig = sign(b"s3cret", now.timestamp(), body);
/// assert!(verify(b"s3cret", &now.timestamp().to_string(), &sig, body, now, Duration::minutes(5)).is_ok());
/// assert!(verify(b"other", &now.timestamp().to_string(), &sig, body, now, Duration::minutes(5)).is_err());
/// ```
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Malformed("timestamp is not a number"))?;
    // Any i64 may arrive: saturate rather than overflow.
    let age = now.timestamp().saturating_sub(ts);
    if age.saturating_abs() > tolerance.num_seconds() {
        return Err(SignatureError::Expired { age_seconds: age });
    }
    let hex = signature
        .trim()
        .strip_prefix("v1=")
        .ok_or(SignatureError::Malformed("signature must start with v1="))?;
    if hex.len() != 64 {
        return Err(SignatureError::Malformed("signature must be 64 hex digits"));
    }
    // `hex` decodes bytes, not chars: 64 bytes of any text (multi-byte included) are an error,
    // never a slice across a character.
    let bytes = hex::decode(hex).map_err(|_| SignatureError::Malformed("signature is not hex"))?;
    mac(secret, ts, body)
        .verify_slice(&bytes)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever arrives from the network, `verify` answers, never panics.
        #[test]
        fn verify_never_panics(
            secret in proptest::collection::vec(any::<u8>(), 0..40),
            timestamp in prop_oneof![any::<String>(), any::<i64>().prop_map(|n| n.to_string())],
            signature in prop_oneof![
                any::<String>(),
                "v1=.{0,70}",
                "v1=[0-9a-f\\u{e9}]{60,66}",
            ],
            body in proptest::collection::vec(any::<u8>(), 0..200),
            now_secs in -8_000_000_000i64..8_000_000_000,
            tolerance in any::<i32>(),
        ) {
            let now = DateTime::from_timestamp(now_secs, 0).unwrap_or_default();
            let _ = verify(&secret, &timestamp, &signature, &body, now, Duration::seconds(i64::from(tolerance)));
        }
    }

    #[test]
    fn extreme_and_multibyte_inputs_are_errors() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let tol = Duration::minutes(5);
        let sig = sign(b"k", now.timestamp(), b"body");
        assert!(matches!(
            verify(b"k", &i64::MIN.to_string(), &sig, b"body", now, tol),
            Err(SignatureError::Expired { .. })
        ));
        // 64 bytes, with two-byte characters at odd offsets: slicing two bytes at a time would
        // split one.
        let multibyte = format!("v1=a{}b", "é".repeat(31));
        assert!(matches!(
            verify(b"k", &now.timestamp().to_string(), &multibyte, b"body", now, tol),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn verify_rejects_tampering_replays_and_garbage() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let ts = now.timestamp().to_string();
        let sig = sign(b"k", now.timestamp(), b"body");
        let tol = Duration::minutes(5);
        assert_eq!(verify(b"k", &ts, &sig, b"body", now, tol), Ok(()));
        assert_eq!(
            verify(b"k", &ts, &sig, b"bodY", now, tol),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"x", &ts, &sig, b"body", now, tol),
            Err(SignatureError::Mismatch)
        );
        let later = now + Duration::minutes(6);
        assert_eq!(
            verify(b"k", &ts, &sig, b"body", later, tol),
            Err(SignatureError::Expired { age_seconds: 360 })
        );
        assert!(matches!(
            verify(b"k", "soon", &sig, b"body", now, tol),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify(b"k", &ts, "v2=00", b"body", now, tol),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify(b"k", &ts, &format!("v1={}", "zz".repeat(32)), b"body", now, tol),
            Err(SignatureError::Malformed(_))
        ));
        // The timestamp is signed: moving it breaks the signature.
        let moved = (now.timestamp() + 1).to_string();
        assert_eq!(
            verify(b"k", &moved, &sig, b"body", now, tol),
            Err(SignatureError::Mismatch)
        );
    }
}
