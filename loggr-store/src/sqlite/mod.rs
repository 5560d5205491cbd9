//! [`SqliteStore`]: the embedded store — one SQLite file in WAL mode, the logical schema of
//! `schema.sql`, one writing connection and a few reading ones (WAL lets them read while a
//! batch commits).
//!
//! Durability: with [`Synchronous::Full`] (the default) a committed batch survives a power
//! loss; with [`Synchronous::Normal`] it survives a crash or `kill -9` of loggr, and a power
//! loss may undo the last commits. [`Store::insert`] returns after the commit either way.
//!
//! Inserts are pipelined. The caller of [`Store::insert`] computes its batch's column
//! values (`EventRows`) and hands them to the store's inserting thread, which uses the
//! writing connection from that one thread and inserts every batch waiting in one
//! transaction (group commit), untagged events up to 64 in one `INSERT` statement. Under
//! [`Synchronous::Full`] a syncing thread then syncs the WAL (`WalSync`) and answers the
//! batches while the inserting thread goes on with the next ones: with two callers (a
//! sink's `writers = 2`) SQLite inserts one batch while the other is prepared or synced,
//! and the callers only wait for their answers.
//!
//! The other SQLite calls block: on a multi-threaded Tokio runtime they run in
//! [`tokio::task::block_in_place`], so the other tasks of the worker move elsewhere.

use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use loggr_core::Event;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::Deserialize;

use crate::model::{
    contains_pattern, EventDetail, EventFilter, EventSummary, InsertStats, StoreStatus,
};
use crate::report::{AnonymiseCounts, AuthCounts, ReportEvent, Selection, TagHostCount};
use crate::row::{extra_json, store_text, structured_data_json, tag_names, userid};
use crate::{Store, StoreError};

/// The schema this code writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: u32 = 4;

const SCHEMA: &str = include_str!("schema.sql");

/// From schema version 1, before `schema.sql` runs: `digest UNIQUE` (an index SQLite
/// cannot drop) gives way to the time-ordered unique indexes, and the `extra_info` table
/// (one row per value) to the packed `event.fields` under an `extra_info` view. The
/// version-1 tables are renamed aside (the event table's indexes and trigger dropped, so
/// that `schema.sql` creates them anew on the new table), and [`REBUILD_V1_AFTER`] copies
/// their rows, ids and value order kept, into the new ones.
const REBUILD_V1_BEFORE: &str = "DROP TRIGGER IF EXISTS event_deleted; \
     DROP INDEX IF EXISTS event_logtime_idx; \
     DROP INDEX IF EXISTS event_hostname_logtime_idx; \
     DROP INDEX IF EXISTS event_program_logtime_idx; \
     ALTER TABLE event RENAME TO event_v1; \
     ALTER TABLE extra_info RENAME TO extra_info_v1;";
const REBUILD_V1_AFTER: &str = "INSERT INTO event (id, digest, logtime, received_at, reported, \
     facility, severity, hostname, program, pid, msgid, userid, message, structured_data, raw, \
     fields) \
     SELECT id, digest, logtime, received_at, reported, facility, severity, hostname, program, \
     pid, msgid, userid, message, structured_data, raw, \
     (SELECT json_group_array(json_array(x.name, x.val)) FROM \
      (SELECT name, val FROM extra_info_v1 WHERE event = v.id ORDER BY seq) AS x \
      HAVING count(*) > 0) \
     FROM event_v1 AS v ORDER BY id; \
     DROP TABLE event_v1; \
     DROP TABLE extra_info_v1;";

/// From schema version 2 to 3, before `schema.sql` runs: `event.logdate`, a generated
/// column, is dropped (it is computed when read). SQLite drops a virtual column without
/// rewriting the table's rows.
const DROP_V2_LOGDATE: &str = "ALTER TABLE event DROP COLUMN logdate;";

/// From schema version 2 or 3 to 4, before `schema.sql` runs: the unique `(reported time or
/// 0, digest)` index and the `(logtime, id)` index give way to one unique `(logtime, digest)`
/// index (and a partial one on `digest` for events without a reported time), which
/// `schema.sql` builds from the stored rows.
const DROP_V3_INDEXES: &str = "DROP INDEX IF EXISTS event_dedup_idx; \
     DROP INDEX IF EXISTS event_logtime_idx;";

/// The `event` columns an insert sets, in [`EventRows::bind`]'s order.
const INSERT_COLUMNS: [&str; 15] = [
    "digest",
    "logtime",
    "received_at",
    "reported",
    "facility",
    "severity",
    "hostname",
    "program",
    "pid",
    "msgid",
    "userid",
    "message",
    "structured_data",
    "raw",
    "fields",
];

/// Events one INSERT statement carries at most. One statement of many rows opens its
/// cursors on the table and its indexes once, and as the rows arrive in (nearly) ascending
/// keys SQLite appends each on the last page without descending from the root again. In
/// `cargo bench --bench sqlite_store`, one row per statement gave 370 k events/s, 16 rows
/// 406 k, 64 rows 476–491 k, 256 rows no more.
const ROWS_PER_INSERT: usize = 64;

/// `INSERT OR FAIL INTO event … VALUES (…), … ON CONFLICT DO NOTHING` for `rows` events,
/// their parameters numbered row after row in [`INSERT_COLUMNS`]' order.
///
/// `OR FAIL`: a statement of several rows that may stop halfway with `ABORT` (the default
/// for NOT NULL; CHECK constraints too, and any function call in the statement) makes
/// SQLite copy every page the statement touches into a statement journal first, to undo
/// its earlier rows: in `perf`, a fifth of the inserting thread in copies, allocations and
/// frees. With `FAIL` there is nothing to undo, and nothing is copied: an error fails the
/// whole transaction anyway (`insert_group`). The insert calls no function either: no
/// generated column (schema version 3), no CHECK (its connection skips them, [`Writers`]).
fn insert_events_sql(rows: usize) -> String {
    let row = format!("({})", vec!["?"; INSERT_COLUMNS.len()].join(", "));
    format!(
        "INSERT OR FAIL INTO event ({}) VALUES {} ON CONFLICT DO NOTHING",
        INSERT_COLUMNS.join(", "),
        vec![row.as_str(); rows].join(", ")
    )
}

