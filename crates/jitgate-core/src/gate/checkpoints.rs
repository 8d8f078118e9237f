//! [`Checkpointer`]: signs the audit chain's head periodically and on demand.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{AuditError, Gate};
use crate::audit::{Checkpoint, CheckpointSigner, CheckpointSink, Verifier};
use crate::report::ErrorChain;

/// Signs the head of a gate's audit chain with a key the store never sees and publishes each
/// checkpoint to its sinks (a JSON-lines file, `tracing`, one of your own). Before signing it
/// verifies every record added since its last checkpoint, so it never signs a broken chain,
/// and each checkpoint costs the records since the last one, not the whole chain.
///
/// An attacker who holds the database can, undetected, change only what comes after the last
/// checkpoint that reached a sink (see `docs/audit.md` for choosing the interval).
pub struct Checkpointer {
    gate: Gate,
    signer: CheckpointSigner,
    sinks: Vec<Arc<dyn CheckpointSink>>,
    verified: tokio::sync::Mutex<Verifier>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("signer", &self.signer)
            .field("sinks", &self.sinks.len())
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// A [`Checkpointer`] for this gate's audit chain, signing with `signer`; add sinks with
    /// [`Checkpointer::sink`].
    pub fn checkpointer(&self, signer: CheckpointSigner) -> Checkpointer {
        Checkpointer {
            gate: self.clone(),
            signer,
            sinks: Vec::new(),
            verified: tokio::sync::Mutex::new(Verifier::new()),
        }
    }
}

impl Checkpointer {
    /// Publishes every checkpoint to `sink` too.
    #[must_use]
    pub fn sink(mut self, sink: Arc<dyn CheckpointSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Verifies the records added since the last checkpoint, signs the chain's head at the
    /// gate's clock, and publishes the checkpoint to every sink (all are tried).
    ///
    /// # Errors
    /// [`AuditError::Chain`] if the chain is broken (nothing is signed); a store error; the
    /// first sink's [`AuditError::Checkpoint`] (the others were still tried).
    pub async fn checkpoint_now(&self) -> Result<Checkpoint, AuditError> {
        let mut verified = self.verified.lock().await;
        let mut next = verified.clone();
        // Records the store released to the audit sinks are verified there (`verify_jsonl`).
        next.resume_after(&self.gate.released_audit().await?)?;
        let after = next.head().seq;
        self.gate
            .each_audit_page_after(after, |records| {
                records.iter().try_for_each(|r| next.push(r)).map_err(AuditError::from)
            })
            .await?;
        *verified = next;
        let checkpoint = self.signer.sign(verified.head(), self.gate.now());
        drop(verified);
        let mut first_error = None;
        for sink in &self.sinks {
            if let Err(e) = sink.publish(&checkpoint).await {
                tracing::error!(error = %ErrorChain(&e), seq = checkpoint.seq, "publishing an audit checkpoint failed");
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(checkpoint),
        }
    }

    /// Checkpoints at once, then every `every`, until `shutdown` completes (then once more, so
    /// the last records before a clean stop are anchored). Failures are logged and retried at
    /// the next tick.
    pub async fn run(&self, every: Duration, shutdown: impl Future<Output = ()>) {
        super::rounds::every_until_shutdown("audit checkpoints", every, shutdown, || async {
            self.checkpoint_now().await.map(drop)
        })
        .await;
    }
}
