//! The audit trail for auditors: a page of records, the whole chain as JSON lines, and its
//! verification. Who is an auditor is the policy's decision
//! ([`Policy::may_read_audit`](jitgate_core::Policy::may_read_audit)); anyone else gets 403.

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use jitgate_core::audit::{AuditRecord, Checkpoint};
use jitgate_core::wire::{self, InputError};
use jitgate_core::{
    AuditError, AuditReport, EntityRef, ErrorCategory, ErrorChain, ErrorCode, Gate, PageRequest, Problem,
};
use serde::{Deserialize, Serialize};

use crate::handlers::{optional_body, page_of, query, Caller, Listing};
use crate::{Api, ApiError};

/// The media type of the export: one audit record per line (`docs/audit.md`).
pub const JSONL: &str = "application/jsonl";

/// Records per page of the export.
const EXPORT_PAGE: usize = 500;

/// `GET /audit?limit=&after=`: records in chain order, `after` a sequence number.
#[utoipa::path(get, path = "/audit", tag = "audit", summary = "a page of the audit chain, for an auditor (records in their hashed form, docs/audit.md)", params(("limit" = Option<usize>, Query, description = "items per page (default 50)"), ("after" = Option<String>, Query, description = "the `next` of the previous page")), responses((status = 200, description = "`{\"items\": [audit records], \"next\"}`", body = Object), (status = "4XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json"), (status = "5XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn records(
    State(api): State<Api>,
    Caller(caller): Caller,
    q: Result<Query<Listing>, QueryRejection>,
) -> Result<Json<wire::Page<AuditRecord>>, ApiError> {
    let Query(q) = query(q)?;
    let page = api.gate.audit_records_as(&caller, &page_of(q.limit, q.after)).await?;
    Ok(Json(wire::Page::of(page)))
}

/// `GET /audit/export`: the whole chain as JSON lines, streamed a page at a time (the first
/// page is read before the answer starts, so a refusal or a failing store is still a problem
/// document). A failure later cuts the answer short; a verifier of the export then reports it.
#[utoipa::path(get, path = "/audit/export", tag = "audit", summary = "the whole audit chain as JSON lines, for an auditor", responses((status = 200, description = "one audit record per line", body = String, content_type = "application/jsonl"), (status = "4XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json"), (status = "5XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn export(State(api): State<Api>, Caller(caller): Caller) -> Result<Response, ApiError> {
    let first = api
        .gate
        .audit_records_as(&caller, &PageRequest::first(EXPORT_PAGE))
        .await?;
    let pages = futures_util::stream::unfold(Some((api.gate, caller, first)), |state| async move {
        let (gate, caller, page) = state?;
        let mut lines = Vec::new();
        if let Err(e) = jitgate_core::audit::write_jsonl(&page.items, &mut lines) {
            return Some((Err(e), None));
        }
        let next = match page.next {
            None => None,
            Some(cursor) => match next_page(&gate, &caller, cursor).await {
                Ok(page) => Some((gate, caller, page)),
                Err(e) => return Some((Err(e), None)),
            },
        };
        Some((Ok(Bytes::from(lines)), next))
    });
    Ok(([(header::CONTENT_TYPE, JSONL)], Body::from_stream(pages)).into_response())
}

async fn next_page(
    gate: &Gate,
    caller: &EntityRef,
    cursor: jitgate_core::Cursor,
) -> Result<jitgate_core::Page<AuditRecord>, std::io::Error> {
    gate.audit_records_as(caller, &PageRequest::after(cursor, EXPORT_PAGE))
        .await
        .map_err(|e| {
            tracing::error!(error = %ErrorChain(&e), "the audit export stopped: a page could not be read");
            std::io::Error::other(e)
        })
}

/// The body of `POST /audit/verify`: empty, or a checkpoint and the public key (hex) that
/// signed it, to check the chain against.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyBody {
    #[serde(default)]
    checkpoint: Option<Checkpoint>,
    #[serde(default)]
    public_key: Option<String>,
}

/// The answer of `POST /audit/verify`: `intact` with the report, or not, with what is broken.
#[derive(Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(crate) enum Verification {
    /// Every record checked out (and reached the checkpoint, when one was given).
    Intact {
        #[serde(flatten)]
        report: AuditReport,
    },
    /// The chain is broken: the first edited, missing or reordered record.
    Broken { code: &'static str, detail: String },
}

/// `POST /audit/verify`: verifies the whole chain (against a checkpoint, when the body has
/// one). A broken chain is an answer, not a failure: 200 with `outcome: broken`.
#[utoipa::path(post, path = "/audit/verify", tag = "audit", summary = "verify the audit chain (against a signed checkpoint, when given), for an auditor", request_body(content = Option<Object>, description = "empty, or `{\"checkpoint\", \"public_key\"}`"), responses((status = 200, description = "`{\"outcome\": \"intact\", \"head\", \"unsealed\"}` or `{\"outcome\": \"broken\", \"code\", \"detail\"}`", body = Object), (status = "4XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json"), (status = "5XX", description = "a problem document (RFC 9457)", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn verify(
    State(api): State<Api>,
    Caller(caller): Caller,
    bytes: Bytes,
) -> Result<Json<Verification>, ApiError> {
    api.gate.ensure_auditor(&caller)?;
    let body: VerifyBody = optional_body(&bytes)?;
    let result = match (body.checkpoint, body.public_key) {
        (None, None) => api.gate.verify_audit().await,
        (Some(checkpoint), Some(key)) => api.gate.verify_audit_against(&checkpoint, &key).await,
        _ => {
            return Err(ApiError::from_error(&InputError::new(
                "body",
                "a checkpoint and the public key that signed it go together: give both or neither",
            )))
        }
    };
    match result {
        Ok(report) => Ok(Json(Verification::Intact { report })),
        Err(AuditError::Chain(e)) => Ok(Json(Verification::Broken {
            code: "audit_chain_broken",
            detail: e.to_string(),
        })),
        // The caller's checkpoint or key does not verify: their input, not our failure.
        Err(AuditError::Checkpoint(e)) => Err(ApiError(Box::new(Problem::new(
            ErrorCategory::InvalidInput,
            e.code(),
            ErrorChain(&e).to_string(),
        )))),
        Err(e) => Err(e.into()),
    }
}
