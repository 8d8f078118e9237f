//! The in-process index of live grants, kept fresh from the change feed.
//!
//! Every grant row carries `change_seq`, assigned while its commit holds the audit chain-head
//! lock, so `change_seq` order is commit order: "rows with `change_seq > last`" never skips a
//! change that committed earlier. A committing transaction also sends `NOTIFY` with its
//! sequence number; notifications are only wake-up hints. The feed task catches up on every
//! notification and every heartbeat, and rebuilds the cache periodically and after every
//! reconnect. The cache is trusted only while its last successful catch-up is younger than
//! the staleness bound.

use std::collections::HashMap;
use std::sync::{RwLock, Weak};
use std::time::{Duration, Instant};

use jitgate_core::{EntityRef, Grant, GrantId, Scope};
use sqlx::postgres::PgListener;
use sqlx::{PgPool, Row};

use crate::error::CorruptRow;

#[derive(Default)]
struct Index {
    by_key: HashMap<EntityRef, HashMap<Scope, Vec<Grant>>>,
    keys: HashMap<GrantId, (EntityRef, Scope)>,
    last_seq: i64,
    synced_at: Option<Instant>,
}

impl Index {
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
                .push(g);
        }
    }
}

/// The grant cache of one replica.
pub(crate) struct GrantCache {
    index: RwLock<Index>,
    sync: tokio::sync::Mutex<()>,
    staleness_bound: Duration,
}

fn decode(body: serde_json::Value) -> Result<Grant, sqlx::Error> {
    serde_json::from_value(body).map_err(|source| {
        sqlx::Error::Decode(Box::new(CorruptRow {
            what: "grants".into(),
            source,
        }))
    })
}

impl GrantCache {
    pub(crate) fn new(staleness_bound: Duration) -> Self {
        Self {
            index: RwLock::new(Index::default()),
            sync: tokio::sync::Mutex::new(()),
            staleness_bound,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached live grants, or `None` when the cache is not confirmed fresh.
    pub(crate) fn get(&self, principal: &EntityRef, scope: &Scope) -> Option<Vec<Grant>> {
        let index = self.read();
        let fresh = index.synced_at.is_some_and(|t| t.elapsed() <= self.staleness_bound);
        if !fresh {
            return None;
        }
        Some(
            index
                .by_key
                .get(principal)
                .and_then(|m| m.get(scope))
                .cloned()
                .unwrap_or_default(),
        )
    }

    /// Applies every grant change after the last one applied.
    pub(crate) async fn catch_up(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let _one_at_a_time = self.sync.lock().await;
        loop {
            let last = self.read().last_seq;
            let rows =
                sqlx::query("SELECT change_seq, body FROM grants WHERE change_seq > $1 ORDER BY change_seq LIMIT 5000")
                    .bind(last)
                    .fetch_all(pool)
                    .await?;
            let n = rows.len();
            let mut index = self.write();
            for row in rows {
                let seq: i64 = row.try_get("change_seq")?;
                index.apply(decode(row.try_get("body")?)?);
                index.last_seq = index.last_seq.max(seq);
            }
            if n < 5000 {
                index.synced_at = Some(Instant::now());
                return Ok(());
            }
        }
    }

    /// Rebuilds the cache from the live grants, in one snapshot.
    pub(crate) async fn resync(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let _one_at_a_time = self.sync.lock().await;
        let mut tx = pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
        let last: i64 = sqlx::query_scalar("SELECT coalesce(max(change_seq), 0) FROM grants")
            .fetch_one(&mut *tx)
            .await?;
        let rows = sqlx::query("SELECT body FROM grants WHERE state IN ('scheduled', 'active')")
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut fresh = Index {
            last_seq: last,
            ..Index::default()
        };
        for row in rows {
            fresh.apply(decode(row.try_get("body")?)?);
        }
        fresh.synced_at = Some(Instant::now());
        *self.write() = fresh;
        Ok(())
    }
}

/// What the feed task needs.
pub(crate) struct Feed {
    pub(crate) pool: PgPool,
    pub(crate) channel: String,
    pub(crate) heartbeat: Duration,
    pub(crate) resync_every: Duration,
}

/// Keeps `cache` fresh until the store that owns it is dropped.
pub(crate) async fn run_feed(cache: Weak<GrantCache>, feed: Feed) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match follow(&cache, &feed).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(
                error = %e,
                "jitgate grant change feed lost; reconnecting (authorize reads the database once the cache is stale)"
            ),
        }
        if cache.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Listens and catches up until an error (returned) or until the cache is gone (`Ok`).
async fn follow(cache: &Weak<GrantCache>, feed: &Feed) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(&feed.pool).await?;
    listener.listen(&feed.channel).await?;
    match cache.upgrade() {
        Some(c) => c.resync(&feed.pool).await?,
        None => return Ok(()),
    }
    let mut last_resync = Instant::now();
    loop {
        let lost = tokio::select! {
            n = listener.try_recv() => n?.is_none(),
            _ = tokio::time::sleep(feed.heartbeat) => false,
        };
        if lost {
            // Notifications sent while the connection was down are gone: reconnect and resync.
            return Err(sqlx::Error::Protocol("change-feed listener connection lost".into()));
        }
        // One catch-up covers every notification already buffered.
        while listener.next_buffered().is_some() {}
        let Some(c) = cache.upgrade() else { return Ok(()) };
        if last_resync.elapsed() >= feed.resync_every {
            c.resync(&feed.pool).await?;
            last_resync = Instant::now();
        } else {
            c.catch_up(&feed.pool).await?;
        }
    }
}
