//! # jitgate-webhook
//!
//! A [`Notifier`] that POSTs every jitgate event to configured URLs: jitgate's JSON, or a
//! Slack-compatible message ([`PayloadFormat::Slack`]), signed as the
//! [Standard Webhooks](https://www.standardwebhooks.com/) specification says (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature`; the id is signed; see [`signature`] and
//! [`verify`]), so receivers verify with an existing library. Failures (an error status, a
//! redirect, a timeout, a refused connection) are returned to the dispatcher, which retries
//! with backoff and parks the event as dead after its last attempt.
//!
//! The secret is the key's bytes; a `whsec_…` secret from a Standard Webhooks provider decodes
//! to them with [`key_from_secret`].
//!
//! ```
//! use std::time::Duration;
//! use jitgate_webhook::{PayloadFormat, WebhookNotifier};
//! let key = jitgate_webhook::key_from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
//! let notifier = WebhookNotifier::builder(key)
//!     .url("https://hooks.example.com/jitgate")
//!     .format(PayloadFormat::Json)
//!     .timeout(Duration::from_secs(5))
//!     .build()
//!     .unwrap();
//! # let _ = notifier;
//! ```
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]

mod payload;
pub mod signature;
pub mod slack;

use std::time::Duration;

use async_trait::async_trait;
use jitgate_core::audit::{AuditRecord, RecordSink, SinkError};
use jitgate_core::{Delivery, Notifier, NotifyError};

pub use payload::{body, slack_message, summary, PayloadFormat};
pub use signature::{key_from_secret, sign, verify, SignatureError};

/// Building a [`WebhookNotifier`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// No URL was configured.
    #[error("a webhook notifier needs at least one URL: call .url(...)")]
    NoUrl,
    /// A URL is not an http(s) URL.
    #[error("`{url}` is not an http:// or https:// URL")]
    BadUrl {
        /// The URL given.
        url: String,
    },
    /// The secret is empty.
    #[error("the signing secret is empty: receivers could not verify anything")]
    EmptySecret,
    /// Several problems: every one of them.
    #[error("invalid webhook notifier: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// Each problem.
        problems: Vec<WebhookError>,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// Builds a [`WebhookNotifier`]. Its `Debug` shows neither the secret nor the URLs' paths and
/// queries (a Slack webhook URL is itself a secret).
pub struct WebhookNotifierBuilder {
    secret: Vec<u8>,
    previous: Vec<Vec<u8>>,
    urls: Vec<String>,
    format: PayloadFormat,
    timeout: Duration,
}

impl WebhookNotifierBuilder {
    /// Adds a URL to POST to.
    #[must_use]
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.urls.push(url.into());
        self
    }

    /// Also signs with `key` (a secret being rotated out), so receivers that still hold it
    /// verify too: the `webhook-signature` header then carries one signature per key.
    #[must_use]
    pub fn also_sign_with(mut self, key: Vec<u8>) -> Self {
        self.previous.push(key);
        self
    }

    /// The body format (default [`PayloadFormat::Json`]).
    #[must_use]
    pub fn format(mut self, format: PayloadFormat) -> Self {
        self.format = format;
        self
    }

    /// Per-request timeout (default 10 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the notifier.
    ///
    /// # Errors
    /// [`WebhookError`]: the one problem, or [`WebhookError::Invalid`] with every problem
    /// (no URL, each bad URL, an empty secret) when there are several.
    pub fn build(self) -> Result<WebhookNotifier, WebhookError> {
        let mut problems = Vec::new();
        if self.urls.is_empty() {
            problems.push(WebhookError::NoUrl);
        }
        for url in self
            .urls
            .iter()
            .filter(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            problems.push(WebhookError::BadUrl { url: url.clone() });
        }
        if self.secret.is_empty() || self.previous.iter().any(Vec::is_empty) {
            problems.push(WebhookError::EmptySecret);
        }
        if problems.len() > 1 {
            return Err(WebhookError::Invalid { problems });
        }
        if let Some(problem) = problems.pop() {
            return Err(problem);
        }
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            // A 3xx is a failed attempt, never a GET elsewhere whose 200 would count as delivered.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(WebhookError::Client)?;
        Ok(WebhookNotifier {
            client,
            keys: std::iter::once(self.secret).chain(self.previous).collect(),
            urls: self.urls,
            format: self.format,
        })
    }
}

