//! The notifier trait: how events reach people and systems.

use async_trait::async_trait;

use crate::delivery::routing::Delivery;

/// A notifier failed to deliver; the event stays in the outbox and is retried.
#[derive(Debug, thiserror::Error)]
#[error("notification {event} not delivered: {message}")]
#[non_exhaustive]
pub struct NotifyError {
    /// The event id.
    pub event: String,
    /// What went wrong.
    pub message: String,
    /// The underlying error.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl NotifyError {
    /// An error for `delivery` with a message.
    pub fn new(delivery: &Delivery, message: impl Into<String>) -> Self {
        Self {
            event: delivery.event.id.to_string(),
            message: message.into(),
            source: None,
        }
    }

    /// The same error, caused by `source` (kept whole, reachable through `source()`).
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}

/// Delivers events. Delivery is at least once: receivers de-duplicate by the event id.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers one event to its recipients.
    ///
    /// # Errors
    /// A [`NotifyError`]; the event will be offered again, with backoff.
    async fn notify(&self, delivery: &Delivery) -> Result<(), NotifyError>;
}

/// Accepts and discards every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullNotifier;

#[async_trait]
impl Notifier for NullNotifier {
    async fn notify(&self, _delivery: &Delivery) -> Result<(), NotifyError> {
        Ok(())
    }
}

/// Emits every delivery as a structured `tracing` event (target `jitgate::notify`, level INFO),
/// for services that ship their logs.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingNotifier;

#[async_trait]
impl Notifier for TracingNotifier {
    async fn notify(&self, d: &Delivery) -> Result<(), NotifyError> {
        let e = &d.event;
        let kind = serde_json::to_value(&e.kind)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str().map(str::to_owned)));
        let to: Vec<String> = d.to.iter().map(ToString::to_string).collect();
        let except: Vec<String> = d.except.iter().map(ToString::to_string).collect();
        tracing::info!(
            target: "jitgate::notify",
            event_id = %e.id,
            kind = kind.as_deref().unwrap_or("unknown"),
            principal = %e.principal,
            scope = %e.scope,
            request_id = %e.request_id,
            grant_id = ?e.grant_id.map(|g| g.to_string()),
            to = ?to,
            except = ?except,
            attempt = d.attempt,
            "jitgate event"
        );
        Ok(())
    }
}
