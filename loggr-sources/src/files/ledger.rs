//! The file ledger: which files (known by the SHA-256 of their decompressed content) were
//! imported, and which are being imported right now (a lock per file, so that several
//! importers can share a tree).
//!
//! `PgLedger` keeps it in loggr's PostgreSQL tables `log` and `current_processing`
//! (feature `postgres`), `SqliteLedger` in the same tables of the embedded SQLite store
//! (feature `sqlite`); [`MemoryLedger`] keeps it for the life of the process (tests, one-off
//! imports to a file).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::decode::ContentDigest;

/// A ledger operation failed (the database is unreachable, say).
#[derive(Debug, thiserror::Error)]
#[error("file ledger: {message}")]
pub struct LedgerError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl LedgerError {
    /// An error with a message and its cause.
    pub fn new(
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        LedgerError {
            message: message.into(),
            source,
        }
    }
}

/// The answer to [`FileLedger::claim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The file is ours to import.
    Claimed,
    /// A file with this content was imported before (only without `readall`).
    AlreadyImported,
    /// Another importer holds a fresh lock on this content.
    Busy,
}

/// Where an importer records files; shared by every importer working on the same trees.
#[async_trait::async_trait]
pub trait FileLedger: Send + Sync + 'static {
    /// Locks the content `digest` (found at `name`) for this importer, unless another
    /// importer's lock on it is fresher than the ledger's stale age, or (when `readall` is
    /// false) it was imported already.
    async fn claim(
        &self,
        name: &str,
        digest: &ContentDigest,
        readall: bool,
    ) -> Result<Claim, LedgerError>;

    /// Refreshes this importer's lock (long imports call it well within the stale age).
    async fn heartbeat(&self, digest: &ContentDigest) -> Result<(), LedgerError>;

    /// Records the file as imported and drops the lock, in one step. Call it only when every
    /// event of the file was committed downstream.
    async fn complete(&self, name: &str, digest: &ContentDigest) -> Result<(), LedgerError>;

    /// Drops the lock without recording the file (its import failed or was interrupted).
    async fn release(&self, digest: &ContentDigest) -> Result<(), LedgerError>;
}

/// This importer's name in `current_processing.owner`: `host:pid:nonce`, so that an importer
/// refreshes, completes and releases only its own locks.
pub(crate) fn importer_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{host}:{}:{nanos:08x}", std::process::id())
}

/// The `ledger` key of the `files` source.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum LedgerConfig {
    /// In memory: within one run each content is imported once; nothing is remembered after.
    Memory,
    /// loggr's PostgreSQL tables `log` and `current_processing` (create them with
    /// `loggr_ctl init-db` or a `postgres` sink with `migrate = true`).
    #[cfg(feature = "postgres")]
    Postgres {
        /// `postgresql://user@host:port/database`.
        url: String,
        /// A lock older than this is another importer's that died: taken over (default 1h).
        #[serde(default = "default_stale_after", with = "loggr_core::config::duration")]
        stale_after: Duration,
    },
    /// The embedded store's tables `log` and `current_processing` (created when missing).
    #[cfg(feature = "sqlite")]
    Sqlite {
        /// The SQLite database file (the `sqlite` sink's `path`).
        path: std::path::PathBuf,
        /// A lock older than this is another importer's that died: taken over (default 1h).
        #[serde(default = "default_stale_after", with = "loggr_core::config::duration")]
        stale_after: Duration,
    },
}

#[cfg(any(feature = "postgres", feature = "sqlite"))]
fn default_stale_after() -> Duration {
    Duration::from_secs(3600)
}

impl LedgerConfig {
    /// The ledger this configures.
    pub fn build(self) -> Box<dyn FileLedger> {
        match self {
            LedgerConfig::Memory => Box::new(MemoryLedger::default()),
            #[cfg(feature = "postgres")]
            LedgerConfig::Postgres { url, stale_after } => {
                Box::new(PgLedger::new(url, stale_after))
            }
            #[cfg(feature = "sqlite")]
            LedgerConfig::Sqlite { path, stale_after } => {
                Box::new(super::sqlite_ledger::SqliteLedger::new(path, stale_after))
            }
        }
    }

