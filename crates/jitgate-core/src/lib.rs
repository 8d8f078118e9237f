//! # jitgate-core
//!
//! The engine of jitgate: just-in-time action approval embedded in a Rust service.
//!
//! - [`machine`]: the pure request → review → grant state machine (no I/O, no clock).
//! - [`time`]: the one time model (request TTL, grant start and end).
//! - [`Gate`]: the engine a service calls — [`Gate::authorize`] on the hot path, and
//!   `request`, `approve`, `deny`, `cancel`, `revoke`, `extend`, `sweep`, `explain`.
//! - Traits for what a deployment plugs in: [`Policy`], [`Store`], [`Notifier`], [`Clock`].
//! - In-memory adapters: [`MemoryStore`], [`MemoryNotifier`]; a [`RuleTable`] policy.
//! - [`audit`]: the SHA-256 hash-chained audit log, its verifier and JSON-lines export.
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

pub mod audit;
mod clock;
mod dispatch;
mod entity;
mod error;
mod event;
mod flow;
mod gate;
mod grant;
pub mod machine;
mod memory;
mod notify;
mod policy;
pub mod quorum;
mod request;
mod routing;
mod serde_duration;
mod store;
pub mod time;

pub use clock::{Clock, ManualClock, SystemClock};
pub use dispatch::{DispatchConfig, DispatchReport, Dispatcher};
pub use entity::{Action, ActionBinding, AttrValue, Attributes, EntityRef, EntityRefParseError, Scope};
pub use error::Error;
pub use event::{Event, EventKind};
pub use flow::{BreakGlass, Flow, FlowError, Requirement};
pub use gate::{
    AuditError, Basis, BuildError, Decision, DenyReason, Explanation, Gate, GateBuilder, RequestOutcome, ReviewOutcome,
    SweepReport, DEFAULT_MAX_ATTEMPTS,
};
pub use grant::{Acknowledgement, EmptyWindow, Ending, Grant, GrantState, Uses, Window};
pub use ids::{EventId, GrantId, RequestId};
pub use memory::{MemoryNotifier, MemoryStore};
pub use notify::{Notifier, NotifyError, NullNotifier, TracingNotifier};
pub use policy::{
    Pattern, Policy, PolicyDecision, PolicyError, ReviewerStanding, RuleTable, RuleTableBuilder, RuleTableError,
};
pub use request::{AccessRequest, NewRequest, RequestState, Review, Verdict};
pub use routing::{route, Delivery, Routing};
pub use store::{Commit, Cursor, OutboxEntry, Page, PageRequest, Store, StoreError, Write};

mod ids;
