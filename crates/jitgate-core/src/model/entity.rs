//! Entity references, scopes and actions: what is asked for and by whom.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A reference to an entity, named the way Cedar names it: a type and an id,
/// written `Type::"id"` (for example `User::"alice"` or `Database::"orders-prod"`).
///
/// Both parts are reference-counted, so cloning an `EntityRef` is cheap.
///
/// # Examples
/// ```
/// use jitgate_core::EntityRef;
/// let alice: EntityRef = r#"User::"alice""#.parse().unwrap();
/// assert_eq!(alice, EntityRef::new("User", "alice"));
/// assert_eq!(alice.to_string(), r#"User::"alice""#);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntityRef {
    /// The entity type, possibly namespaced (`Jit::AccessRequest`).
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub type_name: Arc<str>,
    /// The entity id within its type.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: Arc<str>,
}

impl EntityRef {
    /// Builds a reference from a type name and an id.
    pub fn new(type_name: impl Into<Arc<str>>, id: impl Into<Arc<str>>) -> Self {
        Self {
            type_name: type_name.into(),
            id: id.into(),
        }
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{:?}", self.type_name, &*self.id)
    }
}

impl fmt::Debug for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The text given to [`EntityRef::from_str`] was not of the form `Type::"id"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not an entity reference: {problem} (expected the form Type::\"id\", e.g. User::\"alice\")")]
pub struct EntityRefParseError {
    /// The text that failed to parse.
    pub input: String,
    /// What was wrong with it.
    pub problem: &'static str,
}

impl FromStr for EntityRef {
    type Err = EntityRefParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |problem| EntityRefParseError {
            input: s.to_owned(),
            problem,
        };
        let (ty, rest) = s.split_once("::\"").ok_or_else(|| err("no `::\"` separator"))?;
        let id = rest
            .strip_suffix('"')
            .ok_or_else(|| err("the id is not closed by `\"`"))?;
        if ty.is_empty() {
            return Err(err("the type name is empty"));
        }
        if !ty
            .split("::")
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_alphanumeric() || c == '_'))
        {
            return Err(err("the type name must be identifiers joined by `::`"));
        }
        if id.contains('"') {
            return Err(err("the id contains a `\"`"));
        }
        Ok(EntityRef::new(ty, id))
    }
}

/// What a request or a grant covers: one action on one resource.
///
/// # Examples
/// ```
/// use jitgate_core::{EntityRef, Scope};
/// let scope = Scope::new(
///     EntityRef::new("Action", "db_restart"),
///     EntityRef::new("Database", "orders-prod"),
/// );
/// assert_eq!(scope.to_string(), r#"Action::"db_restart" on Database::"orders-prod""#);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Debug)]
pub struct Scope {
    /// The action, e.g. `Action::"db_restart"`.
    pub action: EntityRef,
    /// The resource it acts on, e.g. `Database::"orders-prod"`.
    pub resource: EntityRef,
}

impl Scope {
    /// Builds a scope from an action and a resource.
    pub fn new(action: EntityRef, resource: EntityRef) -> Self {
        Self { action, resource }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.action, self.resource)
    }
}

/// A context attribute value, in the shapes Cedar understands.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Debug)]
#[serde(rename_all = "snake_case")]
pub enum AttrValue {
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer (Cedar `Long`).
    Long(i64),
    /// A string.
    String(String),
    /// A reference to an entity.
    Entity(EntityRef),
    /// A set of values.
    Set(Vec<AttrValue>),
    /// A record of named values.
    Record(BTreeMap<String, AttrValue>),
    /// A Cedar `ipaddr`, as `ip("…")` takes it: `"10.0.0.1"`, `"10.0.0.0/8"`, `"::1"`.
    Ip(String),
    /// A Cedar `decimal`, as `decimal("…")` takes it: `"1.25"`.
    Decimal(String),
    /// A Cedar `datetime`, as `datetime("…")` takes it: `"2026-11-27T13:00:00Z"`.
    Datetime(String),
    /// A Cedar `duration`, as `duration("…")` takes it: `"1h30m"`.
    Duration(String),
}