/// [`insert_events_sql`] for 1, 2, 4, … [`ROWS_PER_INSERT`] events: a run of rows goes in
/// statements of these sizes, largest first.
fn insert_statements() -> &'static [(usize, String)] {
    static STATEMENTS: std::sync::OnceLock<Vec<(usize, String)>> = std::sync::OnceLock::new();
    STATEMENTS.get_or_init(|| {
        std::iter::successors(Some(ROWS_PER_INSERT), |&n| (n > 1).then_some(n / 2))
            .map(|n| (n, insert_events_sql(n)))
            .collect()
    })
}
const INSERT_TAG: &str = "INSERT INTO tag (event, name) VALUES (?1, ?2) ON CONFLICT DO NOTHING";
const SELECT_TAGS: &str = "SELECT name FROM tag WHERE event = ?1 ORDER BY name";
const LIST_COLUMNS: &str = "e.id, e.logtime, e.received_at, e.hostname, e.program, e.pid, \
     e.facility, e.severity, e.message";

/// How hard SQLite works to keep a commit on disk (`PRAGMA synchronous`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Every commit reaches the disk before it returns: survives a power loss.
    #[default]
    Full,
    /// The WAL is synced at checkpoints only: survives a crash of loggr, not of the machine.
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Where and how to open the store.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteConfig {
    /// The database file (its directory is created; `-wal` and `-shm` files sit beside it).
    pub path: PathBuf,
    /// Commit durability.
    #[serde(default)]
    pub synchronous: Synchronous,
    /// Reading connections (queries run in parallel up to this many).
    #[serde(default = "default_readers")]
    pub readers: usize,
    /// How long a statement waits for a lock another process holds, in milliseconds.
    #[serde(default = "default_busy_timeout_ms")]
    pub busy_timeout_ms: u64,
}

fn default_readers() -> usize {
    4
}

fn default_busy_timeout_ms() -> u64 {
    5_000
}

impl SqliteConfig {
    /// The defaults for a database file: full durability, 4 readers, 5 s busy timeout.
    pub fn new(path: impl Into<PathBuf>) -> SqliteConfig {
        SqliteConfig {
            path: path.into(),
            synchronous: Synchronous::default(),
            readers: default_readers(),
            busy_timeout_ms: default_busy_timeout_ms(),
        }
    }
}

/// The store's two writing connections, used one at a time under one lock (SQLite lets
/// one connection write at a time).
struct Writers {
    /// The inserting thread's, for [`Store::insert`]'s rows and their tags only. It skips
    /// the schema's CHECK constraints (`PRAGMA ignore_check_constraints`): its values are
    /// typed (a 32-byte digest, the codes of enums, `EventRows`), and the `length()` a
    /// CHECK calls would make every multi-row insert keep a statement journal
    /// ([`insert_events_sql`]).
    inserting: Connection,
    /// Everything else, CHECK constraints enforced: the migrations and
    /// [`SqliteStore::with_writer`] (the importer's registry, the reporter's run log,
    /// anonymisation).
    checked: Connection,
}

/// The embedded store (see the [module docs](self)).
pub struct SqliteStore {
    path: PathBuf,
    /// Inserts the batches of [`Store::insert`]; stopped first when the store is dropped.
    inserter: Inserter,
    /// The writing connections: the inserting thread's, and [`with_writer`](Self::with_writer)'s.
    writer: Arc<Mutex<Writers>>,
    /// Set when the writer runs with `synchronous = NORMAL` on behalf of
    /// [`Synchronous::Full`].
    wal_sync: Option<Arc<WalSync>>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    /// Stops the checkpointer thread when the store is dropped.
    _checkpointer: Checkpointer,
}

/// Per-connection settings: a 64 MiB page cache (the indexes' hot pages stay in memory
/// instead of being read again and spilled within a batch), reads through a memory map
/// rather than `pread` copies, temporary tables in memory.
/// The page size of a database this store creates (an existing one keeps its own). Each
/// commit writes every page it changed whole into the WAL, and an insert changes the last
/// page of each B-tree: with 16 KiB pages a batch dirties fewer pages and splits less often.
/// `bench-embedded.sh`, 4 runs each way: 8% more events/s than SQLite's default 4 KiB; with
/// the 64-row inserts, alternating runs: 165–176 k against 140–150 k (32 and 64 KiB: no gain).
const NEW_DATABASE_PAGE_SIZE: u32 = 16_384;

const TUNING: &str = "PRAGMA cache_size = -65536; PRAGMA mmap_size = 268435456; \
     PRAGMA temp_store = MEMORY;";

/// How often the checkpointer copies committed WAL frames into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// WAL frames left after a passive checkpoint above which the checkpointer restarts the WAL.
const RESTART_AFTER_FRAMES: i64 = 256;

/// How long a restarting checkpoint may hold up the writer (or wait for a reader) before it
/// gives up until the next round.
const RESTART_PATIENCE: Duration = Duration::from_millis(20);

/// A thread of its own that checkpoints the WAL, so that copying pages into the database
/// file (and its fsync) is not done by the writer in the middle of a commit, as SQLite's
/// automatic checkpoints are; the writer's commits stay on the acknowledgement path, the
/// checkpoints run beside them on the other core.
///
/// Each round copies what it can without blocking anyone (`PASSIVE`), then, if the WAL has
/// grown, restarts it (`RESTART`: the few frames committed meanwhile are copied while the
/// writer waits, for at most [`RESTART_PATIENCE`]). A writer that commits back to back never
/// lets a passive checkpoint catch up, and SQLite writes the WAL from its start again only
/// after one did: without the restart the WAL grows for as long as the load lasts, and every
/// commit appends to a growing file (new blocks to allocate, new page-cache pages) where it
/// would overwrite the same few megabytes, a third of the commit's cost.
struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path, busy: Duration) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(RESTART_PATIENCE.min(busy))?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let name = path.display().to_string();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    let checkpoint = |mode: &str| {
                        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                            r.get::<_, i64>(1)
                        })
                    };
                    match checkpoint("PASSIVE") {
                        Ok(frames) if frames > RESTART_AFTER_FRAMES => {
                            // Busy (a reader or the writer held on): the next round retries.
                            if let Err(error) = checkpoint("RESTART") {
                                tracing::debug!(%error, path = %name, "SQLite WAL restart put off");
                            }
                        }
                        Ok(_) => {}
                        Err(error) => {
                            tracing::warn!(%error, path = %name, "SQLite checkpoint failed");
                        }
                    }
                }
                // A last one at close, so that the WAL is small for the next start.
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            })
            .map_err(|e| io_error(path, e))?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Durability of [`Synchronous::Full`] without holding the writer during the fsync: the
