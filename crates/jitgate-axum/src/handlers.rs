//! One handler per endpoint: authenticate, read the body, call the gate as the caller, answer
//! the wire form.

use std::str::FromStr;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use jitgate_core::wire::{self, ActionBody, ExtendBody, InputError, NewRequestBody, ReviewBody};
use jitgate_core::{
    Cursor, EntityRef, GrantId, PageRequest, RequestFilter, RequestId, RequestOutcome, RequestState, Verdict,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use jitgate_core::Problem;

use crate::{Api, ApiError};

/// The authenticated caller.
pub(crate) struct Caller(pub(crate) EntityRef);

impl FromRequestParts<Api> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        api.auth
            .caller(parts)
            .await
            .map(Caller)
            .ok_or_else(ApiError::unauthenticated)
    }
}

/// A JSON body; an empty one is `T::default()` where `T` has one.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::from_error(&InputError::new(
            format!("body (line {}, column {})", e.line(), e.column()),
            e.to_string(),
        ))
    })
}

pub(crate) fn optional_body<T: DeserializeOwned + Default>(bytes: &Bytes) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        body(bytes)
    }
}

fn request_id(id: &str) -> Result<RequestId, ApiError> {
    RequestId::from_str(id)
        .map_err(|_| ApiError::from_error(&InputError::new("id", format!("`{id}` is not a request id (req_…)"))))
}

fn grant_id(id: &str) -> Result<GrantId, ApiError> {
    GrantId::from_str(id)
        .map_err(|_| ApiError::from_error(&InputError::new("id", format!("`{id}` is not a grant id (grant_…)"))))
}

#[utoipa::path(post, path = "/authorize", tag = "decisions", summary = "authorize an action for the caller", request_body = jitgate_core::wire::ActionBody, responses((status = 200, body = jitgate_core::wire::Decision), (status = "4XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json"), (status = "5XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn authorize(
    State(api): State<Api>,
    Caller(caller): Caller,
    bytes: Bytes,
) -> Result<Json<wire::Decision>, ApiError> {
    let action = body::<ActionBody>(&bytes)?.into_action()?;
    Ok(Json((&api.gate.authorize(&action, &caller).await).into()))
}

#[utoipa::path(post, path = "/explain", tag = "decisions", summary = "explain the decision on an action for the caller", request_body = jitgate_core::wire::ActionBody, responses((status = 200, body = jitgate_core::wire::Explanation), (status = "4XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json"), (status = "5XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn explain(
    State(api): State<Api>,
    Caller(caller): Caller,
    bytes: Bytes,
) -> Result<Json<wire::Explanation>, ApiError> {
    let action = body::<ActionBody>(&bytes)?.into_action()?;
    Ok(Json((&api.gate.explain(&action, &caller).await).into()))
}

#[utoipa::path(post, path = "/requests", tag = "requests", summary = "request an action as the caller", request_body = jitgate_core::wire::NewRequestBody, responses((status = 201, description = "a request was made (pending, or granted at once)", body = jitgate_core::wire::RequestOutcome), (status = 200, description = "nothing new: already covered, already pending, or not needed", body = jitgate_core::wire::RequestOutcome), (status = "4XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json"), (status = "5XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn create_request(
    State(api): State<Api>,
    Caller(caller): Caller,
    bytes: Bytes,
) -> Result<(StatusCode, Json<wire::RequestOutcome>), ApiError> {
    let new = body::<NewRequestBody>(&bytes)?.into_request(caller)?;
    Ok(made(&api.gate.request(new).await?))
}

/// 201 when the outcome is a request just made, 200 otherwise.
fn made(outcome: &RequestOutcome) -> (StatusCode, Json<wire::RequestOutcome>) {
    let status = match outcome {
        RequestOutcome::Pending(_) | RequestOutcome::Granted { .. } => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    (status, Json(outcome.into()))
}

#[utoipa::path(post, path = "/grants/{id}/extend", tag = "grants", summary = "ask to extend the caller's grant", params(("id" = String, Path, description = "a grant id, `grant_…`")), request_body = jitgate_core::wire::ExtendBody, responses((status = 201, body = jitgate_core::wire::RequestOutcome), (status = 200, body = jitgate_core::wire::RequestOutcome), (status = "4XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json"), (status = "5XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn extend(
    State(api): State<Api>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<wire::RequestOutcome>), ApiError> {
    let ask = body::<ExtendBody>(&bytes)?;
    let outcome = api
        .gate
        .extend(grant_id(&id)?, &caller, ask.duration()?, ask.justification.as_deref())
        .await?;
    Ok(made(&outcome))
}

