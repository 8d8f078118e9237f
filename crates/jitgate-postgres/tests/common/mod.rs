//! Shared set-up: a throw-away schema per test on the PostgreSQL named by
//! `JITGATE_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//!
//! Without a reachable database the tests are skipped with a message, unless
//! `JITGATE_REQUIRE_POSTGRES` or `CI` is set, in which case they fail.

#![allow(dead_code)]

pub mod cluster;
pub mod replicas;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use jitgate_postgres::{PgStore, PgStoreOptions};

pub const URL_VAR: &str = "JITGATE_TEST_DATABASE_URL";

pub fn url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn required() -> bool {
    std::env::var_os("JITGATE_REQUIRE_POSTGRES").is_some() || std::env::var_os("CI").is_some()
}

pub fn fresh_schema() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "jitgate_t_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        uuid::Uuid::new_v4().simple()
    )[..40]
        .to_owned()
}

pub fn options(schema: &str) -> PgStoreOptions {
    PgStoreOptions::new(&url()).schema(schema).max_connections(8)
}

/// A migrated store in a fresh schema that is dropped with it; `None` (with a message) when
/// PostgreSQL is unreachable and not required.
pub async fn store() -> Option<PgStore> {
    store_with(|o| o).await
}

/// As [`store`], with adjusted options.
pub async fn store_with(adjust: impl FnOnce(PgStoreOptions) -> PgStoreOptions) -> Option<PgStore> {
    let store = unmigrated(adjust).await?;
    store.migrate().await.expect("migrations apply");
    Some(store)
}

/// A store connected to a fresh, empty schema (dropped with it), not migrated.
pub async fn unmigrated(adjust: impl FnOnce(PgStoreOptions) -> PgStoreOptions) -> Option<PgStore> {
    if let Some(why) = unreachable().await {
        if required() {
            panic!(
                "PostgreSQL at {} is required here (JITGATE_REQUIRE_POSTGRES or CI is set): {why}",
                url()
            );
        }
        return skip(&why);
    }
    // Tests in one binary share the database, and a test may hold a transaction open in it
    // (which holds sealing back for every schema): reads wait for it longer than the default.
    let opts = adjust(
        options(&fresh_schema())
            .ephemeral(true)
            .seal_wait(Duration::from_secs(10)),
    );
    Some(PgStore::connect(opts).await.expect("PostgreSQL answered a moment ago"))
}

/// Why the database cannot be used (checked once per test binary, with one quick attempt).
async fn unreachable() -> Option<String> {
    static CHECK: tokio::sync::OnceCell<Option<String>> = tokio::sync::OnceCell::const_new();
    CHECK
        .get_or_init(|| async {
            use sqlx::Connection;
            match tokio::time::timeout(Duration::from_secs(3), sqlx::PgConnection::connect(&url())).await {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    None
                }
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some("connection timed out".into()),
            }
        })
        .await
        .clone()
}

/// Another replica on the same schema (not ephemeral: the first store owns the schema).
pub async fn replica(of: &PgStore) -> PgStore {
    let store = PgStore::connect(options(of.schema()))
        .await
        .expect("second replica connects");
    store.migrate().await.expect("migrate is idempotent");
    store
}

fn skip<T>(why: &str) -> Option<T> {
    use std::io::Write;
    // Straight to the process's stderr: the test harness captures eprintln! of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {}: PostgreSQL test, no database at {} ({why}). Set {URL_VAR} to a PostgreSQL URL to run it; \
         JITGATE_REQUIRE_POSTGRES=1 makes this a failure.",
        std::thread::current().name().unwrap_or("test"),
        url()
    );
    None
}
