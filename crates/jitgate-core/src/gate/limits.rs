//! Bounds on what callers hand the engine, checked before anything is decided or stored, the
//! same for every store.

use std::fmt;

use chrono::{DateTime, Duration, Utc};

use crate::model::entity::{Action, AttrValue, EntityRef};
use crate::model::request::NewRequest;
use crate::ports::listings::PageRequest;

/// Bounds on the input of every [`Gate`](crate::Gate) verb. Over a bound, the verb answers
/// [`Error::Limit`](crate::Error::Limit) (and `authorize` denies) before anything is decided or
/// stored.
///
/// ```
/// use jitgate_core::Limits;
/// let limits = Limits::default().with_text_bytes(1024);
/// assert_eq!(limits.text_bytes, 1024);
/// assert_eq!(limits.entity_id_bytes, 256);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Bytes of a justification, review comment or revoke reason (default 4,096).
    pub text_bytes: usize,
    /// Bytes of an entity's type or id, in any principal, action, resource or reviewer
    /// (default 256).
    pub entity_id_bytes: usize,
    /// Bytes of an action's context attributes, names and values together (default 16,384).
    pub attributes_bytes: usize,
    /// Nesting depth of context attributes (sets and records; default 16).
    pub attributes_depth: usize,
    /// Items per page of a listing (default 1,000).
    pub page_size: usize,
    /// How far ahead of now a wanted start may be (default 30 days).
    pub start_ahead: Duration,
    /// The longest duration anyone may ask for, whatever a flow allows (default 366 days).
    pub duration: Duration,
    /// Pending requests one principal may have open at once (default 20). Checked before a
    /// new request is stored, so requests made at the same moment can each pass it: a soft
    /// bound, exceeded at most by the number of that principal's requests in flight.
    pub pending_per_principal: usize,
    /// Break-glass grants one principal may hold unacknowledged; one more break-glass is
    /// refused, and logged for security (target `jitgate::security`), until a reviewer
    /// acknowledges the earlier ones (default 2).
    pub unacknowledged_break_glass: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            text_bytes: 4_096,
            entity_id_bytes: 256,
            attributes_bytes: 16_384,
            attributes_depth: 16,
            page_size: 1_000,
            start_ahead: Duration::days(30),
            duration: Duration::days(366),
            pending_per_principal: 20,
            unacknowledged_break_glass: 2,
        }
    }
}

macro_rules! setter {
    ($name:ident, $field:ident, $ty:ty, $doc:literal) => {
        #[doc = $doc]
        #[must_use]
        pub fn $name(mut self, value: $ty) -> Self {
            self.$field = value;
            self
        }
    };
}

impl Limits {
    setter!(with_text_bytes, text_bytes, usize, "Sets [`Limits::text_bytes`].");
    setter!(
        with_entity_id_bytes,
        entity_id_bytes,
        usize,
        "Sets [`Limits::entity_id_bytes`]."
    );
    setter!(
        with_attributes_bytes,
        attributes_bytes,
        usize,
        "Sets [`Limits::attributes_bytes`]."
    );
    setter!(
        with_attributes_depth,
        attributes_depth,
        usize,
        "Sets [`Limits::attributes_depth`]."
    );
    setter!(with_page_size, page_size, usize, "Sets [`Limits::page_size`].");
    setter!(with_start_ahead, start_ahead, Duration, "Sets [`Limits::start_ahead`].");
    setter!(with_duration, duration, Duration, "Sets [`Limits::duration`].");
    setter!(
        with_pending_per_principal,
        pending_per_principal,
        usize,
        "Sets [`Limits::pending_per_principal`]."
    );

    setter!(
        with_unacknowledged_break_glass,
        unacknowledged_break_glass,
        usize,
        "Sets [`Limits::unacknowledged_break_glass`]."
    );

    /// A principal's unacknowledged break-glass grants: fewer than
    /// [`Limits::unacknowledged_break_glass`] before one more.
    pub(crate) fn break_glass(&self, unacknowledged: usize) -> Result<(), LimitError> {
        if unacknowledged >= self.unacknowledged_break_glass {
            return Err(LimitError::UnacknowledgedBreakGlass {
                unacknowledged,
                max: self.unacknowledged_break_glass,
            });
        }
        Ok(())
    }

    /// A principal's pending requests: fewer than [`Limits::pending_per_principal`] before one
    /// more.
    pub(crate) fn pending(&self, pending: usize) -> Result<(), LimitError> {
        if pending >= self.pending_per_principal {
            return Err(LimitError::TooManyPending {
                pending,
                max: self.pending_per_principal,
            });
        }
        Ok(())
    }

