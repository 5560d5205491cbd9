//! [`StoreSink`]: the sink writing to any [`Store`], and the `sqlite` sink type of the plugin
//! registry.
//!
//! ```toml
//! [[sinks]]
//! type = "sqlite"
//! path = "loggr-data/loggr.db"
//! synchronous = "full"      # or "normal": survives a crash of loggr, not of the machine
//! writers = 2               # one batch inserted while the next is prepared or synced
//! ```
//!
//! A sink's writers share one [`SqliteStore`] (one writing connection): separate
//! connections would only wait for each other's lock on the file.

use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use loggr_core::registry::{BoxError, BuildContext, SinkConfig};
use loggr_core::{Event, Sink, SinkError};

use crate::sqlite::{SqliteConfig, SqliteStore};
use crate::{Store, StoreError};

/// Writes each batch to a [`Store`] in one transaction; `write` returns once it committed, so
/// the pipeline acknowledges the events upstream only then.
#[derive(Debug)]
pub struct StoreSink {
    store: Arc<dyn Store>,
}

impl StoreSink {
    /// A sink writing to `store` (which the frontends may share).
    pub fn new(store: Arc<dyn Store>) -> StoreSink {
        StoreSink { store }
    }
}

/// Whether retrying the same batch may succeed: a full disk, a lock or an I/O error may go
/// away; a constraint the events break will not.
fn is_permanent(error: &StoreError) -> bool {
    match error {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => matches!(
            failure.code,
            rusqlite::ErrorCode::ConstraintViolation | rusqlite::ErrorCode::TooBig
        ),
        _ => false,
    }
}

#[async_trait]
impl Sink for StoreSink {
    /// Both stores take inserts from several tasks at once: SQLite prepares a batch and
    /// syncs it outside its writer's lock, PostgreSQL queues them for its connection.
    fn concurrent_writers(&self) -> bool {
        true
    }

    async fn write(&mut self, events: &[Event]) -> Result<(), SinkError> {
        match self.store.insert(events).await {
            Ok(stats) => {
                tracing::trace!(
                    inserted = stats.inserted,
                    duplicates = stats.duplicates,
                    backend = self.store.backend(),
                    "Batch stored"
                );
                Ok(())
            }
            Err(error) => {
                let message = format!("{} store: {error}", self.store.backend());
                Err(if is_permanent(&error) {
                    SinkError::permanent(message)
                } else {
                    SinkError::transient(message)
                }
                .with_source(error))
            }
        }
    }
}

/// The `sqlite` sink's configuration: the [`SqliteConfig`] fields.
pub type SqliteSinkConfig = SqliteConfig;

impl SinkConfig for SqliteConfig {
    fn build(self, _cx: &BuildContext) -> Result<Box<dyn Sink>, BoxError> {
        Ok(Box::new(StoreSink::new(shared_store(self)?)))
    }
}

/// The store open for `config` in this process (a sink's other writer, the web frontend or
/// the reporter opened it: [`open`](crate::open)), or a new one. Kept only while one of them
/// holds it.
pub(crate) fn shared_store(config: SqliteConfig) -> Result<Arc<SqliteStore>, StoreError> {
    static OPEN: Mutex<Vec<(SqliteConfig, Weak<SqliteStore>)>> = Mutex::new(Vec::new());
    let mut open = OPEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    open.retain(|(_, store)| store.strong_count() > 0);
    if let Some(store) = open
        .iter()
        .find(|(opened, _)| *opened == config)
        .and_then(|(_, store)| store.upgrade())
    {
        return Ok(store);
    }
    let store = Arc::new(SqliteStore::open(config.clone())?);
    open.push((config, Arc::downgrade(&store)));
    Ok(store)
}

loggr_core::register_sink!("sqlite", SqliteConfig);

/// Keeps the registration above in the final binary.
#[inline(never)]
pub(crate) fn link() {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_sinks_writers_share_one_store_and_another_configuration_gets_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let config = SqliteConfig::new(dir.path().join("loggr.db"));
        let first = shared_store(config.clone()).unwrap();
        let second = shared_store(config.clone()).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        let mut other = config;
        other.readers = 1;
        assert!(!Arc::ptr_eq(&first, &shared_store(other).unwrap()));
        // The list does not keep a store open: only the sinks' references count.
        assert_eq!(Arc::strong_count(&first), 2);
    }

    #[test]
    fn the_web_frontend_and_reporter_open_the_sinks_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loggr.db");
        let sink = shared_store(SqliteConfig::new(&path)).unwrap();
        let setting = format!("sqlite:{}", path.display());
        let opened = crate::open(&setting, "test").unwrap();
        assert_eq!(
            Arc::as_ptr(&opened).cast::<()>(),
            Arc::as_ptr(&sink).cast::<()>()
        );
    }
}