/// POSTs signed events to webhooks.
#[derive(Clone)]
pub struct WebhookNotifier {
    client: reqwest::Client,
    /// The current key first, then keys being rotated out.
    keys: Vec<Vec<u8>>,
    urls: Vec<String>,
    format: PayloadFormat,
}

/// `scheme://host` of a URL, without user, path or query (which may hold secrets).
fn redacted(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("?", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    format!("{scheme}://{host}/…")
}

impl std::fmt::Debug for WebhookNotifierBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookNotifierBuilder")
            .field("urls", &self.urls.iter().map(|u| redacted(u)).collect::<Vec<_>>())
            .field("format", &self.format)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("urls", &self.urls.iter().map(|u| redacted(u)).collect::<Vec<_>>())
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl WebhookNotifier {
    /// Starts a builder with the shared signing secret.
    pub fn builder(secret: Vec<u8>) -> WebhookNotifierBuilder {
        WebhookNotifierBuilder {
            secret,
            previous: Vec::new(),
            urls: Vec::new(),
            format: PayloadFormat::Json,
            timeout: Duration::from_secs(10),
        }
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn notify(&self, delivery: &Delivery) -> Result<(), NotifyError> {
        let bytes = serde_json::to_vec(&body(delivery, self.format))
            .map_err(|e| NotifyError::new(delivery, "the payload does not serialise").with_source(e))?;
        self.post_all(&bytes, &delivery.event.id.to_string(), delivery.attempt)
            .await
            .map_err(|(what, source)| match source {
                Some(e) => NotifyError::new(delivery, what).with_source(e),
                None => NotifyError::new(delivery, what),
            })
    }
}

impl WebhookNotifier {
    /// `webhook-signature`: one signature per key, separated by spaces.
    fn signatures(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        self.keys
            .iter()
            .map(|k| sign(k, id, timestamp, body))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// POSTs `bytes`, signed, to every URL in turn; the first failure ends it.
    async fn post_all(&self, bytes: &[u8], id: &str, attempt: u32) -> Result<(), (String, Option<reqwest::Error>)> {
        for url in &self.urls {
            let timestamp = chrono::Utc::now().timestamp();
            let response = self
                .client
                .post(url)
                .header("Content-Type", "application/json")
                .header(signature::ID_HEADER, id)
                .header(signature::TIMESTAMP_HEADER, timestamp.to_string())
                .header(signature::SIGNATURE_HEADER, self.signatures(id, timestamp, bytes))
                .header(signature::ATTEMPT_HEADER, attempt.to_string())
                .body(bytes.to_vec())
                .send()
                .await
                .map_err(|e| (format!("POST {} failed", redacted(url)), Some(e)))?;
            let status = response.status();
            if !status.is_success() {
                return Err((format!("POST {} answered {status}", redacted(url)), None));
            }
        }
        Ok(())
    }
}

/// A webhook notifier is also a sink for streaming sealed audit records
/// ([`AuditStreamer`](jitgate_core::AuditStreamer)): each batch is one signed POST of
/// `{"type":"audit_records","records":[...]}` (the export's records, in chain order) with the
/// event id `audit-<first seq>-<last seq>`. Build one with the SIEM's URL and secret. A batch
/// that fails is offered again at the streamer's next round: deduplicate by `seq`.
#[async_trait]
impl RecordSink for WebhookNotifier {
    fn name(&self) -> &str {
        "webhook"
    }

    async fn publish(&self, records: &[AuditRecord]) -> Result<(), SinkError> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(&serde_json::json!({ "type": "audit_records", "records": records }))
            .map_err(|e| SinkError::new("webhook", "the records do not serialise").with_source(e))?;
        self.post_all(&bytes, &format!("audit-{}-{}", first.seq, last.seq), 1)
            .await
            .map_err(|(what, source)| match source {
                Some(e) => SinkError::new("webhook", what).with_source(e),
                None => SinkError::new("webhook", what),
            })
    }
}
