//! Running one task under supervision, and the gate's own tasks.

use std::sync::{Arc, Mutex};

use super::{Backoff, Rounds, Shutdown, Task, TaskError, TaskStatus};
use crate::delivery::dispatch::Dispatcher;
use crate::gate::Gate;
use crate::report::ErrorChain;

/// Aborts the task it holds when dropped: a supervisor aborted at the shutdown bound takes its
/// task down with it.
struct AbortOnDrop(tokio::task::JoinHandle<Result<(), TaskError>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `task` until shutdown; after each failure, records it in `status`, logs it, and runs
/// the task again after `backoff`.
pub(super) async fn supervise(
    task: Arc<dyn Task>,
    shutdown: Shutdown,
    backoff: Backoff,
    status: Arc<Mutex<TaskStatus>>,
) {
    let set = |f: &dyn Fn(&mut TaskStatus)| f(&mut status.lock().unwrap_or_else(|p| p.into_inner()));
    let mut in_a_row = 0u32;
    loop {
        set(&|s| s.running = true);
        let started = tokio::time::Instant::now();
        let run = {
            let (task, shutdown) = (task.clone(), shutdown.clone());
            AbortOnDrop(tokio::spawn(async move { task.run(shutdown).await }))
        };
        let outcome = (&mut { run }.0).await;
        set(&|s| s.running = false);
        let failure = match outcome {
            Ok(Ok(())) if shutdown.is_signalled() => return,
            Ok(Ok(())) => "returned before shutdown".to_owned(),
            Ok(Err(e)) => ErrorChain(&*e).to_string(),
            Err(join) if join.is_panic() => format!("panicked: {}", panic_text(join.into_panic())),
            Err(join) => format!("was cancelled: {join}"),
        };
        let at = chrono::Utc::now();
        metrics::counter!(crate::metrics::TASK_FAILURES, "task" => task.name().to_owned()).increment(1);
        set(&|s| {
            s.failures += 1;
            s.last_error = Some(failure.clone());
            s.last_failure_at = Some(at);
        });
        if shutdown.is_signalled() {
            tracing::error!(task = task.name(), error = %failure, "a background task failed while stopping");
            return;
        }
        if started.elapsed() > backoff.max {
            in_a_row = 0;
        }
        in_a_row = in_a_row.saturating_add(1);
        let wait = backoff.after(in_a_row);
        tracing::error!(task = task.name(), error = %failure, ?wait, "a background task failed; starting it again after a backoff");
        tokio::select! {
            () = shutdown.clone().signalled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map_or_else(|| "(no message)".to_owned(), |s| (*s).to_owned()),
    }
}

/// The dispatcher: a round at once, whenever a commit queues events, at every poll interval,
/// and once more at shutdown (delivering what was queued before the stop).
pub(super) fn dispatcher(dispatcher: Dispatcher) -> impl Task {
    let (every, wake) = dispatcher.schedule();
    Rounds::new("dispatcher", every, move || {
        let d = dispatcher.clone();
        async move { d.dispatch_once().await.map(drop).map_err(TaskError::from) }
    })
    .woken_by(wake)
    .with_final_round()
}

/// The writer of buffered audit records (grant uses, refusals), flushed at shutdown; `None`
/// when the gate does not buffer them.
pub(super) fn audit_writer(gate: Gate) -> Option<impl Task> {
    let (every, wake) = gate.audit_writer_schedule()?;
    Some(
        Rounds::new("audit writer", every, move || {
            let g = gate.clone();
            async move { g.flush_audit_buffer().await.map(drop).map_err(TaskError::from) }
        })
        .woken_by(wake)
        .with_final_round(),
    )
}
