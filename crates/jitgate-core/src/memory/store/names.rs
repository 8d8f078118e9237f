//! One copy of each entity name the in-memory store holds: the type names of principals, and
//! the actions and resources of scopes, are shared by every request and grant that names them
//! (a service asks for the same few actions on the same resources all day). Names nobody
//! holds any more are swept as the table grows.

use std::collections::HashSet;
use std::sync::Arc;

use crate::model::entity::{EntityRef, Scope};
use crate::model::grant::Grant;
use crate::model::request::AccessRequest;

use super::live::Fast;

/// The shared names.
#[derive(Default, Debug)]
pub(super) struct Names {
    names: HashSet<Arc<str>, Fast>,
    /// The table's size after the last sweep.
    swept_at: usize,
}

impl Names {
    /// Points `name` at the shared copy of its text (which it becomes if there is none).
    fn share(&mut self, name: &mut Arc<str>) {
        if let Some(shared) = self.names.get(&**name) {
            *name = Arc::clone(shared);
            return;
        }
        if self.names.len() >= 2 * self.swept_at + 1_024 {
            // Only the table holds these: nothing names them any more.
            self.names.retain(|n| Arc::strong_count(n) > 1);
            self.swept_at = self.names.len();
        }
        self.names.insert(Arc::clone(name));
    }

    fn entity(&mut self, e: &mut EntityRef) {
        self.share(&mut e.type_name);
        self.share(&mut e.id);
    }

    fn scope(&mut self, s: &mut Scope) {
        self.entity(&mut s.action);
        self.entity(&mut s.resource);
    }

    /// Shares the names of `r`'s principal type and scope.
    pub(super) fn request(&mut self, r: &mut AccessRequest) {
        self.share(&mut r.principal.type_name);
        self.scope(&mut r.action.scope);
    }

    /// Shares the names of `g`'s principal type and scope.
    pub(super) fn grant(&mut self, g: &mut Grant) {
        self.share(&mut g.principal.type_name);
        self.scope(&mut g.scope);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_names_share_one_copy_and_names_nobody_holds_are_swept() {
        let mut names = Names::default();
        let mut a: Arc<str> = Arc::from("orders-db");
        let mut b: Arc<str> = Arc::from("orders-db");
        names.share(&mut a);
        names.share(&mut b);
        assert!(Arc::ptr_eq(&a, &b), "one copy");
        let held: Arc<str> = Arc::from("held");
        names.share(&mut held.clone());
        let mut kept = Arc::clone(&held);
        names.share(&mut kept);
        drop((a, b));
        for i in 0..3_000 {
            names.share(&mut Arc::from(format!("name{i}")));
        }
        assert!(names.names.len() < 1_100, "swept as it grew: {}", names.names.len());
        assert!(!names.names.contains("orders-db"), "nobody holds it any more");
        assert!(names.names.contains("held"), "still named by a value");
    }
}
