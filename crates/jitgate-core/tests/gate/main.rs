//! The engine end to end on the in-memory store, through the fixture policy: one module per
//! verb or concern.

mod audit;
mod authorize;
mod break_glass;
mod cancel_revoke;
mod capabilities;
mod deadlines;
mod delivery;
mod failures;
mod observability;
mod policy_swap;
mod recording;
mod released_audit;
mod request;
mod retention;
mod review;
mod runtime;
mod sinks;
mod streaming;
mod sweep;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::Duration;
use jitgate_core::*;
use jitgate_testkit::fixtures::*;

pub(crate) fn setup() -> (Gate, Arc<ManualClock>, Arc<MemoryNotifier>, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let (gate, clock, notifier) = gate(store.clone());
    (gate, clock, notifier, store)
}

pub(crate) async fn pending(gate: &Gate, ask: NewRequest) -> AccessRequest {
    match gate.request(ask).await.expect("request") {
        RequestOutcome::Pending(r) => r,
        other => panic!("expected a pending request, got {other:?}"),
    }
}

pub(crate) fn transition(e: Error) -> TransitionError {
    match e {
        Error::Transition(t) => t,
        other => panic!("expected a transition error, got {other:?}"),
    }
}