impl From<bool> for AttrValue {
    fn from(v: bool) -> Self {
        AttrValue::Bool(v)
    }
}
impl From<i64> for AttrValue {
    fn from(v: i64) -> Self {
        AttrValue::Long(v)
    }
}
impl From<&str> for AttrValue {
    fn from(v: &str) -> Self {
        AttrValue::String(v.to_owned())
    }
}
impl From<String> for AttrValue {
    fn from(v: String) -> Self {
        AttrValue::String(v)
    }
}
impl From<EntityRef> for AttrValue {
    fn from(v: EntityRef) -> Self {
        AttrValue::Entity(v)
    }
}

/// Named context attributes (ticket id, on-call flag, the migration's name...), kept
/// sorted so that their canonical form, and so their hash, is stable.
pub type Attributes = BTreeMap<String, AttrValue>;

/// An action a principal wants to perform: its [`Scope`] (action and resource) and the
/// context attributes of this particular call.
///
/// # Examples
/// ```
/// use jitgate_core::{Action, EntityRef};
/// let action = Action::new(EntityRef::new("Action", "db_restart"), EntityRef::new("Database", "orders-prod"))
///     .with_attr("ticket", "INC-1234");
/// assert_eq!(action.scope.resource.id.as_ref(), "orders-prod");
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub struct Action {
    /// The action and the resource it targets.
    pub scope: Scope,
    /// Attributes of this call.
    #[serde(default)]
    pub context: Attributes,
}

impl Action {
    /// Builds an action without context attributes.
    pub fn new(action: EntityRef, resource: EntityRef) -> Self {
        Self {
            scope: Scope::new(action, resource),
            context: Attributes::new(),
        }
    }

    /// Adds one context attribute.
    #[must_use]
    pub fn with_attr(mut self, name: impl Into<String>, value: impl Into<AttrValue>) -> Self {
        self.context.insert(name.into(), value.into());
        self
    }

    /// The hash that binds a grant to these exact parameters: SHA-256 over the canonical
    /// JSON of the action, the resource and every context attribute.
    pub fn binding(&self) -> ActionBinding {
        // Serialising plain data with sorted maps cannot fail; fall back to an
        // impossible-to-match binding rather than panic if it ever did.
        let body = serde_json::to_vec(self).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(b"jitgate-binding-v1\0");
        h.update(&body);
        ActionBinding(hex::encode(h.finalize()))
    }

    /// The hash that binds a grant to the action, the resource and the named context
    /// attributes only (a ticket, a command): SHA-256 over their canonical JSON. An attribute
    /// the action lacks is left out, the same way on both sides.
    pub fn binding_of(&self, names: &[String]) -> ActionBinding {
        let picked: Attributes = names
            .iter()
            .filter_map(|n| self.context.get(n).map(|v| (n.clone(), v.clone())))
            .collect();
        let body = serde_json::to_vec(&(&self.scope, &picked)).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(b"jitgate-binding-attributes-v1\0");
        h.update(&body);
        ActionBinding(hex::encode(h.finalize()))
    }
}

/// The hex SHA-256 of an action's canonical form; a grant carrying one allows only
/// actions with exactly the same parameters.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Debug)]
pub struct ActionBinding(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_ref_round_trips_through_text() {
        let e: EntityRef = r#"Jit::AccessRequest::"r-1""#.parse().unwrap();
        assert_eq!(&*e.type_name, "Jit::AccessRequest");
        assert_eq!(&*e.id, "r-1");
        assert_eq!(e.to_string().parse::<EntityRef>().unwrap(), e);
    }

    #[test]
    fn malformed_entity_refs_are_rejected_with_the_reason() {
        for bad in [
            "alice",
            "User::alice",
            r#"::"x""#,
            r#"User::"a"b""#,
            r#"Us er::"a""#,
            r#"User::"a"#,
        ] {
            let err = bad.parse::<EntityRef>().unwrap_err();
            assert_eq!(err.input, bad);
        }
    }

    #[test]
    fn binding_depends_on_every_parameter() {
        let a = Action::new(EntityRef::new("Action", "migrate"), EntityRef::new("Db", "x"));
        let b = a.clone().with_attr("version", 42i64);
        let c = a.clone().with_attr("version", 43i64);
        assert_eq!(a.binding(), a.clone().binding());
        assert_ne!(a.binding(), b.binding());
        assert_ne!(b.binding(), c.binding());
    }
}
