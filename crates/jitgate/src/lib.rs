#![doc = include_str!("../README.md")]
//!
//! ## This crate
//!
//! `jitgate` is the one crate a service adds. It re-exports, by name, the engine from
//! `jitgate-core` ([`Gate`], the ports, the in-memory adapters, the [`RuleTable`] policy),
//! `chrono` (whose `Duration` and `DateTime<Utc>` its API speaks), and `async_trait` (which a
//! custom [`Store`], [`Notifier`] or [`Policy`] implements with), so an adapter needs no other
//! dependency. Test helpers (the conformance suites, fixtures) live in `jitgate-testkit`.
//!
//! ## Feature flags
//!
//! - `cedar` (default): `jitgate::cedar`, Cedar policies (`jitgate-cedar`): standing permits,
//!   `@jit` eligibility rules with their approval flows, reviewer eligibility, explain; and
//!   `jitgate::cedar_policy`, the exact `cedar-policy` it was built with.
//! - `webhook`: `jitgate::webhook`, a notifier that POSTs signed JSON or Slack messages
//!   (`jitgate-webhook`).
//! - `postgres`: `jitgate::postgres`, the PostgreSQL store shared by many replicas
//!   (`jitgate-postgres`; needs Rust 1.94).
//! - `config`: `jitgate::config`, one TOML configuration (with environment overrides) for a
//!   whole deployment, started as a gate with its [`runtime`] (see `docs/configuration.md`).
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

pub use async_trait::async_trait;
pub use chrono;

pub use jitgate_core::audit;
pub use jitgate_core::deadline;
pub use jitgate_core::runtime;
pub use jitgate_core::wire;
pub use jitgate_core::{
    route, AccessRequest, Acknowledgement, Action, ActionBinding, AttrValue, Attributes, AuditError, AuditLog,
    AuditReport, AuditStreamer, Basis, BreakGlass, BuildError, Capability, Checkpointer, Clock, Commit, CommitParts,
    Cursor, Decision, Delivery, DenyReason, Destination, DispatchConfig, DispatchReport, Dispatcher, DueStep, DueWork,
    EmptyWindow, Ending, EntityRef, EntityRefParseError, Error, ErrorCategory, ErrorCode, Event, EventId, EventKind,
    Explanation, Field, Flow, FlowError, Gate, GateBuilder, GatePart, Grant, GrantId, GrantState, LimitError, Limits,
    Listings, ManualClock, MemoryNotifier, MemoryStore, NewRequest, Notifier, NotifyError, NullNotifier, Offboarding,
    Outbox, OutboxEntry, Page, PageRequest, Pattern, Policy, PolicyDecision, PolicyError, PolicyVersion,
    PolicyVersionParseError, PrincipalCounts, Problem, RequestId, RequestOutcome, RequestState, Requirement, Retry,
    Review, ReviewOutcome, ReviewerStanding, Routing, RuleTable, RuleTableBuilder, RuleTableError, Scope, Store,
    StoreError, StreamReport, Subject, SweepReport, SystemClock, TimeError, TracingNotifier, TransitionError, Unsealed,
    UseBuffer, UseRecording, Uses, Verdict, Window, Write, DEFAULT_AUTHORIZE_DEADLINE, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_VERB_DEADLINE,
};

/// Cedar policies (feature `cedar`, on by default).
#[cfg(feature = "cedar")]
pub use jitgate_cedar as cedar;

/// The `cedar-policy` crate, the exact version `jitgate::cedar` is built with (feature
/// `cedar`): a custom [`EntityProvider`](cedar::EntityProvider) builds its entities with it.
#[cfg(feature = "cedar")]
pub use jitgate_cedar::cedar_policy;

/// Signed webhooks and Slack messages (feature `webhook`).
#[cfg(feature = "webhook")]
pub use jitgate_webhook as webhook;

/// jitgate over HTTP (feature `http`): an axum `Router` for the verbs.
#[cfg(feature = "http")]
pub use jitgate_axum as http;

#[cfg(feature = "config")]
pub mod config;

/// The PostgreSQL store (feature `postgres`).
#[cfg(feature = "postgres")]
pub use jitgate_postgres as postgres;
