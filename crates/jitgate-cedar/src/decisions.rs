//! The decision cache: policy decisions by (principal, scope, context), bounded in entries and
//! in bytes, least recently used first out.

use std::num::NonZeroUsize;

use jitgate_core::PolicyDecision;

use crate::entities::DecisionKey;

/// How big the decision cache may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DecisionLimits {
    pub(crate) entries: NonZeroUsize,
    pub(crate) bytes: usize,
}

/// The default byte bound of the decision cache: 32 MiB.
pub const DEFAULT_DECISION_CACHE_BYTES: usize = 32 << 20;

/// Decisions, least recently used evicted first once either bound is reached.
pub(crate) struct DecisionCache {
    // foldhash (seeded per process): the key's strings are hashed on every call.
    lru: lru::LruCache<DecisionKey, (PolicyDecision, usize), foldhash::fast::RandomState>,
    bytes: usize,
    max_bytes: usize,
}

impl DecisionCache {
    pub(crate) fn new(limits: DecisionLimits) -> Self {
        Self {
            lru: lru::LruCache::with_hasher(limits.entries, foldhash::fast::RandomState::default()),
            bytes: 0,
            max_bytes: limits.bytes,
        }
    }

    pub(crate) fn get(&mut self, key: &DecisionKey) -> Option<&PolicyDecision> {
        self.lru.get(key).map(|(d, _)| d)
    }

    /// Caches `decision`; evicts the least recently used entries until both bounds hold. An
    /// entry larger than the whole byte bound is not cached.
    pub(crate) fn put(&mut self, key: DecisionKey, decision: PolicyDecision) {
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
fn size_of_entry((principal, scope, context): &DecisionKey, decision: &PolicyDecision) -> usize {
    const OVERHEAD: usize = 256;
    let mut bytes = OVERHEAD
        + principal.type_name.len()
        + principal.id.len()
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
    use jitgate_core::{Action, EntityRef};

    fn key(i: usize, blob: usize) -> DecisionKey {
        let a =
            Action::new(EntityRef::new("Action", "a"), EntityRef::new("R", "r")).with_attr("blob", "x".repeat(blob));
        (EntityRef::new("User", format!("u{i}")), a.scope, a.context)
    }

    #[test]
    fn the_cache_holds_both_bounds() {
        let mut c = DecisionCache::new(DecisionLimits {
            entries: NonZeroUsize::new(100).unwrap(),
            bytes: 8 * 1024,
        });
        for i in 0..50 {
            c.put(key(i, 1_000), PolicyDecision::NotEligible);
            let (entries, bytes) = c.usage();
            assert!(bytes <= 8 * 1024, "{bytes} bytes after {i}");
            assert!(entries <= 100);
        }
        let (entries, _) = c.usage();
        assert!(
            (5..=8).contains(&entries),
            "about 8 KiB of 1 KiB entries, got {entries}"
        );
        assert!(c.get(&key(49, 1_000)).is_some(), "the newest stays");
        assert!(c.get(&key(0, 1_000)).is_none(), "the oldest went");
        c.put(key(99, 100_000), PolicyDecision::NotEligible);
        assert!(
            c.get(&key(99, 100_000)).is_none(),
            "an entry larger than the bound is not cached"
        );
        let mut small = DecisionCache::new(DecisionLimits {
            entries: NonZeroUsize::new(3).unwrap(),
            bytes: usize::MAX,
        });
        for i in 0..10 {
            small.put(key(i, 1), PolicyDecision::NotEligible);
        }
        assert_eq!(small.usage().0, 3, "the entry bound still holds");
    }
}
