//! The in-process index of live grants, kept fresh from the change feed.
//!
//! Every grant write records its transaction id (`change_xid`). A catch-up reads, in one
//! snapshot, the rows changed by transactions at or after the last cutoff and the new cutoff:
//! the oldest transaction still running (`pg_snapshot_xmin`). Every transaction below the
//! cutoff has finished and is visible; any other has an id at or above it and is read next
//! time. So no committed change is ever skipped, whatever order transactions commit in (a
//! change may be applied twice, which is harmless: rows hold current state). A committing
//! transaction also sends `NOTIFY`; notifications are wake-up hints only. The feed task
//! catches up on every notification but this replica's own and on every heartbeat, and
//! rebuilds the index periodically and after every reconnect. The index is trusted only while
//! its last successful catch-up is younger than the staleness bound.
//!
//! This replica's own commits go into the index as they commit, without a round trip
//! (read-your-writes), unless two catch-ups began while they committed (then the index
//! catches up). Each grant carries a version: a catch-up whose snapshot predates an own commit never
//! replaces a later version, and the grants seen ending are remembered until a catch-up that
//! began after the end has finished, so an older snapshot cannot bring one back.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use jitgate_core::{EntityRef, Grant, GrantId, Scope};
use serde_json::value::RawValue;
use sqlx::postgres::PgListener;
use sqlx::types::Json;
use sqlx::{PgPool, Row};

use crate::error::CorruptRow;

#[derive(Default)]
struct Index {
    /// Shared with `live_grants`' callers: a cached read copies no grant.
    by_key: HashMap<EntityRef, HashMap<Scope, Vec<Arc<Grant>>>>,
    keys: HashMap<GrantId, (EntityRef, Scope)>,
    /// Grants seen ending: their last version, and the epoch they ended in here. A catch-up
    /// whose snapshot predates the end must not bring one back, nor a late own commit of an
    /// older version; dropped once a catch-up that began an epoch after the end has finished
    /// (see [`GrantCache::apply_own`]).
    ended: HashMap<GrantId, (u64, u64)>,
    /// Catch-ups and resyncs begun so far.
    epoch: u64,
    /// This replica's own commits applied since the running catch-up or resync began: a
    /// resync's snapshot may predate them, so it applies them again.
    own_since: Vec<Grant>,
    /// Transactions below this id have all finished and their changes are applied.
    cutoff: u64,
    synced_at: Option<Instant>,
}

impl Index {
    /// The version of the live grant `id` in the index.
    fn live_version(&self, id: GrantId) -> Option<u64> {
        let (p, s) = self.keys.get(&id)?;
        let grants = self.by_key.get(p)?.get(s)?;
        grants.iter().find(|g| g.id == id).map(|g| g.version)
    }

    /// Applies `g` unless the index holds a later version of it (live, or ended).
    fn apply_newer(&mut self, g: Grant) {
        let seen = self
            .ended
            .get(&g.id)
            .map(|(v, _)| *v)
            .or_else(|| self.live_version(g.id));
        if seen.is_some_and(|v| v > g.version) {
            return;
        }
        if g.state.is_ended() {
            self.ended.insert(g.id, (g.version, self.epoch));
        }
        self.apply(g);
    }

    /// Begins a catch-up or resync: a new epoch, and no own commits since it yet.
    fn begin(&mut self) -> u64 {
        self.epoch += 1;
        self.own_since.clear();
        self.epoch
    }

    /// Becomes `fresh`, a resync's index, with this replica's commits since the resync began
    /// (its snapshot may predate them) applied again.
    fn replace_with(&mut self, mut fresh: Index) {
        for g in std::mem::take(&mut self.own_since) {
            fresh.apply_newer(g);
        }
        fresh.epoch = self.epoch;
        fresh.synced_at = Some(Instant::now());
        *self = fresh;
    }

    /// Ends catch-up `epoch`: the ends seen two epochs before it began are in its snapshot,
    /// and no own commit that could undo them is still applied (see [`GrantCache::apply_own`]).
    fn finish(&mut self, epoch: u64) {
        self.ended.retain(|_, (_, at)| *at + 1 >= epoch);
    }

    fn remove(&mut self, id: GrantId) {
        if let Some((p, s)) = self.keys.remove(&id) {
            if let Some(by_scope) = self.by_key.get_mut(&p) {
                if let Some(v) = by_scope.get_mut(&s) {
                    v.retain(|g| g.id != id);
                    if v.is_empty() {
                        by_scope.remove(&s);
                    }
                }
                if by_scope.is_empty() {
                    self.by_key.remove(&p);
                }
            }
        }
    }

    fn apply(&mut self, g: Grant) {
        self.remove(g.id);
        if !g.state.is_ended() {
            self.keys.insert(g.id, (g.principal.clone(), g.scope.clone()));
            self.by_key
                .entry(g.principal.clone())
                .or_default()
                .entry(g.scope.clone())
                .or_default()
                .push(Arc::new(g));
        }
    }
}