/// writing connection runs with `synchronous = NORMAL` (a commit appends its frames to the
/// WAL file and returns; SQLite itself syncs the WAL before each checkpoint, the database
/// after, and the WAL's header when it starts over), and after the writer is released the
/// WAL file is `fdatasync`ed (by the [`Syncer`] for inserts, by the caller of
/// [`SqliteStore::with_writer`]) before the commit is reported done. A
/// commit's frames are written when it returns, so a sync begun after it covers it, and
/// every commit before it: one sync serves all commits made while the previous one ran
/// (group commit). With SQLite's own `FULL`, each commit fsyncs while holding the writer,
/// and nothing else is inserted meanwhile.
#[derive(Debug)]
struct WalSync {
    /// The `-wal` file beside the database, opened for each sync (it is the same file for
    /// as long as the store's connections are open, but a descriptor kept could outlive it).
    wal: PathBuf,
    /// Commits made so far, counted under the writer's lock after each one.
    committed: AtomicU64,
    /// How many of them a finished sync covered; held while syncing, so that the next
    /// caller waits for the sync in progress and then finds its commit covered or syncs
    /// all commits made meanwhile.
    synced: Mutex<u64>,
}

impl WalSync {
    fn new(database: &Path) -> WalSync {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        WalSync {
            wal: PathBuf::from(wal),
            committed: AtomicU64::new(0),
            synced: Mutex::new(0),
        }
    }

    /// Counts a commit (called holding the writer); returns its number.
    fn committed(&self) -> u64 {
        self.committed.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Returns once commit number `commit` and every one before it are on disk.
    fn sync_through(&self, commit: u64) -> Result<(), StoreError> {
        let mut synced = lock(&self.synced);
        if *synced >= commit {
            return Ok(());
        }
        let covered = self.committed.load(Ordering::SeqCst);
        let wal = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.wal)
            .map_err(|e| io_error(&self.wal, e))?;
        wal.sync_data().map_err(|e| io_error(&self.wal, e))?;
        *synced = covered;
        Ok(())
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("readers", &self.readers.len())
            .finish_non_exhaustive()
    }
}

fn io_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Runs blocking SQLite work without stalling the other tasks of a multi-threaded runtime.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// A lock that a panic elsewhere did not make unusable: SQLite's state is the database's,
/// and a transaction left open by the panic was rolled back when it was dropped.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn micros(t: Timestamp) -> i64 {
    t.as_microsecond()
}

fn timestamp(what: &'static str, micros: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_microsecond(micros).map_err(|e| StoreError::Decode {
        what,
        message: e.to_string(),
    })
}

impl SqliteStore {
    /// Opens (creating it when needed) the store, switches it to WAL mode and brings its
    /// schema up to date.
    ///
    /// # Errors
    ///
    /// The directory or file cannot be created or opened, the file is not an SQLite
    /// database, or its schema is newer than this code's.
    pub fn open(config: SqliteConfig) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        }
        let busy = Duration::from_millis(config.busy_timeout_ms);
        let mut checked = open_writer(&config.path, busy, config.synchronous)?;
        migrate(&mut checked)?;
        let inserting = open_writer(&config.path, busy, config.synchronous)?;
        inserting.execute_batch("PRAGMA ignore_check_constraints = ON")?;
        // Full durability from here on by syncing the WAL outside the writer's lock.
        let wal_sync = match config.synchronous {
            Synchronous::Full => {
                for writer in [&checked, &inserting] {
                    writer.execute_batch("PRAGMA synchronous = NORMAL")?;
                }
                Some(Arc::new(WalSync::new(&config.path)))
            }
            Synchronous::Normal => None,
        };
        let mut readers = Vec::with_capacity(config.readers.max(1));
        for _ in 0..config.readers.max(1) {
            let reader = Connection::open_with_flags(
                &config.path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            reader.busy_timeout(busy)?;
            reader.execute_batch(TUNING)?;
            readers.push(Mutex::new(reader));
        }
        let checkpointer = Checkpointer::start(&config.path, busy)?;
        tracing::info!(path = %config.path.display(), synchronous = ?config.synchronous, "SQLite store open");
        let writer = Arc::new(Mutex::new(Writers { inserting, checked }));
        let inserter = Inserter::start(&config.path, writer.clone(), wal_sync.clone())?;
        Ok(SqliteStore {
            path: config.path,
            inserter,
            writer,
            wal_sync,
            readers,
            next_reader: AtomicUsize::new(0),
            _checkpointer: checkpointer,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A reading connection: a free one if any, else the next in turn.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        for reader in &self.readers {
            if let Ok(guard) = reader.try_lock() {
                return guard;
            }
        }
        let next = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        lock(&self.readers[next])
    }

    /// Runs `work` on the writing connection (for the tables the trait does not cover:
    /// the importer's file registry, the reporter's run log, maintenance).
    ///
    /// Under [`Synchronous::Full`], what `work` committed is on disk when this returns.
    ///
    /// # Errors
    ///
    /// What `work` returns, or the WAL's sync failing.
    pub fn with_writer<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        blocking(|| {
            let (result, commit) = {
                let mut writers = lock(&self.writer);
                let result = work(&mut writers.checked);
                (result, self.wal_sync.as_ref().map(|sync| sync.committed()))
            };
            let value = result?;
            if let (Some(wal_sync), Some(commit)) = (&self.wal_sync, commit) {
                wal_sync.sync_through(commit)?;
            }
            Ok(value)
        })
    }

    /// Runs `work` on a reading connection.
    ///
    /// # Errors
    ///
    /// What `work` returns.
    pub fn with_reader<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        blocking(|| work(&self.reader()))
    }
}

/// A writing connection to `path` (creating the file if needed) in WAL mode, with the
/// store's settings.
fn open_writer(
    path: &Path,
    busy: Duration,
    synchronous: Synchronous,
) -> Result<Connection, StoreError> {
    // The store's own mutexes serialise each connection's use: SQLite's need not.
    let writer = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    writer.busy_timeout(busy)?;
    // The insert statements of each size (`insert_statements`) beside the writer's others.
    writer.set_prepared_statement_cache_capacity(32);
    // Takes effect only on a new, empty file (before WAL mode and the schema).
    writer.execute_batch(&format!("PRAGMA page_size = {NEW_DATABASE_PAGE_SIZE}"))?;
    let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), %mode, "SQLite refused WAL mode");
    }
    writer.execute_batch(&format!(
        "PRAGMA synchronous = {}; PRAGMA foreign_keys = OFF; {TUNING} \
         PRAGMA wal_autocheckpoint = 0;",
        synchronous.pragma()
    ))?;
    Ok(writer)
}