    /// A justification, comment or reason: at most [`Limits::text_bytes`], no NUL or control
    /// character other than tab and line breaks.
    pub(crate) fn text(&self, field: Field, text: Option<&str>) -> Result<(), LimitError> {
        let Some(text) = text else { return Ok(()) };
        over(field, text.len(), self.text_bytes)?;
        match first_control(text, |c| matches!(c, '\n' | '\r' | '\t')) {
            Some((at, code)) => Err(LimitError::ControlCharacter { field, at, code }),
            None => Ok(()),
        }
    }

    /// An entity reference: type and id each at most [`Limits::entity_id_bytes`], no control
    /// character.
    pub(crate) fn entity(&self, e: &EntityRef) -> Result<(), LimitError> {
        for (field, s) in [
            (Field::EntityType, e.type_name.as_ref()),
            (Field::EntityId, e.id.as_ref()),
        ] {
            over(field, s.len(), self.entity_id_bytes)?;
            if let Some((at, code)) = first_control(s, |_| false) {
                return Err(LimitError::ControlCharacter { field, at, code });
            }
        }
        Ok(())
    }

    /// The sizes of what `authorize` is given: entity types and ids within
    /// [`Limits::entity_id_bytes`], attributes within [`Limits::attributes_bytes`] and
    /// [`Limits::attributes_depth`]. Characters are not checked: `authorize` stores nothing, and
    /// this runs on every call.
    pub(crate) fn authorize_input(&self, principal: &EntityRef, action: &Action) -> Result<(), LimitError> {
        for e in [principal, &action.scope.action, &action.scope.resource] {
            over(Field::EntityType, e.type_name.len(), self.entity_id_bytes)?;
            over(Field::EntityId, e.id.len(), self.entity_id_bytes)?;
        }
        if action.context.is_empty() {
            return Ok(());
        }
        self.attributes(action, false)
    }

    /// An action: its entities, and its attributes within [`Limits::attributes_bytes`] and
    /// [`Limits::attributes_depth`], with no NUL anywhere.
    pub(crate) fn action(&self, action: &Action) -> Result<(), LimitError> {
        self.entity(&action.scope.action)?;
        self.entity(&action.scope.resource)?;
        self.attributes(action, true)
    }

    /// The attributes' size and depth, and (with `chars`) no NUL in names, strings and entities.
    fn attributes(&self, action: &Action, chars: bool) -> Result<(), LimitError> {
        // An explicit stack: no recursion, whatever the nesting. Only sets and records go on
        // it, so a flat context (the usual one, checked on every `authorize`) allocates nothing.
        let mut bytes = 0usize;
        let mut stack: Vec<(&AttrValue, usize)> = Vec::new();
        for (name, value) in &action.context {
            bytes += name.len();
            if chars {
                no_nul(Field::Attribute, name)?;
            }
            self.attribute(value, 1, chars, &mut bytes, &mut stack)?;
        }
        while let Some((value, depth)) = stack.pop() {
            self.attribute(value, depth, chars, &mut bytes, &mut stack)?;
        }
        over(Field::Attribute, bytes, self.attributes_bytes)
    }

