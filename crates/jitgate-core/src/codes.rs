//! Stable, machine-readable error codes, their categories, and RFC 9457 problem details.
//!
//! Every error a [`Gate`](crate::Gate) verb returns has a [`code`](ErrorCode::code) (stable
//! `snake_case`, never reworded: match on it, not on messages) and a
//! [`category`](ErrorCode::category) that maps to an HTTP status, so a service putting jitgate
//! behind HTTP needs no wildcard arms: [`Problem::from_error`] builds the answer.
//!
//! ```
//! use jitgate_core::{ErrorCategory, ErrorCode, Error, Problem, RequestId};
//! let e = Error::RequestNotFound(RequestId::new_random());
//! assert_eq!(e.code(), "request_not_found");
//! assert_eq!(e.category(), ErrorCategory::NotFound);
//! let p = Problem::from_error(&e);
//! assert_eq!((p.status, p.code.as_str()), (404, "request_not_found"));
//! assert_eq!(p.kind, "urn:jitgate:error:request_not_found");
//! ```
//!
//! `docs/errors.md` lists every code.

use serde::{Deserialize, Serialize};

use crate::audit::{ChainError, CheckpointError};
use crate::{AuditError, Error, ErrorChain, LimitError, PolicyError, StoreError, TimeError, TransitionError};

/// What kind of failure an error is; each maps to one HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCategory {
    /// The input is malformed or over a limit on its size (400).
    InvalidInput,
    /// Who calls could not be told (401): for hosts that put jitgate behind HTTP.
    Unauthenticated,
    /// The caller may not do this: policy, or who they are (403).
    Forbidden,
    /// No such request or grant (404).
    NotFound,
    /// The subject's state does not allow it now (decided, ended, already done) (409).
    Conflict,
    /// A count limit is reached; it frees up when something is decided or acknowledged (429).
    LimitReached,
    /// Something failed inside: the store, the policy, the audit chain's integrity (500).
    Internal,
    /// The store does not implement what the call needs (501).
    Unsupported,
    /// The store cannot be reached now; retry after a moment (503).
    Unavailable,
    /// The store did not answer within the deadline (504).
    Timeout,
}

impl ErrorCategory {
    /// The HTTP status of this category.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCategory::InvalidInput => 400,
            ErrorCategory::Unauthenticated => 401,
            ErrorCategory::Forbidden => 403,
            ErrorCategory::NotFound => 404,
            ErrorCategory::Conflict => 409,
            ErrorCategory::LimitReached => 429,
            ErrorCategory::Internal => 500,
            ErrorCategory::Unsupported => 501,
            ErrorCategory::Unavailable => 503,
            ErrorCategory::Timeout => 504,
        }
    }

    /// A short title, as RFC 9457's `title`.
    pub fn title(self) -> &'static str {
        match self {
            ErrorCategory::InvalidInput => "Invalid input",
            ErrorCategory::Unauthenticated => "Unauthenticated",
            ErrorCategory::Forbidden => "Forbidden",
            ErrorCategory::NotFound => "Not found",
            ErrorCategory::Conflict => "Conflict",
            ErrorCategory::LimitReached => "Limit reached",
            ErrorCategory::Internal => "Internal error",
            ErrorCategory::Unsupported => "Not supported by this store",
            ErrorCategory::Unavailable => "Unavailable",
            ErrorCategory::Timeout => "Timed out",
        }
    }

    /// Whether the fault is the caller's (a 4xx status): only then does a [`Problem`] carry the
    /// error's whole chain of causes as its `detail`.
    pub fn is_client_error(self) -> bool {
        self.http_status() < 500
    }
}

/// An error with a stable code and a category.
pub trait ErrorCode: std::error::Error {
    /// The stable machine-readable code, `snake_case`.
    fn code(&self) -> &'static str;
    /// What kind of failure it is.
    fn category(&self) -> ErrorCategory;
}

