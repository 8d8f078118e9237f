//! Entity references and contexts as people type them.

use jitgate::{Action, AttrValue, EntityRef};
use serde_json::Value;

/// `User::"sam"`, or an error naming `what`.
pub fn entity(what: &str, text: &str) -> Result<EntityRef, String> {
    text.parse()
        .map_err(|e| format!("{what}: {e} (write a Cedar entity reference, e.g. User::\"sam\")"))
}

/// The action `action` on `resource` with `context` (a JSON object, or none).
pub fn action(action: &str, resource: &str, context: Option<&Value>) -> Result<Action, String> {
    let mut a = Action::new(entity("action", action)?, entity("resource", resource)?);
    if let Some(context) = context {
        let Value::Object(members) = context else {
            return Err("the context must be an object, e.g. {\"ticket\": \"INC-1\"}".into());
        };
        for (name, value) in members {
            a = a.with_attr(name.clone(), attr(&format!("context.{name}"), value)?);
        }
    }
    Ok(a)
}

/// A JSON value as Cedar reads one: strings, booleans, integers, arrays (sets), objects
/// (records), `{"__entity": {"type": "User", "id": "sam"}}` and
/// `{"__extn": {"fn": "ip", "arg": "10.0.0.1"}}` (`ip`, `decimal`, `datetime`, `duration`).
fn attr(at: &str, value: &Value) -> Result<AttrValue, String> {
    Ok(match value {
        Value::Bool(b) => AttrValue::Bool(*b),
        Value::Number(n) => AttrValue::Long(n.as_i64().ok_or_else(|| format!("{at}: {n} is not a 64-bit integer"))?),
        Value::String(s) => AttrValue::String(s.clone()),
        Value::Array(items) => AttrValue::Set(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| attr(&format!("{at}[{i}]"), v))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(members) => {
            if let Some(e) = members.get("__entity") {
                let (Some(ty), Some(id)) = (
                    e.get("type").and_then(Value::as_str),
                    e.get("id").and_then(Value::as_str),
                ) else {
                    return Err(format!("{at}: __entity needs a \"type\" and an \"id\""));
                };
                return Ok(AttrValue::Entity(EntityRef::new(ty, id)));
            }
            if let Some(x) = members.get("__extn") {
                let (Some(f), Some(arg)) = (
                    x.get("fn").and_then(Value::as_str),
                    x.get("arg").and_then(Value::as_str),
                ) else {
                    return Err(format!("{at}: __extn needs a \"fn\" and an \"arg\""));
                };
                return match f {
                    "ip" | "ipaddr" => Ok(AttrValue::Ip(arg.into())),
                    "decimal" => Ok(AttrValue::Decimal(arg.into())),
                    "datetime" => Ok(AttrValue::Datetime(arg.into())),
                    "duration" => Ok(AttrValue::Duration(arg.into())),
                    other => Err(format!("{at}: unknown extension function `{other}`")),
                };
            }
            AttrValue::Record(
                members
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), attr(&format!("{at}.{k}"), v)?)))
                    .collect::<Result<_, String>>()?,
            )
        }
        Value::Null => return Err(format!("{at}: null is not a Cedar value")),
    })
}
