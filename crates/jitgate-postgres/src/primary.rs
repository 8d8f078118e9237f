//! Which server the store writes to: the writable one of its hosts, found again after a
//! failover.
//!
//! The store is given one or more hosts (a primary and its standbys). At connect it tries them
//! in order and keeps the first whose `pg_is_in_recovery()` is false. A watcher task holds a
//! connection of its own to that server and checks it every `primary_check`, and at once when
//! a statement fails for want of a connection or the change feed is lost. When the check fails
//! (the server is gone, or it turned read-only), the store is *unavailable*: the watcher looks
//! through the hosts again, with backoff, and when one is writable points the pool at it
//! (`Pool::set_connect_options`: connections to the old server fail their ping and are
//! replaced). The change feed and the sealer connect through the pool, so they follow.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Weak;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};

/// The first wait between two searches for a writable server; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The hosts, which one is written to, and whether it is reachable.
pub(crate) struct Primary {
    hosts: Vec<PgConnectOptions>,
    current: AtomicUsize,
    available: AtomicBool,
    wake: tokio::sync::Notify,
    switches: AtomicU64,
    connect_timeout: Duration,
}

/// No host accepted writes: what each one answered.
#[derive(Debug, thiserror::Error)]
#[error("no writable PostgreSQL server among {}", .tried.iter().map(|(h, why)| format!("{h} ({why})")).collect::<Vec<_>>().join(", "))]
pub(crate) struct NoWritableServer {
    pub(crate) tried: Vec<(String, String)>,
}

/// Where a host is, for messages: `host:port`.
pub(crate) fn address(o: &PgConnectOptions) -> String {
    format!("{}:{}", o.get_host(), o.get_port())
}

impl Primary {
    pub(crate) fn new(hosts: Vec<PgConnectOptions>, connect_timeout: Duration) -> Self {
        Self {
            hosts,
            current: AtomicUsize::new(0),
            available: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
            switches: AtomicU64::new(0),
            connect_timeout,
        }
    }

    /// Whether the server written to answered its last check.
    pub(crate) fn available(&self) -> bool {
        self.available.load(Ordering::SeqCst)
    }

    /// Something failed for want of a connection: check the server now.
    pub(crate) fn suspect(&self) {
        self.wake.notify_one();
    }

    /// The connect options of the server written to.
    pub(crate) fn current(&self) -> &PgConnectOptions {
        &self.hosts[self.current.load(Ordering::SeqCst)]
    }

    /// How many times the store moved to another server.
    pub(crate) fn switches(&self) -> u64 {
        self.switches.load(Ordering::Relaxed)
    }

    /// Tries the hosts in order, starting with the current one, and returns the first writable
    /// one with a connection to it.
    pub(crate) async fn find(&self) -> Result<(usize, PgConnection), NoWritableServer> {
        let start = self.current.load(Ordering::SeqCst);
        let mut tried = Vec::new();
        for i in (0..self.hosts.len()).map(|k| (start + k) % self.hosts.len()) {
            let host = &self.hosts[i];
            match self.writable(host).await {
                Ok(conn) => return Ok((i, conn)),
                Err(why) => tried.push((address(host), why)),
            }
        }
        Err(NoWritableServer { tried })
    }

    /// A connection to `host` if it accepts writes; else why not.
    async fn writable(&self, host: &PgConnectOptions) -> Result<PgConnection, String> {
        let attempt = async {
            let mut conn = PgConnection::connect_with(host).await.map_err(|e| e.to_string())?;
            match in_recovery(&mut conn).await {
                Ok(false) => Ok(conn),
                Ok(true) => {
                    let _ = conn.close().await;
                    Err("a standby (read-only)".to_owned())
                }
                Err(e) => Err(e.to_string()),
            }
        };
        tokio::time::timeout(self.connect_timeout, attempt)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {:?}", self.connect_timeout)))
    }

    /// Points the store at host `i`, found writable.
    fn settle(&self, i: usize, pool: Option<&PgPool>) {
        let before = self.current.swap(i, Ordering::SeqCst);
        if let Some(pool) = pool {
            pool.set_connect_options(self.hosts[i].clone());
        }
        if before != i {
            self.switches.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(from = %address(&self.hosts[before]), to = %address(&self.hosts[i]), "jitgate's PostgreSQL store moved to another writable server");
        }
        self.available.store(true, Ordering::SeqCst);
    }

    /// The server found at connect (`conn` is the watcher's connection to it).
    pub(crate) fn settled_at(&self, i: usize) {
        self.settle(i, None);
    }
}

async fn in_recovery(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(conn).await
}

/// Watches the server written to until the store is dropped; `conn` is a connection to it.
pub(crate) async fn run_watch(primary: Weak<Primary>, pool: PgPool, every: Duration, conn: PgConnection) {
    let mut conn = Some(conn);
    loop {
        let Some(p) = primary.upgrade() else { return };
        let checked = match conn.as_mut() {
            Some(c) => {
                tokio::select! {
                    _ = p.wake.notified() => {}
                    _ = tokio::time::sleep(every) => {}
                }
                matches!(
                    tokio::time::timeout(p.connect_timeout, in_recovery(c)).await,
                    Ok(Ok(false))
                )
            }
            None => false,
        };
        if checked {
            continue;
        }
        p.available.store(false, Ordering::SeqCst);
        if let Some(c) = conn.take() {
            tracing::warn!(server = %address(p.current()), "jitgate's PostgreSQL server stopped answering or turned read-only; looking for the writable one");
            drop(c);
        }
        drop(p);
        conn = search(&primary, &pool).await;
    }
}

/// Looks for a writable server, with backoff, until one is found (its connection) or the
/// store is dropped (`None`).
async fn search(primary: &Weak<Primary>, pool: &PgPool) -> Option<PgConnection> {
    let mut backoff = FIRST_BACKOFF;
    let mut logged = false;
    loop {
        let p = primary.upgrade()?;
        match p.find().await {
            Ok((i, conn)) => {
                p.settle(i, Some(pool));
                return Some(conn);
            }
            Err(e) => {
                if !logged {
                    tracing::error!(error = %e, "jitgate's PostgreSQL store is unavailable; retrying with backoff");
                    logged = true;
                }
            }
        }
        drop(p);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Whether `e` means the server could not be reached or cannot take writes (as opposed to a
/// statement that failed on a working server): such errors make the store check its server
/// and are reported as [`StoreError::Unavailable`](jitgate_core::StoreError::Unavailable).
pub(crate) fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P01-03: the server is shutting down or starting;
            // 25006: read-only transaction (the server is, or became, a standby).
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "25006")
        }),
        _ => false,
    }
}