#[utoipa::path(post, path = "/grants/{id}/acknowledge", tag = "grants", summary = "acknowledge a break-glass grant, as a reviewer", params(("id" = String, Path, description = "a grant id, `grant_…`")), request_body(content = Option<jitgate_core::wire::ReviewBody>, description = "an optional comment"), responses((status = 200, body = jitgate_core::wire::Grant), (status = "4XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json"), (status = "5XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn acknowledge(
    State(api): State<Api>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<wire::Grant>, ApiError> {
    let review: ReviewBody = optional_body(&bytes)?;
    let grant = api
        .gate
        .acknowledge(grant_id(&id)?, &caller, review.comment.as_deref())
        .await?;
    Ok(Json((&grant).into()))
}

#[utoipa::path(get, path = "/requests/{id}", tag = "requests", summary = "a request the caller made, reviewed or may review", params(("id" = String, Path, description = "a request id, `req_…`")), responses((status = 200, body = jitgate_core::wire::Request), (status = "4XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json"), (status = "5XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn show_request(
    State(api): State<Api>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<wire::Request>, ApiError> {
    let req = api.gate.read_request_as(request_id(&id)?, &caller).await?;
    Ok(Json((&req).into()))
}

#[utoipa::path(post, path = "/requests/{id}/approve", tag = "requests", summary = "approve a request as the caller", params(("id" = String, Path, description = "a request id, `req_…`")), request_body(content = Option<jitgate_core::wire::ReviewBody>, description = "an optional comment"), responses((status = 200, body = jitgate_core::wire::ReviewOutcome), (status = "4XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json"), (status = "5XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn approve(
    State(api): State<Api>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<wire::ReviewOutcome>, ApiError> {
    review(&api, &caller, &id, &bytes, Verdict::Approve).await
}

#[utoipa::path(post, path = "/requests/{id}/deny", tag = "requests", summary = "deny a request as the caller", params(("id" = String, Path, description = "a request id, `req_…`")), request_body(content = Option<jitgate_core::wire::ReviewBody>, description = "an optional comment"), responses((status = 200, body = jitgate_core::wire::ReviewOutcome), (status = "4XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json"), (status = "5XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn deny(
    State(api): State<Api>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<wire::ReviewOutcome>, ApiError> {
    review(&api, &caller, &id, &bytes, Verdict::Deny).await
}

/// Approve or deny request `id` as `caller`, with the body's comment.
async fn review(
    api: &Api,
    caller: &EntityRef,
    id: &str,
    bytes: &Bytes,
    verdict: Verdict,
) -> Result<Json<wire::ReviewOutcome>, ApiError> {
    let review: ReviewBody = optional_body(bytes)?;
    let (id, comment) = (request_id(id)?, review.comment.as_deref());
    let outcome = match verdict {
        Verdict::Approve => api.gate.approve(id, caller, comment).await?,
        Verdict::Deny => api.gate.deny(id, caller, comment).await?,
    };
    Ok(Json((&outcome).into()))
}

#[utoipa::path(post, path = "/requests/{id}/cancel", tag = "requests", summary = "cancel the caller's own pending request", params(("id" = String, Path, description = "a request id, `req_…`")), responses((status = 200, body = jitgate_core::wire::Request), (status = "4XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json"), (status = "5XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn cancel(
    State(api): State<Api>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<wire::Request>, ApiError> {
    let req = api.gate.cancel(request_id(&id)?, &caller).await?;
    Ok(Json((&req).into()))
}

#[utoipa::path(post, path = "/grants/{id}/revoke", tag = "grants", summary = "revoke a grant as the caller", params(("id" = String, Path, description = "a grant id, `grant_…`")), request_body(content = Option<jitgate_core::wire::ReviewBody>, description = "an optional reason, as `comment`"), responses((status = 200, body = jitgate_core::wire::Grant), (status = "4XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json"), (status = "5XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn revoke(
    State(api): State<Api>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<wire::Grant>, ApiError> {
    let reason: ReviewBody = optional_body(&bytes)?;
    let grant = api
        .gate
        .revoke(grant_id(&id)?, &caller, reason.comment.as_deref())
        .await?;
    Ok(Json((&grant).into()))
}

/// `?limit=&after=` of a listing (default 50 a page; the gate's limits cap it).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Listing {
    #[serde(default)]
    pub(crate) limit: Option<usize>,
    #[serde(default)]
    pub(crate) after: Option<String>,
}

