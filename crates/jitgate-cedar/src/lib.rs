//! # jitgate-cedar
//!
//! jitgate's policy engine on [Cedar](https://www.cedarpolicy.com): policy authors write
//! ordinary Cedar, and annotations turn a `permit` into an eligibility rule with its approval
//! flow. See `docs/policy.md` for every annotation with a worked example.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use jitgate_cedar::CedarPolicy;
//! use jitgate_core::{Action, EntityRef, Policy, PolicyDecision};
//!
//! let policy = CedarPolicy::builder()
//!     .schema("app.cedarschema", r#"
//!         entity Team; entity User in [Team]; entity Database;
//!         action "db_restart" appliesTo { principal: [User], resource: [Database] };
//!     "#)
//!     .policies("prod.cedar", r#"
//!         @id("prod-db-restart")
//!         @jit("approval") @reviewers("Team::\"sre-leads\"") @max_duration("PT1H")
//!         permit(principal in Team::"sre", action == Action::"db_restart", resource);
//!     "#)
//!     .build()
//!     .await?;
//! let restart = Action::new(EntityRef::new("Action", "db_restart"), EntityRef::new("Database", "orders"));
//! // Without entities, nobody is in Team::"sre":
//! assert_eq!(policy.evaluate(&EntityRef::new("User", "sam"), &restart)?, PolicyDecision::NotEligible);
//! # Ok(()) }
//! ```
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]
// CedarError carries locations and Cedar's messages; it is returned only at load time.
#![allow(clippy::result_large_err)]

mod annotations;
mod context_reads;
mod convert;
mod decisions;
pub mod duration;
mod entities;
mod error;
mod links;
mod live;
mod load;
mod loader;
mod policy;
mod probes;
pub mod schema;
pub mod slice;

pub use annotations::{AnnotationLimits, FLOW as FLOW_ANNOTATIONS, OTHER as OTHER_ANNOTATIONS};
/// The `cedar-policy` crate, the exact version this crate is built with: a custom
/// [`EntityProvider`] returns its `Entity` values.
pub use cedar_policy;
pub use decisions::DEFAULT_DECISION_CACHE_BYTES;
pub use entities::{entities_from_json, EntityProvider, JsonEntitiesFile, StaticEntities};
pub use error::{CedarError, CedarErrors, Location};
pub use live::{LiveCedar, ReloadError, ReloadOutcome, ENTITIES_AGE, POLICY_RELOADS};
pub use load::{MAX_EXPRESSION_DEPTH, MAX_NESTING, MAX_POLICY_BYTES};
pub use loader::MAX_HIERARCHY_DEPTH;

/// How old entities may grow without a refresh before decisions deny, unless the builder says
/// otherwise ([`CedarPolicyBuilder::entities_max_age`], or
/// [`CedarPolicyBuilder::entities_never_expire`]): one hour.
pub const DEFAULT_ENTITIES_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(3_600);

/// How long an [`EntityProvider`] may take to load the entities before the load fails
/// ([`CedarPolicyBuilder::entities_deadline`]): 30 seconds.
pub const DEFAULT_ENTITIES_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
pub use policy::{CacheStats, CedarPolicy, CedarPolicyBuilder};
