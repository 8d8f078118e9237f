//! [`Rounds`]: a task made of one round run on an interval.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Shutdown, Task, TaskError};

/// A [`Task`] that runs `round` at once, then every `every` (or as soon as its wake-up is
/// notified), until shutdown; with [`with_final_round`](Self::with_final_round), once more at
/// shutdown, so the work done just before a clean stop is covered too. A failed round fails the
/// task: the runtime reports it and starts it again after its backoff.
pub struct Rounds<F> {
    name: String,
    every: Duration,
    round: F,
    final_round: bool,
    wake: Option<Arc<tokio::sync::Notify>>,
}

impl<F> std::fmt::Debug for Rounds<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rounds")
            .field("name", &self.name)
            .field("every", &self.every)
            .field("final_round", &self.final_round)
            .finish_non_exhaustive()
    }
}

impl<F, Fut> Rounds<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), TaskError>> + Send,
{
    /// A task named `name` running `round` every `every`.
    pub fn new(name: impl Into<String>, every: Duration, round: F) -> Self {
        Self {
            name: name.into(),
            every,
            round,
            final_round: false,
            wake: None,
        }
    }

    /// Runs one more round at shutdown.
    #[must_use]
    pub fn with_final_round(mut self) -> Self {
        self.final_round = true;
        self
    }

    /// Also runs a round as soon as `wake` is notified.
    #[must_use]
    pub fn woken_by(mut self, wake: Arc<tokio::sync::Notify>) -> Self {
        self.wake = Some(wake);
        self
    }
}

#[async_trait]
impl<F, Fut> Task for Rounds<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), TaskError>> + Send,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(&self, shutdown: Shutdown) -> Result<(), TaskError> {
        let stop = shutdown.clone().signalled();
        tokio::pin!(stop);
        while !shutdown.is_signalled() {
            (self.round)().await?;
            let woken = async {
                match &self.wake {
                    Some(wake) => wake.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(self.every) => {}
                () = woken => {}
            }
        }
        if self.final_round {
            (self.round)().await?;
        }
        Ok(())
    }
}
