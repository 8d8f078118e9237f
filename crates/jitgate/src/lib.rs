#![doc = include_str!("../../../README.md")]
//!
//! ## This crate
//!
//! `jitgate` is the one crate a service adds. It re-exports the engine from
//! `jitgate-core` ([`Gate`], the traits, the in-memory adapters, the [`RuleTable`]
//! policy) and `chrono`, whose `Duration` and `DateTime<Utc>` its API speaks.
//! Test helpers (the Store conformance suite, fixtures) live in `jitgate-testkit`.
//!
//! ## Feature flags
//!
//! - `cedar` (default): [`cedar`], Cedar policies (`jitgate-cedar`): standing permits,
//!   `@jit` eligibility rules with their approval flows, reviewer eligibility, explain.
//! - `webhook`: [`webhook`], a notifier that POSTs signed JSON or Slack messages
//!   (`jitgate-webhook`).
//! - `postgres`: [`postgres`], the PostgreSQL store shared by many replicas
//!   (`jitgate-postgres`; needs Rust 1.94).
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

pub use chrono;
pub use jitgate_core::*;

/// Cedar policies (feature `cedar`, on by default).
#[cfg(feature = "cedar")]
pub use jitgate_cedar as cedar;

/// Signed webhooks and Slack messages (feature `webhook`).
#[cfg(feature = "webhook")]
pub use jitgate_webhook as webhook;

/// The PostgreSQL store (feature `postgres`).
#[cfg(feature = "postgres")]
pub use jitgate_postgres as postgres;
