//! # jitgate-testkit
//!
//! What every jitgate adapter is tested with:
//!
//! - [`conformance`]: the `Store` conformance suite, as public async functions, and the
//!   [`store_conformance!`] macro that turns them into one `#[test]` each for an adapter:
//!
//!   ```
//!   use std::sync::Arc;
//!   use jitgate_core::{MemoryStore, Store};
//!   jitgate_testkit::store_conformance!(|| async { Some(Arc::new(MemoryStore::new()) as Arc<dyn Store>) });
//!   # fn main() {}
//!   ```
//! - [`fixtures`]: principals, actions, a policy exercising every flow feature, and gates.
//! - [`ManualClock`]: a clock that moves only when told.
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

pub mod conformance;
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

/// Generates one `#[test]` per conformance check, each with a fresh store from `$factory`
/// (a closure returning a future of `Option<Arc<dyn Store>>`; `None` skips the check, for
/// backends that are not available where the tests run — the factory should say so).
#[macro_export]
macro_rules! store_conformance {
    ($factory:expr) => {
        $crate::store_conformance!(@tests $factory;
            compare_and_swap_conflict,
            commit_is_all_or_nothing,
            duplicate_pending_is_refused,
            concurrent_approvers_yield_one_grant,
            grant_index_is_exact_and_drops_ended_grants,
            expiry_sweep_is_idempotent_and_safe_concurrently,
            revoke_all_ends_every_grant_of_a_principal,
            audit_chain_stays_continuous_under_concurrency,
            listings_paginate,
            outbox_holds_events_until_done,
            use_limited_grant_allows_exactly_n_uses_concurrently,
            nothing_is_deleted,
            outbox_retries_wait_and_dead_letters_are_kept,
            expiry_reminders_are_due_once
        );
    };
    (@tests $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::block_on(async {
                    if let Some(store) = ($factory)().await {
                        $crate::conformance::$name(store).await;
                    }
                });
            }
        )*
    };
}
