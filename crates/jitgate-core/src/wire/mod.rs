//! The JSON wire format: what a service returns over HTTP (or any other wire) for jitgate's
//! answers, stable and documented (`docs/wire.md`), pinned by `tests/wire.rs`.
//!
//! The domain types' own serde form is their *storage* form (the audit chain hashes it, the
//! PostgreSQL store keeps it), so it cannot change; the wire form is a separate view over the
//! same values, built with `From<&T>`:
//!
//! - ids as they display: `req_…`, `grant_…`;
//! - entities as `{"type": "User", "id": "sam"}`;
//! - attribute values as plain JSON (strings, numbers, booleans, arrays, objects), with Cedar's
//!   JSON conventions for the rest: an entity as `{"__entity": {"type", "id"}}`, an extension
//!   value as `{"__extn": {"fn": "ip", "arg": "10.0.0.1"}}`;
//! - instants as RFC 3339 strings, durations as whole seconds in fields named `…_seconds`;
//! - enumerations as `snake_case` strings, and each variant of an answer tagged by `outcome`;
//! - reports (`SweepReport`, `DispatchReport`, `AuditReport`) as their own serde form (plain
//!   counters); audit records in their hashed form (`docs/audit.md`), so that a client can
//!   verify them: their ids are bare UUIDs because the hash covers them.
//!
//! Inputs ([`NewRequestBody`], [`ReviewBody`], [`ActionBody`]) read the same conventions back;
//! who the caller is never comes from a body.
//!
//! ```
//! use std::sync::Arc;
//! use jitgate_core::{wire, Basis, Decision, GrantId};
//! let id = GrantId::new_random();
//! let d = Decision::Allow { basis: Basis::Grant(id), policy_version: None };
//! let json = serde_json::to_value(wire::Decision::from(&d)).unwrap();
//! assert_eq!(json["outcome"], "allow");
//! assert_eq!(json["grant"], id.to_string());
//! assert!(json["grant"].as_str().unwrap().starts_with("grant_"));
//! ```

mod answers;
mod inputs;
mod records;

use std::collections::BTreeMap;

use crate::{AttrValue, Attributes};

pub use answers::{Decision, Explanation, Flow, RequestOutcome, Requirement, ReviewOutcome};
pub use inputs::{
    attr_from_json, attributes_from_json, ActionBody, ExtendBody, InputError, NewRequestBody, ReviewBody,
};
pub use records::{Action, Grant, Request, Review};

/// One page of a listing: `{"items": [...], "next": "cursor"}` (`next` left out on the last
/// page; hand it back as `after` for the next one).
#[derive(Clone, Debug, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// Where the next page starts, if there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// A store's page whose items are already in their wire form (audit records: their
    /// hashed form).
    pub fn of(page: crate::Page<T>) -> Self {
        Self {
            next: page.next.as_ref().map(ToString::to_string),
            items: page.items,
        }
    }

    /// The wire form of a store's page, each item through `From`.
    pub fn from_page<D>(page: &crate::Page<D>) -> Self
    where
        for<'a> T: From<&'a D>,
    {
        Self {
            items: page.items.iter().map(T::from).collect(),
            next: page.next.as_ref().map(ToString::to_string),
        }
    }
}

/// An attribute value as plain JSON (see the [module docs](self)).
pub fn attr_json(v: &AttrValue) -> serde_json::Value {
    use serde_json::{json, Value};
    let extn = |f: &str, arg: &str| json!({ "__extn": { "fn": f, "arg": arg } });
    match v {
        AttrValue::Bool(b) => Value::Bool(*b),
        AttrValue::Long(n) => Value::from(*n),
        AttrValue::String(s) => Value::String(s.clone()),
        AttrValue::Entity(e) => json!({ "__entity": { "type": &*e.type_name, "id": &*e.id } }),
        AttrValue::Set(items) => Value::Array(items.iter().map(attr_json).collect()),
        AttrValue::Record(fields) => Value::Object(fields.iter().map(|(k, v)| (k.clone(), attr_json(v))).collect()),
        AttrValue::Ip(s) => extn("ip", s),
        AttrValue::Decimal(s) => extn("decimal", s),
        AttrValue::Datetime(s) => extn("datetime", s),
        AttrValue::Duration(s) => extn("duration", s),
    }
}

/// Attributes (a context, say) as one plain JSON object.
pub fn attributes_json(attrs: &Attributes) -> BTreeMap<String, serde_json::Value> {
    attrs.iter().map(|(k, v)| (k.clone(), attr_json(v))).collect()
}

/// Serializes a value through its `Display` (ids as `req_…`).
fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// As [`display`], for an optional value.
fn display_opt<T: std::fmt::Display, S: serde::Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

/// Whole seconds of a duration.
fn seconds(d: &chrono::Duration) -> i64 {
    d.num_seconds()
}