/// Applies `schema.sql` to a database older than [`SCHEMA_VERSION`], in one transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found < SCHEMA_VERSION {
        // Version 0 is an empty database: nothing to carry over.
        let rebuild_v1 = found == 1;
        if rebuild_v1 {
            tx.execute_batch(REBUILD_V1_BEFORE)?;
        }
        if found == 2 {
            tx.execute_batch(DROP_V2_LOGDATE)?;
        }
        if (2..=3).contains(&found) {
            tx.execute_batch(DROP_V3_INDEXES)?;
        }
        tx.execute_batch(SCHEMA)?;
        if rebuild_v1 {
            tx.execute_batch(REBUILD_V1_AFTER)?;
        }
        tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
        tracing::info!(from = found, to = SCHEMA_VERSION, "SQLite schema migrated");
    }
    tx.commit()?;
    Ok(())
}

/// Stored text of an optional header field.
fn text(value: &Option<loggr_core::Text>) -> Option<Cow<'_, str>> {
    value.as_deref().map(store_text)
}

/// Where a value is in [`EventRows::text`] or [`EventRows::raw`], if the event has one.
type Span = Option<Range<usize>>;

/// One event's `event` row, computed before it reaches the inserting thread.
struct EventRow {
    digest: [u8; 32],
    logtime: i64,
    received_at: i64,
    reported: bool,
    facility: u8,
    severity: u8,
    hostname: Span,
    program: Span,
    pid: Span,
    msgid: Span,
    userid: Span,
    message: Span,
    structured_data: Span,
    /// The extra info, packed ([`extra_json`]).
    fields: Span,
    raw: Span,
    /// Its tags: where they are in [`EventRows::tags`].
    tags: Range<usize>,
}

/// A batch's rows, one per event in order. Their texts are end to end in one buffer, their
/// raw bytes in another: two allocations for the batch, none per event, and nothing
/// borrowed from the events, so that the batch can go to the inserting thread.
struct EventRows {
    rows: Vec<EventRow>,
    text: String,
    raw: Vec<u8>,
    /// The tag names, in `text`.
    tags: Vec<Range<usize>>,
}

impl EventRows {
    /// The rows of `events`: their content ids, texts and JSON.
    fn of(events: &[Event]) -> Result<EventRows, StoreError> {
        let mut batch = EventRows {
            rows: Vec::with_capacity(events.len()),
            text: String::with_capacity(events.len() * 192),
            raw: Vec::with_capacity(events.len() * 224),
            tags: Vec::new(),
        };
        let mut packed = Vec::with_capacity(256);
        for event in events {
            let fields = if extra_json(event, &mut packed) {
                let json = std::str::from_utf8(&packed).map_err(|e| StoreError::Decode {
                    what: "extra info",
                    message: e.to_string(),
                })?;
                batch.push_text(Some(json))
            } else {
                None
            };
            let structured_data = structured_data_json(&event.structured_data)
                .and_then(|json| batch.push_text(Some(&String::from_utf8_lossy(&json))));
            let tags_start = batch.tags.len();
            for name in tag_names(event) {
                let span = batch.push_str(&name);
                batch.tags.push(span);
            }
            let raw = event.raw.as_deref().map(|raw| {
                let start = batch.raw.len();
                batch.raw.extend_from_slice(raw);
                start..batch.raw.len()
            });
            let row = EventRow {
                digest: event.content_id().0,
                logtime: micros(event.timestamp.unwrap_or(event.received_at)),
                received_at: micros(event.received_at),
                reported: event.timestamp.is_some(),
                facility: event.facility.code(),
                severity: event.severity.code(),
                hostname: batch.push_text(text(&event.hostname).as_deref()),
                program: batch.push_text(text(&event.app_name).as_deref()),
                pid: batch.push_text(text(&event.procid).as_deref()),
                msgid: batch.push_text(text(&event.msgid).as_deref()),
                userid: batch.push_text(userid(event).as_deref()),
                message: batch.push_text(text(&event.message).as_deref()),
                structured_data,
                fields,
                raw,
                tags: tags_start..batch.tags.len(),
            };
            batch.rows.push(row);
        }
        Ok(batch)
    }

    fn push_str(&mut self, value: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(value);
        start..self.text.len()
    }

    fn push_text(&mut self, value: Option<&str>) -> Span {
        value.map(|value| self.push_str(value))
    }

    fn text(&self, span: &Span) -> Option<&str> {
        span.clone().map(|span| &self.text[span])
    }

    /// Inserts the rows (skipping stored ones) and their tags, in `tx`'s transaction.
    ///
    /// Runs of untagged rows go in statements of up to [`ROWS_PER_INSERT`] rows; a tagged row
    /// goes alone, so that its tags get its id.
    fn insert(
        &self,
        tx: &rusqlite::Transaction<'_>,
        insert_tag: &mut rusqlite::CachedStatement<'_>,
    ) -> Result<InsertStats, StoreError> {
        let mut stats = InsertStats::default();
        let mut run_start = 0;
        for (index, row) in self.rows.iter().enumerate() {
            if row.tags.is_empty() {
                continue;
            }
            self.insert_run(tx, run_start..index, &mut stats)?;
            run_start = index + 1;
            if self.insert_run(tx, index..index + 1, &mut stats)? == 0 {
                continue;
            }
            let id = tx.last_insert_rowid();
            for name in &self.tags[row.tags.clone()] {
                insert_tag.execute(params![id, &self.text[name.clone()]])?;
            }
        }
        self.insert_run(tx, run_start..self.rows.len(), &mut stats)?;
        Ok(stats)
    }

    /// Inserts the rows in `run` in as few statements as [`insert_statements`] allows;
    /// how many were new.
    fn insert_run(
        &self,
        tx: &rusqlite::Transaction<'_>,
        run: Range<usize>,
        stats: &mut InsertStats,
    ) -> Result<u64, StoreError> {
        let mut rows = &self.rows[run];
        let mut inserted = 0;
        for (size, sql) in insert_statements() {
            while rows.len() >= *size {
                let (chunk, rest) = rows.split_at(*size);
                let mut statement = tx.prepare_cached(sql)?;
                for (index, row) in chunk.iter().enumerate() {
                    self.bind(&mut statement, index * INSERT_COLUMNS.len(), row)?;
                }
                let changed = statement.raw_execute()? as u64;
                inserted += changed;
                stats.inserted += changed;
                stats.duplicates += *size as u64 - changed;
                rows = rest;
            }
        }
        Ok(inserted)
    }

