//! What a client sends: the bodies of a request, a review and an action, read with serde and
//! turned into jitgate's types with every problem located (`context.ticket: …`).
//!
//! Who the caller is never comes from a body: the host passes the principal it authenticated.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::{Action, AttrValue, Attributes, EntityRef, ErrorCategory, ErrorCode, NewRequest};

/// A body that does not make a valid input: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
#[non_exhaustive]
pub struct InputError {
    /// Where in the body (`context.ticket`, `duration_seconds`).
    pub path: String,
    /// What is wrong there.
    pub problem: String,
}

impl InputError {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            problem: problem.into(),
        }
    }
}

impl ErrorCode for InputError {
    fn code(&self) -> &'static str {
        "invalid_body"
    }

    fn category(&self) -> ErrorCategory {
        ErrorCategory::InvalidInput
    }
}

/// An action: `{"action": {"type": "Action", "id": "db_restart"}, "resource": {…},
/// "context": {"ticket": "INC-1"}}`, the context in plain JSON.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ActionBody {
    /// The action entity.
    pub action: EntityRef,
    /// The resource entity.
    pub resource: EntityRef,
    /// The context, plain JSON.
    #[serde(default)]
    pub context: BTreeMap<String, Value>,
}

impl ActionBody {
    /// The action.
    ///
    /// # Errors
    /// [`InputError`] naming the first context value that is not an attribute value.
    pub fn into_action(self) -> Result<Action, InputError> {
        let mut action = Action::new(self.action, self.resource);
        action.context = attributes_from_json(&self.context, "context")?;
        Ok(action)
    }
}

/// A new request: an [`ActionBody`]'s members, `duration_seconds`, and optionally
/// `justification`, `start_at` (RFC 3339) and `break_glass`.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NewRequestBody {
    /// The action entity.
    pub action: EntityRef,
    /// The resource entity.
    pub resource: EntityRef,
    /// The context, plain JSON.
    #[serde(default)]
    pub context: BTreeMap<String, Value>,
    /// How long the grant should last.
    pub duration_seconds: i64,
    /// Why.
    #[serde(default)]
    pub justification: Option<String>,
    /// When the grant should start.
    #[serde(default)]
    pub start_at: Option<DateTime<Utc>>,
    /// Break-glass: granted at once where the flow allows it, reviewed afterwards.
    #[serde(default)]
    pub break_glass: bool,
}

impl NewRequestBody {
    /// The request `principal` makes (the caller the host authenticated).
    ///
    /// # Errors
    /// [`InputError`] for a context value that is not an attribute value or a duration that
    /// is not positive. Everything else (limits, the flow's maximum) is the gate's to check.
    pub fn into_request(self, principal: EntityRef) -> Result<NewRequest, InputError> {
        let duration = positive_seconds(self.duration_seconds, "duration_seconds")?;
        let action = ActionBody {
            action: self.action,
            resource: self.resource,
            context: self.context,
        }
        .into_action()?;
        let mut request = NewRequest::new(principal, action, duration);
        if let Some(why) = self.justification {
            request = request.with_justification(why);
        }
        if let Some(at) = self.start_at {
            request = request.starting_at(at);
        }
        if self.break_glass {
            request = request.break_glass();
        }
        Ok(request)
    }
}

/// `seconds` as a duration, if positive.
fn positive_seconds(seconds: i64, path: &str) -> Result<chrono::Duration, InputError> {
    if seconds <= 0 {
        return Err(InputError::new(path, "must be a positive number of seconds"));
    }
    chrono::Duration::try_seconds(seconds).ok_or_else(|| InputError::new(path, "is too large"))
}

/// An extension of a grant: `{"duration_seconds": 1800, "justification": "…"}` (a new
/// request linked to the grant, reviewed as its flow says).
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ExtendBody {
    /// How much longer.
    pub duration_seconds: i64,
    /// Why.
    #[serde(default)]
    pub justification: Option<String>,
}

impl ExtendBody {
    /// The extension's duration.
    ///
    /// # Errors
    /// [`InputError`] at `duration_seconds` when it is not positive.
    pub fn duration(&self) -> Result<chrono::Duration, InputError> {
        positive_seconds(self.duration_seconds, "duration_seconds")
    }
}

/// A review: `{"comment": "…"}` (the comment is optional; a flow may require a reason).
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ReviewBody {
    /// The reviewer's comment.
    #[serde(default)]
    pub comment: Option<String>,
}

/// Plain JSON attributes (see [`attr_from_json`]).
///
/// # Errors
/// [`InputError`] at `path.<name>` for the first value that is not an attribute value.
pub fn attributes_from_json(values: &BTreeMap<String, Value>, path: &str) -> Result<Attributes, InputError> {
    values
        .iter()
        .map(|(k, v)| Ok((k.clone(), attr_from_json(v, &format!("{path}.{k}"))?)))
        .collect()
}

/// A plain JSON value as an attribute value, the inverse of [`attr_json`](super::attr_json):
/// strings, integers, booleans, arrays and objects; `{"__entity": {"type", "id"}}` and
/// `{"__extn": {"fn": "ip" | "decimal" | "datetime" | "duration", "arg": "…"}}`.
///
/// # Errors
/// [`InputError`] at `path` for `null`, a fraction, or a malformed `__entity` / `__extn`.
pub fn attr_from_json(v: &Value, path: &str) -> Result<AttrValue, InputError> {
    Ok(match v {
        Value::Null => return Err(InputError::new(path, "null is not an attribute value; leave the attribute out")),
        Value::Bool(b) => AttrValue::Bool(*b),
        Value::Number(n) => AttrValue::Long(n.as_i64().ok_or_else(|| {
            InputError::new(
                path,
                format!("{n} is not a 64-bit integer; send a fraction as {{\"__extn\": {{\"fn\": \"decimal\", \"arg\": \"{n}\"}}}}"),
            )
        })?),
        Value::String(s) => AttrValue::String(s.clone()),
        Value::Array(items) => AttrValue::Set(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| attr_from_json(x, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => {
            if let Some(e) = fields.get("__entity") {
                let entity = serde_json::from_value::<EntityRef>(e.clone())
                    .map_err(|err| InputError::new(format!("{path}.__entity"), format!("not {{\"type\", \"id\"}}: {err}")))?;
                return Ok(AttrValue::Entity(entity));
            }
            if let Some(x) = fields.get("__extn") {
                let (f, arg) = match (x.get("fn").and_then(Value::as_str), x.get("arg").and_then(Value::as_str)) {
                    (Some(f), Some(arg)) => (f, arg.to_owned()),
                    _ => {
                        return Err(InputError::new(
                            format!("{path}.__extn"),
                            "needs \"fn\" and \"arg\", both strings",
                        ))
                    }
                };
                return match f {
                    "ip" => Ok(AttrValue::Ip(arg)),
                    "decimal" => Ok(AttrValue::Decimal(arg)),
                    "datetime" => Ok(AttrValue::Datetime(arg)),
                    "duration" => Ok(AttrValue::Duration(arg)),
                    other => Err(InputError::new(
                        format!("{path}.__extn.fn"),
                        format!("`{other}` is not an extension (ip, decimal, datetime, duration)"),
                    )),
                };
            }
            AttrValue::Record(
                fields
                    .iter()
                    .map(|(k, x)| Ok((k.clone(), attr_from_json(x, &format!("{path}.{k}"))?)))
                    .collect::<Result<_, _>>()?,
            )
        }
    })
}
