//! Every public `Gate` future is `Send`: this module compiles only if they are, so a change
//! that makes one `!Send` (a lock guard or a `Cell` held across an await) fails the build.

use chrono::Duration;

use super::Gate;
use crate::model::entity::{Action, EntityRef};
use crate::model::ids::{GrantId, RequestId};
use crate::model::request::NewRequest;
use crate::ports::listings::PageRequest;

fn send<T: Send>(_: T) {}

#[allow(dead_code)] // checked by the compiler, never run
fn gate_futures_are_send(gate: &Gate, a: &Action, p: &EntityRef, r: RequestId, g: GrantId, page: &PageRequest) {
    send(gate.authorize(a, p));
    send(gate.explain(a, p));
    send(gate.request(NewRequest::new(p.clone(), a.clone(), Duration::minutes(5))));
    send(gate.approve(r, p, None));
    send(gate.deny(r, p, None));
    send(gate.cancel(r, p));
    send(gate.revoke(g, p, None));
    send(gate.revoke_all(p, p, None));
    send(gate.extend(g, p, Duration::minutes(5), None));
    send(gate.acknowledge(g, p, None));
    send(gate.sweep());
    send(gate.deliver_outbox());
    send(gate.read_request(r));
    send(gate.read_grant(g));
    send(gate.pending_for_reviewer(p, page));
    send(gate.active_grants(p, page));
    send(gate.unacknowledged_break_glass(page));
    send(gate.dead_letters(page));
    send(gate.request_audit(r, page));
    send(gate.verify_audit());
    send(gate.export_audit(Vec::new()));
}
