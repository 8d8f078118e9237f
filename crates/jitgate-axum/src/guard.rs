//! [`Guard`]: a tower [`Layer`] that puts `authorize` in front of any route of the host.
//!
//! A closure maps each HTTP request to the [`Action`] it performs; the layer authenticates the
//! caller (the host's [`Authenticate`]), calls [`Gate::authorize`] exactly once, and:
//!
//! - **Allow**: passes the request on, with [`Authorized`] in its extensions (who, and on what
//!   basis). A use-limited grant is used once for the request, never more.
//! - **Deny**: 403 (`forbidden` or `not_eligible`) as a problem document; a failure inside the
//!   gate (policy, store, deadline) denies too, as 503 `authorization_unavailable`.
//! - **NeedsApproval**: 403 `needs_approval`, with the flow a request would go through and the
//!   body to `POST` to the router's `/requests` to ask (at `request_at`, when set).
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::routing::post;
//! use jitgate_axum::{Authenticate, Guard};
//! use jitgate_core::{Action, EntityRef, Gate};
//!
//! # fn mount(gate: Gate, auth: Arc<dyn Authenticate>) -> axum::Router {
//! let restart = Guard::new(gate, auth, |parts: &axum::http::request::Parts| {
//!     // `/services/{name}/restart`: restarting that service.
//!     let name = parts.uri.path().split('/').nth(2).unwrap_or_default();
//!     Ok(Action::new(EntityRef::new("Action", "restart"), EntityRef::new("Service", name)))
//! })
//! .request_at("/jit/requests");
//! axum::Router::new().route("/services/{name}/restart", post(|| async { "restarted" }).layer(restart))
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use jitgate_core::{wire, Action, Decision, DenyReason, EntityRef, ErrorCategory, Gate, Problem};
use serde::Serialize;
use tower_layer::Layer;
use tower_service::Service;

use crate::{ApiError, Authenticate};

/// What the guard found for a request it let through, in the request's extensions
/// (`axum::Extension<Authorized>` in a handler).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Authorized {
    /// The authenticated caller.
    pub caller: EntityRef,
    /// The action the request performs, as the closure mapped it.
    pub action: Action,
    /// The gate's decision: an `Allow`, with its basis (standing, or the grant used).
    pub decision: Decision,
}

/// Maps an HTTP request to the action it performs; an `Err` is answered as it is (say, a 400
/// for a request the closure cannot read) and nothing is authorized.
pub trait ActionOf: Fn(&Parts) -> Result<Action, ApiError> + Send + Sync + 'static {}
impl<F: Fn(&Parts) -> Result<Action, ApiError> + Send + Sync + 'static> ActionOf for F {}

/// The layer: see the [module](self) documentation. Cloning it (once per request, as tower
/// does) is a reference count or two.
pub struct Guard<F> {
    shared: Arc<Shared<F>>,
    request_at: Option<Arc<str>>,
}

/// What every request through a guard shares.
struct Shared<F> {
    gate: Gate,
    auth: Arc<dyn Authenticate>,
    action_of: F,
}

impl<F> Clone for Guard<F> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            request_at: self.request_at.clone(),
        }
    }
}

impl<F: ActionOf> Guard<F> {
    /// A guard asking `gate` about the action `action_of` maps each request to, for the caller
    /// `auth` names.
    pub fn new(gate: Gate, auth: Arc<dyn Authenticate>, action_of: F) -> Self {
        Self {
            shared: Arc::new(Shared { gate, auth, action_of }),
            request_at: None,
        }
    }

    /// Where a caller asks for approval (the URL of the router's `POST /requests`), named in
    /// `needs_approval` answers.
    #[must_use]
    pub fn request_at(mut self, url: impl Into<String>) -> Self {
        self.request_at = Some(url.into().into());
        self
    }
}

impl<S, F> Layer<S> for Guard<F> {
    type Service = Guarded<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        Guarded {
            inner,
            guard: self.clone(),
        }
    }
}

/// A service behind a [`Guard`].
pub struct Guarded<S, F> {
    inner: S,
    guard: Guard<F>,
}

impl<S: Clone, F> Clone for Guarded<S, F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            guard: self.guard.clone(),
        }
    }
}

impl<S, F> Service<Request<Body>> for Guarded<S, F>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    F: ActionOf,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The service that was polled ready handles this request; its clone takes its place.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let guard = self.guard.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let authorized = match guard.check(&parts).await {
                Ok(authorized) => authorized,
                Err(refusal) => return Ok(refusal),
            };
            parts.extensions.insert(authorized);
            inner.call(Request::from_parts(parts, body)).await
        })
    }
}

impl<F: ActionOf> Guard<F> {
    /// Authenticates, maps and authorizes once: what to pass on, or the answer instead.
    async fn check(&self, parts: &Parts) -> Result<Authorized, Response> {
        let Some(caller) = self.shared.auth.caller(parts).await else {
            return Err(ApiError::unauthenticated().into_response());
        };
        let action = (self.shared.action_of)(parts).map_err(IntoResponse::into_response)?;
        let decision = self.shared.gate.authorize(&action, &caller).await;
        match &decision {
            Decision::Allow { .. } => Ok(Authorized {
                caller,
                action,
                decision,
            }),
            Decision::NeedsApproval { .. } => {
                let problem = Problem::new(
                    ErrorCategory::Forbidden,
                    "needs_approval",
                    format!("{caller} needs an approved request to {}", action.scope),
                );
                Err(refusal(
                    problem,
                    &decision,
                    self.request_at.as_deref(),
                    Some(wire::Action::from(&action)),
                ))
            }
            Decision::Deny { reason, .. } => {
                let problem = match reason {
                    DenyReason::Forbidden { .. } => Problem::new(
                        ErrorCategory::Forbidden,
                        "forbidden",
                        format!("{caller} is forbidden to {}: {reason}", action.scope),
                    ),
                    DenyReason::NotEligible => Problem::new(
                        ErrorCategory::Forbidden,
                        "not_eligible",
                        format!("{caller} may not {}: {reason}", action.scope),
                    ),
                    DenyReason::OverLimit(e) => Problem::from_error(e),
                    // A failure inside denies (fail closed); the cause goes to the log only.
                    _ => return Err(unavailable(&caller, &action, &decision)),
                };
                Err(refusal(problem, &decision, None, None))
            }
            // A decision this version does not know: not an allow, so a denial.
            _ => Err(unavailable(&caller, &action, &decision)),
        }
    }
}

/// 503 `authorization_unavailable`: the gate could not decide, so the request is denied.
fn unavailable(caller: &EntityRef, action: &Action, decision: &Decision) -> Response {
    tracing::error!(%caller, scope = %action.scope, ?decision, "the guard denied: authorization failed");
    let problem = Problem::new(
        ErrorCategory::Unavailable,
        "authorization_unavailable",
        "authorization could not be decided; the request is denied",
    );
    refusal(problem, decision, None, None)
}

/// A refusal: the problem document with the decision (and, for `needs_approval`, where and
/// what to ask) as extension members.
#[derive(Serialize)]
struct Refusal<'a> {
    #[serde(flatten)]
    problem: Problem,
    decision: wire::Decision,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<wire::Action>,
}

fn refusal(problem: Problem, decision: &Decision, request_at: Option<&str>, request: Option<wire::Action>) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::FORBIDDEN);
    let body = Refusal {
        problem,
        decision: decision.into(),
        request_at,
        request,
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, Problem::CONTENT_TYPE)], bytes).into_response()
}
