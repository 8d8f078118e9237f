//! # jitgate-core
//!
//! The engine of jitgate: just-in-time action approval embedded in a Rust service.
//!
//! The crate is a hexagon; its modules (private, re-exported here by name) are:
//!
//! - `model`: the domain — [`EntityRef`], [`Action`], [`AccessRequest`], [`Grant`],
//!   [`Flow`], [`Event`] and their ids.
//! - `machine`: the pure request → review → grant state machine and its one time model
//!   (no I/O, no clock). Its refusals are [`TransitionError`]s.
//! - `ports`: what a deployment plugs in — [`Policy`], [`Clock`], [`Notifier`], and the
//!   small [`Store`] with its optional capabilities [`Listings`], [`DueWork`], [`Outbox`]
//!   and [`AuditLog`].
//! - `gate`: [`Gate`], the engine a service calls — [`Gate::authorize`] on the hot path, and
//!   `request`, `approve`, `deny`, `cancel`, `revoke`, `extend`, `sweep`, `explain`; every
//!   change of state goes through one write pipeline.
//! - `delivery`: the [`Dispatcher`] that drains the outbox, and [`route`].
//! - `memory`: in-memory adapters — [`MemoryStore`], [`MemoryNotifier`], the [`RuleTable`]
//!   policy.
//! - [`deadline`]: [`deadline::within`], the runtime-independent deadline every store call
//!   of a [`Gate`] runs under.
//! - [`audit`]: the SHA-256 hash-chained audit log, its verifier and JSON-lines export.
//!
//! ## Feature flags
//!
//! - `testing`: makes the state machine (`machine`), raw [`Commit`] construction and
//!   [`Gate::store`] public, so `jitgate-testkit` can write transitions past the rules to
//!   test stores. Never turn it on in a service.
//!
//! ```
//! use std::sync::Arc;
//! use chrono::Duration;
//! use jitgate_core::*;
//!
//! # tokio_test();
//! # fn tokio_test() {
//! # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! # rt.block_on(async {
//! let e = EntityRef::new;
//! let policy = RuleTable::builder()
//!     .member(e("User", "sam"), e("Team", "sre"))
//!     .member(e("User", "lee"), e("Team", "sre-leads"))
//!     .eligible(
//!         "prod-db-restart",
//!         Pattern::In(e("Team", "sre")),
//!         Pattern::Is(e("Action", "db_restart")),
//!         Pattern::Any,
//!         Flow::new(Duration::hours(1)).with_requirement(Requirement::new(e("Team", "sre-leads"), 1)),
//!     )
//!     .build()
//!     .unwrap();
//! let gate = Gate::builder()
//!     .policy(Arc::new(policy))
//!     .store(Arc::new(MemoryStore::new()))
//!     .build()
//!     .unwrap();
//!
//! let restart = Action::new(e("Action", "db_restart"), e("Database", "orders-prod"));
//! let sam = e("User", "sam");
//! assert!(matches!(gate.authorize(&restart, &sam).await, Decision::NeedsApproval { .. }));
//!
//! let RequestOutcome::Pending(req) = gate
//!     .request(NewRequest::new(sam.clone(), restart.clone(), Duration::minutes(30)))
//!     .await
//!     .unwrap()
//! else { unreachable!() };
//! gate.approve(req.id, &e("User", "lee"), Some("go")).await.unwrap();
//! assert!(gate.authorize(&restart, &sam).await.is_allowed());
//! # });
//! # }
//! ```
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

/// The attribute every `impl` of [`Store`], its capabilities, [`Notifier`] and async ports
/// needs (the traits are `async_trait` traits, so `Arc<dyn Store>` works).
pub use async_trait::async_trait;

pub mod audit;
mod codes;
pub mod deadline;
mod delivery;
mod gate;
#[cfg(feature = "testing")]
pub mod machine;
#[cfg(not(feature = "testing"))]
mod machine;
mod memory;
pub mod metrics;
mod model;
mod ports;
mod report;
pub mod runtime;
pub mod wire;

pub use codes::{ErrorCategory, ErrorCode, Problem};
pub use delivery::destination::Destination;
pub use delivery::dispatch::{DispatchConfig, DispatchReport, Dispatcher};
pub use delivery::routing::{route, Delivery, Routing};
pub use gate::error::Error;
pub use gate::limits::{Field, LimitError, Limits};
pub use gate::{
    AuditError, AuditReport, AuditStreamer, Basis, BuildError, Checkpointer, Decision, DenyReason, Explanation, Gate,
    GateBuilder, GatePart, Offboarding, RequestOutcome, ReviewOutcome, StreamReport, SweepReport, UseBuffer,
    UseRecording, DEFAULT_AUTHORIZE_DEADLINE, DEFAULT_MAX_ATTEMPTS, DEFAULT_VERB_DEADLINE,
};
pub use machine::time::TimeError;
pub use machine::{DueStep, TransitionError};
pub use memory::notifier::MemoryNotifier;
pub use memory::rule_table::{Pattern, RuleTable, RuleTableBuilder, RuleTableError};
pub use memory::store::MemoryStore;
pub use model::entity::{Action, ActionBinding, AttrValue, Attributes, EntityRef, EntityRefParseError, Scope};
pub use model::event::{Event, EventKind};
pub use model::flow::{BreakGlass, Flow, FlowError, Requirement};
pub use model::grant::{Acknowledgement, EmptyWindow, Ending, Grant, GrantState, Uses, Window};
pub use model::ids::{EventId, GrantId, RequestId};
pub use model::policy_version::{PolicyVersion, PolicyVersionParseError};
pub use model::request::{AccessRequest, NewRequest, RequestState, Review, Verdict};
pub use ports::audit_log::{AuditLog, Unsealed};
pub use ports::clock::{Clock, ManualClock, SystemClock};
pub use ports::due::DueWork;
pub use ports::listings::{Cursor, Listings, Page, PageRequest, RequestFilter};
pub use ports::notify::{Notifier, NotifyError, NullNotifier, TracingNotifier};
pub use ports::outbox::{Outbox, OutboxEntry, Retry};
pub use ports::policy::{Policy, PolicyDecision, PolicyError, ReviewerStanding};
pub use ports::store::{
    Capability, Commit, CommitParts, OutboxGauge, PrincipalCounts, Store, StoreError, StoreGauges, Subject, Write,
};
pub use report::ErrorChain;