    /// Counts `value` (at `depth`) into `bytes`, or stacks its members to be counted.
    fn attribute<'a>(
        &self,
        value: &'a AttrValue,
        depth: usize,
        chars: bool,
        bytes: &mut usize,
        stack: &mut Vec<(&'a AttrValue, usize)>,
    ) -> Result<(), LimitError> {
        let no_nul = |field, s: &str| if chars { no_nul(field, s) } else { Ok(()) };
        if depth > self.attributes_depth {
            return Err(LimitError::AttributesTooDeep {
                depth,
                max: self.attributes_depth,
            });
        }
        match value {
            AttrValue::Bool(_) | AttrValue::Long(_) => *bytes += 8,
            AttrValue::String(s)
            | AttrValue::Ip(s)
            | AttrValue::Decimal(s)
            | AttrValue::Datetime(s)
            | AttrValue::Duration(s) => {
                *bytes += s.len();
                no_nul(Field::Attribute, s)?;
            }
            AttrValue::Entity(e) => {
                if chars {
                    self.entity(e)?;
                }
                *bytes += e.type_name.len() + e.id.len();
            }
            AttrValue::Set(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            AttrValue::Record(fields) => {
                for (name, v) in fields {
                    *bytes += name.len();
                    no_nul(Field::Attribute, name)?;
                    stack.push((v, depth + 1));
                }
            }
        }
        over(Field::Attribute, *bytes, self.attributes_bytes)
    }

    /// A requested duration: at most [`Limits::duration`].
    pub(crate) fn wanted_duration(&self, wanted: Duration) -> Result<(), LimitError> {
        if wanted > self.duration {
            return Err(LimitError::DurationTooLong {
                seconds: wanted.num_seconds(),
                max_seconds: self.duration.num_seconds(),
            });
        }
        Ok(())
    }

    /// A new request: its principal, action, justification, duration and wanted start.
    pub(crate) fn request(&self, ask: &NewRequest, now: DateTime<Utc>) -> Result<(), LimitError> {
        self.entity(&ask.principal)?;
        self.action(&ask.action)?;
        self.text(Field::Justification, ask.justification.as_deref())?;
        self.wanted_duration(ask.duration)?;
        if let Some(start) = ask.start_at {
            let ahead = start.signed_duration_since(now);
            if ahead > self.start_ahead {
                return Err(LimitError::StartTooFarAhead {
                    seconds: ahead.num_seconds(),
                    max_seconds: self.start_ahead.num_seconds(),
                });
            }
        }
        Ok(())
    }

    /// A page of a listing: at most [`Limits::page_size`] items.
    pub(crate) fn page(&self, page: &PageRequest) -> Result<(), LimitError> {
        if page.limit > self.page_size {
            return Err(LimitError::PageTooLarge {
                requested: page.limit,
                max: self.page_size,
            });
        }
        Ok(())
    }
}

fn over(field: Field, bytes: usize, max: usize) -> Result<(), LimitError> {
    if bytes > max {
        return Err(LimitError::TooLong { field, bytes, max });
    }
    Ok(())
}

/// The first control character of `s` that `allowed` does not allow, with its byte offset.
/// Printable ASCII (nearly every id and text) is checked a byte at a time, without decoding:
/// this runs on every `authorize`.
fn first_control(s: &str, allowed: impl Fn(char) -> bool) -> Option<(usize, u32)> {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    s.char_indices()
        .find(|(_, c)| c.is_control() && !allowed(*c))
        .map(|(at, c)| (at, c as u32))
}

fn no_nul(field: Field, s: &str) -> Result<(), LimitError> {
    match s.find('\0') {
        Some(at) => Err(LimitError::ControlCharacter { field, at, code: 0 }),
        None => Ok(()),
    }
}

/// Which input a limit applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// A request's justification.
    Justification,
    /// A review's or acknowledgement's comment.
    Comment,
    /// A revoke's reason.
    Reason,
    /// An entity's type.
    EntityType,
    /// An entity's id.
    EntityId,
    /// An action's context attributes.
    Attribute,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Justification => "the justification",
            Field::Comment => "the comment",
            Field::Reason => "the reason",
            Field::EntityType => "an entity type",
            Field::EntityId => "an entity id",
            Field::Attribute => "the action's attributes",
        })
    }
}

