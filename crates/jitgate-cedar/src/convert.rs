//! jitgate values to Cedar values, without JSON, with entity type names parsed once.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use cedar_policy::{Context, EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use jitgate_core::{AttrValue, Attributes, EntityRef, PolicyError};

/// How many distinct entity type names [`TypeNames`] keeps parsed.
pub(crate) const MAX_CACHED_TYPE_NAMES: usize = 1_024;

/// How many converted contexts [`TypeNames`] keeps, and the largest it keeps (as
/// [`context_bytes`] estimates it).
pub(crate) const MAX_CACHED_CONTEXTS: usize = 4_096;
const MAX_CACHED_CONTEXT_BYTES: usize = 2_048;

/// Parses entity type names once and keeps them (up to [`MAX_CACHED_TYPE_NAMES`]), and keeps
/// the Cedar form of recent small contexts: building an extension value (`ip("…")`) costs a
/// run of Cedar's parser on the function's name (cedar-policy 4.14), and a service's callers
/// send the same few addresses again and again.
#[derive(Default)]
pub(crate) struct TypeNames(
    RwLock<HashMap<Arc<str>, EntityTypeName>>,
    std::sync::Mutex<HashMap<Attributes, Context, foldhash::fast::RandomState>>,
);

/// An estimate of a context's size in memory: its names and strings, and a fixed overhead per
/// name and value (computed without recursion).
pub(crate) fn context_bytes(context: &Attributes) -> usize {
    let mut bytes = 0;
    let mut stack: Vec<&AttrValue> = Vec::new();
    for (name, value) in context {
        bytes += name.len() + 32;
        stack.push(value);
    }
    while let Some(v) = stack.pop() {
        bytes += 32;
        match v {
            AttrValue::Bool(_) | AttrValue::Long(_) => {}
            AttrValue::String(s)
            | AttrValue::Ip(s)
            | AttrValue::Decimal(s)
            | AttrValue::Datetime(s)
            | AttrValue::Duration(s) => bytes += s.len(),
            AttrValue::Entity(e) => bytes += e.type_name.len() + e.id.len(),
            AttrValue::Set(items) => stack.extend(items),
            AttrValue::Record(fields) => {
                for (name, v) in fields {
                    bytes += name.len() + 32;
                    stack.push(v);
                }
            }
        }
    }
    bytes
}

impl TypeNames {
    pub(crate) fn uid(&self, e: &EntityRef) -> Result<EntityUid, PolicyError> {
        let cached = self
            .0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&e.type_name)
            .cloned();
        let ty = match cached {
            Some(t) => t,
            None => {
                let t = EntityTypeName::from_str(&e.type_name).map_err(|err| {
                    PolicyError::with_source(format!("`{}` is not a Cedar entity type name", e.type_name), err)
                })?;
                let mut names = self.0.write().unwrap_or_else(|p| p.into_inner());
                // Type names come from callers: a stream of made-up ones must not grow the
                // cache without bound (a schema has a handful; past the bound, parse each time).
                if names.len() < MAX_CACHED_TYPE_NAMES {
                    names.insert(e.type_name.clone(), t.clone());
                }
                t
            }
        };
        Ok(EntityUid::from_type_name_and_id(ty, EntityId::new(&*e.id)))
    }

    pub(crate) fn value(&self, v: &AttrValue) -> Result<RestrictedExpression, PolicyError> {
        Ok(match v {
            AttrValue::Bool(b) => RestrictedExpression::new_bool(*b),
            AttrValue::Long(n) => RestrictedExpression::new_long(*n),
            AttrValue::String(s) => RestrictedExpression::new_string(s.clone()),
            AttrValue::Ip(s) => RestrictedExpression::new_ip(s),
            AttrValue::Decimal(s) => RestrictedExpression::new_decimal(s),
            AttrValue::Datetime(s) => RestrictedExpression::new_datetime(s),
            AttrValue::Duration(s) => RestrictedExpression::new_duration(s),
            AttrValue::Entity(e) => RestrictedExpression::new_entity_uid(self.uid(e)?),
            AttrValue::Set(items) => {
                RestrictedExpression::new_set(items.iter().map(|i| self.value(i)).collect::<Result<Vec<_>, _>>()?)
            }
            AttrValue::Record(fields) => RestrictedExpression::new_record(
                fields
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.value(v)?)))
                    .collect::<Result<Vec<_>, PolicyError>>()?,
            )
            .map_err(|e| PolicyError::with_source("a context record does not build", e))?,
        })
    }

    pub(crate) fn context(&self, attrs: &Attributes) -> Result<Context, PolicyError> {
        if attrs.is_empty() {
            return Ok(Context::empty());
        }
        let keep = context_bytes(attrs) <= MAX_CACHED_CONTEXT_BYTES;
        if keep {
            if let Some(c) = self.1.lock().unwrap_or_else(|p| p.into_inner()).get(attrs) {
                return Ok(c.clone());
            }
        }
        let pairs = attrs
            .iter()
            .map(|(k, v)| Ok((k.clone(), self.value(v)?)))
            .collect::<Result<Vec<_>, PolicyError>>()?;
        let context =
            Context::from_pairs(pairs).map_err(|e| PolicyError::with_source("the context does not build", e))?;
        if keep {
            let mut kept = self.1.lock().unwrap_or_else(|p| p.into_inner());
            if kept.len() >= MAX_CACHED_CONTEXTS {
                kept.clear();
            }
            kept.insert(attrs.clone(), context.clone());
        }
        Ok(context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_type_names_never_grow_the_cache_past_its_bound() {
        let names = TypeNames::default();
        for i in 0..(MAX_CACHED_TYPE_NAMES + 500) {
            let uid = names.uid(&EntityRef::new(format!("T{i}"), "x")).unwrap();
            assert_eq!(
                uid.type_name().to_string(),
                format!("T{i}"),
                "answers stay right past the bound"
            );
        }
        assert_eq!(names.0.read().unwrap().len(), MAX_CACHED_TYPE_NAMES);
        assert!(names.uid(&EntityRef::new("not a type", "x")).is_err());
    }

    #[test]
    fn small_contexts_are_kept_converted_within_a_bound_and_bad_ones_never() {
        let names = TypeNames::default();
        let ctx = |ip: &str| Attributes::from([("source_ip".to_owned(), AttrValue::Ip(ip.to_owned()))]);
        for i in 0..(MAX_CACHED_CONTEXTS + 10) {
            let c = names
                .context(&ctx(&format!("10.0.{}.{}", i / 256 % 256, i % 256)))
                .unwrap();
            assert!(c.get("source_ip").is_some());
        }
        assert!(names.1.lock().unwrap().len() <= MAX_CACHED_CONTEXTS);
        // The same context again: the kept one, equal to a fresh conversion.
        let again = names.context(&ctx("10.0.0.7")).unwrap();
        assert_eq!(
            format!("{again:?}"),
            format!("{:?}", TypeNames::default().context(&ctx("10.0.0.7")).unwrap())
        );
        assert!(names.context(&ctx("not an address")).is_err());
        assert!(names.context(&ctx("not an address")).is_err(), "an error is never kept");
        let big = Attributes::from([("note".to_owned(), AttrValue::String("x".repeat(2_000)))]);
        names.context(&big).unwrap();
        assert!(
            !names.1.lock().unwrap().contains_key(&big),
            "a large context is not kept"
        );
    }
}
