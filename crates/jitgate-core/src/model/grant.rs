//! Grants: what an approved request becomes.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::entity::{Action, ActionBinding, EntityRef, Scope};
use crate::model::ids::{GrantId, RequestId};

/// Where a grant is in its life cycle: `Scheduled -> Active -> Expired | Revoked | Exhausted`.
///
/// The stored state lags time: a `Scheduled` grant whose start has passed is active, and an
/// `Active` grant past its end is expired, whether or not a sweep has run.
/// [`Grant::status_at`] gives the effective state.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Debug)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GrantState {
    /// Approved, starts later.
    Scheduled,
    /// In force.
    Active,
    /// Ran out of time.
    Expired,
    /// Ended by someone.
    Revoked,
    /// All its uses were consumed.
    Exhausted,
}

impl GrantState {
    /// Whether the grant has ended for good.
    pub fn is_ended(self) -> bool {
        matches!(self, GrantState::Expired | GrantState::Revoked | GrantState::Exhausted)
    }
}

impl fmt::Display for GrantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GrantState::Scheduled => "scheduled",
            GrantState::Active => "active",
            GrantState::Expired => "expired",
            GrantState::Revoked => "revoked",
            GrantState::Exhausted => "exhausted",
        })
    }
}

/// A validated time window: `not_before < expires_at` always holds.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Debug)]
#[serde(try_from = "RawWindow")]
pub struct Window {
    not_before: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct RawWindow {
    not_before: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl TryFrom<RawWindow> for Window {
    type Error = EmptyWindow;
    fn try_from(raw: RawWindow) -> Result<Self, Self::Error> {
        Window::new(raw.not_before, raw.expires_at)
    }
}

/// A window whose end is not after its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("grant window is empty: expires_at {expires_at} is not after not_before {not_before}")]
pub struct EmptyWindow {
    /// The start given.
    pub not_before: DateTime<Utc>,
    /// The end given.
    pub expires_at: DateTime<Utc>,
}

impl Window {
    /// A window from `not_before` (inclusive) to `expires_at` (exclusive).
    ///
    /// # Errors
    /// [`EmptyWindow`] when `expires_at <= not_before`.
    pub fn new(not_before: DateTime<Utc>, expires_at: DateTime<Utc>) -> Result<Self, EmptyWindow> {
        if expires_at <= not_before {
            return Err(EmptyWindow { not_before, expires_at });
        }
        Ok(Self { not_before, expires_at })
    }
    /// Start (inclusive).
    pub fn not_before(&self) -> DateTime<Utc> {
        self.not_before
    }
    /// End (exclusive).
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
    /// Whether `now` lies in the window.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        self.not_before <= now && now < self.expires_at
    }
}

/// Use accounting of an N-use grant.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub struct Uses {
    /// How many uses the grant allows.
    pub limit: u32,
    /// How many were consumed.
    pub used: u32,
}

/// An after-the-fact review of a break-glass grant.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Acknowledgement {
    /// The reviewer who acknowledged it.
    pub by: EntityRef,
    /// When.
    pub at: DateTime<Utc>,
    /// Their comment.
    pub comment: Option<String>,
}

/// How a grant ended early (revoked), or when it was swept.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Ending {
    /// When it ended.
    pub at: DateTime<Utc>,
    /// Who ended it (none for expiry and exhaustion).
    pub by: Option<EntityRef>,
    /// Why.
    pub reason: Option<String>,
}

/// A short-lived permission for one principal to perform one scope.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
#[non_exhaustive]
pub struct Grant {
    /// Its id.
    pub id: GrantId,
    /// The request it came from.
    pub request_id: RequestId,
    /// Who holds it.
    pub principal: EntityRef,
    /// What it allows.
    pub scope: Scope,
    /// If set, it allows only the action with exactly these parameters (or, with
    /// `bound_attributes`, these values of those attributes).
    pub binding: Option<ActionBinding>,
    /// The context attributes the binding covers (empty: all parameters).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bound_attributes: Vec<String>,
    /// When it is in force.
    pub window: Window,
    /// Use limit, for one-shot and N-use grants.
    pub uses: Option<Uses>,
    /// Stored state (see [`Grant::status_at`] for the effective one).
    pub state: GrantState,
    /// Whether it came from a break-glass request.
    pub break_glass: bool,
    /// The after-the-fact review of a break-glass grant (boxed: most grants never have one,
    /// and a live grant should cost little in memory).
    pub acknowledged: Option<Box<Acknowledgement>>,
    /// How it ended, once it has (boxed, as `acknowledged`).
    pub ended: Option<Box<Ending>>,
    /// When the expiry reminder was sent, if it was.
    #[serde(default)]
    pub reminded_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

impl Grant {
    /// The effective state at `now`: the stored state adjusted for time.
    pub fn status_at(&self, now: DateTime<Utc>) -> GrantState {
        match self.state {
            GrantState::Scheduled | GrantState::Active => {
                if now >= self.window.expires_at() {
                    GrantState::Expired
                } else if now < self.window.not_before() {
                    GrantState::Scheduled
                } else {
                    GrantState::Active
                }
            }
            ended => ended,
        }
    }

    /// Whether it allows `action` at `now`: active, inside its window, uses left, and (if
    /// bound) the same parameters or the same values of the bound attributes.
    pub fn allows(&self, now: DateTime<Utc>, action: &Action) -> bool {
        self.status_at(now) == GrantState::Active
            && self.uses.is_none_or(|u| u.used < u.limit)
            && self.binding.as_ref().is_none_or(|b| *b == self.binding_of(action))
    }

    /// The binding `action` has under this grant's rule (all parameters, or the bound
    /// attributes).
    pub fn binding_of(&self, action: &Action) -> ActionBinding {
        if self.bound_attributes.is_empty() {
            action.binding()
        } else {
            action.binding_of(&self.bound_attributes)
        }
    }

    /// Whether a break-glass grant still awaits its after-the-fact review.
    pub fn awaits_acknowledgement(&self) -> bool {
        self.break_glass && self.acknowledged.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(min)
    }

    #[test]
    fn an_empty_window_cannot_be_built_or_deserialized() {
        assert!(Window::new(t(5), t(5)).is_err());
        assert!(Window::new(t(5), t(4)).is_err());
        let ok = Window::new(t(0), t(5)).unwrap();
        let json = serde_json::to_string(&ok).unwrap();
        assert_eq!(serde_json::from_str::<Window>(&json).unwrap(), ok);
        let bad = json.replace(
            &serde_json::to_string(&t(5)).unwrap(),
            &serde_json::to_string(&t(-5)).unwrap(),
        );
        assert!(serde_json::from_str::<Window>(&bad).is_err(), "{bad}");
    }

    #[test]
    fn the_window_is_half_open() {
        let w = Window::new(t(0), t(5)).unwrap();
        assert!(!w.contains(t(-1)));
        assert!(w.contains(t(0)));
        assert!(w.contains(t(4)));
        assert!(!w.contains(t(5)));
    }
}
