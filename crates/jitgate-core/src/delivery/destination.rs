//! [`Destination`]: a named place events go (a webhook URL, a Slack channel, any notifier),
//! with its own delivery state and the events it subscribes to.

use std::sync::Arc;

use crate::delivery::routing::{route, Routing};
use crate::model::entity::EntityRef;
use crate::model::event::{Event, EventKind};
use crate::ports::notify::Notifier;

/// A named destination for events: its notifier and what it subscribes to. Each destination
/// of an event has an outbox entry of its own, so its attempts, backoff and dead letter are
/// its own, and a failing destination never causes a re-delivery to a healthy one.
///
/// By default a destination takes every event; [`kinds`](Self::kinds) and
/// [`recipients`](Self::recipients) narrow it (both must match when both are set).
///
/// ```
/// use std::sync::Arc;
/// use jitgate_core::{Destination, EntityRef, TracingNotifier};
/// let security = Destination::new("security-channel", Arc::new(TracingNotifier))
///     .kinds(["break_glass_used", "break_glass_acknowledged"]);
/// let leads = Destination::new("leads-channel", Arc::new(TracingNotifier))
///     .recipients([EntityRef::new("Team", "sre-leads")]);
/// # let _ = (security, leads);
/// ```
#[derive(Clone)]
pub struct Destination {
    name: String,
    notifier: Arc<dyn Notifier>,
    kinds: Option<Vec<String>>,
    recipients: Option<Vec<EntityRef>>,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("name", &self.name)
            .field("kinds", &self.kinds)
            .field("recipients", &self.recipients)
            .finish_non_exhaustive()
    }
}

impl Destination {
    /// A destination called `name` (unique in a gate; it is kept with each outbox entry, so
    /// every replica must configure the same names), delivering through `notifier`.
    pub fn new(name: impl Into<String>, notifier: Arc<dyn Notifier>) -> Self {
        Self {
            name: name.into(),
            notifier,
            kinds: None,
            recipients: None,
        }
    }

    /// Only events of these kinds (their `type` in JSON: `approval_needed`,
    /// `break_glass_used`, ...; see [`EventKind::TYPES`]).
    #[must_use]
    pub fn kinds<S: Into<String>>(mut self, kinds: impl IntoIterator<Item = S>) -> Self {
        self.kinds = Some(kinds.into_iter().map(Into::into).collect());
        self
    }

    /// Only events addressed (by [`route`]) to one of these entities, e.g. a team's channel
    /// takes what its team must act on.
    #[must_use]
    pub fn recipients(mut self, recipients: impl IntoIterator<Item = EntityRef>) -> Self {
        self.recipients = Some(recipients.into_iter().collect());
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its notifier.
    pub fn notifier(&self) -> &Arc<dyn Notifier> {
        &self.notifier
    }

    /// Whether it names `kind` among the kinds it subscribes to.
    pub fn subscribes_by_kind(&self, kind: &str) -> bool {
        self.kinds.iter().flatten().any(|k| k == kind)
    }

    /// The kinds it subscribes to that no event has (a typo), if any.
    pub fn unknown_kinds(&self) -> Vec<String> {
        self.kinds
            .iter()
            .flatten()
            .filter(|k| !EventKind::TYPES.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    /// Whether `event`, routed by `routing`, goes to this destination.
    pub fn wants(&self, event: &Event, routing: &Routing) -> bool {
        let kind_ok = self
            .kinds
            .as_ref()
            .is_none_or(|kinds| kinds.iter().any(|k| k == event.kind.type_name()));
        let recipient_ok = self.recipients.as_ref().is_none_or(|wanted| {
            let (to, _) = route(event, routing);
            to.iter().any(|t| wanted.contains(t))
        });
        kind_ok && recipient_ok
    }
}
