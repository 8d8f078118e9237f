//! `chrono::Duration` as whole seconds in serialised form.

use chrono::Duration;
use serde::{Deserialize, Deserializer, Serializer};

pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(d.num_seconds())
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = i64::deserialize(d)?;
    Duration::try_seconds(secs).ok_or_else(|| serde::de::Error::custom("duration out of range"))
}
