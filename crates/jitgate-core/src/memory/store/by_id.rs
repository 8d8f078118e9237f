//! The in-memory store's tables of requests and grants: each value found by the id it holds,
//! so a slot is one pointer (8 bytes) rather than the id beside a pointer.

use std::hash::{BuildHasher, Hash};
use std::ops::Deref;

use hashbrown::HashTable;

use crate::model::grant::Grant;
use crate::model::ids::{GrantId, RequestId};
use crate::model::request::AccessRequest;

use super::live::Fast;

/// A value with an id of its own.
pub(super) trait Keyed {
    /// Its id's type.
    type Id: Hash + Eq + Copy;
    /// Its id.
    fn key(&self) -> Self::Id;
}

impl Keyed for AccessRequest {
    type Id = RequestId;
    fn key(&self) -> RequestId {
        self.id
    }
}

impl Keyed for Grant {
    type Id = GrantId;
    fn key(&self) -> GrantId {
        self.id
    }
}

/// Pointers `P` to values found by their ids.
#[derive(Debug)]
pub(super) struct ById<P> {
    table: HashTable<P>,
    hasher: Fast,
}

impl<P> Default for ById<P> {
    fn default() -> Self {
        Self {
            table: HashTable::new(),
            hasher: Fast::default(),
        }
    }
}

impl<P: Deref<Target: Keyed>> ById<P> {
    fn hash(&self, id: &<P::Target as Keyed>::Id) -> u64 {
        self.hasher.hash_one(id)
    }

    /// The value with id `id`.
    pub(super) fn get(&self, id: &<P::Target as Keyed>::Id) -> Option<&P> {
        self.table.find(self.hash(id), |p| p.key() == *id)
    }

    /// Whether a value has id `id`.
    pub(super) fn contains_key(&self, id: &<P::Target as Keyed>::Id) -> bool {
        self.get(id).is_some()
    }

    /// Takes out the value with id `id`.
    pub(super) fn remove(&mut self, id: &<P::Target as Keyed>::Id) -> Option<P> {
        let hash = self.hash(id);
        self.table
            .find_entry(hash, |p| p.key() == *id)
            .ok()
            .map(|e| e.remove().0)
    }

    /// Puts `value` in, in place of the value with its id if there is one.
    pub(super) fn insert(&mut self, value: P) {
        let id = value.key();
        let hash = self.hash(&id);
        let hasher = &self.hasher;
        match self.table.entry(hash, |p| p.key() == id, |p| hasher.hash_one(p.key())) {
            hashbrown::hash_table::Entry::Occupied(mut e) => *e.get_mut() = value,
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(value);
            }
        }
    }

    /// How many values it holds.
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }
}
