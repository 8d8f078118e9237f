//! Where Cedar's recursive work runs: a thread of its own with a deep stack, awaited without
//! blocking the caller's thread; and the depth checks that keep what is accepted within it.

use std::collections::HashMap;
use std::hash::Hash;

use crate::CedarError;

/// The stack of the loader thread. Cedar's parser and its transitive closure of the entity
/// hierarchy recurse; the checks below keep accepted input well within this.
pub(crate) const LOADER_STACK: usize = 256 << 20;

/// The longest chain of groups an entity may sit under (user → team → department → …). Real
/// organisations nest a handful of levels; Cedar stores every entity's ancestors, so a chain
/// of n levels costs n²/2 pairs.
pub const MAX_HIERARCHY_DEPTH: usize = 256;

fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> std::io::Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new()
        .name("jitgate-cedar-loader".into())
        .stack_size(LOADER_STACK)
        .spawn(f)
}

fn stopped() -> CedarError {
    CedarError::Io {
        path: "<the policy loader thread>".into(),
        source: std::io::Error::other("the policy loader stopped before answering"),
    }
}

fn spawn_failed(source: std::io::Error) -> CedarError {
    CedarError::Io {
        path: "<the policy loader thread>".into(),
        source,
    }
}

/// Runs `f` on the loader thread and awaits it without blocking the caller's thread.
pub(crate) async fn on_loader_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CedarError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    spawn(move || {
        let _ = tx.send(f());
    })
    .map_err(spawn_failed)?;
    rx.await.map_err(|_| stopped())
}

/// Runs `f` on the loader thread and waits for it (for synchronous callers).
pub(crate) fn on_loader_thread_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CedarError> {
    spawn(f).map_err(spawn_failed)?.join().map_err(|_| stopped())
}

/// The longest chain of parents above any entity, and an entity at its bottom; computed
/// without recursion. A cycle counts once around (Cedar refuses cycles itself).
pub(crate) fn hierarchy_depth<K: Clone + Eq + Hash>(parents: &HashMap<K, Vec<K>>) -> (usize, Option<K>) {
    let mut depth: HashMap<&K, usize> = HashMap::new();
    let mut deepest = (0, None);
    for start in parents.keys() {
        // Post-order walk: a node's depth is 1 + the deepest of its parents.
        let mut stack: Vec<(&K, bool)> = vec![(start, false)];
        let mut on_path: std::collections::HashSet<&K> = std::collections::HashSet::new();
        while let Some((node, expanded)) = stack.pop() {
            if depth.contains_key(node) {
                continue;
            }
            let ups = parents.get(node).map(Vec::as_slice).unwrap_or_default();
            if expanded {
                on_path.remove(node);
                let d = 1 + ups.iter().filter_map(|p| depth.get(p)).max().copied().unwrap_or(0);
                depth.insert(node, d);
                continue;
            }
            on_path.insert(node);
            stack.push((node, true));
            for p in ups {
                if !depth.contains_key(p) && !on_path.contains(p) {
                    stack.push((p, false));
                }
            }
        }
        let d = depth.get(start).copied().unwrap_or(0);
        if d > deepest.0 {
            deepest = (d, Some(start.clone()));
        }
    }
    deepest
}

/// [`CedarError::Entities`] if the hierarchy is deeper than [`MAX_HIERARCHY_DEPTH`].
pub(crate) fn check_hierarchy<K: Clone + Eq + Hash + std::fmt::Display>(
    parents: &HashMap<K, Vec<K>>,
) -> Result<(), CedarError> {
    match hierarchy_depth(parents) {
        (d, Some(bottom)) if d > MAX_HIERARCHY_DEPTH => Err(CedarError::Entities {
            message: format!(
                "the entity hierarchy is {d} levels deep under {bottom}, over the limit of {MAX_HIERARCHY_DEPTH}"
            ),
            source: None,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_the_longest_chain_without_recursion_and_survives_cycles() {
        let mut p: HashMap<u32, Vec<u32>> = HashMap::new();
        for i in 0..200_000u32 {
            p.insert(i, vec![i + 1]);
        }
        p.insert(7, vec![8, 199_999]);
        assert_eq!(hierarchy_depth(&p).0, 200_001);
        let cycle: HashMap<u32, Vec<u32>> = HashMap::from([(1, vec![2]), (2, vec![1])]);
        assert!(hierarchy_depth(&cycle).0 <= 2);
    }
}
