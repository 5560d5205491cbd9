//! [`open`]: a store from one `database` setting, as the daemons' configurations give it.

use std::sync::Arc;

use crate::{Store, StoreError};

/// Opens the store a `database` setting names:
///
/// - `postgresql://…` or `postgres://…` (a libpq URL), or libpq `key=value` pairs
///   ([`is_postgres`]): loggr's PostgreSQL schema, which the
///   operator created (`loggr_ctl init-db`); `application_name` names the connections.
///   Nothing connects before the first call. Needs the `postgres` feature.
/// - `sqlite:PATH` or a plain `PATH`: the embedded SQLite store (created when missing).
///   Needs the `sqlite` feature. Opening a file that a `sqlite` sink or an earlier call of
///   this process holds open, with the same settings, gives the same store (one writer,
///   one checkpointing thread per database).
///
/// ```no_run
/// # fn demo() -> Result<(), loggr_store::StoreError> {
/// let store = loggr_store::open("loggr-data/loggr.db", "loggr_web")?;
/// assert_eq!(store.backend(), "sqlite");
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// A URL that does not parse, a file that cannot be opened, or a backend this build lacks.
pub fn open(database: &str, application_name: &str) -> Result<Arc<dyn Store>, StoreError> {
    let database = database.trim();
    if is_postgres(database) {
        #[cfg(feature = "postgres")]
        {
            let mut config = loggr_sinks::postgres::PostgresSinkConfig::new(database);
            config.application_name = application_name.to_owned();
            return Ok(Arc::new(crate::PgStore::new(config)?));
        }
        #[cfg(not(feature = "postgres"))]
        return Err(StoreError::Unsupported("postgres"));
    }
    let _ = application_name;
    let path = database.strip_prefix("sqlite:").unwrap_or(database);
    #[cfg(feature = "sqlite")]
    {
        Ok(crate::sink::shared_store(crate::SqliteConfig::new(path))?)
    }
    #[cfg(not(feature = "sqlite"))]
    {
        let _ = path;
        Err(StoreError::Unsupported("sqlite"))
    }
}

/// Whether a `database` setting names a PostgreSQL database: a `postgresql://` or
/// `postgres://` URL, or libpq `key=value` pairs (`host=/run/postgresql dbname=loggr`);
/// anything else is an SQLite path.
///
/// ```
/// assert!(loggr_store::is_postgres("dbname=loggr"));
/// assert!(!loggr_store::is_postgres("sqlite:/a=b/loggr.db"));
/// ```
pub fn is_postgres(database: &str) -> bool {
    let database = database.trim();
    if database.starts_with("postgresql://") || database.starts_with("postgres://") {
        return true;
    }
    database
        .split_whitespace()
        .next()
        .and_then(|pair| pair.split_once('='))
        .is_some_and(|(key, _)| {
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
}
