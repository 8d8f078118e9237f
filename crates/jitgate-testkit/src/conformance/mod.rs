//! The `Store` conformance suite, in groups: the core group every store must pass, and one
//! group per capability ([`Listings`], [`DueWork`], [`Outbox`], [`AuditLog`]). Each check takes
//! a fresh, empty store and panics with a message naming the broken behaviour.
//! [`store_conformance!`](crate::store_conformance) turns the groups into tests; the one list
//! of checks is in [`__conformance_group!`](crate::__conformance_group).

pub mod audit_log;
pub mod core;
pub mod due_work;
pub mod listings;
pub mod notifier;
pub mod outbox;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use jitgate_core::audit::{verify, ChainHead};
use jitgate_core::machine::{self, Transition};
use jitgate_core::{
    AccessRequest, AuditLog, Basis, Commit, Decision, DueWork, EntityRef, Error, Flow, Gate, GrantId, GrantState,
    Listings, ManualClock, Outbox, PageRequest, RequestId, RequestOutcome, RequestState, Requirement, ReviewerStanding,
    Store, StoreError, Verdict, Write,
};

use crate::fixtures::{self, ask, lee, lin, read_customer, restart, sam, team};

/// The store's [`Listings`]; the check fails if it has none.
fn listings(store: &Arc<dyn Store>) -> &dyn Listings {
    store
        .listings()
        .expect("this check needs a store with the Listings capability")
}

/// The store's [`DueWork`]; the check fails if it has none.
fn due_work(store: &Arc<dyn Store>) -> &dyn DueWork {
    store
        .due_work()
        .expect("this check needs a store with the DueWork capability")
}

/// The store's [`Outbox`]; the check fails if it has none.
fn outbox(store: &Arc<dyn Store>) -> &dyn Outbox {
    store
        .outbox()
        .expect("this check needs a store with the Outbox capability")
}

/// The store's [`AuditLog`]; the check fails if it has none.
fn audit_log(store: &Arc<dyn Store>) -> &dyn AuditLog {
    store
        .audit_log()
        .expect("this check needs a store with the AuditLog capability")
}

fn t0() -> DateTime<Utc> {
    jitgate_core::Clock::now(&ManualClock::default())
}

fn flow() -> Flow {
    Flow::new(Duration::hours(1))
        .with_requirement(Requirement::new(team("sre-leads"), 1))
        .with_request_ttl(Duration::minutes(30))
}

fn lead_standing() -> ReviewerStanding {
    ReviewerStanding::new(vec![0], vec!["test".into()])
}

fn open(principal: &EntityRef, db: &str, now: DateTime<Utc>) -> (AccessRequest, Commit) {
    let mut a = ask(restart(db), 30);
    a.principal = principal.clone();
    let Transition {
        commit,
        outcome: (request, _),
    } = machine::open(
        RequestId::new_random(),
        GrantId::new_random(),
        a,
        &Arc::new(flow()),
        None,
        now,
    )
    .expect("open");
    (request, commit)
}

async fn audit_all(store: &Arc<dyn Store>) -> Vec<jitgate_core::audit::AuditRecord> {
    audit_log(store).records(0, usize::MAX).await.expect("audit_log")
}

trait NowPlus {
    fn now_plus(&self, d: Duration) -> DateTime<Utc>;
}
impl NowPlus for ManualClock {
    fn now_plus(&self, d: Duration) -> DateTime<Utc> {
        jitgate_core::Clock::now(self) + d
    }
}

async fn futures_join<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let fs: Vec<F> = fs.collect();
    let mut out = Vec::with_capacity(fs.len());
    // Drive them concurrently on this task: interleaving at every await point.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = fs.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().flatten());
    out
}
