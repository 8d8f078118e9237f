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
use std::task::Poll;
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
/// never fires.
///
/// # Errors
/// [`Elapsed`] when the deadline passed first; `fut` is dropped then.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use jitgate_core::deadline::within;
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap(); // no time driver
/// # rt.block_on(async {
/// assert_eq!(within(Duration::from_millis(20), async { 7 }).await, Ok(7));
/// let hung = within(Duration::from_millis(20), std::future::pending::<()>()).await;
/// assert_eq!(hung.unwrap_err().after, Duration::from_millis(20));
/// # });
/// ```
pub async fn within<F: Future>(after: Duration, fut: F) -> Result<F::Output, Elapsed> {
    let mut fut = std::pin::pin!(fut);
    let mut timer: Option<futures_timer::Delay> = None;
    let mut unbounded = false;
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(value) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(value));
        }
        if unbounded {
            return Poll::Pending;
        }
        let delay = match &mut timer {
            Some(delay) => delay,
            // `Delay::new` adds `after` to `Instant::now()` and panics on overflow; leave a
            // day of margin for the clock to move between this check and that addition.
            None if Instant::now()
                .checked_add(after.saturating_add(Duration::from_secs(86_400)))
                .is_none() =>
            {
                unbounded = true;
                return Poll::Pending;
            }
            None => timer.insert(futures_timer::Delay::new(after)),
        };
        match Pin::new(delay).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed { after })),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
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
            assert_eq!(within(Duration::ZERO, async { 1 }).await, Ok(1));
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