/// An input over one of the [`Limits`]; nothing was decided or stored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// Too many bytes.
    #[error("{field} is {bytes} bytes, over the limit of {max} (Limits)")]
    TooLong {
        /// What.
        field: Field,
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A NUL or control character (tab and line breaks are allowed in texts).
    #[error("{field} holds the control character U+{code:04X} at byte {at}; remove it")]
    ControlCharacter {
        /// What.
        field: Field,
        /// Its byte offset.
        at: usize,
        /// The character's code point.
        code: u32,
    },
    /// Context attributes nested too deep.
    #[error("the action's attributes are nested {depth} deep, over the limit of {max} (Limits::attributes_depth)")]
    AttributesTooDeep {
        /// The depth reached.
        depth: usize,
        /// The limit.
        max: usize,
    },
    /// A duration longer than anyone may ask for.
    #[error("the wanted duration of {seconds} s is over the limit of {max_seconds} s (Limits::duration)")]
    DurationTooLong {
        /// What was asked, in seconds.
        seconds: i64,
        /// The limit, in seconds.
        max_seconds: i64,
    },
    /// A wanted start too far ahead.
    #[error("the wanted start is {seconds} s ahead, over the limit of {max_seconds} s (Limits::start_ahead)")]
    StartTooFarAhead {
        /// How far ahead, in seconds.
        seconds: i64,
        /// The limit, in seconds.
        max_seconds: i64,
    },
    /// The principal already has as many pending requests as allowed.
    #[error("{pending} requests are already pending, the limit per principal (Limits::pending_per_principal); wait for a decision or cancel one")]
    TooManyPending {
        /// Pending requests now.
        pending: usize,
        /// The limit.
        max: usize,
    },
    /// The principal already holds as many unacknowledged break-glass grants as allowed.
    #[error("{unacknowledged} break-glass grants are still unacknowledged, the limit (Limits::unacknowledged_break_glass); a reviewer must acknowledge them first")]
    UnacknowledgedBreakGlass {
        /// Unacknowledged break-glass grants now.
        unacknowledged: usize,
        /// The limit.
        max: usize,
    },
    /// A page larger than allowed.
    #[error("a page of {requested} items is over the limit of {max} (Limits::page_size)")]
    PageTooLarge {
        /// The page size asked for.
        requested: usize,
        /// The limit.
        max: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(t: &str, id: &str) -> EntityRef {
        EntityRef::new(t, id)
    }

    #[test]
    fn every_limit_refuses_one_over_and_accepts_the_limit() {
        let l = Limits::default()
            .with_text_bytes(4)
            .with_entity_id_bytes(3)
            .with_attributes_bytes(10)
            .with_attributes_depth(2)
            .with_page_size(5);
        assert!(l.text(Field::Comment, Some("abcd")).is_ok());
        assert_eq!(
            l.text(Field::Comment, Some("abcde")),
            Err(LimitError::TooLong {
                field: Field::Comment,
                bytes: 5,
                max: 4
            })
        );
        assert!(l.entity(&e("abc", "xyz")).is_ok());
        assert!(matches!(
            l.entity(&e("abcd", "x")),
            Err(LimitError::TooLong {
                field: Field::EntityType,
                ..
            })
        ));
        assert!(matches!(
            l.entity(&e("a", "wxyz")),
            Err(LimitError::TooLong {
                field: Field::EntityId,
                ..
            })
        ));
        let act = |v: AttrValue| Action::new(e("A", "a"), e("D", "d")).with_attr("k", v);
        assert!(l.action(&act("123456789".into())).is_ok(), "1 + 9 bytes");
        assert!(matches!(
            l.action(&act("1234567890".into())),
            Err(LimitError::TooLong {
                field: Field::Attribute,
                bytes: 11,
                ..
            })
        ));
        let deep = AttrValue::Set(vec![AttrValue::Set(vec![AttrValue::Bool(true)])]);
        assert_eq!(
            l.action(&act(deep)),
            Err(LimitError::AttributesTooDeep { depth: 3, max: 2 })
        );
        assert!(l.page(&PageRequest::first(5)).is_ok());
        assert!(matches!(
            l.page(&PageRequest::first(6)),
            Err(LimitError::PageTooLarge { .. })
        ));
        assert!(l.wanted_duration(Duration::days(366)).is_ok());
        assert!(matches!(
            l.wanted_duration(Duration::MAX),
            Err(LimitError::DurationTooLong { .. })
        ));
    }

    #[test]
    fn control_characters_and_nul_are_refused_where_no_store_could_keep_them() {
        let l = Limits::default();
        assert!(l.text(Field::Justification, Some("line one\nline two\tok\r\n")).is_ok());
        assert_eq!(
            l.text(Field::Justification, Some("ok\0no")),
            Err(LimitError::ControlCharacter {
                field: Field::Justification,
                at: 2,
                code: 0
            })
        );
        assert!(l.text(Field::Reason, Some("\u{1b}[31m")).is_err(), "terminal escapes");
        assert!(l.entity(&e("User", "sam\nlee")).is_err(), "no line break in an id");
        let nul = Action::new(e("A", "a"), e("D", "d")).with_attr("k", "a\0b");
        assert!(matches!(
            l.action(&nul),
            Err(LimitError::ControlCharacter { code: 0, .. })
        ));
    }

    #[test]
    fn authorize_checks_sizes_only() {
        let l = Limits::default().with_entity_id_bytes(4).with_attributes_depth(1);
        let restart = Action::new(e("A", "go"), e("D", "db"));
        assert!(l.authorize_input(&e("User", "sam"), &restart).is_ok());
        assert!(
            l.authorize_input(&e("User", "sam\n"), &restart).is_ok(),
            "characters are not checked"
        );
        assert!(matches!(
            l.authorize_input(&e("User", "samuel"), &restart),
            Err(LimitError::TooLong {
                field: Field::EntityId,
                ..
            })
        ));
        let deep = restart.with_attr("k", AttrValue::Set(vec![AttrValue::Bool(true)]));
        assert!(matches!(
            l.authorize_input(&e("User", "sam"), &deep),
            Err(LimitError::AttributesTooDeep { .. })
        ));
    }

    #[test]
    fn a_deep_attribute_nest_is_refused_without_recursion() {
        let mut v = AttrValue::Bool(true);
        for _ in 0..100_000 {
            v = AttrValue::Set(vec![v]);
        }
        let action = Action::new(e("A", "a"), e("D", "d")).with_attr("k", v);
        assert!(matches!(
            Limits::default().action(&action),
            Err(LimitError::AttributesTooDeep { .. })
        ));
        // Dropping a 100,000-deep value recurses in its destructor; leak it in the test rather
        // than overflow the test thread's stack.
        std::mem::forget(action);
    }
}