    /// How often an importer should refresh its locks.
    pub fn heartbeat_interval(&self) -> Duration {
        match self {
            LedgerConfig::Memory => Duration::from_secs(3600),
            #[cfg(feature = "postgres")]
            LedgerConfig::Postgres { stale_after, .. } => {
                (*stale_after / 4).max(Duration::from_millis(100))
            }
            #[cfg(feature = "sqlite")]
            LedgerConfig::Sqlite { stale_after, .. } => {
                (*stale_after / 4).max(Duration::from_millis(100))
            }
        }
    }
}

/// A ledger for the life of the process.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    state: Mutex<MemoryState>,
    stale_after: Option<Duration>,
}

#[derive(Debug, Default)]
struct MemoryState {
    imported: HashSet<ContentDigest>,
    locked: HashMap<ContentDigest, Instant>,
}

impl MemoryLedger {
    /// A ledger whose locks go stale after `stale_after` (never by default).
    pub fn with_stale_after(stale_after: Duration) -> Self {
        MemoryLedger {
            state: Mutex::default(),
            stale_after: Some(stale_after),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        // A panic while holding the lock cannot leave the sets inconsistent (single inserts).
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether this content was recorded as imported.
    pub fn is_imported(&self, digest: &ContentDigest) -> bool {
        self.state().imported.contains(digest)
    }
}

#[async_trait::async_trait]
impl FileLedger for MemoryLedger {
    async fn claim(
        &self,
        _name: &str,
        digest: &ContentDigest,
        readall: bool,
    ) -> Result<Claim, LedgerError> {
        let mut state = self.state();
        if !readall && state.imported.contains(digest) {
            return Ok(Claim::AlreadyImported);
        }
        let now = Instant::now();
        if let Some(since) = state.locked.get(digest) {
            let stale = self
                .stale_after
                .is_some_and(|age| now.duration_since(*since) > age);
            if !stale {
                return Ok(Claim::Busy);
            }
        }
        state.locked.insert(*digest, now);
        Ok(Claim::Claimed)
    }

    async fn heartbeat(&self, digest: &ContentDigest) -> Result<(), LedgerError> {
        if let Some(since) = self.state().locked.get_mut(digest) {
            *since = Instant::now();
        }
        Ok(())
    }

    async fn complete(&self, _name: &str, digest: &ContentDigest) -> Result<(), LedgerError> {
        let mut state = self.state();
        state.locked.remove(digest);
        state.imported.insert(*digest);
        Ok(())
    }

    async fn release(&self, digest: &ContentDigest) -> Result<(), LedgerError> {
        self.state().locked.remove(digest);
        Ok(())
    }
}

#[cfg(feature = "postgres")]
pub use pg::PgLedger;

#[cfg(feature = "postgres")]
mod pg {
    use std::time::Duration;

    use tokio::sync::Mutex;
    use tokio_postgres::types::Type;
    use tokio_postgres::{Client, NoTls, Statement};

    use super::{Claim, ContentDigest, FileLedger, LedgerError};

    /// The ledger in PostgreSQL: `log` (one row per imported content) and
    /// `current_processing` (one row per lock, with its owner and start time).
    ///
    /// Claiming is race-free between importers: the lock is an `INSERT … ON CONFLICT
    /// (digest) DO UPDATE … WHERE` the holder's lock is stale, and `log` is checked after the
    /// lock is held; [`complete`](FileLedger::complete) inserts into `log` and deletes the lock
    /// in one transaction. So two importers never both import a content, and a content
    /// recorded in `log` is never claimed again (without `readall`).
    ///
    /// The connection is opened on first use and reopened after it broke.
    pub struct PgLedger {
        url: String,
        stale_after: Duration,
        owner: String,
        client: Mutex<Option<Session>>,
    }

    /// The connection and its prepared statements (each prepared once, so that a file costs
    /// two round trips to claim and one to record, without parsing or planning).
    struct Session {
        client: Client,
        /// `$1` name, `$2` digest, `$3` owner, `$4` staleness in seconds, `$5` readall:
        /// (whether `log` holds the digest, whether the lock was taken). With `$5` false, the
        /// lock is not attempted when `log` holds the digest.
        claim: Statement,
        /// `$1` digest: whether `log` holds it.
        imported: Statement,
        /// `$1` digest, `$2` owner.
        heartbeat: Statement,
        /// `$1` name, `$2` digest, `$3` owner: records the file and drops the lock, in one
        /// statement (atomic).
        complete: Statement,
        /// `$1` digest, `$2` owner.
        unlock: Statement,
    }

    impl std::fmt::Debug for PgLedger {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("PgLedger")
                .field("owner", &self.owner)
                .field("stale_after", &self.stale_after)
                .finish_non_exhaustive()
        }
    }

    /// Drops this importer's lock on a content (another importer's, taken over, stays).
    const UNLOCK: &str = "DELETE FROM current_processing WHERE digest = $1 AND owner = $2";

    /// Whether `log` holds the digest `$1`.
    const IMPORTED: &str = "SELECT EXISTS (SELECT 1 FROM log WHERE digest = $1)";

    /// The lock is an `INSERT … ON CONFLICT (digest) DO UPDATE … WHERE` the holder's lock is
    /// stale: it returns a row exactly when this importer now holds the lock.
    const CLAIM: &str =
        "WITH imported AS (SELECT EXISTS (SELECT 1 FROM log WHERE digest = $2) AS yes), \
         locked AS ( \
             INSERT INTO current_processing (name, digest, owner) \
             SELECT $1, $2, $3 WHERE $5 OR NOT (SELECT yes FROM imported) \
             ON CONFLICT (digest) DO UPDATE \
             SET name = excluded.name, owner = excluded.owner, starttime = now() \
             WHERE current_processing.starttime < now() - make_interval(secs => $4) \
             RETURNING id) \
         SELECT (SELECT yes FROM imported), EXISTS (SELECT 1 FROM locked)";

    const HEARTBEAT: &str = "UPDATE current_processing SET starttime = now() \
         WHERE digest = $1 AND owner = $2";

    const COMPLETE: &str = "WITH logged AS ( \
             INSERT INTO log (name, digest) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING) \
         DELETE FROM current_processing WHERE digest = $2 AND owner = $3";

    fn error(what: &str, source: tokio_postgres::Error) -> LedgerError {
        LedgerError::new(format!("{what}: {source}"), Some(Box::new(source)))
    }

    impl PgLedger {
        /// A ledger in the database at `url`; locks older than `stale_after` are taken over.
        pub fn new(url: impl Into<String>, stale_after: Duration) -> Self {
            PgLedger {
                url: url.into(),
                stale_after,
                owner: super::importer_identity(),
                client: Mutex::new(None),
            }
        }

        /// This importer's name in `current_processing.owner`.
        pub fn owner(&self) -> &str {
            &self.owner
        }

        async fn session(
            &self,
        ) -> Result<tokio::sync::MutexGuard<'_, Option<Session>>, LedgerError> {
            let mut guard = self.client.lock().await;
            if guard
                .as_ref()
                .is_none_or(|session| session.client.is_closed())
            {
                let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
                    .await
                    .map_err(|e| error("connecting", e))?;
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::warn!(%error, "The file ledger's connection broke");
                    }
                });
                // The ledger's commits need not wait for the disk: a lock lost in a crash of
                // the server only lets another importer read the file too, and a lost `log`
                // row only lets the file be read again; either way the events' digests keep
                // every line stored once. (The events themselves commit synchronously, in
                // the sink.) Two waits for the disk per file were most of the time an import
                // of many small files spent.
                client
                    .batch_execute("SET synchronous_commit = off")
                    .await
                    .map_err(|e| error("configuring the session", e))?;
                let prepare = |sql: &'static str, types: &'static [Type]| {
                    let client = &client;
                    async move {
                        client
                            .prepare_typed(sql, types)
                            .await
                            .map_err(|e| error("preparing the ledger's statements", e))
                    }
                };
                let digest_owner = &[Type::BYTEA, Type::TEXT];
                let session = Session {
                    claim: prepare(
                        CLAIM,
                        &[
                            Type::TEXT,
                            Type::BYTEA,
                            Type::TEXT,
                            Type::FLOAT8,
                            Type::BOOL,
                        ],
                    )
                    .await?,
                    imported: prepare(IMPORTED, &[Type::BYTEA]).await?,
                    heartbeat: prepare(HEARTBEAT, digest_owner).await?,
                    complete: prepare(COMPLETE, &[Type::TEXT, Type::BYTEA, Type::TEXT]).await?,
                    unlock: prepare(UNLOCK, digest_owner).await?,
                    client,
                };
                *guard = Some(session);
            }
            Ok(guard)
        }
    }

    #[async_trait::async_trait]
    impl FileLedger for PgLedger {
        async fn claim(
            &self,
            name: &str,
            digest: &ContentDigest,
            readall: bool,
        ) -> Result<Claim, LedgerError> {
            let guard = self.session().await?;
            let session = guard
                .as_ref()
                .ok_or_else(|| LedgerError::new("no connection", None))?;
            let client = &session.client;
            let digest = &digest.0[..];
            let row = client
                .query_one(
                    &session.claim,
                    &[
                        &name,
                        &digest,
                        &self.owner,
                        &self.stale_after.as_secs_f64(),
                        &readall,
                    ],
                )
                .await
                .map_err(|e| error("locking", e))?;
            let imported: bool = row.try_get(0).map_err(|e| error("locking", e))?;
            let locked: bool = row.try_get(1).map_err(|e| error("locking", e))?;
            if imported && !readall {
                return Ok(Claim::AlreadyImported);
            }
            if !locked {
                return Ok(Claim::Busy);
            }
            if !readall {
                // Another importer may have completed it between the check and the lock.
                let row = client
                    .query_one(&session.imported, &[&digest])
                    .await
                    .map_err(|e| error("reading log", e))?;
                if row
                    .try_get::<_, bool>(0)
                    .map_err(|e| error("reading log", e))?
                {
                    client
                        .execute(&session.unlock, &[&digest, &self.owner])
                        .await
                        .map_err(|e| error("unlocking", e))?;
                    return Ok(Claim::AlreadyImported);
                }
            }
            Ok(Claim::Claimed)
        }

        async fn heartbeat(&self, digest: &ContentDigest) -> Result<(), LedgerError> {
            let guard = self.session().await?;
            let session = guard
                .as_ref()
                .ok_or_else(|| LedgerError::new("no connection", None))?;
            session
                .client
                .execute(&session.heartbeat, &[&&digest.0[..], &self.owner])
                .await
                .map_err(|e| error("refreshing a lock", e))?;
            Ok(())
        }

        async fn complete(&self, name: &str, digest: &ContentDigest) -> Result<(), LedgerError> {
            let guard = self.session().await?;
            let session = guard
                .as_ref()
                .ok_or_else(|| LedgerError::new("no connection", None))?;
            session
                .client
                .execute(&session.complete, &[&name, &&digest.0[..], &self.owner])
                .await
                .map_err(|e| error("recording a file", e))?;
            Ok(())
        }

        async fn release(&self, digest: &ContentDigest) -> Result<(), LedgerError> {
            let guard = self.session().await?;
            let session = guard
                .as_ref()
                .ok_or_else(|| LedgerError::new("no connection", None))?;
            session
                .client
                .execute(&session.unlock, &[&&digest.0[..], &self.owner])
                .await
                .map_err(|e| error("unlocking", e))?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_ledger_claims_once_and_remembers() {
        let ledger = MemoryLedger::default();
        let digest = ContentDigest([7; 32]);
        assert_eq!(
            ledger.claim("a", &digest, false).await.unwrap(),
            Claim::Claimed
        );
        assert_eq!(
            ledger.claim("b", &digest, false).await.unwrap(),
            Claim::Busy
        );
        ledger.release(&digest).await.unwrap();
        assert_eq!(
            ledger.claim("b", &digest, false).await.unwrap(),
            Claim::Claimed
        );
        ledger.complete("b", &digest).await.unwrap();
        assert_eq!(
            ledger.claim("c", &digest, false).await.unwrap(),
            Claim::AlreadyImported
        );
        assert_eq!(
            ledger.claim("c", &digest, true).await.unwrap(),
            Claim::Claimed
        );
    }

    #[tokio::test]
    async fn memory_ledger_takes_over_stale_locks() {
        let ledger = MemoryLedger::with_stale_after(Duration::from_millis(20));
        let digest = ContentDigest([1; 32]);
        assert_eq!(
            ledger.claim("a", &digest, false).await.unwrap(),
            Claim::Claimed
        );
        assert_eq!(
            ledger.claim("b", &digest, false).await.unwrap(),
            Claim::Busy
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(
            ledger.claim("b", &digest, false).await.unwrap(),
            Claim::Claimed
        );
    }
}
