//! Slack approvals (feature `slack`): the endpoint Slack sends clicks on the Approve and Deny
//! buttons of jitgate's approval messages to (the app's *interactivity request URL*).
//!
//! For each request it:
//!
//! 1. verifies Slack's signature (`v0`, HMAC-SHA256 with the app's signing secret) and that
//!    the timestamp is within five minutes of the gate's clock — a forged request gets 401
//!    `slack_signature_invalid`, a stale one 401 `slack_request_expired`; a request seen
//!    before (same signature, within the window) 409 `slack_request_replayed`;
//! 2. maps the Slack user to a principal through the host's [`SlackUsers`] — an unknown user
//!    is told so, privately, and nothing is reviewed;
//! 3. calls [`Gate::approve`] or [`Gate::deny`] **as that principal**, so every rule of the
//!    policy applies as it does anywhere else (eligibility, self-approval, quorum);
//! 4. answers Slack at once (200) and updates the message through its `response_url`: the
//!    buttons go once the request is decided and a line says who decided (or who approved,
//!    while others still must); a refusal (already decided, not an eligible reviewer) is told
//!    to the clicking user alone (an ephemeral message).
//!
//! ```no_run
//! use std::sync::Arc;
//! use jitgate_axum::slack::{SlackInteractions, StaticSlackUsers};
//! use jitgate_core::{EntityRef, Gate};
//!
//! # fn mount(gate: Gate) -> axum::Router {
//! let users = StaticSlackUsers::default().with("U024BE7LH", EntityRef::new("User", "lee"));
//! let slack = SlackInteractions::new(b"the app's signing secret".to_vec(), Arc::new(users));
//! axum::Router::new().nest("/slack", jitgate_axum::slack::router(gate, slack))
//! # }
//! ```

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use jitgate_core::wire::InputError;
use jitgate_core::{
    async_trait, EntityRef, Error, ErrorCategory, ErrorChain, ErrorCode, Gate, Problem, RequestId, RequestState,
    ReviewOutcome,
};
use jitgate_webhook::slack::{
    self as message, TextBuilder, APPROVE_ACTION, DENY_ACTION, REVIEW_BLOCK, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use jitgate_webhook::SignatureError;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::ApiError;

/// The Slack user who clicked, as the payload names them.
#[derive(Clone, Debug, Deserialize)]
#[non_exhaustive]
pub struct SlackUser {
    /// The user id (`U…`/`W…`): what to map, since names change.
    pub id: String,
    /// The workspace (`T…`), when Slack sends it.
    #[serde(default)]
    pub team_id: Option<String>,
    /// The user name, when Slack sends it (for display only).
    #[serde(default)]
    pub username: Option<String>,
}

/// Who a Slack user is in the policy's terms: the host's directory (SCIM, an `email` lookup
/// through Slack's API, a table). `None`: not linked; the click is refused.
#[async_trait]
pub trait SlackUsers: Send + Sync + 'static {
    /// The principal acting for `user`, or `None` when they have none.
    async fn principal(&self, user: &SlackUser) -> Option<EntityRef>;
}

/// A fixed table of Slack user ids to principals.
#[derive(Clone, Debug, Default)]
pub struct StaticSlackUsers(HashMap<String, EntityRef>);

impl StaticSlackUsers {
    /// The table with `slack_user_id` acting as `principal`.
    #[must_use]
    pub fn with(mut self, slack_user_id: impl Into<String>, principal: EntityRef) -> Self {
        self.0.insert(slack_user_id.into(), principal);
        self
    }
}

#[async_trait]
impl SlackUsers for StaticSlackUsers {
    async fn principal(&self, user: &SlackUser) -> Option<EntityRef> {
        self.0.get(&user.id).cloned()
    }
}

/// How long a request's timestamp may be from now, and for how long a signature is remembered
/// against replays: Slack's advice, five minutes.
const WINDOW_SECONDS: i64 = 5 * 60;

/// The signatures seen within the window, at most this many (older ones go first).
const SEEN_CAPACITY: usize = 100_000;

/// The configuration of the Slack endpoint.
#[derive(Clone)]
pub struct SlackInteractions {
    signing_secret: Arc<[u8]>,
    users: Arc<dyn SlackUsers>,
    response_url_prefix: Arc<str>,
    http: reqwest::Client,
    seen: Arc<Mutex<HashMap<String, i64>>>,
}

