//! loggr's event store: one [`Store`] trait for everything that writes or reads stored
//! events — the sinks, the web frontend, the reporter and the importer — over one logical
//! schema (BuzzSaw's `event`, `tag` and `extra_info`, pyloggr's syslog header fields and
//! structured data, the file registry and the report run log).
//!
//! Backends:
//!
//! - [`SqliteStore`] (feature `sqlite`): the embedded store of the all-in-one `loggr` daemon.
//!   One file, WAL mode, nothing to install or run (SQLite is compiled in).
//! - [`PgStore`] (feature `postgres`): loggr's PostgreSQL schema, for the distributed setup;
//!   it writes through `loggr-sinks`' `postgres` sink (binary `COPY`).
//!
//! Durability is the contract: [`Store::insert`] returns only after the batch's transaction
//! committed, so a source may acknowledge the events upstream once it returns; the content id
//! (a unique `digest`) makes a repeated batch store nothing twice.
//!
//! ```no_run
//! # #[cfg(feature = "sqlite")]
//! # async fn run() -> Result<(), loggr_store::StoreError> {
//! use loggr_store::{EventFilter, SqliteConfig, SqliteStore, Store};
//!
//! let store = SqliteStore::open(SqliteConfig::new("loggr-data/loggr.db"))?;
//! let event = loggr_core::Event::new("hello");
//! store.insert(&[event]).await?;
//! for event in store.events(&EventFilter::default(), 50).await? {
//!     println!("{} {:?}", event.logtime, event.message);
//! }
//! # Ok(()) }
//! ```

pub mod model;
mod open;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod report;
pub mod row;
#[cfg(feature = "sqlite")]
pub mod sink;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use loggr_core::Event;

pub use model::{EventDetail, EventFilter, EventSummary, InsertStats, StoreStatus};
pub use open::{is_postgres, open};
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
pub use report::{
    AnonymiseCounts, AuthCounts, OrderBy, ReportEvent, ReportQuery, Selection, TagHostCount,
};
#[cfg(feature = "sqlite")]
pub use sink::{SqliteSinkConfig, StoreSink};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteConfig, SqliteStore, Synchronous};

/// Keeps this crate's plugin registrations (the `sqlite` sink) in the final binary.
#[inline(never)]
pub fn link() {
    #[cfg(feature = "sqlite")]
    sink::link();
}

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database refused or failed a statement.
    #[cfg(feature = "sqlite")]
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL refused or failed a statement, or cannot be reached.
    #[cfg(feature = "postgres")]
    #[error("PostgreSQL: {0}")]
    Pg(#[from] tokio_postgres::Error),
    /// Writing to PostgreSQL failed (the `postgres` sink's error).
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    /// The setting names a backend this build of loggr-store lacks (a cargo feature).
    #[error("this build has no {0} store (cargo feature `{0}` of loggr-store)")]
    Unsupported(&'static str),
    /// The store's file or directory cannot be used.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The database holds a schema this code does not know (written by a newer loggr).
    #[error("the store's schema version {found} is newer than this loggr's {supported}")]
    SchemaTooNew {
        /// The version found.
        found: u32,
        /// The newest version this code knows.
        supported: u32,
    },
    /// A stored value loggr did not write.
    #[error("stored {what} cannot be read back: {message}")]
    Decode {
        /// The column or value.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// A blocking task of the store panicked or was cancelled (a bug, or shutdown).
    #[error("store task failed: {0}")]
    Task(String),
}

/// The operations loggr runs against stored events, whatever the backend.
///
/// Implementations are shared (`Arc<dyn Store>`) between the sink that writes and the
/// frontends that read: every method takes `&self`.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// The backend's name (`sqlite`, `postgres`), for logs and the status page.
    fn backend(&self) -> &'static str;

    /// Stores a batch in one transaction and returns once it committed. An event whose
    /// content id is already stored is skipped (counted in
    /// [`InsertStats::duplicates`]): redelivery never creates a second row.
    ///
    /// # Errors
    ///
    /// Nothing of the batch is stored when it fails (the transaction rolled back).
    async fn insert(&self, events: &[Event]) -> Result<InsertStats, StoreError>;

    /// Up to `limit` events matching `filter`, newest first (`logtime`, then `id`,
    /// descending): the web frontend's list, keyset-paged through [`EventFilter::cursor`].
    ///
    /// # Errors
    ///
    /// The query failed.
    async fn events(
        &self,
        filter: &EventFilter,
        limit: u32,
    ) -> Result<Vec<EventSummary>, StoreError>;

    /// One event with everything stored about it, `None` when there is no such id.
    ///
    /// # Errors
    ///
    /// The query failed.
    async fn event(&self, id: i64) -> Result<Option<EventDetail>, StoreError>;

    /// How many events are stored, how many arrived in the last `window` of `logtime`, and
    /// the newest `logtime`.
    ///
    /// # Errors
    ///
    /// The store is unreachable.
    async fn status(&self, window: Duration) -> Result<StoreStatus, StoreError>;

    /// The reporter's events: up to `limit` events of `selection` in its order, each with
    /// its tags (sorted) and extra_info fields; and how many the selection has in all.
    ///
    /// # Errors
    ///
    /// The query failed.
    async fn report_events(
        &self,
        selection: &Selection,
        limit: u32,
    ) -> Result<(Vec<ReportEvent>, u64), StoreError>;

    /// For each tag of `selection` and each host with events of that tag, how many (the
    /// Kernel report), sorted by tag then host. A selection without tags counts nothing.
    ///
    /// # Errors
    ///
    /// The query failed.
    async fn tag_host_counts(&self, selection: &Selection)
        -> Result<Vec<TagHostCount>, StoreError>;

    /// The events of `selection` counted by user, by host and by source address (the
    /// AuthFailure report), each list sorted by value.
    ///
    /// # Errors
    ///
    /// The query failed.
    async fn auth_counts(&self, selection: &Selection) -> Result<AuthCounts, StoreError>;

    /// When the report `name` of `period` (`hourly`, `daily`, `weekly`, `monthly`) last ran,
    /// from the run log (`report_run`); `None` when it never did.
    ///
    /// # Errors
    ///
    /// The query failed, or the run log cannot be created (PostgreSQL).
    async fn last_run(&self, name: &str, period: &str) -> Result<Option<Timestamp>, StoreError>;

    /// Records in the run log that the report `name` of `period` ran at `at`.
    ///
    /// # Errors
    ///
    /// The statement failed (an unknown `period` included).
    async fn record_run(&self, name: &str, period: &str, at: Timestamp) -> Result<(), StoreError>;

    /// Anonymises the events older than `before` (BuzzSaw's `anonymisedata`): those that
    /// still hold any of `raw`, `message` or `userid` get `raw` and `userid` NULL and
    /// `message` `''`, and every `extra_info` row of an event older than `before` is
    /// deleted; tags, times, hosts and programs stay. One transaction. With `dryrun`, only
    /// counts what would change. Running it again changes nothing.
    ///
    /// # Errors
    ///
    /// A statement failed; nothing changed (the transaction rolled back).
    async fn anonymise(
        &self,
        before: Timestamp,
        dryrun: bool,
    ) -> Result<AnonymiseCounts, StoreError>;
}
