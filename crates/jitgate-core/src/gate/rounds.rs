//! The loop shared by the gate's periodic background work (checkpoints, audit streaming).

use std::future::Future;
use std::time::Duration;

use crate::report::ErrorChain;

/// Runs `round` at once, then every `every` until `shutdown` completes, then once more (so the
/// work done just before a clean stop is covered too). A failed round is logged, naming
/// `work`, and the next tick tries again.
pub(super) async fn every_until_shutdown<E, F, Fut>(
    work: &'static str,
    every: Duration,
    shutdown: impl Future<Output = ()>,
    mut round: F,
) where
    E: std::error::Error,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    tokio::pin!(shutdown);
    loop {
        if let Err(e) = round().await {
            tracing::error!(work, error = %ErrorChain(&e), "a background round failed; retrying at the next tick");
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(every) => {}
        }
    }
    if let Err(e) = round().await {
        tracing::error!(work, error = %ErrorChain(&e), "the last background round before shutdown failed");
    }
}
