//! Errors of setting up the PostgreSQL store.

use jitgate_core::StoreError;

/// Connecting, configuring or migrating failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The connection URL could not be parsed.
    #[error("invalid PostgreSQL URL")]
    InvalidUrl(#[source] sqlx::Error),
    /// The schema name is not a plain lower-case SQL identifier.
    #[error("schema name `{name}` is invalid: use 1 to 63 of a-z, 0-9 and _, not starting with a digit")]
    InvalidSchemaName {
        /// The name given.
        name: String,
    },
    /// Several options are invalid: every problem.
    #[error("invalid PostgreSQL store options: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidOptions {
        /// Each problem.
        problems: Vec<PgError>,
    },
    /// The database could not be reached.
    #[error("cannot connect to PostgreSQL")]
    Connect(#[source] sqlx::Error),
    /// None of the hosts is a server that accepts writes (each was down, unreachable, or a
    /// standby).
    #[error("no writable PostgreSQL server: {}", tried.join("; "))]
    NoWritableServer {
        /// What each host answered, in the order tried: `host:port (why)`.
        tried: Vec<String>,
    },
    /// Applying the migrations failed.
    #[error("migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A statement failed.
    #[error("PostgreSQL statement failed")]
    Query(#[source] sqlx::Error),
}

/// A failed store call: [`StoreError::Unavailable`] when the server could not be reached or
/// cannot take writes (see [`is_unavailable`](crate::primary::is_unavailable)), else
/// [`StoreError::Backend`].
pub(crate) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    let e: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
    match e.downcast_ref::<sqlx::Error>() {
        Some(sql) if crate::primary::is_unavailable(sql) => StoreError::Unavailable(e),
        _ => StoreError::Backend(e),
    }
}

/// A row whose JSON body no longer decodes: reported as a backend error.
#[derive(Debug, thiserror::Error)]
#[error("row {what} has a body that does not decode")]
pub(crate) struct CorruptRow {
    pub(crate) what: String,
    #[source]
    pub(crate) source: serde_json::Error,
}

impl CorruptRow {
    /// A body of table `what` from its row's JSON text (read as `Json<&RawValue>`), straight
    /// into `T`, without building a `serde_json::Value` on the way.
    pub(crate) fn parse<T: serde::de::DeserializeOwned>(
        what: &str,
        body: &serde_json::value::RawValue,
    ) -> Result<T, Self> {
        serde_json::from_str(body.get()).map_err(|source| Self {
            what: what.to_owned(),
            source,
        })
    }
}

/// An audit entry no longer matches the digest written when it was committed: someone edited
/// it before it was sealed into the chain. Sealing stops before it.
#[derive(Debug, thiserror::Error)]
#[error("audit entry {entry_id} was edited after it was committed and before it was sealed; sealing stops there")]
pub(crate) struct EditedBeforeSealing {
    pub(crate) entry_id: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PgStoreOptions;

    #[test]
    fn every_invalid_option_is_reported_before_connecting() {
        let both = PgStoreOptions::new("postgres://[not-a-host")
            .schema("1 bad")
            .validate()
            .unwrap_err();
        match &both {
            PgError::InvalidOptions { problems } => {
                assert!(
                    matches!(
                        problems[..],
                        [PgError::InvalidUrl(_), PgError::InvalidSchemaName { .. }]
                    ),
                    "{both}"
                )
            }
            other => panic!("expected both problems, got {other}"),
        }
        let schema = PgStoreOptions::new("postgres://localhost/x")
            .schema("Drop Table")
            .validate()
            .unwrap_err();
        assert!(matches!(schema, PgError::InvalidSchemaName { .. }), "{schema}");
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let opts = PgStoreOptions::new("postgres://app:hunter2@db.internal:5433/jit").schema("jitgate");
        let shown = format!("{opts:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("app@db.internal:5433/jit"), "{shown}");
        let bad = format!("{:?}", PgStoreOptions::new("postgres://app:hunter2@[oops"));
        assert!(!bad.contains("hunter2"), "{bad}");
    }

    #[test]
    fn no_error_repeats_its_cause() {
        let url = PgStoreOptions::new("postgres://[not-a-host")
            .validate()
            .expect_err("a bad URL is refused");
        assert!(matches!(url, PgError::InvalidUrl(_)), "{url}");
        jitgate_testkit::assert_no_repeated_cause(&url);
        let json = serde_json::from_str::<u8>("{").expect_err("not JSON");
        let corrupt = backend(CorruptRow {
            what: "requests 1".into(),
            source: json,
        });
        jitgate_testkit::assert_no_repeated_cause(&corrupt);
        assert_eq!(
            jitgate_core::ErrorChain(&corrupt)
                .to_string()
                .matches("expected u8")
                .count(),
            1,
            "{}",
            jitgate_core::ErrorChain(&corrupt)
        );
    }
}
