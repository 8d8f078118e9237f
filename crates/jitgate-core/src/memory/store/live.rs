//! The live grants of the in-memory store: found by principal and scope on every `authorize`,
//! and by principal for listings and retention. Two hash tables of the stored grants (a
//! pointer each), not a map of maps per principal: an index entry costs a few bytes whatever
//! the number of principals.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use crate::model::entity::{EntityRef, Scope};
use crate::model::grant::Grant;

/// The hasher of the keys `authorize` looks up (foldhash, seeded per process: it hashes the
/// strings of a key several times faster than the default).
pub(super) type Fast = foldhash::fast::RandomState;

/// The live (scheduled or active) grants, shared with the store's table of grants.
#[derive(Default, Debug)]
pub(super) struct LiveIndex {
    /// By (principal, scope); grants of one key sit side by side under one hash.
    by_scope: HashTable<Arc<Grant>>,
    /// By principal.
    by_principal: HashTable<Arc<Grant>>,
    hasher: Fast,
}

impl LiveIndex {
    fn scope_hash(&self, principal: &EntityRef, scope: &Scope) -> u64 {
        self.hasher.hash_one((principal, scope))
    }

    fn principal_hash(&self, principal: &EntityRef) -> u64 {
        self.hasher.hash_one(principal)
    }

    /// Indexes `g` (a live grant not indexed yet).
    pub(super) fn insert(&mut self, g: &Arc<Grant>) {
        let hasher = &self.hasher;
        self.by_scope
            .insert_unique(self.hasher.hash_one((&g.principal, &g.scope)), Arc::clone(g), |g| {
                hasher.hash_one((&g.principal, &g.scope))
            });
        self.by_principal
            .insert_unique(self.principal_hash(&g.principal), Arc::clone(g), |g| {
                hasher.hash_one(&g.principal)
            });
    }

    /// Drops `g` (by id) from the index, if it is there.
    pub(super) fn remove(&mut self, g: &Grant) {
        let hash = self.scope_hash(&g.principal, &g.scope);
        if let Ok(entry) = self.by_scope.find_entry(hash, |x| x.id == g.id) {
            entry.remove();
        }
        let hash = self.principal_hash(&g.principal);
        if let Ok(entry) = self.by_principal.find_entry(hash, |x| x.id == g.id) {
            entry.remove();
        }
    }

    /// The live grants of `principal` on `scope`.
    pub(super) fn of<'a>(&'a self, principal: &'a EntityRef, scope: &'a Scope) -> impl Iterator<Item = &'a Arc<Grant>> {
        self.by_scope
            .iter_hash(self.scope_hash(principal, scope))
            .filter(move |g| g.principal == *principal && g.scope == *scope)
    }

    /// The live grants of `principal`, in no order.
    pub(super) fn of_principal<'a>(&'a self, principal: &'a EntityRef) -> impl Iterator<Item = &'a Arc<Grant>> {
        self.by_principal
            .iter_hash(self.principal_hash(principal))
            .filter(move |g| g.principal == *principal)
    }

    /// Every live grant, in no order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Arc<Grant>> {
        self.by_principal.iter()
    }
}
