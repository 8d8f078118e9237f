//! The decision cache: policy decisions by (who — the principal, or its class where the
//! action's policies cannot tell the class's members apart —, scope, the context attributes
//! the action's policies read), bounded in entries and in bytes, least recently used first out.
//!
//! A hit builds no key: the call's principal, scope and context are hashed and compared where
//! they are ([`Lookup`]), so nothing is copied, allocated or freed to find a decision.

use std::borrow::Borrow;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::num::NonZeroUsize;

use jitgate_core::{Attributes, EntityRef, PolicyDecision, Scope};

use crate::context_reads::ContextView;
use crate::slice::ClassId;

/// How big the decision cache may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DecisionLimits {
    pub(crate) entries: NonZeroUsize,
    pub(crate) bytes: usize,
}

/// The default byte bound of the decision cache: 32 MiB.
pub const DEFAULT_DECISION_CACHE_BYTES: usize = 32 << 20;

/// Whose decision it is: one principal's, or that of every principal of a class of the
/// snapshot (when the action's policies cannot tell them apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Who<'a> {
    /// This principal only.
    Principal(&'a EntityRef),
    /// Every principal of this class.
    Class(ClassId),
}

/// [`Who`], owned.
#[derive(Debug)]
enum WhoOwned {
    Principal(EntityRef),
    Class(ClassId),
}

/// What a cached decision depends on, owned: who, the scope and the context attributes read,
/// with their hash computed once.
#[derive(Debug)]
pub(crate) struct DecisionKey {
    hash: u64,
    who: WhoOwned,
    scope: Scope,
    context: Attributes,
}

/// What a call's decision depends on, borrowed from the call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lookup<'a> {
    hash: u64,
    who: Who<'a>,
    scope: &'a Scope,
    context: ContextView<'a>,
}

/// The parts of a key, owned or borrowed: what the cache hashes and compares.
pub(crate) trait KeyParts {
    /// The key's hash (computed once, by the cache's hasher).
    fn hash64(&self) -> u64;
    /// Who, the scope and the context attributes read.
    fn parts(&self) -> (Who<'_>, &Scope, ContextView<'_>);
}

impl KeyParts for DecisionKey {
    fn hash64(&self) -> u64 {
        self.hash
    }
    fn parts(&self) -> (Who<'_>, &Scope, ContextView<'_>) {
        let who = match &self.who {
            WhoOwned::Principal(p) => Who::Principal(p),
            WhoOwned::Class(c) => Who::Class(*c),
        };
        (who, &self.scope, ContextView::whole(&self.context))
    }
}

impl KeyParts for Lookup<'_> {
    fn hash64(&self) -> u64 {
        self.hash
    }
    fn parts(&self) -> (Who<'_>, &Scope, ContextView<'_>) {
        (self.who, self.scope, self.context)
    }
}

impl Hash for dyn KeyParts + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash64());
    }
}

impl PartialEq for dyn KeyParts + '_ {
    fn eq(&self, other: &Self) -> bool {
        if self.hash64() != other.hash64() {
            return false;
        }
        let ((p, s, c), (op, os, oc)) = (self.parts(), other.parts());
        if p != op || s != os {
            return false;
        }
        let (mut a, mut b) = (c.pairs(), oc.pairs());
        loop {
            match (a.next(), b.next()) {
                (None, None) => return true,
                (Some(x), Some(y)) if x == y => {}
                _ => return false,
            }
        }
    }
}

impl Eq for dyn KeyParts + '_ {}

impl<'a> Borrow<dyn KeyParts + 'a> for DecisionKey {
    fn borrow(&self) -> &(dyn KeyParts + 'a) {
        self
    }
}

impl Hash for DecisionKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self as &dyn KeyParts).hash(state);
    }
}

impl PartialEq for DecisionKey {
    fn eq(&self, other: &Self) -> bool {
        (self as &dyn KeyParts) == (other as &dyn KeyParts)
    }
}

impl Eq for DecisionKey {}

/// Passes a key's precomputed hash through (the keys are hashed by [`DecisionCache::hasher`]).
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is ever called by the keys; fold anything else in all the same.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Decisions, least recently used evicted first once either bound is reached.
pub(crate) struct DecisionCache {
    lru: lru::LruCache<DecisionKey, (PolicyDecision, usize), BuildHasherDefault<PassThrough>>,
    // foldhash (seeded per process): the key's strings are hashed on every call.
    hasher: foldhash::fast::RandomState,
    bytes: usize,
    max_bytes: usize,
}

impl DecisionCache {
    pub(crate) fn new(limits: DecisionLimits) -> Self {
        Self {
            lru: lru::LruCache::with_hasher(limits.entries, BuildHasherDefault::default()),
            hasher: foldhash::fast::RandomState::default(),
            bytes: 0,
            max_bytes: limits.bytes,
        }
    }

    fn hash(&self, who: Who<'_>, scope: &Scope, context: ContextView<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        who.hash(&mut h);
        scope.hash(&mut h);
        for (name, value) in context.pairs() {
            name.hash(&mut h);
            value.hash(&mut h);
        }
        h.finish()
    }

