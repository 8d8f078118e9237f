//! The runtime: everything a gate needs in the background, started by one call on the caller's
//! tokio runtime, supervised, and stopped within a bound.
//!
//! - [`Task`]: one background job (a loop until shutdown); [`Rounds`] makes one from a round
//!   run on an interval.
//! - [`Runtime`]: which tasks to run ([`Runtime::for_gate`] adds the gate's own: the sweeper,
//!   the dispatcher, the audit writer; [`Runtime::checkpoints`] and [`Runtime::streaming`] the
//!   audit checkpointer and streamer; an adapter adds its own, such as Cedar's entity refresher
//!   and policy reloader).
//! - [`RuntimeHandle`]: what is running, each task's failures, and
//!   [`shutdown`](RuntimeHandle::shutdown).
//!
//! A task that fails (returns an error, panics, or returns before shutdown) is reported — logged
//! at ERROR with its name and counted in its [`TaskStatus`] — and started again after a backoff
//! that doubles from [`Backoff::first`] up to [`Backoff::max`]; it never stops the others.

mod rounds;
mod supervise;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

pub use rounds::Rounds;

use crate::gate::{AuditStreamer, Checkpointer, Gate};
use crate::ports::store::Capability;

/// What a task's failure carries.
pub type TaskError = Box<dyn std::error::Error + Send + Sync>;

/// One background job the [`Runtime`] runs and supervises.
#[async_trait]
pub trait Task: Send + Sync + 'static {
    /// Its name in logs and in [`RuntimeHandle::status`].
    fn name(&self) -> &str;

    /// Runs until `shutdown` fires, then flushes what must not be lost and returns `Ok`.
    /// Returning an error (or panicking, or returning before shutdown) is a failure: the
    /// runtime reports it and runs the task again after a backoff.
    ///
    /// # Errors
    /// Whatever stopped the task.
    async fn run(&self, shutdown: Shutdown) -> Result<(), TaskError>;
}

/// The runtime's stop signal, handed to every task: cheap to clone.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Completes once shutdown has been asked for (at once if it already has).
    pub async fn signalled(mut self) {
        // An error means the handle is gone: nobody can ask any more, so that is a stop too.
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Whether shutdown has been asked for.
    pub fn is_signalled(&self) -> bool {
        *self.0.borrow()
    }
}

/// How long the runtime waits before running a failed task again: `first`, doubling after each
/// failure in a row, at most `max`. A run that lasted longer than `max` resets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backoff {
    /// The wait after a first failure.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(200),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// A backoff from `first` up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self { first, max }
    }

    /// The wait after the `n`th failure in a row (from 1).
    pub fn after(&self, n: u32) -> Duration {
        let doubled = self
            .first
            .saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(31)));
        doubled.min(self.max)
    }
}

/// How often the gate's own periodic tasks run (see [`Runtime::for_gate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Intervals {
    /// Between sweeps (expiring requests and grants, reminders). Default 30 s.
    pub sweep: Duration,
    /// Between readings of the store's gauges ([`Gate::record_gauges`]). Default 15 s.
    pub gauges: Duration,
}

impl Default for Intervals {
    fn default() -> Self {
        Self {
            sweep: Duration::from_secs(30),
            gauges: Duration::from_secs(15),
        }
    }
}

/// A task's state, as [`RuntimeHandle::status`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskStatus {
    /// The task's name.
    pub name: String,
    /// Whether it is running now (false while it waits out a backoff, and after it stopped).
    pub running: bool,
    /// How many times it failed since the runtime started.
    pub failures: u64,
    /// Its last failure, if any.
    pub last_error: Option<String>,
    /// When it last failed.
    pub last_failure_at: Option<DateTime<Utc>>,
}

/// The tasks to start. Build with [`Runtime::for_gate`] (or [`Runtime::new`] for none), add
/// tasks, then [`start`](Runtime::start).
#[derive(Default)]
pub struct Runtime {
    tasks: Vec<Arc<dyn Task>>,
    backoff: Backoff,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.tasks.iter().map(|t| t.name()).collect();
        f.debug_struct("Runtime")
            .field("tasks", &names)
            .field("backoff", &self.backoff)
            .finish()
    }
}

impl Runtime {
    /// A runtime with no tasks.
    pub fn new() -> Self {
        Self::default()
    }

    /// A runtime with `gate`'s own tasks: the sweeper (when the store has
    /// [`DueWork`](crate::DueWork)), the dispatcher (when it has an [`Outbox`](crate::Outbox)
    /// and the gate does not already deliver in the background, see
    /// [`GateBuilder::background_delivery`](crate::GateBuilder::background_delivery)), and the
    /// audit writer of buffered grant uses (flushed at shutdown), and the gauges
    /// ([`Gate::record_gauges`]).
    pub fn for_gate(gate: &Gate, intervals: Intervals) -> Self {
        let mut runtime = Self::new();
        if gate.missing_capabilities().iter().all(|c| *c != Capability::DueWork) {
            let g = gate.clone();
            runtime = runtime.task(Rounds::new("sweeper", intervals.sweep, move || {
                let g = g.clone();
                async move { g.sweep().await.map(drop).map_err(TaskError::from) }
            }));
        }
        if gate.missing_capabilities().iter().all(|c| *c != Capability::Outbox) && !gate.delivers_in_background() {
            runtime = runtime.task(supervise::dispatcher(gate.dispatcher()));
        }
        let g = gate.clone();
        runtime = runtime.task(Rounds::new("gauges", intervals.gauges, move || {
            let g = g.clone();
            async move { g.record_gauges().await.map(drop).map_err(TaskError::from) }
        }));
        match supervise::audit_writer(gate.clone()) {
            Some(writer) => runtime.task(writer),
            None => runtime,
        }
    }