    /// Binds `row`'s values to the parameters after the first `before` ones.
    fn bind(
        &self,
        statement: &mut rusqlite::CachedStatement<'_>,
        before: usize,
        row: &EventRow,
    ) -> rusqlite::Result<()> {
        statement.raw_bind_parameter(before + 1, &row.digest[..])?;
        statement.raw_bind_parameter(before + 2, row.logtime)?;
        statement.raw_bind_parameter(before + 3, row.received_at)?;
        statement.raw_bind_parameter(before + 4, row.reported)?;
        statement.raw_bind_parameter(before + 5, row.facility)?;
        statement.raw_bind_parameter(before + 6, row.severity)?;
        statement.raw_bind_parameter(before + 7, self.text(&row.hostname))?;
        statement.raw_bind_parameter(before + 8, self.text(&row.program))?;
        statement.raw_bind_parameter(before + 9, self.text(&row.pid))?;
        statement.raw_bind_parameter(before + 10, self.text(&row.msgid))?;
        statement.raw_bind_parameter(before + 11, self.text(&row.userid))?;
        statement.raw_bind_parameter(before + 12, self.text(&row.message))?;
        statement.raw_bind_parameter(before + 13, self.text(&row.structured_data))?;
        statement.raw_bind_parameter(before + 14, row.raw.clone().map(|span| &self.raw[span]))?;
        statement.raw_bind_parameter(before + 15, self.text(&row.fields))
    }
}

/// Inserts `batches` in one transaction; their stats in order.
fn insert_group(
    conn: &mut Connection,
    batches: &[&EventRows],
) -> Result<Vec<InsertStats>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut stats = Vec::with_capacity(batches.len());
    {
        let mut insert_tag = tx.prepare_cached(INSERT_TAG)?;
        for batch in batches {
            stats.push(batch.insert(&tx, &mut insert_tag)?);
        }
    }
    tx.commit()?;
    Ok(stats)
}

/// What the inserting thread answers: the batch's stats, once committed (and synced, under
/// [`Synchronous::Full`]).
type InsertReply = Result<InsertStats, StoreError>;

/// Where a batch's answer goes, and the answer.
type Answer = (tokio::sync::oneshot::Sender<InsertReply>, InsertReply);

/// Commits waiting for the WAL's sync: the number of the last one
/// ([`WalSync::committed`]), and their batches' answers.
type Committed = (u64, Vec<Answer>);

/// The thread that syncs the WAL after the inserting thread's commits and then answers
/// their batches (under [`Synchronous::Full`]): the inserting thread goes on with the next
/// batches meanwhile, and one sync covers every commit made while the previous one ran.
/// The callers only wait for their answer: no Tokio worker blocks on a sync.
struct Syncer {
    committed: std::sync::mpsc::Sender<Committed>,
}

impl Syncer {
    fn start(path: &Path, wal_sync: Arc<WalSync>) -> Result<(Syncer, JoinHandle), StoreError> {
        let (committed, waiting) = std::sync::mpsc::channel::<Committed>();
        let thread = std::thread::Builder::new()
            .name("sqlite-sync".into())
            .spawn(move || {
                while let Ok((mut through, mut answers)) = waiting.recv() {
                    while let Ok((number, more)) = waiting.try_recv() {
                        through = through.max(number);
                        answers.extend(more);
                    }
                    let synced = wal_sync.sync_through(through);
                    for (reply, answer) in answers {
                        let answer = match (&synced, answer) {
                            (Err(StoreError::Io { path, source }), Ok(_)) => Err(StoreError::Io {
                                path: path.clone(),
                                source: std::io::Error::new(source.kind(), source.to_string()),
                            }),
                            (Err(error), Ok(_)) => Err(StoreError::Task(error.to_string())),
                            (_, answer) => answer,
                        };
                        let _ = reply.send(answer);
                    }
                }
            })
            .map_err(|e| io_error(path, e))?;
        Ok((Syncer { committed }, thread))
    }
}

type JoinHandle = std::thread::JoinHandle<()>;

/// A batch for the inserting thread, and where its answer goes.
struct InsertRequest {
    rows: EventRows,
    reply: tokio::sync::oneshot::Sender<InsertReply>,
}

/// Events the inserting thread puts in one transaction at most (whole batches: one batch
/// larger than this goes alone).
const GROUP_EVENTS: usize = 20_000;

/// The thread that inserts [`Store::insert`]'s batches: it takes every batch waiting (up to
/// [`GROUP_EVENTS`]) and inserts them in one transaction, then answers each. When that
/// transaction fails, it inserts each batch in a transaction of its own, so that one batch
/// that cannot be stored does not fail the others.
struct Inserter {
    requests: Option<std::sync::mpsc::Sender<InsertRequest>>,
    thread: Option<JoinHandle>,
    /// The [`Syncer`]'s thread, under [`Synchronous::Full`]: it stops after the
    /// inserting thread, which hands it its last commits.
    syncer: Option<JoinHandle>,
}