impl ErrorCode for Error {
    fn code(&self) -> &'static str {
        match self {
            Error::Transition(e) => e.code(),
            Error::Forbidden { .. } => "forbidden",
            Error::NotEligible { .. } => "not_eligible",
            Error::NotAPrincipal { .. } => "not_a_principal",
            Error::RequestNotFound(_) => "request_not_found",
            Error::GrantNotFound(_) => "grant_not_found",
            Error::NotPermittedToRevoke { .. } => "not_permitted_to_revoke",
            Error::NotPermittedToWithdraw { .. } => "not_permitted_to_withdraw",
            Error::NotGrantHolder { .. } => "not_grant_holder",
            Error::NotPermittedToReadAudit { .. } => "not_permitted_to_read_audit",
            Error::Policy(e) => e.code(),
            Error::Store(e) => e.code(),
            Error::Limit(e) => e.code(),
            Error::Unsupported { .. } => "unsupported",
            Error::Contention { .. } => "contention",
        }
    }

    fn category(&self) -> ErrorCategory {
        match self {
            Error::Transition(e) => e.category(),
            Error::Forbidden { .. }
            | Error::NotEligible { .. }
            | Error::NotPermittedToRevoke { .. }
            | Error::NotPermittedToWithdraw { .. }
            | Error::NotGrantHolder { .. }
            | Error::NotPermittedToReadAudit { .. } => ErrorCategory::Forbidden,
            Error::NotAPrincipal { .. } => ErrorCategory::InvalidInput,
            Error::RequestNotFound(_) | Error::GrantNotFound(_) => ErrorCategory::NotFound,
            Error::Policy(e) => e.category(),
            Error::Store(e) => e.category(),
            Error::Limit(e) => e.category(),
            Error::Unsupported { .. } => ErrorCategory::Unsupported,
            // The engine retried and others kept winning: try again.
            Error::Contention { .. } => ErrorCategory::Conflict,
        }
    }
}

impl ErrorCode for TransitionError {
    fn code(&self) -> &'static str {
        match self {
            TransitionError::RequestClosed { .. } => "request_closed",
            TransitionError::SelfApproval { .. } => "self_approval",
            TransitionError::DuplicateReview { .. } => "duplicate_review",
            TransitionError::NotEligibleReviewer { .. } => "not_eligible_reviewer",
            TransitionError::ReasonRequired { .. } => "reason_required",
            TransitionError::BreakGlassNotAllowed { .. } => "break_glass_not_allowed",
            TransitionError::NotRequester { .. } => "not_requester",
            TransitionError::NotDue { .. } => "not_due",
            TransitionError::GrantNotActive { .. } => "grant_not_active",
            TransitionError::NotBreakGlass { .. } => "not_break_glass",
            TransitionError::AlreadyAcknowledged { .. } => "already_acknowledged",
            TransitionError::Unlimited { .. } => "grant_unlimited",
            TransitionError::Time(e) => e.code(),
        }
    }

    fn category(&self) -> ErrorCategory {
        match self {
            TransitionError::SelfApproval { .. }
            | TransitionError::NotEligibleReviewer { .. }
            | TransitionError::BreakGlassNotAllowed { .. }
            | TransitionError::NotRequester { .. } => ErrorCategory::Forbidden,
            TransitionError::ReasonRequired { .. } => ErrorCategory::InvalidInput,
            TransitionError::RequestClosed { .. }
            | TransitionError::DuplicateReview { .. }
            | TransitionError::NotDue { .. }
            | TransitionError::GrantNotActive { .. }
            | TransitionError::NotBreakGlass { .. }
            | TransitionError::AlreadyAcknowledged { .. }
            | TransitionError::Unlimited { .. } => ErrorCategory::Conflict,
            TransitionError::Time(e) => e.category(),
        }
    }
}

impl ErrorCode for TimeError {
    fn code(&self) -> &'static str {
        match self {
            TimeError::NonPositiveDuration { .. } => "non_positive_duration",
            TimeError::DurationAboveMaximum { .. } => "duration_above_maximum",
            TimeError::RequestExpired { .. } => "request_expired",
            TimeError::OutOfRange => "time_out_of_range",
        }
    }

    fn category(&self) -> ErrorCategory {
        match self {
            TimeError::NonPositiveDuration { .. } | TimeError::DurationAboveMaximum { .. } => {
                ErrorCategory::InvalidInput
            }
            TimeError::RequestExpired { .. } => ErrorCategory::Conflict,
            TimeError::OutOfRange => ErrorCategory::InvalidInput,
        }
    }
}

impl ErrorCode for LimitError {
    fn code(&self) -> &'static str {
        match self {
            LimitError::TooLong { .. } => "too_long",
            LimitError::ControlCharacter { .. } => "control_character",
            LimitError::AttributesTooDeep { .. } => "attributes_too_deep",
            LimitError::DurationTooLong { .. } => "duration_too_long",
            LimitError::StartTooFarAhead { .. } => "start_too_far_ahead",
            LimitError::TooManyPending { .. } => "too_many_pending",
            LimitError::UnacknowledgedBreakGlass { .. } => "unacknowledged_break_glass",
            LimitError::PageTooLarge { .. } => "page_too_large",
        }
    }

    fn category(&self) -> ErrorCategory {
        match self {
            LimitError::TooManyPending { .. } | LimitError::UnacknowledgedBreakGlass { .. } => {
                ErrorCategory::LimitReached
            }
            _ => ErrorCategory::InvalidInput,
        }
    }
}

