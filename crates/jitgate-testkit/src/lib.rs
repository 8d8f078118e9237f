//! # jitgate-testkit
//!
//! What every jitgate adapter is tested with:
//!
//! - [`conformance`]: the `Store` conformance suite, as public async functions in one group
//!   per capability, and the [`store_conformance!`] macro that turns them into one `#[test]`
//!   each for an adapter:
//!
//!   ```
//!   use std::sync::Arc;
//!   use jitgate_core::{MemoryStore, Store};
//!   jitgate_testkit::store_conformance!(|| async { Some(Arc::new(MemoryStore::new()) as Arc<dyn Store>) });
//!   # fn main() {}
//!   ```
//! - [`notifier_conformance!`]: the same for a `Notifier`, through a
//!   [`NotifierHarness`](conformance::notifier::NotifierHarness) that shows what its receiver got.
//! - [`fixtures`]: principals, actions, a policy exercising every flow feature, and gates.
//! - [`faulty::FaultyStore`]: the in-memory store whose calls fail or hang on demand, with or
//!   without its capabilities.
//! - [`ManualClock`]: a clock that moves only when told.
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

pub mod conformance;
pub mod faulty;
pub mod fixtures;

pub use jitgate_core::ManualClock;
#[doc(hidden)]
pub use tokio;

/// Runs a future to completion on a fresh multi-threaded runtime (used by [`store_conformance!`]).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime can be built")
        .block_on(f)
}

/// Generates one `#[test]` per conformance check, in one module per group, each with a fresh
/// store from `$factory` (a closure returning a future of `Option<Arc<dyn Store>>`; `None`
/// skips the check, for backends that are not available where the tests run — the factory
/// should say so).
///
/// `store_conformance!(factory)` runs every group; `store_conformance!(factory; core)` (or
/// any list of `core`, `listings`, `due_work`, `outbox`, `audit_log`) runs only those, for a
/// store that implements only some capabilities.
#[macro_export]
macro_rules! store_conformance {
    ($factory:expr) => {
        $crate::store_conformance!($factory; core, listings, due_work, outbox, audit_log);
    };
    ($factory:expr; $($group:ident),+ $(,)?) => {
        $( $crate::__conformance_group!($factory, $group); )+
    };
}

/// The one list of conformance checks, by group: adding a check is one line here (and its
/// function in `conformance::<group>`).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_group {
    ($factory:expr, core) => {
        $crate::__conformance_tests!($factory, core:
            compare_and_swap_conflict,
            commit_is_all_or_nothing,
            duplicate_pending_is_refused,
            concurrent_approvers_yield_one_grant,
            grant_index_is_exact_and_drops_ended_grants,
            use_limited_grant_allows_exactly_n_uses_concurrently,
            limits_refuse_before_storing,
            pending_requests_per_principal_are_bounded,
            refusals_are_recorded,
            uses_are_recorded,
            combined_reads_agree_with_single_reads,
        );
    };
    ($factory:expr, listings) => {
        $crate::__conformance_tests!($factory, listings:
            revoke_all_ends_every_grant_of_a_principal,
            listings_paginate,
            pending_requests_for_reviewers_are_theirs_oldest_first,
            requests_of_a_principal_are_theirs_newest_first,
        );
    };
    ($factory:expr, due_work) => {
        $crate::__conformance_tests!($factory, due_work:
            expiry_sweep_is_idempotent_and_safe_concurrently,
            expiry_reminders_are_due_once,
        );
    };
    ($factory:expr, outbox) => {
        $crate::__conformance_tests!($factory, outbox:
            outbox_holds_events_until_done,
            outbox_retries_wait_and_dead_letters_are_kept,
            each_destination_has_its_own_entry,
            gauges_count_what_waits,
        );
    };
    ($factory:expr, audit_log) => {
        $crate::__conformance_tests!($factory, audit_log:
            audit_chain_stays_continuous_under_concurrency,
            released_records_leave_a_linked_chain,
            nothing_is_deleted,
        );
    };
}

/// One `#[test]` per check of a group, in a module named after the group.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($factory:expr, $group:ident: $($check:ident),+ $(,)?) => {
        mod $group {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $check() {
                    $crate::block_on(async {
                        if let Some(subject) = ($factory)().await {
                            $crate::conformance::$group::$check(subject).await;
                        }
                    });
                }
            )+
        }
    };
}

/// Generates one `#[test]` per notifier conformance check, each with a fresh harness from
/// `$factory` (a closure returning a future of `Option<Arc<dyn NotifierHarness>>`; `None`
/// skips, as for stores).
///
/// ```
/// use std::sync::Arc;
/// use jitgate_testkit::conformance::notifier::{MemoryHarness, NotifierHarness};
/// jitgate_testkit::notifier_conformance!(|| async {
///     Some(Arc::new(MemoryHarness::default()) as Arc<dyn NotifierHarness>)
/// });
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! notifier_conformance {
    ($factory:expr) => {
        $crate::__conformance_tests!($factory, notifier:
            delivers_every_event_of_a_life_cycle,
            a_failure_is_an_error_and_the_retry_keeps_the_event_id,
            concurrent_deliveries_all_arrive,
        );
    };
}

/// Panics if `error`'s message repeats the message of the error its `source()` returns: a
/// wrapper says what it was doing, its cause says why, once. Only the first link is checked
/// (the causes below may be other crates' errors, whose messages are theirs); call it on each
/// of an adapter's error types.
pub fn assert_no_repeated_cause(error: &(dyn std::error::Error + 'static)) {
    if let Some(source) = error.source() {
        let (outer, inner) = (error.to_string(), source.to_string());
        assert!(
            inner.is_empty() || !outer.contains(&inner),
            "`{outer}` repeats its cause `{inner}` (which `source()` already returns)"
        );
    }
}
