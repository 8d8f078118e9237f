//! The signature scheme of the [Standard Webhooks](https://www.standardwebhooks.com/)
//! specification, so a receiver in any language verifies with an existing library.
//!
//! Headers on every request:
//! - `webhook-id`: the event's stable id (the same on every attempt: de-duplicate on it). It
//!   is signed, so a captured request cannot be replayed under a new id.
//! - `webhook-timestamp`: Unix seconds when the request was signed.
//! - `webhook-signature`: `v1,<base64 HMAC-SHA256(key, id + "." + timestamp + "." + body)>`,
//!   several separated by spaces while a secret is being rotated.
//!
//! The key is the secret's bytes: a Standard Webhooks secret `whsec_<base64>` decodes to them
//! with [`key_from_secret`]. A receiver recomputes the HMAC over the exact body bytes, compares
//! in constant time with each `v1` signature, and rejects a timestamp outside its tolerance
//! (replays) — [`verify`] does all of it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the event id (signed).
pub const ID_HEADER: &str = "webhook-id";
/// Header carrying the signing time (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Header carrying the signatures.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// Header carrying the attempt number (not part of the specification; informational).
pub const ATTEMPT_HEADER: &str = "X-Jitgate-Attempt";

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; this cannot fail.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The key a Standard Webhooks secret stands for: `whsec_` (optional) then base64.
///
/// # Errors
/// [`SignatureError::Malformed`] if the rest is not base64 or is empty.
pub fn key_from_secret(secret: &str) -> Result<Vec<u8>, SignatureError> {
    let b64 = secret.trim().strip_prefix("whsec_").unwrap_or(secret.trim());
    let key = STANDARD
        .decode(b64)
        .map_err(|_| SignatureError::Malformed("the secret is not whsec_ followed by base64"))?;
    if key.is_empty() {
        return Err(SignatureError::Malformed("the secret is empty"));
    }
    Ok(key)
}

/// One signature, `v1,<base64>`, of `body` with event id `id` at `timestamp`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let bytes = mac(key, id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", STANDARD.encode(bytes))
}

/// Why a webhook request was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// A header or the secret is missing or not of the expected form.
    #[error("malformed signature headers: {0}")]
    Malformed(&'static str),
    /// The timestamp is outside the tolerance (a replay, or a badly wrong clock).
    #[error("signature timestamp is {age_seconds} s away from now, beyond the tolerance")]
    Expired {
        /// How far the timestamp is from now, in seconds.
        age_seconds: i64,
    },
    /// No `v1` signature matches: not from a holder of the secret, or the id, timestamp or
    /// body were altered.
    #[error("no signature matches the id, timestamp and body")]
    Mismatch,
}

