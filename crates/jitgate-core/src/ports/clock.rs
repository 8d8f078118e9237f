//! Where the engine gets the time from: the only place it reads it.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;

    /// Now, in microseconds since the Unix epoch, for a hot path that only compares times
    /// (the entity snapshot's age on every `authorize`). The default converts
    /// [`now`](Self::now); the clocks here read it without building a date.
    fn now_micros(&self) -> i64 {
        self.now().timestamp_micros()
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn now_micros(&self) -> i64 {
        let micros = |d: std::time::Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => micros(since),
            Err(before) => -micros(before.duration()),
        }
    }
}

/// A clock that moves only when told, for tests and examples. Microsecond resolution.
///
/// # Examples
/// ```
/// use chrono::{Duration, TimeZone, Utc};
/// use jitgate_core::{Clock, ManualClock};
/// let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap());
/// clock.advance(Duration::minutes(90));
/// assert_eq!(clock.now(), Utc.with_ymd_and_hms(2026, 1, 1, 10, 30, 0).unwrap());
/// ```
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            micros: AtomicI64::new(start.timestamp_micros()),
        }
    }

    /// Sets the time.
    pub fn set(&self, to: DateTime<Utc>) {
        self.micros.store(to.timestamp_micros(), Ordering::SeqCst);
    }

    /// Moves the time by `by` (backwards if negative).
    pub fn advance(&self, by: Duration) {
        let delta = by.num_microseconds().unwrap_or(i64::MAX);
        let _ = self
            .micros
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |m| Some(m.saturating_add(delta)));
    }
}

impl Default for ManualClock {
    /// Starts at 2026-01-01T00:00:00Z.
    fn default() -> Self {
        Self::new(DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.micros.load(Ordering::SeqCst)).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    fn now_micros(&self) -> i64 {
        self.micros.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_micros_is_now_in_microseconds() {
        let manual = ManualClock::default();
        manual.advance(Duration::microseconds(1_234_567));
        assert_eq!(manual.now_micros(), manual.now().timestamp_micros());
        let before = Utc::now().timestamp_micros();
        let read = SystemClock.now_micros();
        let after = Utc::now().timestamp_micros();
        assert!((before..=after).contains(&read), "{before} <= {read} <= {after}");
    }
}