    /// The key of a call, borrowed from it.
    pub(crate) fn lookup<'a>(&self, who: Who<'a>, scope: &'a Scope, context: ContextView<'a>) -> Lookup<'a> {
        Lookup {
            hash: self.hash(who, scope, context),
            who,
            scope,
            context,
        }
    }

    pub(crate) fn get(&mut self, key: &Lookup<'_>) -> Option<&PolicyDecision> {
        self.lru.get(key as &dyn KeyParts).map(|(d, _)| d)
    }

    /// Caches `decision` for the call `key` was looked up for; evicts the least recently used
    /// entries until both bounds hold. An entry larger than the whole byte bound is not cached.
    pub(crate) fn put(&mut self, key: &Lookup<'_>, decision: PolicyDecision) {
        let key = DecisionKey {
            hash: key.hash,
            who: match key.who {
                Who::Principal(p) => WhoOwned::Principal(p.clone()),
                Who::Class(c) => WhoOwned::Class(c),
            },
            scope: key.scope.clone(),
            context: key.context.pairs().map(|(k, v)| (k.clone(), v.clone())).collect(),
        };
        let size = size_of_entry(&key, &decision);
        if size > self.max_bytes {
            return;
        }
        if let Some((_, (_, old))) = self.lru.push(key, (decision, size)) {
            self.bytes -= old;
        }
        self.bytes += size;
        while self.bytes > self.max_bytes {
            match self.lru.pop_lru() {
                Some((_, (_, old))) => self.bytes -= old,
                None => break,
            }
        }
    }

    /// Entries and their estimated bytes.
    pub(crate) fn usage(&self) -> (usize, usize) {
        (self.lru.len(), self.bytes)
    }
}

/// An estimate of an entry's heap and inline size: its strings, its attribute values, and a
/// fixed overhead per entry (computed without recursion).
fn size_of_entry(
    DecisionKey {
        who, scope, context, ..
    }: &DecisionKey,
    decision: &PolicyDecision,
) -> usize {
    const OVERHEAD: usize = 256;
    let principal = match who {
        WhoOwned::Principal(p) => p.type_name.len() + p.id.len(),
        WhoOwned::Class(_) => 0,
    };
    let mut bytes = OVERHEAD
        + principal
        + scope.action.type_name.len()
        + scope.action.id.len()
        + scope.resource.type_name.len()
        + scope.resource.id.len();
    bytes += crate::convert::context_bytes(context);
    bytes
        + match decision {
            PolicyDecision::Standing { policy_ids } | PolicyDecision::Forbidden { policy_ids } => {
                policy_ids.iter().map(|p| p.len() + 24).sum()
            }
            _ => 16,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context_reads::ContextReads;
    use jitgate_core::{Action, EntityRef};

    fn call(i: usize, blob: usize) -> (EntityRef, Action) {
        let a =
            Action::new(EntityRef::new("Action", "a"), EntityRef::new("R", "r")).with_attr("blob", "x".repeat(blob));
        (EntityRef::new("User", format!("u{i}")), a)
    }

    fn put(c: &mut DecisionCache, (p, a): &(EntityRef, Action)) {
        let key = c.lookup(Who::Principal(p), &a.scope, ContextView::whole(&a.context));
        c.put(&key, PolicyDecision::NotEligible);
    }

    fn has(c: &mut DecisionCache, (p, a): &(EntityRef, Action)) -> bool {
        let key = c.lookup(Who::Principal(p), &a.scope, ContextView::whole(&a.context));
        c.get(&key).is_some()
    }

    #[test]
    fn the_cache_holds_both_bounds() {
        let mut c = DecisionCache::new(DecisionLimits {
            entries: NonZeroUsize::new(100).unwrap(),
            bytes: 8 * 1024,
        });
        for i in 0..50 {
            put(&mut c, &call(i, 1_000));
            let (entries, bytes) = c.usage();
            assert!(bytes <= 8 * 1024, "{bytes} bytes after {i}");
            assert!(entries <= 100);
        }
        let (entries, _) = c.usage();
        assert!(
            (5..=8).contains(&entries),
            "about 8 KiB of 1 KiB entries, got {entries}"
        );
        assert!(has(&mut c, &call(49, 1_000)), "the newest stays");
        assert!(!has(&mut c, &call(0, 1_000)), "the oldest went");
        put(&mut c, &call(99, 100_000));
        assert!(
            !has(&mut c, &call(99, 100_000)),
            "an entry larger than the bound is not cached"
        );
        let mut small = DecisionCache::new(DecisionLimits {
            entries: NonZeroUsize::new(3).unwrap(),
            bytes: usize::MAX,
        });
        for i in 0..10 {
            put(&mut small, &call(i, 1));
        }
        assert_eq!(small.usage().0, 3, "the entry bound still holds");
    }

    #[test]
    fn a_hit_needs_the_same_principal_scope_and_read_attributes_only() {
        let mut c = DecisionCache::new(DecisionLimits {
            entries: NonZeroUsize::new(100).unwrap(),
            bytes: usize::MAX,
        });
        let reads = ContextReads::Only(["ip".to_owned()].into());
        let principal = EntityRef::new("User", "u1");
        let call = |ip: &str, ticket: &str| {
            Action::new(EntityRef::new("Action", "a"), EntityRef::new("R", "r"))
                .with_attr("ip", ip)
                .with_attr("ticket", ticket)
        };
        let first = call("10.0.0.1", "T-1");
        let key = c.lookup(Who::Principal(&principal), &first.scope, reads.view(&first.context));
        c.put(&key, PolicyDecision::NotEligible);
        let mut hit = |p: &EntityRef, a: &Action| {
            let key = c.lookup(Who::Principal(p), &a.scope, reads.view(&a.context));
            c.get(&key).is_some()
        };
        assert!(
            hit(&principal, &call("10.0.0.1", "T-2")),
            "an unread ticket does not miss"
        );
        assert!(!hit(&principal, &call("10.0.0.2", "T-1")), "a read attribute does");
        assert!(!hit(&EntityRef::new("User", "u2"), &first), "another principal does");
        let other_resource =
            Action::new(EntityRef::new("Action", "a"), EntityRef::new("R", "s")).with_attr("ip", "10.0.0.1");
        assert!(!hit(&principal, &other_resource), "another resource does");
        let mut without = first.clone();
        without.context.remove("ip");
        assert!(!hit(&principal, &without), "a read attribute's absence does");
    }
}