impl SlackInteractions {
    /// Requests signed with `signing_secret` (the app's *Signing Secret*), users mapped by
    /// `users`.
    pub fn new(signing_secret: Vec<u8>, users: Arc<dyn SlackUsers>) -> Self {
        Self {
            signing_secret: signing_secret.into(),
            users,
            response_url_prefix: "https://hooks.slack.com/".into(),
            http: reqwest::Client::new(),
            seen: Arc::default(),
        }
    }

    /// Where a payload's `response_url` may point (default `https://hooks.slack.com/`): the
    /// endpoint posts nowhere else, even for a correctly signed payload.
    #[must_use]
    pub fn response_url_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.response_url_prefix = prefix.into().into();
        self
    }

    /// Remembers `signature` (seen at `ts`); false if it was seen within the window.
    fn first_sighting(&self, signature: &str, ts: i64, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= SEEN_CAPACITY {
            seen.retain(|_, at| now - *at <= WINDOW_SECONDS);
        }
        if seen.len() >= SEEN_CAPACITY {
            // Still full within the window: forget the oldest rather than refuse Slack.
            if let Some(oldest) = seen.iter().min_by_key(|(_, at)| **at).map(|(s, _)| s.clone()) {
                seen.remove(&oldest);
            }
        }
        seen.insert(signature.to_owned(), ts).is_none()
    }
}

#[derive(Clone)]
struct SlackApi {
    gate: Arc<Gate>,
    slack: SlackInteractions,
}

/// The router: `POST /interactions`. Nest it where the app's interactivity URL points.
pub fn router(gate: Gate, slack: SlackInteractions) -> Router {
    Router::new()
        .route("/interactions", post(interactions))
        .with_state(SlackApi {
            gate: Arc::new(gate),
            slack,
        })
}

/// A refusal of the request itself (before any payload is read): 401/409/400.
fn refuse(category: ErrorCategory, code: &str, detail: impl Into<String>) -> ApiError {
    ApiError(Box::new(Problem::new(category, code, detail)))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    headers.get(name).and_then(|v| v.to_str().ok()).ok_or_else(|| {
        refuse(
            ErrorCategory::Unauthenticated,
            "slack_signature_invalid",
            format!("no {name} header"),
        )
    })
}

/// The form Slack posts: `payload=<JSON>`.
#[derive(Deserialize)]
struct Form {
    payload: String,
}

/// The parts of a `block_actions` payload the endpoint reads.
#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    user: SlackUser,
    #[serde(default)]
    actions: Vec<ClickedAction>,
    #[serde(default)]
    response_url: Option<String>,
    #[serde(default)]
    message: Option<Value>,
}

#[derive(Deserialize)]
struct ClickedAction {
    action_id: String,
    #[serde(default)]
    value: Option<String>,
}