impl Inserter {
    fn start(
        path: &Path,
        writer: Arc<Mutex<Writers>>,
        wal_sync: Option<Arc<WalSync>>,
    ) -> Result<Inserter, StoreError> {
        let (requests, waiting) = std::sync::mpsc::channel::<InsertRequest>();
        let (syncer, syncer_thread) = match &wal_sync {
            Some(wal_sync) => {
                let (syncer, thread) = Syncer::start(path, wal_sync.clone())?;
                (Some(syncer), Some(thread))
            }
            None => (None, None),
        };
        let commit = move |conn: &mut Connection, batches: &[&EventRows]| {
            let stats = insert_group(conn, batches)?;
            Ok::<_, StoreError>((stats, wal_sync.as_ref().map_or(0, |sync| sync.committed())))
        };
        // Answers committed batches: through the syncer when there is one.
        let answer =
            move |last_commit: Option<u64>, answers: Vec<Answer>| match (&syncer, last_commit) {
                (Some(syncer), Some(number)) => {
                    if let Err(std::sync::mpsc::SendError((_, answers))) =
                        syncer.committed.send((number, answers))
                    {
                        for (reply, _) in answers {
                            let _ = reply.send(Err(StoreError::Task(
                                "the SQLite syncing thread stopped".into(),
                            )));
                        }
                    }
                }
                _ => {
                    for (reply, answer) in answers {
                        let _ = reply.send(answer);
                    }
                }
            };
        let thread = std::thread::Builder::new()
            .name("sqlite-insert".into())
            .spawn(move || {
                while let Ok(first) = waiting.recv() {
                    let mut group = vec![first];
                    let mut events = group[0].rows.rows.len();
                    while events < GROUP_EVENTS {
                        let Ok(next) = waiting.try_recv() else { break };
                        events += next.rows.rows.len();
                        group.push(next);
                    }
                    let mut writers = lock(&writer);
                    let conn = &mut writers.inserting;
                    let batches: Vec<&EventRows> = group.iter().map(|r| &r.rows).collect();
                    let result = commit(conn, &batches);
                    match result {
                        Ok((stats, number)) => {
                            drop(writers);
                            let answers = group
                                .into_iter()
                                .zip(stats)
                                .map(|(request, stats)| (request.reply, Ok(stats)))
                                .collect();
                            answer(Some(number), answers);
                        }
                        Err(error) if group.len() == 1 => {
                            drop(writers);
                            if let Some(request) = group.pop() {
                                let _ = request.reply.send(Err(error));
                            }
                        }
                        Err(_) => {
                            let mut last_commit = None;
                            let mut answers = Vec::with_capacity(group.len());
                            for request in group {
                                let result =
                                    commit(conn, &[&request.rows]).map(|(mut stats, number)| {
                                        last_commit = Some(number);
                                        stats.remove(0)
                                    });
                                answers.push((request.reply, result));
                            }
                            drop(writers);
                            answer(last_commit, answers);
                        }
                    }
                }
            })
            .map_err(|e| io_error(path, e))?;
        Ok(Inserter {
            requests: Some(requests),
            thread: Some(thread),
            syncer: syncer_thread,
        })
    }

    /// Hands `rows` to the thread; their answer comes on the returned receiver.
    fn submit(
        &self,
        rows: EventRows,
    ) -> Result<tokio::sync::oneshot::Receiver<InsertReply>, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.requests
            .as_ref()
            .and_then(|requests| requests.send(InsertRequest { rows, reply }).ok())
            .ok_or_else(|| StoreError::Task("the SQLite inserting thread stopped".into()))?;
        Ok(answer)
    }
}

impl Drop for Inserter {
    fn drop(&mut self) {
        drop(self.requests.take());
        for thread in [self.thread.take(), self.syncer.take()]
            .into_iter()
            .flatten()
        {
            let _ = thread.join();
        }
    }
}

/// The statement and parameters listing `limit` events matching `filter`, newest first.
fn list_statement(filter: &EventFilter, limit: u32) -> (String, Vec<SqlValue>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut values: Vec<SqlValue> = Vec::new();
    let mut push = |clause: &str, value: SqlValue| {
        values.push(value);
        clauses.push(clause.replace("?#", &format!("?{}", values.len())));
    };
    if let Some(t) = filter.from {
        push("e.logtime >= ?#", SqlValue::Integer(micros(t)));
    }
    if let Some(t) = filter.to {
        push("e.logtime < ?#", SqlValue::Integer(micros(t)));
    }
    if let Some(host) = &filter.host {
        push("e.hostname = ?#", SqlValue::Text(host.clone()));
    }
    if let Some(program) = &filter.program {
        push("e.program = ?#", SqlValue::Text(program.clone()));
    }
    if let Some(severity) = filter.severity {
        push("e.severity <= ?#", SqlValue::Integer(i64::from(severity)));
    }
    if let Some(tag) = &filter.tag {
        push(
            "EXISTS (SELECT 1 FROM tag t WHERE t.event = e.id AND t.name = ?#)",
            SqlValue::Text(tag.clone()),
        );
    }
    if let Some(text) = &filter.text {
        push(
            "e.message LIKE ?# ESCAPE '\\'",
            SqlValue::Text(contains_pattern(text)),
        );
    }
    if let Some((t, id)) = filter.cursor {
        values.push(SqlValue::Integer(micros(t)));
        values.push(SqlValue::Integer(id));
        clauses.push(format!(
            "(e.logtime, e.id) < (?{}, ?{})",
            values.len() - 1,
            values.len()
        ));
    }
    values.push(SqlValue::Integer(i64::from(limit)));
    let where_ = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let sql = format!(
        "SELECT {LIST_COLUMNS} FROM event e {where_} ORDER BY e.logtime DESC, e.id DESC LIMIT ?{}",
        values.len()
    );
    (sql, values)
}

fn summary(conn: &Connection, row: &rusqlite::Row<'_>) -> Result<EventSummary, StoreError> {
    let id: i64 = row.get("id")?;
    let tags = conn
        .prepare_cached(SELECT_TAGS)?
        .query_map([id], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EventSummary {
        id,
        logtime: timestamp("logtime", row.get("logtime")?)?,
        received_at: timestamp("received_at", row.get("received_at")?)?,
        hostname: row.get("hostname")?,
        program: row.get("program")?,
        pid: row.get("pid")?,
        facility: row.get("facility")?,
        severity: row.get("severity")?,
        message: row.get("message")?,
        tags,
    })
}

fn list(
    conn: &Connection,
    filter: &EventFilter,
    limit: u32,
) -> Result<Vec<EventSummary>, StoreError> {
    let (sql, values) = list_statement(filter, limit);
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(rusqlite::params_from_iter(values))?;
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        events.push(summary(conn, row)?);
    }
    Ok(events)
}

fn detail(conn: &Connection, id: i64) -> Result<Option<EventDetail>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {LIST_COLUMNS}, e.digest, date(e.logtime / 1000000, 'unixepoch') AS logdate, \
         e.reported, e.msgid, e.userid, e.structured_data, e.raw FROM event e WHERE e.id = ?1"
    ))?;
    let mut rows = statement.query([id])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let structured_data = row
        .get::<_, Option<String>>("structured_data")?
        .map(|json| serde_json::from_str::<serde_json::Value>(&json))
        .transpose()
        .map_err(|e| StoreError::Decode {
            what: "structured_data",
            message: e.to_string(),
        })?;
    let extra = conn
        .prepare_cached("SELECT name, val FROM extra_info WHERE event = ?1 ORDER BY name, val")?
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(EventDetail {
        summary: summary(conn, row)?,
        digest: row.get("digest")?,
        logdate: row.get("logdate")?,
        reported: row.get("reported")?,
        msgid: row.get("msgid")?,
        userid: row.get("userid")?,
        structured_data,
        raw: row.get("raw")?,
        extra,
    }))
}

