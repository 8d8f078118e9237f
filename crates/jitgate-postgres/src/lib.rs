//! # jitgate-postgres
//!
//! A jitgate [`Store`](jitgate_core::Store) on PostgreSQL (15 or newer), shared by any number
//! of replicas of a service.
//!
//! ```no_run
//! use std::sync::Arc;
//! use jitgate_postgres::{PgStore, PgStoreOptions};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PgStore::connect(PgStoreOptions::new("postgres://postgres@127.0.0.1:5432/test")?.schema("jitgate")?).await?;
//! store.migrate().await?;
//! let store: Arc<dyn jitgate_core::Store> = Arc::new(store);
//! # Ok(()) }
//! ```
//!
//! ## Design
//!
//! - **Client: sqlx 0.9 with run-time queries.** It builds without a database (no `query!`
//!   macros, no `.sqlx` cache), its `query()` takes only `&'static str` (user data is always a
//!   bound parameter), it has a pool, migrations with an advisory lock, and `LISTEN`. The
//!   lighter tokio-postgres would have meant writing migrations and the listener by hand.
//! - **Schema.** Everything lives in one schema (default `jitgate`, see
//!   [`PgStoreOptions::schema`]): the pool's sessions set `search_path` to it at connect, and
//!   the migrations table is `<schema>._sqlx_migrations`, apart from the host's own.
//! - **One transaction per transition.** A [`Commit`](jitgate_core::Commit) writes the request
//!   (`UPDATE … WHERE id = $1 AND version = $2`: zero rows is the conflict the engine retries
//!   on), its grants (likewise), the outbox events, and the audit records, then commits. A
//!   partial unique index allows one pending request per principal and scope.
//! - **Audit chain.** Appends lock the single chain-head row (`audit_head`) as the last step
//!   before `COMMIT`, so the chain has one order and no gaps; a trigger makes the `audit`
//!   table append-only, and `Gate::verify_audit` recomputes every hash.
//! - **Grant cache and change feed.** `live_grants` (the `authorize` hot path) answers from an
//!   in-process index, with no database round trip. Every grant write takes a `change_seq`
//!   under the chain-head lock (so in commit order) and sends `NOTIFY` in its transaction;
//!   a feed task on each replica `LISTEN`s, catches up by cursor on every notification and
//!   heartbeat, and rebuilds the index periodically and after reconnecting. If the index has
//!   not been confirmed fresh within the staleness bound, `live_grants` reads the database
//!   (and says so in `tracing`) until it is.
//! - **Sweeps and outbox on many replicas.** `due_requests`, `due_grants` and
//!   `outbox_pending` claim rows with `FOR UPDATE SKIP LOCKED` and a lease, so replicas
//!   running them at once split the work; the transitions themselves are still
//!   compare-and-swap, so a lease that runs out cannot double-apply anything.
//! - **Time.** Decisions use the engine's clock; the database's clock only times leases.
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

mod cache;
mod error;
mod options;
mod seal;
mod store;

pub use error::PgError;
pub use options::PgStoreOptions;
pub use store::PgStore;
