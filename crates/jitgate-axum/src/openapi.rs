//! The OpenAPI 3.1 document of the router, generated from the handlers' annotations and the
//! wire types' schemas (`utoipa`), served at `GET /openapi.json`.

use axum::Json;
use jitgate_core::wire;
use jitgate_core::{EntityRef, ErrorCategory, GrantState, Problem, RequestState, Verdict};
use utoipa::OpenApi;

use crate::{audit, handlers};

/// The document: every JSON endpoint of [`router`](crate::router), with its request and answer
/// schemas (the wire format, `docs/wire.md`) and problem documents for failures.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "jitgate",
        description = "Just-in-time action approval: authorize, request, review, grants, the audit trail. \
                       The caller is the host's authenticated user; no endpoint takes a principal in its body. \
                       Failures are RFC 9457 problem documents with a stable `code` (docs/errors.md)."
    ),
    paths(
        handlers::authorize,
        handlers::explain,
        handlers::create_request,
        handlers::my_requests,
        handlers::show_request,
        handlers::approve,
        handlers::deny,
        handlers::cancel,
        handlers::queue,
        handlers::my_grants,
        handlers::revoke,
        handlers::extend,
        handlers::acknowledge,
        audit::records,
        audit::export,
        audit::verify,
    ),
    components(schemas(
        wire::Decision,
        wire::Explanation,
        wire::Flow,
        wire::Requirement,
        wire::RequestOutcome,
        wire::ReviewOutcome,
        wire::Request,
        wire::Review,
        wire::Grant,
        wire::Action,
        wire::ActionBody,
        wire::NewRequestBody,
        wire::ExtendBody,
        wire::ReviewBody,
        Problem,
        ErrorCategory,
        EntityRef,
        RequestState,
        GrantState,
        Verdict,
    ))
)]
pub struct ApiDoc;

/// `GET /openapi.json`.
pub(crate) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