async fn interactions(State(api): State<SlackApi>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let now = api.gate.now();
    let ts = header(&headers, TIMESTAMP_HEADER)?;
    let signature = header(&headers, SIGNATURE_HEADER)?;
    let window = chrono::Duration::seconds(WINDOW_SECONDS);
    let ts = message::verify_request(&api.slack.signing_secret, ts, signature, &body, now, window).map_err(|e| {
        tracing::warn!(error = %e, "a Slack interaction was refused");
        match e {
            SignatureError::Expired { age_seconds } => refuse(
                ErrorCategory::Unauthenticated,
                "slack_request_expired",
                format!("the request's timestamp is {age_seconds} s from now, beyond the 300 s window"),
            ),
            other => refuse(
                ErrorCategory::Unauthenticated,
                "slack_signature_invalid",
                other.to_string(),
            ),
        }
    })?;
    if !api.slack.first_sighting(signature, ts, now.timestamp()) {
        return Err(refuse(
            ErrorCategory::Conflict,
            "slack_request_replayed",
            "this request (its signature) was received before",
        ));
    }
    let payload = serde_urlencoded::from_bytes::<Form>(&body)
        .map_err(|e| e.to_string())
        .and_then(|f| serde_json::from_str::<Payload>(&f.payload).map_err(|e| e.to_string()))
        .map_err(|e| ApiError::from_error(&InputError::new("payload", e)))?;
    let clicked = payload
        .actions
        .iter()
        .find(|a| a.action_id == APPROVE_ACTION || a.action_id == DENY_ACTION);
    let (Some(clicked), "block_actions") = (clicked, payload.kind.as_str()) else {
        // Not one of jitgate's buttons: nothing to do, and nothing wrong.
        return Ok(StatusCode::OK.into_response());
    };
    let value = clicked.value.as_deref().unwrap_or_default();
    let id = RequestId::from_str(value).map_err(|_| {
        ApiError::from_error(&InputError::new(
            "payload.actions[].value",
            format!("`{value}` is not a request id"),
        ))
    })?;
    let reply = match api.slack.users.principal(&payload.user).await {
        None => Reply::Private(format!(
            "Your Slack account ({}) is not linked to anyone jitgate knows, so it cannot review {id}.",
            payload.user.id
        )),
        Some(reviewer) => {
            let outcome = if clicked.action_id == APPROVE_ACTION {
                api.gate.approve(id, &reviewer, Some("via Slack")).await
            } else {
                api.gate.deny(id, &reviewer, Some("via Slack")).await
            };
            match outcome {
                Ok(outcome) => Reply::Update(updated(payload.message.as_ref(), &outcome, &reviewer, &payload.user)),
                Err(e) => Reply::Private(refusal_text(&e, id)),
            }
        }
    };
    match payload
        .response_url
        .filter(|url| url.starts_with(&*api.slack.response_url_prefix))
    {
        Some(url) => {
            let http = api.slack.http.clone();
            // Slack wants its answer within 3 s: the message is updated after it.
            tokio::spawn(async move {
                let sent = http.post(&url).json(&reply.body()).send().await;
                match sent.map(|r| r.error_for_status()) {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) | Err(e) => tracing::warn!(error = %e, "updating the Slack message failed"),
                }
            });
        }
        None => tracing::warn!(
            "a Slack interaction had no response_url under the allowed prefix: the message was not updated"
        ),
    }
    Ok(StatusCode::OK.into_response())
}

/// What to post to the `response_url`.
enum Reply {
    /// The original message, replaced.
    Update(Value),
    /// A message only the clicking user sees.
    Private(String),
}

impl Reply {
    fn body(&self) -> Value {
        match self {
            Reply::Update(message) => message.clone(),
            Reply::Private(text) => json!({
                "response_type": "ephemeral",
                "replace_original": false,
                "text": message::escape(text),
            }),
        }
    }
}

/// Why the gate refused, for the clicking user.
fn refusal_text(e: &Error, id: RequestId) -> String {
    match e.category() {
        ErrorCategory::Conflict => format!("{id} was already decided: {e}"),
        c if c.is_client_error() => format!("You cannot review {id}: {}", ErrorChain(e)),
        _ => {
            tracing::error!(code = e.code(), error = %ErrorChain(e), "a review from Slack failed");
            format!("Reviewing {id} failed inside jitgate; try again, or review it elsewhere.")
        }
    }
}

/// The original message with the buttons gone once the request is decided, and a line saying
/// who reviewed it and how.
fn updated(original: Option<&Value>, outcome: &ReviewOutcome, reviewer: &EntityRef, user: &SlackUser) -> Value {
    let decided = outcome.request.state != RequestState::Pending;
    let mut blocks: Vec<Value> = original
        .and_then(|m| m["blocks"].as_array())
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|b| !decided || b["block_id"] != REVIEW_BLOCK)
        .collect();
    let verdict = match outcome.request.state {
        RequestState::Approved => "approved",
        RequestState::Denied => "denied",
        RequestState::Pending => "approved; other reviews are still needed",
        _ => "closed",
    };
    let label = if decided { "Decided by:" } else { "Reviewed by:" };
    let who = format!(
        "{reviewer} ({}, Slack {}) — {verdict}",
        user.username.as_deref().unwrap_or("-"),
        user.id
    );
    let line = TextBuilder::default().label(label).space().value(&who).build();
    blocks.push(json!({ "type": "section", "text": line }));
    let text = original.and_then(|m| m["text"].as_str()).map_or_else(
        || message::escape(&format!("{} {verdict}", outcome.request.id)),
        str::to_owned,
    );
    json!({ "replace_original": true, "text": text, "blocks": blocks })
}
