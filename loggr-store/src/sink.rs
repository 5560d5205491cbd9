//! [`StoreSink`]: the sink writing to any [`Store`], and the `sqlite` sink type of the plugin
//! registry.
//!
//! ```toml
//! [[sinks]]
//! type = "sqlite"
//! path = "loggr-data/loggr.db"
//! synchronous = "full"      # or "normal": survives a crash of loggr, not of the machine
//! ```

use std::sync::Arc;

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
        let store = SqliteStore::open(self)?;
        Ok(Box::new(StoreSink::new(Arc::new(store))))
    }
}

loggr_core::register_sink!("sqlite", SqliteConfig);

/// Keeps the registration above in the final binary.
#[inline(never)]
pub(crate) fn link() {}