fn status(conn: &Connection, window: Duration) -> Result<StoreStatus, StoreError> {
    let events: i64 = conn.query_row("SELECT count(*) FROM event", [], |r| r.get(0))?;
    let newest: Option<i64> = conn
        .query_row("SELECT max(logtime) FROM event", [], |r| r.get(0))
        .optional()?
        .flatten();
    let since =
        micros(Timestamp::now()).saturating_sub(window.as_micros().try_into().unwrap_or(i64::MAX));
    let recent: i64 = conn.query_row(
        "SELECT count(*) FROM event WHERE logtime >= ?1",
        [since],
        |r| r.get(0),
    )?;
    Ok(StoreStatus {
        events,
        recent,
        newest: newest.map(|m| timestamp("logtime", m)).transpose()?,
    })
}

// ---- The reporter's operations (see `crate::report`). ----

/// `event e`'s rows with any of some tags.
const TAG_FILTER: &str = "EXISTS (SELECT 1 FROM tag t WHERE t.event = e.id AND t.name IN (";

/// Events older than `?1` that still hold personal data.
const OLD_WITH_DATA: &str = "logtime < ?1 AND \
    (raw IS NOT NULL OR userid IS NOT NULL OR (message IS NOT NULL AND message <> ''))";
const COUNT_OLD_FIELDS: &str =
    "SELECT count(*) FROM extra_info WHERE event IN (SELECT id FROM event WHERE logtime < ?1)";
const DELETE_OLD_FIELDS: &str =
    "UPDATE event SET fields = NULL WHERE logtime < ?1 AND fields IS NOT NULL";