impl ErrorCode for StoreError {
    fn code(&self) -> &'static str {
        match self {
            StoreError::Conflict { .. } => "version_conflict",
            StoreError::DuplicatePending { .. } => "duplicate_pending",
            StoreError::AlreadyExists { .. } => "already_exists",
            StoreError::InvalidCursor { .. } => "invalid_cursor",
            StoreError::Unsupported { .. } => "unsupported",
            StoreError::Timeout { .. } => "store_timeout",
            StoreError::Unavailable(_) => "store_unavailable",
            StoreError::Backend(_) => "store_failed",
        }
    }

    fn category(&self) -> ErrorCategory {
        match self {
            StoreError::Conflict { .. } | StoreError::DuplicatePending { .. } | StoreError::AlreadyExists { .. } => {
                ErrorCategory::Conflict
            }
            StoreError::InvalidCursor { .. } => ErrorCategory::InvalidInput,
            StoreError::Unsupported { .. } => ErrorCategory::Unsupported,
            StoreError::Timeout { .. } => ErrorCategory::Timeout,
            StoreError::Unavailable(_) => ErrorCategory::Unavailable,
            StoreError::Backend(_) => ErrorCategory::Internal,
        }
    }
}

impl ErrorCode for PolicyError {
    fn code(&self) -> &'static str {
        "policy_failed"
    }

    fn category(&self) -> ErrorCategory {
        ErrorCategory::Internal
    }
}

impl ErrorCode for AuditError {
    fn code(&self) -> &'static str {
        match self {
            AuditError::Chain(_) => "audit_chain_broken",
            AuditError::Store(e) => e.code(),
            AuditError::Io(_) => "audit_io",
            AuditError::Checkpoint(e) => e.code(),
            AuditError::StreamCursor { .. } => "audit_stream_cursor",
        }
    }

    fn category(&self) -> ErrorCategory {
        match self {
            AuditError::Store(e) => e.category(),
            AuditError::Checkpoint(e) => e.category(),
            AuditError::Chain(_) | AuditError::Io(_) | AuditError::StreamCursor { .. } => ErrorCategory::Internal,
        }
    }
}

impl ErrorCode for ChainError {
    fn code(&self) -> &'static str {
        "audit_chain_broken"
    }

    fn category(&self) -> ErrorCategory {
        ErrorCategory::Internal
    }
}

impl ErrorCode for CheckpointError {
    fn code(&self) -> &'static str {
        "audit_checkpoint"
    }

    fn category(&self) -> ErrorCategory {
        ErrorCategory::Internal
    }
}

/// An error as RFC 9457 problem details (`application/problem+json`), with jitgate's `code`
/// and `category` as extension members.
///
/// For the caller's faults (4xx) `detail` is the error with its whole chain of causes; for
/// failures inside (5xx) it is the error's own message only, so that a database's or a
/// policy engine's internals never reach a client (log the whole chain with
/// [`ErrorChain`] instead).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct Problem {
    /// `urn:jitgate:error:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The category's title.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// The stable code ([`ErrorCode::code`]).
    pub code: String,
    /// The category ([`ErrorCode::category`]).
    pub category: ErrorCategory,
    /// The request it concerns (a URI reference), when the host sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

impl Problem {
    /// The media type of a problem details body.
    pub const CONTENT_TYPE: &'static str = "application/problem+json";

    /// The problem details of `e`.
    pub fn from_error<E: ErrorCode>(e: &E) -> Self {
        let category = e.category();
        let detail = if category.is_client_error() {
            ErrorChain(e).to_string()
        } else {
            e.to_string()
        };
        Self {
            kind: format!("urn:jitgate:error:{}", e.code()),
            title: category.title().to_owned(),
            status: category.http_status(),
            detail,
            code: e.code().to_owned(),
            category,
            instance: None,
        }
    }

    /// A problem that is no jitgate error (a host's own: `unauthenticated`, say), with a
    /// stable `code` of the host's choosing.
    pub fn new(category: ErrorCategory, code: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:jitgate:error:{code}"),
            title: category.title().to_owned(),
            status: category.http_status(),
            detail: detail.into(),
            code: code.to_owned(),
            category,
            instance: None,
        }
    }

    /// The same, naming the request it concerns.
    #[must_use]
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }
}