/// The grant cache of one replica.
pub(crate) struct GrantCache {
    index: RwLock<Index>,
    sync: tokio::sync::Mutex<()>,
    staleness_bound: Duration,
    /// Whether the change feed is listening and has caught up since it (re)connected. While
    /// it is not, changes made elsewhere may be missed: the cache answers nothing, and
    /// `authorize` reads the database, until the feed is back and has resynchronised.
    feed_up: std::sync::atomic::AtomicBool,
    /// Set when the catch-up after one of this replica's own commits failed: the feed then
    /// catches up on this replica's own notifications too, until one succeeds.
    own_catch_up_failed: std::sync::atomic::AtomicBool,
    /// Successful catch-ups, for [`PgStore::grant_cache_catch_ups`](crate::PgStore::grant_cache_catch_ups).
    catch_ups: std::sync::atomic::AtomicU64,
}

/// A grant from its row's JSON text (read as `Json<&RawValue>`: no `serde_json::Value` built).
fn decode(Json(body): Json<&RawValue>) -> Result<Grant, sqlx::Error> {
    CorruptRow::parse("grants", body).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

impl GrantCache {
    pub(crate) fn new(staleness_bound: Duration) -> Self {
        Self {
            index: RwLock::new(Index::default()),
            sync: tokio::sync::Mutex::new(()),
            staleness_bound,
            feed_up: std::sync::atomic::AtomicBool::new(false),
            own_catch_up_failed: std::sync::atomic::AtomicBool::new(false),
            catch_ups: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The catch-up after one of this replica's commits failed: the index may miss that
    /// commit, so it is not trusted (`authorize` reads the database) until the next catch-up,
    /// and the feed does not skip this replica's notifications until then.
    pub(crate) fn own_catch_up_failed(&self) {
        self.own_catch_up_failed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.write().synced_at = None;
    }

    /// The feed is down: distrust the cache until [`feed_back`](Self::feed_back).
    pub(crate) fn feed_lost(&self) {
        self.feed_up.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// The feed listens again and the cache has resynchronised since.
    fn feed_back(&self) {
        self.feed_up.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// How long ago the index last caught up with the database (`None`: never yet).
    pub(crate) fn staleness(&self) -> Option<Duration> {
        self.read().synced_at.map(|t| t.elapsed())
    }

    /// Whether the feed is up and the last successful catch-up is within the staleness bound.
    pub(crate) fn is_fresh(&self) -> bool {
        self.feed_up.load(std::sync::atomic::Ordering::SeqCst)
            && self
                .read()
                .synced_at
                .is_some_and(|t| t.elapsed() <= self.staleness_bound)
    }

    /// The cached live grants, or `None` when the cache is not confirmed fresh.
    pub(crate) fn get(&self, principal: &EntityRef, scope: &Scope) -> Option<Vec<Arc<Grant>>> {
        if !self.feed_up.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        self.get_within_bound(principal, scope)
    }

    /// The cached live grants if the last catch-up is within the staleness bound, even with
    /// the feed down: for when the database cannot be read at all (a failover), where the
    /// bound is still the promise.
    pub(crate) fn get_within_bound(&self, principal: &EntityRef, scope: &Scope) -> Option<Vec<Arc<Grant>>> {
        let index = self.read();
        let fresh = index.synced_at.is_some_and(|t| t.elapsed() <= self.staleness_bound);
        fresh.then(|| {
            index
                .by_key
                .get(principal)
                .and_then(|m| m.get(scope))
                .cloned()
                .unwrap_or_default()
        })
    }

    /// Applies every grant change made by transactions at or after the last cutoff, and moves
    /// the cutoff to the oldest transaction still running (see the module docs).
    pub(crate) async fn catch_up(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let _one_at_a_time = self.sync.lock().await;
        let (last, epoch) = {
            let mut index = self.write();
            (index.cutoff, index.begin())
        };
        // One statement, one snapshot: transactions below the new cutoff are all visible;
        // those at or above it are read again next time.
        let rows = sqlx::query(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS cutoff, g.body \
             FROM (SELECT 1) AS one LEFT JOIN grants g ON g.change_xid >= $1::text::xid8",
        )
        .bind(last.to_string())
        .fetch_all(pool)
        .await?;
        let mut index = self.write();
        for row in rows {
            let cutoff: String = row.try_get("cutoff")?;
            index.cutoff = cutoff.parse().unwrap_or(last);
            if let Some(body) = row.try_get::<Option<Json<&RawValue>>, _>("body")? {
                index.apply_newer(decode(body)?);
            }
        }
        index.finish(epoch);
        index.synced_at = Some(Instant::now());
        self.catch_ups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The current epoch, read before a commit, for [`apply_own`](Self::apply_own).
    pub(crate) fn epoch(&self) -> u64 {
        self.read().epoch
    }

    /// Applies the grants this replica just committed (read-your-writes without a round
    /// trip), `epoch` having been read before the commit. A catch-up with an older snapshot,
    /// still running or begun meanwhile, cannot undo them: the index keeps the later version,
    /// and remembers the ends. What could go wrong is this commit applied after a later end of
    /// the same grant was seen and then forgotten; an end is seen after this commit began (the
    /// end's compare-and-swap waited for it) and forgotten only when a catch-up two epochs
    /// later finishes. So with at most one catch-up begun since `epoch` the grants are applied;
    /// with more, `false`: the caller catches up instead.
    pub(crate) fn apply_own(&self, epoch: u64, grants: impl IntoIterator<Item = Grant>) -> bool {
        let mut index = self.write();
        if index.epoch > epoch + 1 {
            return false;
        }
        for g in grants {
            index.own_since.push(g.clone());
            index.apply_newer(g);
        }
        true
    }

    /// How many catch-ups have succeeded.
    pub(crate) fn catch_ups(&self) -> u64 {
        self.catch_ups.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Rebuilds the cache from the live grants, in one snapshot.
    pub(crate) async fn resync(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let _one_at_a_time = self.sync.lock().await;
        self.write().begin();
        let mut tx = pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
        let cutoff: String = sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
            .fetch_one(&mut *tx)
            .await?;
        let rows = sqlx::query("SELECT body FROM grants WHERE state IN ('scheduled', 'active')")
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut fresh = Index {
            cutoff: cutoff.parse().unwrap_or(0),
            ..Index::default()
        };
        for row in rows {
            fresh.apply(decode(row.try_get("body")?)?);
        }
        self.write().replace_with(fresh);
        Ok(())
    }
}

/// What the feed task needs.
pub(crate) struct Feed {
    pub(crate) pool: PgPool,
    pub(crate) channel: String,
    /// This replica's payload on the channel: its own notifications were caught up on at
    /// commit, so the feed skips them.
    pub(crate) origin: String,
    pub(crate) heartbeat: Duration,
    pub(crate) resync_every: Duration,
    /// Told when the feed is lost, so it checks the server at once.
    pub(crate) primary: Weak<crate::primary::Primary>,
}

/// The first wait before reconnecting a lost feed; it doubles while reconnecting fails, up to
/// [`MAX_BACKOFF`], and starts over once a connection has caught up.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Keeps `cache` fresh until the store that owns it is dropped.
pub(crate) async fn run_feed(cache: Weak<GrantCache>, feed: Feed) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let mut healthy = false;
        let result = follow(&cache, &feed, &mut healthy).await;
        if let Some(c) = cache.upgrade() {
            c.feed_lost();
        }
        if let Some(p) = feed.primary.upgrade() {
            p.suspect();
        }
        match result {
            Ok(()) => return,
            Err(e) => tracing::warn!(
                error = %e,
                "jitgate grant change feed lost; reconnecting (authorize reads the database until it has caught up)"
            ),
        }
        if cache.strong_count() == 0 {
            return;
        }
        // A connection that listened and caught up was healthy: a later loss is a new
        // incident, not one more failure in a row.
        if healthy {
            backoff = FIRST_BACKOFF;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Listens and catches up until an error (returned) or until the cache is gone (`Ok`).
/// `healthy` is set once the connection listens and has caught up.
async fn follow(cache: &Weak<GrantCache>, feed: &Feed, healthy: &mut bool) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(&feed.pool).await?;
    listener.listen(&feed.channel).await?;
    match cache.upgrade() {
        Some(c) => {
            c.resync(&feed.pool).await?;
            c.feed_back();
        }
        None => return Ok(()),
    }
    *healthy = true;
    let mut last_resync = Instant::now();
    loop {
        // `None`: the heartbeat; `Some(foreign)`: a notification, from another replica or not.
        let woken = tokio::select! {
            n = listener.try_recv() => match n? {
                Some(n) => Some(n.payload() != feed.origin),
                // Notifications sent while the connection was down are gone: reconnect and resync.
                None => return Err(sqlx::Error::Protocol("change-feed listener connection lost".into())),
            },
            _ = tokio::time::sleep(feed.heartbeat) => None,
        };
        // One catch-up covers every notification already buffered.
        let mut foreign = woken.unwrap_or(false);
        while let Some(n) = listener.next_buffered() {
            foreign |= n.payload() != feed.origin;
        }
        let Some(c) = cache.upgrade() else { return Ok(()) };
        let own_failed = c.own_catch_up_failed.swap(false, std::sync::atomic::Ordering::SeqCst);
        if woken.is_some() && !foreign && !own_failed {
            // Only this replica's own commits, each caught up on as it committed: the database
            // has nothing new for this index (a heartbeat still checks).
            continue;
        }
        if last_resync.elapsed() >= feed.resync_every {
            c.resync(&feed.pool).await?;
            last_resync = Instant::now();
        } else {
            c.catch_up(&feed.pool).await?;
        }
    }
}

#[cfg(test)]
mod tests;
