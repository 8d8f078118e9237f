//! `MemoryStore::with_retention`: what a commit closes is queued by the time of that commit,
//! and forgotten once the retention has passed on the times of later commits.

use chrono::{DateTime, Utc};

use super::Inner;
use crate::model::ids::{GrantId, RequestId};
use crate::model::request::RequestState;
use crate::ports::store::Commit;

/// Something a commit closed, to leave memory after the retention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Closed {
    Grant(GrantId),
    Request(RequestId),
}

impl Inner {
    /// Queues what `c` closes, to be forgotten after the retention.
    pub(super) fn note_closed(&mut self, c: &Commit, at: DateTime<Utc>) {
        if let Some(w) = &c.request {
            let r = w.value();
            // An approved request stays while a grant of it lives; its grant's end queues it.
            if r.state.is_closed() && r.state != RequestState::Approved {
                self.closed.insert((at, Closed::Request(r.id)));
            }
        }
        for w in &c.grants {
            let g = w.value();
            if g.state.is_ended() {
                self.closed.insert((at, Closed::Grant(g.id)));
                self.closed.insert((at, Closed::Request(g.request_id)));
            }
        }
    }

    /// Forgets what was closed before `cutoff` and is still closed.
    pub(super) fn forget_closed_before(&mut self, cutoff: DateTime<Utc>) {
        while let Some(&(at, what)) = self.closed.first() {
            if at >= cutoff {
                break;
            }
            self.closed.pop_first();
            match what {
                Closed::Grant(id) => {
                    // A break-glass grant awaiting acknowledgement stays: the acknowledgement
                    // writes it again, and that commit queues it anew.
                    if self.grants.get(&id).is_some_and(|g| g.state.is_ended()) && !self.unacknowledged.contains(&id) {
                        self.grants.remove(&id);
                    }
                }
                Closed::Request(id) => {
                    let Some(r) = self.requests.get(&id) else { continue };
                    // A grant of it that lives, or awaits its acknowledgement, still needs it.
                    let held = self.live.of_principal(&r.principal).any(|g| g.request_id == id)
                        || self
                            .unacknowledged
                            .iter()
                            .any(|g| self.grants.get(g).is_some_and(|g| g.request_id == id));
                    if r.state.is_closed() && !held {
                        if let Some(r) = self.requests.remove(&id) {
                            self.by_principal.remove(&(r.principal, r.created_at, id));
                        }
                    }
                }
            }
        }
    }
}
