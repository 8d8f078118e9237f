//! The grant cache's version guard, remembered ends and own-commit application, without a
//! database.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use jitgate_core::machine;
use jitgate_core::{Flow, GrantId, GrantState, RequestId};
use jitgate_testkit::fixtures::{ask, restart};

use super::*;

/// A live grant of sam's on `db`, at version 1.
fn grant(db: &str) -> Grant {
    let flow = Arc::new(Flow::new(Duration::hours(1)).with_auto_approve(true));
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let (_, grant) = machine::open(
        RequestId::new_random(),
        GrantId::new_random(),
        ask(restart(db), 30),
        &flow,
        None,
        t0,
    )
    .expect("open")
    .outcome;
    grant.expect("auto-approved")
}

fn next(g: &Grant, state: GrantState) -> Grant {
    let mut n = g.clone();
    n.version += 1;
    n.state = state;
    n
}

fn live(cache: &GrantCache, g: &Grant) -> Vec<u64> {
    let index = cache.read();
    let found = index.by_key.get(&g.principal).and_then(|m| m.get(&g.scope));
    found.into_iter().flatten().map(|g| g.version).collect()
}

#[test]
fn a_catch_up_older_than_an_own_commit_does_not_undo_it() {
    let cache = GrantCache::new(std::time::Duration::from_secs(5));
    let g = grant("orders");
    // A catch-up begins (its snapshot taken before the commits below)...
    let epoch = cache.write().begin();
    // ...this replica commits version 1, then revokes it (version 2).
    assert!(cache.apply_own(epoch, [g.clone()]));
    assert_eq!(live(&cache, &g), vec![g.version]);
    let revoked = next(&g, GrantState::Revoked);
    assert!(cache.apply_own(epoch, [revoked.clone()]));
    assert!(live(&cache, &g).is_empty());
    // ...and the catch-up ends with what its older snapshot saw: version 1, live.
    {
        let mut index = cache.write();
        index.apply_newer(g.clone());
        index.finish(epoch);
    }
    assert!(live(&cache, &g).is_empty(), "the revocation stays");
    // The end is remembered through the next catch-up, and dropped by the one after.
    for (n, remembered) in [(1, true), (2, false)] {
        let later = cache.write().begin();
        cache.write().finish(later);
        assert_eq!(!cache.read().ended.is_empty(), remembered, "catch-up {n} after");
    }
}

#[test]
fn an_own_commit_two_catch_ups_began_during_is_left_to_a_catch_up() {
    let cache = GrantCache::new(std::time::Duration::from_secs(5));
    let before = cache.epoch();
    cache.write().begin();
    assert!(cache.apply_own(before, [grant("one")]), "one catch-up began: applied");
    cache.write().begin();
    assert!(
        !cache.apply_own(before, [grant("two")]),
        "two: the caller catches up instead"
    );
    assert_eq!(cache.read().keys.len(), 1);
}

#[test]
fn a_late_own_commit_does_not_bring_back_a_grant_ended_since() {
    let cache = GrantCache::new(std::time::Duration::from_secs(5));
    let g = grant("orders");
    let before = cache.epoch();
    // Another replica revoked it after this commit; a catch-up saw the end.
    let epoch = cache.write().begin();
    cache.write().apply_newer(next(&g, GrantState::Revoked));
    cache.write().finish(epoch);
    // This replica's apply of version 1 comes late: the end is still remembered.
    assert!(cache.apply_own(before, [g.clone()]));
    assert!(live(&cache, &g).is_empty());
}

#[test]
fn a_resync_applies_the_own_commits_its_snapshot_may_predate() {
    let cache = GrantCache::new(std::time::Duration::from_secs(5));
    let (kept, mine) = (grant("kept"), grant("mine"));
    let epoch = cache.write().begin();
    assert!(cache.apply_own(epoch, [mine.clone()]));
    // The resync's snapshot held only `kept`.
    let mut fresh = Index {
        epoch,
        ..Index::default()
    };
    fresh.apply(kept.clone());
    cache.write().replace_with(fresh);
    assert_eq!(live(&cache, &kept), vec![1]);
    assert_eq!(live(&cache, &mine), vec![1], "the own commit survives the resync");
}
