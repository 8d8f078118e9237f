//! The one time model: every instant and duration of a request and its grant is computed here.
//!
//! - A request made at `created_at` may be decided until `created_at + request_ttl` (exclusive).
//! - The grant starts at the decision or at the wanted start, whichever is later.
//! - It lasts the wanted duration, clamped to the flow's maximum, counted from its start —
//!   never from when the request was made.

use chrono::{DateTime, Duration, Utc};

use crate::model::grant::Window;

/// A time rule that a request or decision breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// The wanted duration is zero or negative.
    #[error("the wanted duration must be positive, got {seconds} s")]
    NonPositiveDuration {
        /// The duration given, in seconds.
        seconds: i64,
    },
    /// The wanted duration exceeds what the flow allows.
    #[error(
        "the wanted duration {wanted_seconds} s is above the flow's maximum of {max_seconds} s; ask for at most that"
    )]
    DurationAboveMaximum {
        /// What was asked, in seconds.
        wanted_seconds: i64,
        /// The flow's maximum, in seconds.
        max_seconds: i64,
    },
    /// The decision comes at or after the request's deadline.
    #[error("the request expired at {deadline}; a decision at {decided_at} comes too late, ask again")]
    RequestExpired {
        /// The request's deadline.
        deadline: DateTime<Utc>,
        /// When the decision was attempted.
        decided_at: DateTime<Utc>,
    },
    /// A computed instant is outside the representable range.
    #[error("time out of range")]
    OutOfRange,
}

/// The request's deadline: `created_at + ttl`.
///
/// # Errors
/// [`TimeError::OutOfRange`] if the sum overflows.
pub fn request_deadline(created_at: DateTime<Utc>, ttl: Duration) -> Result<DateTime<Utc>, TimeError> {
    created_at.checked_add_signed(ttl).ok_or(TimeError::OutOfRange)
}

/// Checks a wanted duration against the flow's maximum, when the request is made.
///
/// # Errors
/// [`TimeError::NonPositiveDuration`] or [`TimeError::DurationAboveMaximum`].
pub fn check_wanted_duration(wanted: Duration, max: Duration) -> Result<(), TimeError> {
    if wanted <= Duration::zero() {
        return Err(TimeError::NonPositiveDuration {
            seconds: wanted.num_seconds(),
        });
    }
    if wanted > max {
        return Err(TimeError::DurationAboveMaximum {
            wanted_seconds: wanted.num_seconds(),
            max_seconds: max.num_seconds(),
        });
    }
    Ok(())
}

/// Everything the grant window depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowInputs {
    /// The request's deadline (see [`request_deadline`]).
    pub deadline: DateTime<Utc>,
    /// The start the requester wanted, if any.
    pub wanted_start: Option<DateTime<Utc>>,
    /// The duration the requester wanted.
    pub wanted_duration: Duration,
    /// When the decision (the last approval, auto-approval or break-glass) happens.
    pub decided_at: DateTime<Utc>,
    /// The flow's maximum duration (the break-glass bound for break-glass requests).
    pub max_duration: Duration,
}

/// Computes the grant's window.
///
/// # Errors
/// [`TimeError::RequestExpired`] when `decided_at >= deadline`;
/// [`TimeError::NonPositiveDuration`] for a non-positive wanted duration;
/// [`TimeError::OutOfRange`] on overflow.
pub fn grant_window(i: WindowInputs) -> Result<Window, TimeError> {
    if i.decided_at >= i.deadline {
        return Err(TimeError::RequestExpired {
            deadline: i.deadline,
            decided_at: i.decided_at,
        });
    }
    if i.wanted_duration <= Duration::zero() {
        return Err(TimeError::NonPositiveDuration {
            seconds: i.wanted_duration.num_seconds(),
        });
    }
    let not_before = i.wanted_start.map_or(i.decided_at, |s| s.max(i.decided_at));
    let length = i.wanted_duration.min(i.max_duration);
    let expires_at = not_before.checked_add_signed(length).ok_or(TimeError::OutOfRange)?;
    Window::new(not_before, expires_at).map_err(|_| TimeError::NonPositiveDuration {
        seconds: length.num_seconds(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(min)
    }

    fn inputs() -> WindowInputs {
        WindowInputs {
            deadline: t(30),
            wanted_start: None,
            wanted_duration: Duration::minutes(20),
            decided_at: t(10),
            max_duration: Duration::minutes(60),
        }
    }

    #[test]
    fn grant_starts_at_decision_and_counts_from_it_not_from_the_request() {
        let w = grant_window(inputs()).unwrap();
        assert_eq!(w.not_before(), t(10));
        assert_eq!(w.expires_at(), t(30));
    }

    #[test]
    fn wanted_start_later_than_decision_wins() {
        let w = grant_window(WindowInputs {
            wanted_start: Some(t(100)),
            ..inputs()
        })
        .unwrap();
        assert_eq!(w.not_before(), t(100));
        assert_eq!(w.expires_at(), t(120));
    }

    #[test]
    fn wanted_start_in_the_past_is_clamped_to_the_decision() {
        let w = grant_window(WindowInputs {
            wanted_start: Some(t(-50)),
            ..inputs()
        })
        .unwrap();
        assert_eq!(w.not_before(), t(10));
        assert_eq!(w.expires_at(), t(30));
    }

    #[test]
    fn duration_is_clamped_to_the_maximum_counted_from_not_before() {
        let w = grant_window(WindowInputs {
            wanted_duration: Duration::minutes(500),
            wanted_start: Some(t(40)),
            ..inputs()
        })
        .unwrap();
        assert_eq!(w.not_before(), t(40));
        assert_eq!(w.expires_at(), t(100));
    }

    #[test]
    fn decision_at_or_after_the_deadline_is_refused() {
        let at_deadline = grant_window(WindowInputs {
            decided_at: t(30),
            ..inputs()
        });
        assert!(matches!(at_deadline, Err(TimeError::RequestExpired { .. })));
        let just_before = grant_window(WindowInputs {
            decided_at: t(30) - Duration::seconds(1),
            ..inputs()
        });
        assert!(just_before.is_ok());
    }

    #[test]
    fn non_positive_duration_is_refused() {
        let r = grant_window(WindowInputs {
            wanted_duration: Duration::zero(),
            ..inputs()
        });
        assert_eq!(r, Err(TimeError::NonPositiveDuration { seconds: 0 }));
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        let r = grant_window(WindowInputs {
            deadline: DateTime::<Utc>::MAX_UTC,
            decided_at: DateTime::<Utc>::MAX_UTC - Duration::minutes(1),
            ..inputs()
        });
        assert_eq!(r, Err(TimeError::OutOfRange));
        assert_eq!(
            request_deadline(DateTime::<Utc>::MAX_UTC, Duration::minutes(1)),
            Err(TimeError::OutOfRange)
        );
    }

    #[test]
    fn wanted_duration_is_checked_against_the_maximum_at_request_time() {
        assert_eq!(
            check_wanted_duration(Duration::minutes(60), Duration::minutes(60)),
            Ok(())
        );
        assert!(matches!(
            check_wanted_duration(Duration::minutes(61), Duration::minutes(60)),
            Err(TimeError::DurationAboveMaximum {
                wanted_seconds: 3660,
                max_seconds: 3600
            })
        ));
        assert!(matches!(
            check_wanted_duration(Duration::seconds(-5), Duration::minutes(60)),
            Err(TimeError::NonPositiveDuration { seconds: -5 })
        ));
    }
}
