//! `SqliteLedger`: the file ledger in the embedded store's `log` and `current_processing`
//! tables (feature `sqlite`), for an importer writing to SQLite. The same rules as the
//! PostgreSQL ledger: a lock per content, taken over when staler than `stale_after`, the file
//! recorded and unlocked in one transaction.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use loggr_store::{SqliteConfig, SqliteStore, StoreError};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::decode::ContentDigest;
use super::ledger::{importer_identity, Claim, FileLedger, LedgerError};

/// Drops this importer's lock on a content (another importer's, taken over, stays).
const UNLOCK: &str = "DELETE FROM current_processing WHERE digest = ?1 AND owner = ?2";

/// The file ledger in an SQLite store (opened, and its schema created, at first use).
pub struct SqliteLedger {
    path: PathBuf,
    stale_after: Duration,
    owner: String,
    store: Mutex<Option<Arc<SqliteStore>>>,
}

impl std::fmt::Debug for SqliteLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLedger")
            .field("path", &self.path)
            .field("owner", &self.owner)
            .field("stale_after", &self.stale_after)
            .finish_non_exhaustive()
    }
}

fn error(what: &str, source: StoreError) -> LedgerError {
    LedgerError::new(format!("{what}: {source}"), Some(Box::new(source)))
}

fn now() -> i64 {
    Timestamp::now().as_microsecond()
}

impl SqliteLedger {
    /// A ledger in the SQLite store at `path`; locks older than `stale_after` are taken over.
    pub fn new(path: impl Into<PathBuf>, stale_after: Duration) -> Self {
        SqliteLedger {
            path: path.into(),
            stale_after,
            owner: importer_identity(),
            store: Mutex::new(None),
        }
    }

    /// This importer's name in `current_processing.owner`.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    fn store(&self) -> Result<Arc<SqliteStore>, LedgerError> {
        let mut guard = self
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(store) = guard.as_ref() {
            return Ok(Arc::clone(store));
        }
        let store = Arc::new(
            SqliteStore::open(SqliteConfig::new(&self.path)).map_err(|e| error("opening", e))?,
        );
        *guard = Some(Arc::clone(&store));
        Ok(store)
    }

    fn stale_micros(&self) -> i64 {
        i64::try_from(self.stale_after.as_micros()).unwrap_or(i64::MAX)
    }
}

#[async_trait::async_trait]
impl FileLedger for SqliteLedger {
    async fn claim(
        &self,
        name: &str,
        digest: &ContentDigest,
        readall: bool,
    ) -> Result<Claim, LedgerError> {
        let store = self.store()?;
        let digest = &digest.0[..];
        store
            .with_writer(|conn| {
                // One write transaction: no other importer can complete or lock in between.
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                if !readall {
                    let imported: bool = tx.query_row(
                        "SELECT EXISTS (SELECT 1 FROM log WHERE digest = ?1)",
                        [digest],
                        |r| r.get(0),
                    )?;
                    if imported {
                        return Ok(Claim::AlreadyImported);
                    }
                }
                let now = now();
                let locked: Option<i64> = tx
                    .query_row(
                        "INSERT INTO current_processing (name, digest, starttime, owner) \
                         VALUES (?1, ?2, ?3, ?4) \
                         ON CONFLICT (digest) DO UPDATE \
                         SET name = excluded.name, owner = excluded.owner, starttime = ?3 \
                         WHERE current_processing.starttime < ?3 - ?5 \
                         RETURNING id",
                        params![name, digest, now, self.owner, self.stale_micros()],
                        |r| r.get(0),
                    )
                    .optional()?;
                tx.commit()?;
                Ok(if locked.is_some() {
                    Claim::Claimed
                } else {
                    Claim::Busy
                })
            })
            .map_err(|e| error("locking", e))
    }

    async fn heartbeat(&self, digest: &ContentDigest) -> Result<(), LedgerError> {
        let store = self.store()?;
        store
            .with_writer(|conn| {
                conn.execute(
                    "UPDATE current_processing SET starttime = ?1 WHERE digest = ?2 AND owner = ?3",
                    params![now(), &digest.0[..], self.owner],
                )?;
                Ok(())
            })
            .map_err(|e| error("refreshing a lock", e))
    }

    async fn complete(&self, name: &str, digest: &ContentDigest) -> Result<(), LedgerError> {
        let store = self.store()?;
        store
            .with_writer(|conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                tx.execute(
                    "INSERT INTO log (name, digest, imported_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (digest) DO NOTHING",
                    params![name, &digest.0[..], now()],
                )?;
                tx.execute(UNLOCK, params![&digest.0[..], self.owner])?;
                tx.commit()?;
                Ok(())
            })
            .map_err(|e| error("recording a file", e))
    }

    async fn release(&self, digest: &ContentDigest) -> Result<(), LedgerError> {
        let store = self.store()?;
        store
            .with_writer(|conn| {
                conn.execute(UNLOCK, params![&digest.0[..], self.owner])?;
                Ok(())
            })
            .map_err(|e| error("unlocking", e))
    }
}