/// `?N, ?N+1, …` for `count` parameters after `before` of them.
fn placeholders(before: usize, count: usize) -> String {
    (before + 1..=before + count)
        .map(|n| format!("?{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `WHERE` clause over `event e` of a selection and its parameters (from `?1`).
fn selection_filter(selection: &Selection) -> (String, Vec<SqlValue>) {
    let mut sql = String::from("e.logtime >= ?1 AND e.logtime < ?2");
    let mut values = vec![
        SqlValue::Integer(micros(selection.start)),
        SqlValue::Integer(micros(selection.end)),
    ];
    if let Some(program) = &selection.program {
        values.push(SqlValue::Text(program.clone()));
        sql.push_str(&format!(" AND e.program = ?{}", values.len()));
    }
    if !selection.tags.is_empty() {
        sql.push_str(&format!(
            " AND {TAG_FILTER}{}))",
            placeholders(values.len(), selection.tags.len())
        ));
        values.extend(selection.tags.iter().cloned().map(SqlValue::Text));
    }
    (sql, values)
}

fn report_events(
    conn: &Connection,
    selection: &Selection,
    limit: u32,
) -> Result<(Vec<ReportEvent>, u64), StoreError> {
    // One snapshot for the count and the rows.
    let tx = conn.unchecked_transaction()?;
    let (filter, mut values) = selection_filter(selection);
    let total: i64 = tx
        .prepare_cached(&format!("SELECT count(*) FROM event e WHERE {filter}"))?
        .query_row(rusqlite::params_from_iter(values.iter()), |r| r.get(0))?;
    values.push(SqlValue::Integer(i64::from(limit)));
    let sql = format!(
        "SELECT e.id, e.logtime, e.hostname, e.program, e.pid, e.severity, e.facility, \
         e.userid, e.message FROM event e WHERE {filter} ORDER BY {} LIMIT ?{}",
        selection.order_by.sql(),
        values.len()
    );
    let mut events = Vec::new();
    {
        let mut statement = tx.prepare_cached(&sql)?;
        let mut rows = statement.query(rusqlite::params_from_iter(values))?;
        let mut tags = tx.prepare_cached(SELECT_TAGS)?;
        let mut fields = tx.prepare_cached(
            "SELECT name, val FROM extra_info WHERE event = ?1 ORDER BY name, seq",
        )?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let mut event = ReportEvent {
                id,
                logtime: timestamp("logtime", row.get(1)?)?,
                hostname: row.get(2)?,
                program: row.get(3)?,
                pid: row.get(4)?,
                severity: row.get(5)?,
                facility: row.get(6)?,
                userid: row.get(7)?,
                message: row.get(8)?,
                tags: tags
                    .query_map([id], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?,
                fields: std::collections::BTreeMap::new(),
            };
            let mut values = fields.query([id])?;
            while let Some(value) = values.next()? {
                event
                    .fields
                    .entry(value.get(0)?)
                    .or_default()
                    .push(value.get(1)?);
            }
            events.push(event);
        }
    }
    Ok((events, u64::try_from(total).unwrap_or_default()))
}

fn tag_host_counts(
    conn: &Connection,
    selection: &Selection,
) -> Result<Vec<TagHostCount>, StoreError> {
    if selection.tags.is_empty() {
        return Ok(Vec::new());
    }
    let (filter, mut values) = selection_filter(&selection.without_tags());
    let tags = placeholders(values.len(), selection.tags.len());
    values.extend(selection.tags.iter().cloned().map(SqlValue::Text));
    let sql = format!(
        "SELECT t.name, e.hostname, count(*) FROM tag t JOIN event e ON e.id = t.event \
         WHERE t.name IN ({tags}) AND {filter} GROUP BY t.name, e.hostname"
    );
    let mut counts = conn
        .prepare_cached(&sql)?
        .query_map(rusqlite::params_from_iter(values), |r| {
            Ok(TagHostCount {
                tag: r.get(0)?,
                host: r.get(1)?,
                count: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    crate::report::sort_tag_host_counts(&mut counts);
    Ok(counts)
}

/// PostgreSQL's one `GROUPING SETS` pass as three `GROUP BY`s, in one snapshot.
fn auth_counts(conn: &Connection, selection: &Selection) -> Result<AuthCounts, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let (filter, values) = selection_filter(selection);
    let group = |key: &str| -> Result<Vec<(Option<String>, i64)>, StoreError> {
        let sql = format!("SELECT {key} AS k, count(*) FROM event e WHERE {filter} GROUP BY k");
        let rows = tx
            .prepare_cached(&sql)?
            .query_map(rusqlite::params_from_iter(values.iter()), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    };
    let mut counts = AuthCounts {
        users: group("e.userid")?,
        targets: group("e.hostname")?,
        sources: group(
            "(SELECT x.val FROM extra_info x WHERE x.event = e.id \
             AND x.name = 'source_address' ORDER BY x.seq LIMIT 1)",
        )?,
    };
    counts.sort();
    Ok(counts)
}

fn last_run(conn: &Connection, name: &str, period: &str) -> Result<Option<Timestamp>, StoreError> {
    conn.prepare_cached("SELECT last_run FROM report_run WHERE name = ?1 AND period = ?2")?
        .query_row(params![name, period], |r| r.get::<_, i64>(0))
        .optional()?
        .map(|m| timestamp("last_run", m))
        .transpose()
}

fn record_run(
    conn: &Connection,
    name: &str,
    period: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO report_run (name, period, last_run) VALUES (?1, ?2, ?3) \
         ON CONFLICT (name, period) DO UPDATE SET last_run = excluded.last_run",
    )?
    .execute(params![name, period, micros(at)])?;
    Ok(())
}

fn count_anonymise(conn: &Connection, before: Timestamp) -> Result<AnonymiseCounts, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let events: i64 = tx.query_row(
        &format!("SELECT count(*) FROM event WHERE {OLD_WITH_DATA}"),
        [micros(before)],
        |r| r.get(0),
    )?;
    let extra_info: i64 = tx.query_row(COUNT_OLD_FIELDS, [micros(before)], |r| r.get(0))?;
    Ok(AnonymiseCounts {
        events: u64::try_from(events).unwrap_or_default(),
        extra_info: u64::try_from(extra_info).unwrap_or_default(),
    })
}

fn anonymise(conn: &mut Connection, before: Timestamp) -> Result<AnonymiseCounts, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let events = tx.execute(
        &format!("UPDATE event SET raw = NULL, message = '', userid = NULL WHERE {OLD_WITH_DATA}"),
        [micros(before)],
    )?;
    // The values, not the packed rows, as PostgreSQL counts its `extra_info` rows.
    let extra_info: i64 = tx.query_row(COUNT_OLD_FIELDS, [micros(before)], |r| r.get(0))?;
    tx.execute(DELETE_OLD_FIELDS, [micros(before)])?;
    tx.commit()?;
    Ok(AnonymiseCounts {
        events: events as u64,
        extra_info: u64::try_from(extra_info).unwrap_or_default(),
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn insert(&self, events: &[Event]) -> Result<InsertStats, StoreError> {
        let rows = EventRows::of(events)?;
        let answer = self.inserter.submit(rows)?;
        answer.await.map_err(|_| {
            StoreError::Task("the SQLite inserting thread stopped before answering".into())
        })?
    }

    async fn events(
        &self,
        filter: &EventFilter,
        limit: u32,
    ) -> Result<Vec<EventSummary>, StoreError> {
        self.with_reader(|conn| list(conn, filter, limit))
    }

    async fn event(&self, id: i64) -> Result<Option<EventDetail>, StoreError> {
        self.with_reader(|conn| detail(conn, id))
    }

    async fn status(&self, window: Duration) -> Result<StoreStatus, StoreError> {
        self.with_reader(|conn| status(conn, window))
    }

    async fn report_events(
        &self,
        selection: &Selection,
        limit: u32,
    ) -> Result<(Vec<ReportEvent>, u64), StoreError> {
        self.with_reader(|conn| report_events(conn, selection, limit))
    }

    async fn tag_host_counts(
        &self,
        selection: &Selection,
    ) -> Result<Vec<TagHostCount>, StoreError> {
        self.with_reader(|conn| tag_host_counts(conn, selection))
    }

    async fn auth_counts(&self, selection: &Selection) -> Result<AuthCounts, StoreError> {
        self.with_reader(|conn| auth_counts(conn, selection))
    }

    async fn last_run(&self, name: &str, period: &str) -> Result<Option<Timestamp>, StoreError> {
        self.with_reader(|conn| last_run(conn, name, period))
    }

    async fn record_run(&self, name: &str, period: &str, at: Timestamp) -> Result<(), StoreError> {
        self.with_writer(|conn| record_run(conn, name, period, at))
    }

    async fn anonymise(
        &self,
        before: Timestamp,
        dryrun: bool,
    ) -> Result<AnonymiseCounts, StoreError> {
        if dryrun {
            return self.with_reader(|conn| count_anonymise(conn, before));
        }
        let counts = self.with_writer(|conn| anonymise(conn, before))?;
        tracing::info!(%before, events = counts.events, extra_info = counts.extra_info, "Anonymised old events");
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(contains_pattern(r"50%_off\"), r"%50\%\_off\\%");
    }

    #[test]
    fn every_filter_is_a_parameter() {
        let filter = EventFilter {
            host: Some("x' OR 1=1 --".into()),
            tag: Some("t".into()),
            text: Some("q".into()),
            severity: Some(3),
            cursor: Some((Timestamp::UNIX_EPOCH, 7)),
            ..EventFilter::default()
        };
        let (sql, values) = list_statement(&filter, 51);
        assert!(!sql.contains("OR 1=1"), "{sql}");
        assert_eq!(values.len(), 7);
        assert!(sql.ends_with("LIMIT ?7"), "{sql}");
    }

    /// The query plan of the list for `filter`, one line per step.
    fn list_plan(conn: &Connection, filter: &EventFilter) -> String {
        let (sql, values) = list_statement(filter, 50);
        let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let steps = statement
            .query_map(rusqlite::params_from_iter(values), |row| {
                row.get::<_, String>(3)
            })
            .unwrap();
        steps.collect::<Result<Vec<_>, _>>().unwrap().join("\n")
    }

    #[test]
    fn newest_first_pages_and_time_ranges_read_the_time_ordered_unique_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        let filters = [
            EventFilter::default(),
            EventFilter {
                cursor: Some((at, 7)),
                ..EventFilter::default()
            },
            EventFilter {
                from: Some(at),
                to: Some(at),
                ..EventFilter::default()
            },
        ];
        for filter in filters {
            let plan = list_plan(&conn, &filter);
            // Read in time order from the index: only ties of one microsecond are sorted,
            // never the whole table (no full scan, no `USE TEMP B-TREE FOR ORDER BY`).
            assert!(
                plan.contains("USING INDEX event_logtime_digest_idx")
                    && !plan.contains("TEMP B-TREE FOR ORDER BY"),
                "{filter:?}: {plan}"
            );
        }
    }
}
