//! The notifier trait: how events reach people and systems.

use async_trait::async_trait;

use crate::event::Event;

/// A notifier failed to deliver; the event stays in the outbox and is retried.
#[derive(Debug, thiserror::Error)]
#[error("notification {event} not delivered: {message}")]
pub struct NotifyError {
    /// The event id.
    pub event: String,
    /// What went wrong.
    pub message: String,
    /// The underlying error.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Delivers events. Delivery is at least once: receivers de-duplicate by [`Event::id`].
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers one event.
    ///
    /// # Errors
    /// A [`NotifyError`]; the event will be offered again.
    async fn notify(&self, event: &Event) -> Result<(), NotifyError>;
}

/// Accepts and discards every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullNotifier;

#[async_trait]
impl Notifier for NullNotifier {
    async fn notify(&self, _event: &Event) -> Result<(), NotifyError> {
        Ok(())
    }
}