fn page_request(q: Result<Query<Listing>, QueryRejection>) -> Result<PageRequest, ApiError> {
    let Query(q) = query(q)?;
    Ok(page_of(q.limit, q.after))
}

/// The query string, or a problem document saying what is wrong with it.
pub(crate) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<Query<T>, ApiError> {
    q.map_err(|e| ApiError::from_error(&InputError::new("query", e.body_text())))
}

/// A page of at most `limit` (default 50) items after `after`.
pub(crate) fn page_of(limit: Option<usize>, after: Option<String>) -> PageRequest {
    let limit = limit.unwrap_or(50);
    match after {
        Some(after) => PageRequest::after(Cursor::new(after), limit),
        None => PageRequest::first(limit),
    }
}

/// `?state=&since=&until=&limit=&after=` of the caller's own requests: `state` a
/// comma-separated list of states, `since` (inclusive) and `until` (exclusive) RFC 3339 instants
/// of when the requests were made.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestListing {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    after: Option<String>,
}

impl RequestListing {
    fn filter(&self) -> Result<RequestFilter, ApiError> {
        let bad =
            |field: &str, problem: String| ApiError::from_error(&InputError::new(format!("query `{field}`"), problem));
        let mut filter = RequestFilter::any();
        if let Some(states) = &self.state {
            let states = states
                .split(',')
                .map(|s| RequestState::from_str(s.trim()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad("state", e))?;
            filter = filter.in_states(states);
        }
        let instant = |field: &str, text: &str| {
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| bad(field, format!("`{text}` is not an RFC 3339 instant: {e}")))
        };
        if let Some(since) = &self.since {
            filter = filter.created_from(instant("since", since)?);
        }
        if let Some(until) = &self.until {
            filter = filter.created_before(instant("until", until)?);
        }
        Ok(filter)
    }
}

#[utoipa::path(get, path = "/requests", tag = "requests", summary = "the caller's own requests, newest first", params(("state" = Option<String>, Query, description = "comma-separated states: pending, approved, denied, cancelled, expired"), ("since" = Option<String>, Query, description = "made at or after this RFC 3339 instant"), ("until" = Option<String>, Query, description = "made before this RFC 3339 instant"), ("limit" = Option<usize>, Query, description = "items per page (default 50)"), ("after" = Option<String>, Query, description = "the `next` of the previous page")), responses((status = 200, body = jitgate_core::wire::Page<jitgate_core::wire::Request>), (status = "4XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json"), (status = "5XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn my_requests(
    State(api): State<Api>,
    Caller(caller): Caller,
    q: Result<Query<RequestListing>, QueryRejection>,
) -> Result<Json<wire::Page<wire::Request>>, ApiError> {
    let Query(q) = query(q)?;
    let filter = q.filter()?;
    let page = api
        .gate
        .requests_of(&caller, &filter, &page_of(q.limit, q.after))
        .await?;
    Ok(Json(wire::Page::from_page(&page)))
}

#[utoipa::path(get, path = "/queue", tag = "requests", summary = "the pending requests the caller may review, oldest first", params(("limit" = Option<usize>, Query, description = "items per page (default 50)"), ("after" = Option<String>, Query, description = "the `next` of the previous page")), responses((status = 200, body = jitgate_core::wire::Page<jitgate_core::wire::Request>), (status = "4XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json"), (status = "5XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn queue(
    State(api): State<Api>,
    Caller(caller): Caller,
    query: Result<Query<Listing>, QueryRejection>,
) -> Result<Json<wire::Page<wire::Request>>, ApiError> {
    let page = api.gate.pending_for_reviewer(&caller, &page_request(query)?).await?;
    Ok(Json(wire::Page::from_page(&page)))
}

#[utoipa::path(get, path = "/grants", tag = "grants", summary = "the caller's live grants", params(("limit" = Option<usize>, Query, description = "items per page (default 50)"), ("after" = Option<String>, Query, description = "the `next` of the previous page")), responses((status = 200, body = jitgate_core::wire::Page<jitgate_core::wire::Grant>), (status = "4XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json"), (status = "5XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn my_grants(
    State(api): State<Api>,
    Caller(caller): Caller,
    query: Result<Query<Listing>, QueryRejection>,
) -> Result<Json<wire::Page<wire::Grant>>, ApiError> {
    let page = api.gate.active_grants(&caller, &page_request(query)?).await?;
    Ok(Json(wire::Page::from_page(&page)))
}
