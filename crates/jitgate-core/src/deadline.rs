//! Deadlines for calls to ports, on any async runtime (or none).
//!
//! A store that hangs must not hang [`Gate::authorize`](crate::Gate::authorize). The gate
//! runs every store call through [`within`], which needs no runtime timer (a
//! `tokio::time::timeout` panics on a runtime built without the time driver, and
//! `jitgate-core` must work under any executor): the timer comes from `futures-timer`, one
//! helper thread per process, and it is only armed once the call has returned `Pending`
//! for the first time, so a call that answers at once (an in-memory store, a cache hit)
//! costs no timer at all.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A call did not finish within its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("did not finish within {after:?}")]
pub struct Elapsed {
    /// The deadline that passed.
    pub after: Duration,
}

/// Runs `fut` until it finishes or `after` has passed since it first returned `Pending`,
/// whichever comes first. A deadline too far away to represent (e.g. [`Duration::MAX`])
/// never fires. `fut` must be `Unpin` (the boxed futures of `async_trait` methods are; pin
/// any other with `Box::pin`), so that a call that answers at once costs next to nothing.
///
/// # Errors
/// The future answers [`Elapsed`] when the deadline passed first; `fut` is dropped then.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use jitgate_core::deadline::within;
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap(); // no time driver
/// # rt.block_on(async {
/// assert_eq!(within(Duration::from_millis(20), Box::pin(async { 7 })).await, Ok(7));
/// let hung = within(Duration::from_millis(20), std::future::pending::<()>()).await;
/// assert_eq!(hung.unwrap_err().after, Duration::from_millis(20));
/// # });
/// ```
#[inline]
pub fn within<F: Future + Unpin>(after: Duration, fut: F) -> Within<F> {
    Within {
        fut,
        after,
        timer: Timer::Unarmed,
    }
}

/// The future of [`within`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Within<F> {
    fut: F,
    after: Duration,
    timer: Timer,
}

#[derive(Debug)]
enum Timer {
    /// The call has not waited yet.
    Unarmed,
    Armed(futures_timer::Delay),
    /// The deadline cannot be represented: wait as long as the call takes.
    Never,
}

impl<F: Future + Unpin> Future for Within<F> {
    type Output = Result<F::Output, Elapsed>;

    // Inlined into the caller: a call that answers at once pays one branch for its deadline.
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready(value) = Pin::new(&mut this.fut).poll(cx) {
            return Poll::Ready(Ok(value));
        }
        this.wait(cx)
    }
}

impl<F> Within<F> {
    /// The call is pending: arm the timer (once) and see whether it has fired.
    #[cold]
    #[inline(never)]
    fn wait<T>(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, Elapsed>> {
        if let Timer::Unarmed = self.timer {
            // `Delay::new` adds `after` to `Instant::now()` and panics on overflow; leave a day
            // of margin for the clock to move between this check and that addition.
            let representable = Instant::now()
                .checked_add(self.after.saturating_add(Duration::from_secs(86_400)))
                .is_some();
            self.timer = if representable {
                Timer::Armed(futures_timer::Delay::new(self.after))
            } else {
                Timer::Never
            };
        }
        match &mut self.timer {
            Timer::Armed(delay) => match Pin::new(delay).poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(Elapsed { after: self.after })),
                Poll::Pending => Poll::Pending,
            },
            Timer::Unarmed | Timer::Never => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A future that is pending `n` times (waking itself) and then ready.
    fn pending_times(mut n: u32) -> impl Future<Output = u32> {
        std::future::poll_fn(move |cx| {
            if n == 0 {
                Poll::Ready(42)
            } else {
                n -= 1;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
    }

    fn runtime_without_timers() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().build().unwrap()
    }

    #[test]
    fn a_hung_call_times_out_on_a_runtime_without_a_time_driver() {
        runtime_without_timers().block_on(async {
            let started = Instant::now();
            let r = within(Duration::from_millis(30), std::future::pending::<()>()).await;
            assert_eq!(
                r,
                Err(Elapsed {
                    after: Duration::from_millis(30)
                })
            );
            assert!(started.elapsed() >= Duration::from_millis(30));
        });
    }

    #[test]
    fn a_call_that_finishes_in_time_keeps_its_value() {
        runtime_without_timers().block_on(async {
            assert_eq!(within(Duration::from_secs(5), pending_times(3)).await, Ok(42));
            assert_eq!(within(Duration::ZERO, Box::pin(async { 1 })).await, Ok(1));
        });
    }

    #[test]
    fn deadlines_too_far_to_represent_never_fire_and_never_panic() {
        runtime_without_timers().block_on(async {
            assert_eq!(within(Duration::MAX, pending_times(5)).await, Ok(42));
            let near_max = Duration::MAX - Duration::from_secs(1);
            assert_eq!(within(near_max, pending_times(2)).await, Ok(42));
        });
    }
}
