//! # jitgate-axum
//!
//! jitgate over HTTP: [`router`] is an axum [`Router`] a service nests, with endpoints for the
//! [`Gate`] verbs (see the crate's README for the table), answering jitgate's wire format
//! ([`jitgate_core::wire`]) and, on failure, RFC 9457 problem details with stable codes
//! ([`Problem`](jitgate_core::Problem)). Who the caller is comes from the host's [`Authenticate`], never from a body;
//! what they may read is the policy's decision ([`Gate::read_request_as`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use jitgate_axum::{router, Authenticate};
//! use jitgate_core::{async_trait, EntityRef, Gate};
//!
//! /// Trusts a header set by the service's own authenticating proxy.
//! struct FromProxy;
//!
//! #[async_trait]
//! impl Authenticate for FromProxy {
//!     async fn caller(&self, parts: &axum::http::request::Parts) -> Option<EntityRef> {
//!         let user = parts.headers.get("x-authenticated-user")?.to_str().ok()?;
//!         Some(EntityRef::new("User", user))
//!     }
//! }
//!
//! # fn mount(gate: Gate) {
//! let app: axum::Router = axum::Router::new().nest("/jit", router(gate, Arc::new(FromProxy)));
//! # }
//! ```
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

mod audit;
pub mod guard;
mod handlers;
pub mod openapi;
mod page;
mod problem;
#[cfg(feature = "slack")]
pub mod slack;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use jitgate_core::{async_trait, EntityRef, Gate};

pub use audit::JSONL;
pub use guard::{Authorized, Guard};
pub use problem::ApiError;

/// Who is calling: the host authenticates the HTTP request (a session, a token, a header set by
/// its proxy) and names the principal. `None` answers 401 (`unauthenticated`).
#[async_trait]
pub trait Authenticate: Send + Sync + 'static {
    /// The principal making this request, or `None` when it cannot be told.
    async fn caller(&self, parts: &axum::http::request::Parts) -> Option<EntityRef>;
}

/// What every handler shares (cloned for every request: reference counts only).
#[derive(Clone)]
struct Api {
    gate: Arc<Gate>,
    auth: Arc<dyn Authenticate>,
}

/// The router: nest it under a prefix of the host's choosing.
pub fn router(gate: Gate, auth: Arc<dyn Authenticate>) -> Router {
    Router::new()
        .route("/authorize", post(handlers::authorize))
        .route("/explain", post(handlers::explain))
        .route("/requests", post(handlers::create_request).get(handlers::my_requests))
        .route("/requests/{id}", get(handlers::show_request))
        .route("/requests/{id}/approve", post(handlers::approve))
        .route("/requests/{id}/deny", post(handlers::deny))
        .route("/requests/{id}/cancel", post(handlers::cancel))
        .route("/queue", get(handlers::queue))
        .route("/grants", get(handlers::my_grants))
        .route("/grants/{id}/revoke", post(handlers::revoke))
        .route("/grants/{id}/extend", post(handlers::extend))
        .route("/grants/{id}/acknowledge", post(handlers::acknowledge))
        .route("/audit", get(audit::records))
        .route("/audit/export", get(audit::export))
        .route("/audit/verify", post(audit::verify))
        .route("/openapi.json", get(openapi::document))
        .route("/ui", get(page::to_page))
        .route("/ui/", get(page::show))
        .route("/ui/requests/{id}/review", post(page::review))
        .with_state(Api {
            gate: Arc::new(gate),
            auth,
        })
}
