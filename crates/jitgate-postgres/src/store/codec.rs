//! Rows to and from jitgate's types: keys, JSON bodies, outbox entries, audit records, and
//! the one pagination helper (keyset on the id, the core's `Cursor`).

use jitgate_core::audit::AuditRecord;
use jitgate_core::{EntityRef, OutboxEntry, PageRequest, Scope, StoreError};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::Row;
use uuid::Uuid;

use crate::error::{backend, CorruptRow};

pub(super) fn principal_key(e: &EntityRef) -> String {
    e.to_string()
}

pub(super) fn scope_key(s: &Scope) -> String {
    s.to_string()
}

pub(super) fn decode<T: DeserializeOwned>(row: &PgRow, column: &str, what: &str) -> Result<T, StoreError> {
    decode_optional(row, column, what)?.ok_or_else(|| {
        backend(CorruptRow {
            what: what.to_owned(),
            source: serde::de::Error::custom(format!("`{column}` is NULL")),
        })
    })
}

/// Decodes the JSON body in `column`, which may be NULL (`None`): straight from the row's text
/// into `T`, without building a `serde_json::Value` on the way.
pub(super) fn decode_optional<T: DeserializeOwned>(
    row: &PgRow,
    column: &str,
    what: &str,
) -> Result<Option<T>, StoreError> {
    let raw: Option<Json<&RawValue>> = row.try_get(column).map_err(backend)?;
    raw.map(|Json(raw)| CorruptRow::parse(what, raw).map_err(backend))
        .transpose()
}

/// A page from up to `limit + 1` rows read in listing order, each row's `body` decoded (see
/// [`Page::from_overfetch`]).
pub(super) fn page_of_bodies<T: DeserializeOwned, K: std::fmt::Display>(
    rows: &[PgRow],
    what: &str,
    limit: usize,
    key: impl Fn(&T) -> K,
) -> Result<jitgate_core::Page<T>, StoreError> {
    let items = rows
        .iter()
        .map(|r| decode(r, "body", what))
        .collect::<Result<Vec<T>, _>>()?;
    Ok(jitgate_core::Page::from_overfetch(items, limit, key))
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(v).map_err(backend)
}

pub(super) fn after_uuid(page: &PageRequest) -> Result<Option<Uuid>, StoreError> {
    page.after
        .as_ref()
        .map(|c| {
            let s = c.as_str().rsplit('_').next().unwrap_or_default();
            Uuid::parse_str(s).map_err(|_| StoreError::InvalidCursor {
                cursor: c.as_str().to_owned(),
            })
        })
        .transpose()
}

pub(super) fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}

pub(super) fn outbox_entry(row: &PgRow) -> Result<OutboxEntry, StoreError> {
    let seq: i64 = row.try_get("seq").map_err(backend)?;
    let attempts: i32 = row.try_get("attempts").map_err(backend)?;
    Ok(OutboxEntry::new(
        seq as u64,
        decode(row, "body", "outbox")?,
        u32::try_from(attempts).unwrap_or(0),
        row.try_get("last_error").map_err(backend)?,
    )
    .with_destination(row.try_get::<String, _>("destination").map_err(backend)?))
}

pub(super) fn audit_record(row: &PgRow) -> Result<AuditRecord, StoreError> {
    let seq: i64 = row.try_get("seq").map_err(backend)?;
    let v: i16 = row.try_get("v").map_err(backend)?;
    Ok(AuditRecord {
        v: u32::try_from(v).unwrap_or(0),
        seq: seq as u64,
        prev_hash: row.try_get("prev_hash").map_err(backend)?,
        hash: row.try_get("hash").map_err(backend)?,
        entry: decode(row, "entry", "audit")?,
    })
}