/// Verifies a received webhook as the Standard Webhooks specification does: the header values
/// as received (`webhook-id`, `webhook-timestamp`, `webhook-signature`), the raw body, the
/// receiver's clock, and how far from it the timestamp may be. Any one `v1` signature in the
/// header that matches is enough (several are sent while a secret is rotated); entries of other
/// versions are ignored.
///
/// # Errors
/// A [`SignatureError`]; never panics, whatever the input.
///
/// ```
/// use chrono::{Duration, Utc};
/// use jitgate_webhook::{key_from_secret, sign, verify};
/// let key = key_from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
/// let now = Utc::now();
/// let body = br#"{"event":{}}"#;
/// let sig = sign(&key, "evt_1", now.timestamp(), body);
/// let ts = now.timestamp().to_string();
/// assert!(verify(&key, "evt_1", &ts, &sig, body, now, Duration::minutes(5)).is_ok());
/// assert!(verify(&key, "evt_2", &ts, &sig, body, now, Duration::minutes(5)).is_err());
/// ```
pub fn verify(
    key: &[u8],
    id: &str,
    timestamp: &str,
    signatures: &str,
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
    let mut any_v1 = false;
    for entry in signatures.split(' ').filter(|e| !e.is_empty()) {
        let Some(("v1", b64)) = entry.split_once(',') else {
            continue;
        };
        any_v1 = true;
        let Ok(bytes) = STANDARD.decode(b64) else { continue };
        if mac(key, id, ts, body).verify_slice(&bytes).is_ok() {
            return Ok(());
        }
    }
    if any_v1 {
        Err(SignatureError::Mismatch)
    } else {
        Err(SignatureError::Malformed("no v1,<base64> signature in the header"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The specification's published example: what every reference library verifies.
    #[test]
    fn the_specification_test_vector_signs_and_verifies() {
        let key = key_from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let (id, ts, body) = (
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        let expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(sign(&key, id, ts, body), expected);
        let now = DateTime::from_timestamp(ts, 0).unwrap();
        let tol = Duration::minutes(5);
        assert_eq!(verify(&key, id, &ts.to_string(), expected, body, now, tol), Ok(()));
        // With a rotated-out signature and an unknown version beside it.
        let several = format!("v1,bm9wZQ== v2,abc {expected}");
        assert_eq!(verify(&key, id, &ts.to_string(), &several, body, now, tol), Ok(()));
    }

    proptest! {
        /// Whatever arrives from the network, `verify` answers, never panics.
        #[test]
        fn verify_never_panics(
            key in proptest::collection::vec(any::<u8>(), 0..40),
            id in any::<String>(),
            timestamp in prop_oneof![any::<String>(), any::<i64>().prop_map(|n| n.to_string())],
            signature in prop_oneof![
                any::<String>(),
                "v1,.{0,70}",
                "(v1,[A-Za-z0-9+/=\\u{e9}]{40,48} ?){0,3}",
            ],
            body in proptest::collection::vec(any::<u8>(), 0..200),
            now_secs in -8_000_000_000i64..8_000_000_000,
            tolerance in any::<i32>(),
        ) {
            let now = DateTime::from_timestamp(now_secs, 0).unwrap_or_default();
            let _ = verify(&key, &id, &timestamp, &signature, &body, now, Duration::seconds(i64::from(tolerance)));
        }

        /// What `sign` makes, `verify` accepts; any other id does not verify.
        #[test]
        fn a_signature_covers_the_id(key in proptest::collection::vec(any::<u8>(), 1..40), id in "[a-z0-9_]{1,20}", other in "[a-z0-9_]{1,20}", body in proptest::collection::vec(any::<u8>(), 0..100)) {
            let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
            let sig = sign(&key, &id, now.timestamp(), &body);
            let ts = now.timestamp().to_string();
            prop_assert_eq!(verify(&key, &id, &ts, &sig, &body, now, Duration::minutes(5)), Ok(()));
            if other != id {
                prop_assert_eq!(verify(&key, &other, &ts, &sig, &body, now, Duration::minutes(5)), Err(SignatureError::Mismatch));
            }
        }
    }

    #[test]
    fn verify_rejects_tampering_replays_and_garbage() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let ts = now.timestamp().to_string();
        let sig = sign(b"k", "evt", now.timestamp(), b"body");
        let tol = Duration::minutes(5);
        assert_eq!(verify(b"k", "evt", &ts, &sig, b"body", now, tol), Ok(()));
        assert_eq!(
            verify(b"k", "evt", &ts, &sig, b"bodY", now, tol),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"x", "evt", &ts, &sig, b"body", now, tol),
            Err(SignatureError::Mismatch)
        );
        let later = now + Duration::minutes(6);
        assert_eq!(
            verify(b"k", "evt", &ts, &sig, b"body", later, tol),
            Err(SignatureError::Expired { age_seconds: 360 })
        );
        assert!(matches!(
            verify(b"k", "evt", &i64::MIN.to_string(), &sig, b"body", now, tol),
            Err(SignatureError::Expired { .. })
        ));
        assert!(matches!(
            verify(b"k", "evt", "soon", &sig, b"body", now, tol),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify(b"k", "evt", &ts, "v2,AAAA", b"body", now, tol),
            Err(SignatureError::Malformed(_))
        ));
        assert_eq!(
            verify(b"k", "evt", &ts, "v1,not-base64-é", b"body", now, tol),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is signed: moving it breaks the signature.
        let moved = (now.timestamp() + 1).to_string();
        assert_eq!(
            verify(b"k", "evt", &moved, &sig, b"body", now, tol),
            Err(SignatureError::Mismatch)
        );
        assert!(key_from_secret("whsec_").is_err());
        assert!(key_from_secret("whsec_!!").is_err());
        assert_eq!(key_from_secret("whsec_aGk=").unwrap(), b"hi");
    }
}
