//! Who each event is for: a pure function of the event and a little configuration.

use serde::{Deserialize, Serialize};

use crate::model::entity::EntityRef;
use crate::model::event::{Event, EventKind};

/// Routing configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Routing {
    /// Who hears of break-glass use (e.g. `Team::"security"`).
    pub security: Vec<EntityRef>,
}

impl Routing {
    /// Break-glass events go to `audience`.
    #[must_use]
    pub fn with_security(mut self, audience: EntityRef) -> Self {
        self.security.push(audience);
        self
    }
}

/// An event on its way to its recipients, as a [`Notifier`](crate::ports::notify::Notifier) receives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Delivery {
    /// The event; `event.id` is stable across attempts, for de-duplication.
    pub event: Event,
    /// Its recipients: principals or groups (a notifier expands groups as it sees fit).
    pub to: Vec<EntityRef>,
    /// Principals not to notify even if in a group above (the requester, the decider).
    pub except: Vec<EntityRef>,
    /// Which attempt this is, from 1.
    pub attempt: u32,
}

impl Delivery {
    /// `event`'s first delivery, routed by `routing` (see [`route`]).
    pub fn first(event: Event, routing: &Routing) -> Self {
        Self::attempt(event, routing, 1)
    }

    /// Delivery attempt `attempt` (from 1) of `event`, routed by `routing`.
    pub fn attempt(event: Event, routing: &Routing, attempt: u32) -> Self {
        let (to, except) = route(&event, routing);
        Self {
            event,
            to,
            except,
            attempt,
        }
    }
}

/// Routes an event:
///
/// | event | to | except |
/// | --- | --- | --- |
/// | `ApprovalNeeded` | the flow's reviewer sets | the requester |
/// | `Approved`, `Denied`, `Cancelled`, `RequestExpired` | the requester | |
/// | `RequestResolved` | the flow's reviewer sets | the requester and the decider |
/// | `GrantActive`, `GrantExpiring`, `GrantExpired`, `Revoked`, `GrantExhausted` | the grantee | |
/// | `BreakGlassUsed` | the security audience | the grantee |
/// | `BreakGlassAcknowledged` | the security audience and the grantee | |
pub fn route(event: &Event, routing: &Routing) -> (Vec<EntityRef>, Vec<EntityRef>) {
    let holder = || vec![event.principal.clone()];
    match &event.kind {
        EventKind::ApprovalNeeded { reviewers, .. } => (reviewers.clone(), holder()),
        EventKind::RequestResolved { reviewers, by, .. } => {
            let mut except = holder();
            except.extend(by.iter().cloned());
            (reviewers.clone(), except)
        }
        EventKind::BreakGlassUsed { .. } => (routing.security.clone(), holder()),
        EventKind::BreakGlassAcknowledged { .. } => {
            let mut to = routing.security.clone();
            to.push(event.principal.clone());
            (to, Vec::new())
        }
        _ => (holder(), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::entity::Scope;
    use crate::model::ids::{EventId, RequestId};
    use crate::model::request::RequestState;

    fn event(kind: EventKind) -> Event {
        let e = EntityRef::new;
        Event {
            id: EventId("x".into()),
            at: chrono::DateTime::default(),
            principal: e("User", "sam"),
            scope: Scope::new(e("Action", "a"), e("Db", "d")),
            request_id: RequestId::new_random(),
            grant_id: None,
            kind,
        }
    }

    #[test]
    fn every_event_goes_where_the_table_says() {
        let e = EntityRef::new;
        let (leads, sam, lee, sec) = (
            e("Team", "leads"),
            e("User", "sam"),
            e("User", "lee"),
            e("Team", "security"),
        );
        let routing = Routing::default().with_security(sec.clone());
        let needed = event(EventKind::ApprovalNeeded {
            reviewers: vec![leads.clone()],
            flow: String::new(),
            justification: None,
        });
        assert_eq!(route(&needed, &routing), (vec![leads.clone()], vec![sam.clone()]));
        assert_eq!(
            route(&event(EventKind::Approved), &routing),
            (vec![sam.clone()], vec![])
        );
        let resolved = event(EventKind::RequestResolved {
            state: RequestState::Approved,
            by: Some(lee.clone()),
            reviewers: vec![leads.clone()],
        });
        assert_eq!(route(&resolved, &routing), (vec![leads], vec![sam.clone(), lee]));
        assert_eq!(
            route(&event(EventKind::GrantExpired), &routing),
            (vec![sam.clone()], vec![])
        );
        assert_eq!(
            route(&event(EventKind::BreakGlassUsed { justification: None }), &routing),
            (vec![sec.clone()], vec![sam.clone()])
        );
        assert_eq!(
            route(
                &event(EventKind::BreakGlassAcknowledged { by: e("User", "x") }),
                &routing
            ),
            (vec![sec, sam], vec![])
        );
    }
}
