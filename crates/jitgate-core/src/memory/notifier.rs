//! The in-memory [`Notifier`].

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::delivery::routing::Delivery;
use crate::model::event::Event;
use crate::ports::notify::{Notifier, NotifyError};

/// Records every event it is given; a test can read them or await one.
#[derive(Debug)]
pub struct MemoryNotifier {
    deliveries: Mutex<Vec<Delivery>>,
    count: watch::Sender<usize>,
}

impl Default for MemoryNotifier {
    fn default() -> Self {
        Self {
            deliveries: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
        }
    }
}

impl MemoryNotifier {
    /// An empty notifier.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event received so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.deliveries().into_iter().map(|d| d.event).collect()
    }

    /// Every delivery received so far (event, recipients, attempt), in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits up to `timeout` for an event matching `pred` (including one already received).
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&Event) -> bool) -> Option<Event> {
        let mut rx = self.count.subscribe();
        let find = || self.events().into_iter().find(|e| pred(e));
        tokio::time::timeout(timeout, async {
            loop {
                if let Some(e) = find() {
                    return Some(e);
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await
        .ok()
        .flatten()
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn notify(&self, delivery: &Delivery) -> Result<(), NotifyError> {
        let n = {
            let mut deliveries = self.deliveries.lock().unwrap_or_else(|p| p.into_inner());
            deliveries.push(delivery.clone());
            deliveries.len()
        };
        self.count.send_replace(n);
        Ok(())
    }
}
