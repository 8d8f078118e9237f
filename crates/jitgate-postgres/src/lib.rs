//! # jitgate-postgres
//!
//! A jitgate [`Store`](jitgate_core::Store) on PostgreSQL (15 or newer), shared by any number
//! of replicas of a service.
//!
//! ```no_run
//! use std::sync::Arc;
//! use jitgate_postgres::{PgStore, PgStoreOptions};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PgStore::connect(PgStoreOptions::new("postgres://postgres@127.0.0.1:5432/test").schema("jitgate")).await?;
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
//!   the migrations table is `<schema>._sqlx_migrations`, apart from the host's own. They also
//!   set `enable_seqscan = off`: every statement finds its rows by a key or an index, and the
//!   generic plans a session makes while the tables are new or small would otherwise scan
//!   `grants` whole, and keep doing so as it grows, until autovacuum first analyzes it.
//! - **One transaction per transition.** A [`Commit`](jitgate_core::Commit) writes the request
//!   (`UPDATE … WHERE id = $1 AND version = $2`: zero rows is the conflict the engine retries
//!   on), its grants (likewise), the outbox events and the audit entries, then commits: five
//!   round trips. A partial unique index allows one pending request per principal and scope.
//! - **Audit chain without a commit lock.** A commit appends its audit entries to
//!   `audit_entries`, tagged with its transaction id, and takes no lock. A sealer (a background
//!   task after local commits and every 250 ms, and every read of the chain first) holds the
//!   `audit_head` row lock and chains entries in `(xid, id)` order — only those of transactions
//!   older than the oldest one still running, so nothing can later appear before a sealed
//!   record: one order, no gaps, append-only (triggers refuse `UPDATE` and `DELETE`), and
//!   `Gate::verify_audit` recomputes every hash. The first design locked the chain head in
//!   every commit; that lock is held across `COMMIT`'s fsync, serialised all writers and capped
//!   8 clients at about 390 life cycles/s on the reference machine; sealing afterwards gives
//!   540/s (see `docs/PERFORMANCE.md`). The trade-off: a record joins the chain a few
//!   milliseconds after its commit (reads of the chain seal first, so they see their own
//!   writes), and a transaction left open in this database holds sealing back until it ends
//!   (reads then return after `seal_wait`, 1 s, with what is sealed; the verify report,
//!   `AuditLog::unsealed` and the `jitgate_audit_unsealed_*` gauges say what waits).
//! - **Grant cache and change feed.** `live_grants` (the `authorize` hot path) answers from an
//!   in-process index, with no database round trip. Every grant write records its transaction
//!   id and sends `NOTIFY` (with the replica's id) in its transaction; the committing replica
//!   puts the grants it committed into its index at once (version-guarded, so a catch-up with
//!   an older snapshot cannot undo them; it catches up instead when two catch-ups overlapped
//!   the commit), and a feed task on each replica `LISTEN`s
//!   and, on every other replica's notification and on each heartbeat, reads the rows changed
//!   since its last cutoff (the oldest running transaction), so no committed change is skipped
//!   whatever the commit order; it rebuilds the index periodically and after reconnecting. (A
//!   failed catch-up after a commit distrusts the index and makes the feed follow the
//!   replica's own notifications again.) The background sealer gathers the commits of 10 ms
//!   into one sealing transaction. If the index has not been
//!   confirmed fresh within the staleness bound, `live_grants` reads the database (and says so
//!   in `tracing`) until it is.
//! - **Sweeps and outbox on many replicas.** `due_requests`, `due_grants`, `due_reminders`
//!   and `Outbox::claim` claim rows with `FOR UPDATE SKIP LOCKED` and a lease, so replicas
//!   running them at once split the work; the transitions themselves are still
//!   compare-and-swap, so a lease that runs out cannot double-apply anything. Failed
//!   deliveries record their attempts and next attempt time; dead ones are kept with
//!   `dead_at` and audited in the same statement.
//! - **A primary and its standbys.** The URL may name several hosts (libpq's
//!   `postgres://app@db1,db2/jit?target_session_attrs=read-write`): the store writes to the one
//!   whose `pg_is_in_recovery()` is false, and a watcher (its own connection, checked every
//!   `primary_check` and at once when the feed or a commit loses its connection) finds the
//!   writable one again after a failover and points the pool at it; the feed and the sealer
//!   follow through the pool. While none is writable, verbs fail at once with
//!   `StoreError::Unavailable` and `live_grants` answers from the cache only within the
//!   staleness bound. With a synchronous standby nothing acknowledged is lost
//!   (`tests/failover.rs`; `docs/operations.md`).
//! - **Time.** Decisions use the engine's clock; the database's clock only times leases.
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

mod cache;
mod error;
mod options;
mod primary;
mod seal;
mod store;

pub use error::PgError;
pub use options::PgStoreOptions;
pub use store::PgStore;

/// `jitgate_grant_cache_staleness_seconds`: how long ago this replica's grant index last caught
/// up with the change feed (set with the runtime's gauges; `+Inf` before the first catch-up).
pub const GRANT_CACHE_STALENESS: &str = "jitgate_grant_cache_staleness_seconds";
