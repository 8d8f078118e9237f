//! Failures as HTTP answers: RFC 9457 problem details.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use jitgate_core::{ErrorCategory, ErrorChain, ErrorCode, Problem};

/// A failed call, answered as `application/problem+json` with the status of its category.
#[derive(Debug)]
pub struct ApiError(pub Box<Problem>);

impl ApiError {
    /// From any jitgate error; a failure inside (5xx) is logged with its whole chain, which
    /// the answer leaves out.
    pub fn from_error<E: ErrorCode>(e: &E) -> Self {
        if !e.category().is_client_error() {
            tracing::error!(code = e.code(), error = %ErrorChain(e), "jitgate API call failed");
        }
        Self(Box::new(Problem::from_error(e)))
    }

    /// 401: the host's [`Authenticate`](crate::Authenticate) could not tell who calls.
    pub fn unauthenticated() -> Self {
        Self(Box::new(Problem::new(
            ErrorCategory::Unauthenticated,
            "unauthenticated",
            "the caller could not be authenticated",
        )))
    }
}

impl<E: ErrorCode> From<E> for ApiError {
    fn from(e: E) -> Self {
        Self::from_error(&e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&*self.0).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, Problem::CONTENT_TYPE)], body).into_response()
    }
}
