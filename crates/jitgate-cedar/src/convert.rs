//! jitgate values to Cedar values, without JSON, with entity type names parsed once.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use cedar_policy::{Context, EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use jitgate_core::{AttrValue, Attributes, EntityRef, PolicyError};

/// How many distinct entity type names [`TypeNames`] keeps parsed.
pub(crate) const MAX_CACHED_TYPE_NAMES: usize = 1_024;

/// Parses entity type names once and keeps them (up to [`MAX_CACHED_TYPE_NAMES`]).
#[derive(Default)]
pub(crate) struct TypeNames(RwLock<HashMap<Arc<str>, EntityTypeName>>);

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
        let pairs = attrs
            .iter()
            .map(|(k, v)| Ok((k.clone(), self.value(v)?)))
            .collect::<Result<Vec<_>, PolicyError>>()?;
        Context::from_pairs(pairs).map_err(|e| PolicyError::with_source("the context does not build", e))
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
}