    /// Adds a task.
    #[must_use]
    pub fn task(mut self, task: impl Task) -> Self {
        self.tasks.push(Arc::new(task));
        self
    }

    /// Adds the audit checkpointer: a signed checkpoint at once, then every `every`, and one
    /// more at shutdown.
    #[must_use]
    pub fn checkpoints(self, checkpointer: Checkpointer, every: Duration) -> Self {
        let checkpointer = Arc::new(checkpointer);
        self.task(
            Rounds::new("audit checkpointer", every, move || {
                let c = checkpointer.clone();
                async move { c.checkpoint_now().await.map(drop).map_err(TaskError::from) }
            })
            .with_final_round(),
        )
    }

    /// Adds the audit streamer: sealed records to its sinks at once, then every `every`, and
    /// once more at shutdown.
    #[must_use]
    pub fn streaming(self, streamer: AuditStreamer, every: Duration) -> Self {
        let streamer = Arc::new(streamer);
        self.task(
            Rounds::new("audit streamer", every, move || {
                let s = streamer.clone();
                async move { s.stream_once().await.map(drop).map_err(TaskError::from) }
            })
            .with_final_round(),
        )
    }

    /// How long to wait before running a failed task again (default [`Backoff::default`]).
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The names of the tasks it will start.
    pub fn task_names(&self) -> Vec<String> {
        self.tasks.iter().map(|t| t.name().to_owned()).collect()
    }

    /// Starts every task on the current tokio runtime and returns the handle that stops them.
    ///
    /// # Panics
    /// Outside a tokio runtime (as `tokio::spawn` does).
    pub fn start(self) -> RuntimeHandle {
        let (stop, signal) = watch::channel(false);
        let mut supervisors = Vec::new();
        let mut statuses = Vec::new();
        for task in self.tasks {
            let status = Arc::new(Mutex::new(TaskStatus {
                name: task.name().to_owned(),
                running: false,
                failures: 0,
                last_error: None,
                last_failure_at: None,
            }));
            statuses.push(status.clone());
            let name = task.name().to_owned();
            let join = tokio::spawn(supervise::supervise(
                task,
                Shutdown(signal.clone()),
                self.backoff,
                status,
            ));
            supervisors.push((name, join));
        }
        tracing::info!(tasks = ?supervisors.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), "jitgate runtime started");
        RuntimeHandle {
            stop,
            supervisors,
            statuses,
        }
    }
}

/// The running tasks: their status, and the way to stop them.
#[derive(Debug)]
pub struct RuntimeHandle {
    stop: watch::Sender<bool>,
    supervisors: Vec<(String, tokio::task::JoinHandle<()>)>,
    statuses: Vec<Arc<Mutex<TaskStatus>>>,
}

/// What [`RuntimeHandle::shutdown`] did.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// The tasks that stopped (and flushed) within the bound.
    pub stopped: Vec<String>,
    /// The tasks still running at the bound, which were aborted.
    pub aborted: Vec<String>,
}

impl RuntimeHandle {
    /// Each task's state.
    pub fn status(&self) -> Vec<TaskStatus> {
        self.statuses
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .collect()
    }

    /// A [`Shutdown`] that fires with this runtime's: for a service's own loops.
    pub fn shutdown_signal(&self) -> Shutdown {
        Shutdown(self.stop.subscribe())
    }

    /// Asks every task to stop, waits up to `within` for them to finish (each flushes what it
    /// must: the audit writer its buffer, the checkpointer a last checkpoint, the streamer a last
    /// round), then aborts the ones still running.
    pub async fn shutdown(self, within: Duration) -> ShutdownReport {
        self.stop.send_replace(true);
        let deadline = tokio::time::Instant::now() + within;
        let mut report = ShutdownReport::default();
        for (name, mut join) in self.supervisors {
            match tokio::time::timeout_at(deadline, &mut join).await {
                Ok(_) => report.stopped.push(name),
                Err(_) => {
                    join.abort();
                    tracing::error!(task = %name, ?within, "a background task did not stop in time; aborted");
                    report.aborted.push(name);
                }
            }
        }
        tracing::info!(
            stopped = report.stopped.len(),
            aborted = report.aborted.len(),
            "jitgate runtime stopped"
        );
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_maximum() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(b.after(1), Duration::from_millis(100));
        assert_eq!(b.after(2), Duration::from_millis(200));
        assert_eq!(b.after(4), Duration::from_millis(800));
        assert_eq!(b.after(5), Duration::from_secs(1));
        assert_eq!(b.after(u32::MAX), Duration::from_secs(1));
    }
}
