//! The `files` source: imports the log files found under directory trees, each content once
//! (BuzzSaw's `DataSource::Files`, done better).
//!
//! # What it does
//!
//! 1. **Finds** regular, non-empty files under `directories` (recursively by default) whose
//!    name matches one of the `names` globs or `name_regex` regular expressions, plus the
//!    explicit `files`; skips those over `size_limit`; orders them by `order_by` (`random` by
//!    default, so several importers on one tree mostly take different files).
//! 2. **Identifies** each by the SHA-256 of its *decompressed* content
//!    ([`decode::examine_file`]): a renamed, copied or recompressed file is the same file.
//!    Compression (gzip, bzip2, zstd, xz, or none) is detected from the content's magic
//!    number, not the name.
//! 3. **Claims** it in the [`ledger`]: skipped if that content was imported before
//!    (unless `readall`), or if another importer holds a fresh lock on it.
//! 4. **Reads** its lines, parsing each with `format` (a line that does not parse is kept,
//!    tagged `_parse_failure`, unless `on_parse_error = "drop"`; a line over `max_line_bytes`
//!    is cut and tagged `_truncated`). A file up to 8 MiB decompressed is read from the
//!    content kept when it was identified (decompressed and hashed once); a bigger one is
//!    read again, streaming, in constant memory. Either way each batch of lines is copied
//!    into a buffer of its own, which its events' fields slice. Every event of
//!    the file carries a token of **one acknowledgement group**. If the file changed after it
//!    was identified (its size or modification time differ, or a streamed content no longer
//!    has the digest it was claimed with), it fails (and is imported on a later run).
//! 5. **Records** the file in the ledger only when every one of its events was committed by
//!    every sink; otherwise it releases the lock, and the file fails (a rerun imports it; lines
//!    already stored are not stored twice, as sinks such as `postgres` are idempotent on the
//!    event's content id).
//!
//! Each event's `received_at` is the file's modification time (when its last line was
//! written), which also anchors year-less RFC 3164 timestamps: reading the same file again,
//! next year or after a rename, gives the same events and content ids.
//!
//! The source returns when every file was handled, with an error if any could not be read or
//! delivered (after the others were imported). [`FilesSource::progress`] gives live counts.
//!
//! ```toml
//! [[sources]]
//! type = "files"
//! directories = ["/var/log/archive"]
//! names = ["messages*", "*.log", "*.log.*"]
//! format = "auto"
//! ledger = { type = "postgres", url = "postgresql://loggr@127.0.0.1/loggr", stale_after = "1h" }
//! ```

pub mod decode;
pub mod discover;
pub mod ledger;
#[cfg(feature = "sqlite")]
pub mod sqlite_ledger;

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::stream::{FuturesUnordered, StreamExt};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use loggr_core::ack::{AckGroup, Outcome};
use loggr_core::syslog::{Format, SyslogOptions};
use loggr_core::{
    async_trait, BoxError, BuildContext, Emitter, Envelope, FailurePolicy, ParseContext, Source,
    SourceConfig, SourceContext, SourceError, Text, Timestamp,
};

use crate::ingest::{FrameParser, InputFormat};
use decode::{ContentDigest, HashingWriter, LineSplitter};
use discover::{Candidate, OrderBy, Selection};
use ledger::{Claim, FileLedger, LedgerConfig};

/// Configuration of the `files` source.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// The trees to walk.
    #[serde(default)]
    pub directories: Vec<PathBuf>,
    /// Shell globs (`*`, `?`, `[…]`, `{a,b}`) a file's name must match (one of them); with
    /// `name_regex` empty too, every file matches.
    #[serde(default)]
    pub names: Vec<String>,
    /// Regular expressions, searched in the file's name (anchor them with `^…$`).
    #[serde(default)]
    pub name_regex: Vec<String>,
    /// Whether to descend into subdirectories (default true).
    #[serde(default = "yes")]
    pub recursive: bool,
    /// Skip files larger than this many bytes on disk.
    #[serde(default)]
    pub size_limit: Option<u64>,
    /// `random` (default), `name_asc`, `name_desc`, `size_asc`, `size_desc`.
    #[serde(default)]
    pub order_by: OrderBy,
    /// Files to import in addition to those found under `directories`.
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// Import files even if their content was imported before (stored lines are still not
    /// stored twice by idempotent sinks).
    #[serde(default)]
    pub readall: bool,
    /// Where imported files and locks are recorded: `{ type = "postgres", url = "…",
    /// stale_after = "1h" }` or `{ type = "memory" }` (this run only).
    pub ledger: LedgerConfig,
    /// The line format: `auto` (default), `rfc3339`, `rfc3164`, `rfc5424`, `json` or `raw`.
    #[serde(default)]
    pub format: InputFormat,
    /// Parser options (`year`, `timezone`, …).
    #[serde(default)]
    pub syslog: SyslogOptions,
    /// `keep` (default: the line becomes the message, tagged `_parse_failure`) or `drop`.
    #[serde(default)]
    pub on_parse_error: FailurePolicy,
    /// Longest line, in bytes; longer lines are cut and tagged `_truncated` (default 64 KiB).
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Lines handed on together (default 1024).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Files read but whose events are not all committed yet, at most (default 4).
    #[serde(default = "default_window")]
    pub window: usize,
    /// A field to hold each event's file path (none by default: the field would be stored
    /// with every event).
    #[serde(default)]
    pub path_field: Option<String>,
}

fn yes() -> bool {
    true
}
fn default_max_line_bytes() -> usize {
    64 * 1024
}
fn default_batch_size() -> usize {
    1024
}
fn default_window() -> usize {
    4
}

impl FilesConfig {
    /// A configuration for these directories with an in-memory ledger and defaults elsewhere.
    pub fn new(directories: Vec<PathBuf>) -> Self {
        FilesConfig {
            directories,
            names: Vec::new(),
            name_regex: Vec::new(),
            recursive: true,
            size_limit: None,
            order_by: OrderBy::default(),
            files: Vec::new(),
            readall: false,
            ledger: LedgerConfig::Memory,
            format: InputFormat::Syslog(Format::Auto),
            syslog: SyslogOptions::default(),
            on_parse_error: FailurePolicy::Keep,
            max_line_bytes: default_max_line_bytes(),
            batch_size: default_batch_size(),
            window: default_window(),
            path_field: None,
        }
    }
}

/// Live counts of an import, for progress displays and summaries.
#[derive(Debug, Default)]
pub struct ImportProgress {
    /// Files found (after name and size selection).
    pub files_found: AtomicU64,
    /// Their total size on disk.
    pub bytes_found: AtomicU64,
    /// Files imported and recorded.
    pub files_accepted: AtomicU64,
    /// Files skipped: content imported before, or being imported by another importer.
    pub files_skipped: AtomicU64,
    /// Files (or directories) that could not be read, or whose events were not all delivered.
    pub files_failed: AtomicU64,
    /// Files whose import was interrupted by a shutdown (not recorded: the next run does them).
    pub files_interrupted: AtomicU64,
    /// Size on disk of the files handled so far (accepted, skipped or failed).
    pub bytes_done: AtomicU64,
    /// Lines read.
    pub lines: AtomicU64,
    /// Set when the walk is over and every file was handled.
    pub finished: AtomicBool,
}

/// A copy of [`ImportProgress`]'s counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgressSnapshot {
    /// See [`ImportProgress::files_found`].
    pub files_found: u64,
    /// See [`ImportProgress::bytes_found`].
    pub bytes_found: u64,
    /// See [`ImportProgress::files_accepted`].
    pub files_accepted: u64,
    /// See [`ImportProgress::files_skipped`].
    pub files_skipped: u64,
    /// See [`ImportProgress::files_failed`].
    pub files_failed: u64,
    /// See [`ImportProgress::files_interrupted`].
    pub files_interrupted: u64,
    /// See [`ImportProgress::bytes_done`].
    pub bytes_done: u64,
    /// See [`ImportProgress::lines`].
    pub lines: u64,
    /// See [`ImportProgress::finished`].
    pub finished: bool,
}

impl ImportProgress {
    /// The counts now.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ProgressSnapshot {
            files_found: get(&self.files_found),
            bytes_found: get(&self.bytes_found),
            files_accepted: get(&self.files_accepted),
            files_skipped: get(&self.files_skipped),
            files_failed: get(&self.files_failed),
            files_interrupted: get(&self.files_interrupted),
            bytes_done: get(&self.bytes_done),
            lines: get(&self.lines),
            finished: self.finished.load(Ordering::Acquire),
        }
    }

    fn add(counter: &AtomicU64, count: u64) {
        counter.fetch_add(count, Ordering::Relaxed);
    }
}

/// Imports files; see the [module documentation](self).
pub struct FilesSource {
    selection: Selection,
    readall: bool,
    ledger: Arc<dyn FileLedger>,
    heartbeat_interval: Duration,
    format: InputFormat,
    syslog: SyslogOptions,
    on_parse_error: FailurePolicy,
    max_line_bytes: usize,
    batch_size: usize,
    window: usize,
    path_field: Option<Text>,
    progress: Arc<ImportProgress>,
    /// [`KEEP_CONTENT_UP_TO`] (tests lower it to take the streaming path).
    keep_content_up_to: usize,
}

impl std::fmt::Debug for FilesSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilesSource")
            .field("selection", &self.selection)
            .field("readall", &self.readall)
            .finish_non_exhaustive()
    }
}

impl FilesSource {
    /// The source a configuration describes.
    ///
    /// # Errors
    ///
    /// An invalid name pattern, or a parser that cannot be built (a bad time zone).
    pub fn new(config: FilesConfig) -> Result<Self, BoxError> {
        let selection = Selection::new(
            config.directories,
            &config.names,
            &config.name_regex,
            config.files,
        )?
        .recursive(config.recursive)
        .size_limit(config.size_limit)
        .order_by(config.order_by);
        // Fail now on a bad time zone rather than when the first file is read.
        config.format.parser(&config.syslog)?;
        let heartbeat_interval = config.ledger.heartbeat_interval();
        Ok(FilesSource {
            selection,
            readall: config.readall,
            ledger: Arc::from(config.ledger.build()),
            heartbeat_interval,
            format: config.format,
            syslog: config.syslog,
            on_parse_error: config.on_parse_error,
            max_line_bytes: config.max_line_bytes,
            batch_size: config.batch_size.max(1),
            window: config.window.max(1),
            path_field: config.path_field.map(Text::from),
            progress: Arc::default(),
            keep_content_up_to: KEEP_CONTENT_UP_TO,
        })
    }

    /// Uses this ledger instead of the configured one.
    #[must_use]
    pub fn with_ledger(mut self, ledger: Arc<dyn FileLedger>) -> Self {
        self.ledger = ledger;
        self
    }

    /// Live counts of this source's import.
    pub fn progress(&self) -> Arc<ImportProgress> {
        self.progress.clone()
    }
}

/// The largest decompressed content kept in memory between examining a file and reading its
/// lines: a file up to this size is decompressed and hashed once; a bigger one is streamed
/// twice (once to identify it, once to read it), in constant memory.
const KEEP_CONTENT_UP_TO: usize = 8 << 20;

/// A file's size and modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: std::time::SystemTime,
}

impl FileStamp {
    /// `None` when the file cannot be examined (or its system gives no modification time).
    fn of(path: &std::path::Path) -> Option<FileStamp> {
        let meta = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            len: meta.len(),
            modified: meta.modified().ok()?,
        })
    }
}

/// A file read whose events' outcome is awaited.
struct Pending {
    name: String,
    digest: ContentDigest,
    size: u64,
}

/// Why reading a claimed file stopped early.
enum ReadError {
    Io(io::Error),
    /// The content differs from what was claimed.
    Changed,
    /// Shutdown, or the pipeline closed.
    Interrupted,
}

#[async_trait]
impl Source for FilesSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let this = *self;
        let progress = this.progress.clone();
        let selection = this.selection.clone();
        let (candidates, errors) = tokio::task::spawn_blocking(move || selection.find())
            .await
            .map_err(|error| SourceError::other(format!("walking the directories: {error}")))?;
        for (path, error) in &errors {
            tracing::error!(source = cx.name(), path = %path.display(), %error, "Cannot read");
        }
        ImportProgress::add(&progress.files_failed, errors.len() as u64);
        ImportProgress::add(&progress.files_found, candidates.len() as u64);
        ImportProgress::add(
            &progress.bytes_found,
            candidates.iter().map(|c| c.size).sum(),
        );
        tracing::info!(
            source = cx.name(),
            files = candidates.len(),
            "Found the files to import"
        );

        let parser = this
            .format
            .parser(&this.syslog)
            .map_err(|error| SourceError::other(format!("building the parser: {error}")))?;
        let frames = Arc::new(FrameParser::new(
            parser,
            this.on_parse_error,
            cx.emitter().metrics().clone(),
        ));

        // Locks held, refreshed in the background so that a long import's lock never looks
        // stale to the other importers.
        let claimed: Arc<Mutex<HashSet<ContentDigest>>> = Arc::default();
        let heartbeat = tokio::spawn(heartbeat(
            this.ledger.clone(),
            claimed.clone(),
            this.heartbeat_interval,
        ));

        let mut pending = FuturesUnordered::new();
        for candidate in candidates {
            if cx.shutdown().is_cancelled() {
                break;
            }
            while pending.len() >= this.window {
                if let Some((file, outcome)) = pending.next().await {
                    this.settle(&cx, &claimed, file, outcome).await;
                }
            }
            while let Some(Some((file, outcome))) = pending.now_or_never_ready() {
                this.settle(&cx, &claimed, file, outcome).await;
            }
            if let Some((file, waiter)) = this.import(&cx, &frames, &claimed, candidate).await {
                pending.push(async move { (file, waiter.await) });
            }
        }
        while !pending.is_empty() {
            tokio::select! {
                Some((file, outcome)) = pending.next() => this.settle(&cx, &claimed, file, outcome).await,
                () = cx.abort().cancelled() => break,
            }
        }
        // Files whose outcome is unknown (aborted): not recorded, locks released.
        let abandoned: Vec<ContentDigest> = lock(&claimed).drain().collect();
        for digest in &abandoned {
            ImportProgress::add(&progress.files_interrupted, 1);
            if let Err(error) = this.ledger.release(digest).await {
                tracing::warn!(source = cx.name(), %error, "Could not release a file lock");
            }
        }
        heartbeat.abort();
        progress.finished.store(true, Ordering::Release);
        let snapshot = progress.snapshot();
        tracing::info!(
            source = cx.name(),
            examined = snapshot.files_found,
            accepted = snapshot.files_accepted,
            skipped = snapshot.files_skipped,
            failed = snapshot.files_failed,
            interrupted = snapshot.files_interrupted,
            lines = snapshot.lines,
            "Import finished"
        );
        if snapshot.files_failed > 0 {
            return Err(SourceError::other(format!(
                "{} files could not be imported (see the log); the others were",
                snapshot.files_failed
            )));
        }
        Ok(())
    }
}

impl FilesSource {
    /// Examines, claims and reads one file; the file and its waiter when its events are out.
    async fn import(
        &self,
        cx: &SourceContext,
        frames: &Arc<FrameParser>,
        claimed: &Arc<Mutex<HashSet<ContentDigest>>>,
        candidate: Candidate,
    ) -> Option<(Pending, loggr_core::ack::AckWaiter)> {
        let progress = &self.progress;
        let name = candidate.path.to_string_lossy().into_owned();
        let path = candidate.path.clone();
        let keep_up_to = self.keep_content_up_to;
        // The size and modification time before the content is read: if they are the same
        // when the lines are, the content is the one examined.
        let stamp = FileStamp::of(&candidate.path);
        let examine = move || decode::examine_file(&path, keep_up_to);
        let (examined, content) = match tokio::task::spawn_blocking(examine).await {
            Ok(Ok(examined)) => examined,
            Ok(Err(error)) => {
                tracing::error!(source = cx.name(), file = %name, %error, "Cannot read the file");
                ImportProgress::add(&progress.files_failed, 1);
                ImportProgress::add(&progress.bytes_done, candidate.size);
                return None;
            }
            Err(error) => {
                tracing::error!(source = cx.name(), file = %name, %error, "Reading the file panicked");
                ImportProgress::add(&progress.files_failed, 1);
                ImportProgress::add(&progress.bytes_done, candidate.size);
                return None;
            }
        };
        let digest = examined.digest;
        match self.ledger.claim(&name, &digest, self.readall).await {
            Ok(Claim::Claimed) => {}
            Ok(claim) => {
                tracing::info!(source = cx.name(), file = %name, %digest, ?claim, "Skipped");
                ImportProgress::add(&progress.files_skipped, 1);
                ImportProgress::add(&progress.bytes_done, candidate.size);
                return None;
            }
            Err(error) => {
                tracing::error!(source = cx.name(), file = %name, %error, "Cannot claim the file");
                ImportProgress::add(&progress.files_failed, 1);
                ImportProgress::add(&progress.bytes_done, candidate.size);
                return None;
            }
        }
        lock(claimed).insert(digest);
        tracing::debug!(
            source = cx.name(),
            file = %name,
            %digest,
            compression = %examined.compression,
            "Importing"
        );

        let mtime = stamp
            .as_ref()
            .and_then(|stamp| Timestamp::try_from(stamp.modified).ok())
            .unwrap_or_else(Timestamp::now);
        let (group, waiter) = AckGroup::new();
        let reader = FileReader {
            frames: frames.clone(),
            emitter: cx.emitter().clone(),
            shutdown: cx.shutdown().clone(),
            handle: tokio::runtime::Handle::current(),
            parse_cx: ParseContext {
                received_at: mtime,
                peer: None,
            },
            batch_size: self.batch_size,
            max_line_bytes: self.max_line_bytes,
            path_field: self
                .path_field
                .clone()
                .map(|field| (field, Text::from(name.clone()))),
            progress: progress.clone(),
        };
        let path = candidate.path.clone();
        let read = tokio::task::spawn_blocking(move || {
            let outcome = match content {
                // The kept content is the one hashed; the file is the same if it was not
                // written to since (an unknown stamp counts as changed).
                Some(_) if stamp.is_none() || FileStamp::of(&path) != stamp => {
                    Err(ReadError::Changed)
                }
                Some(content) => reader.read_content(&content, &group),
                None => reader.read(&path, &digest, &group),
            };
            (outcome, group)
        })
        .await;
        let outcome = match read {
            Ok((Ok(()), group)) => {
                group.seal();
                Ok(())
            }
            // Dropping the group unsealed resolves it as Retry: the file is not recorded.
            Ok((Err(error), _group)) => Err(error),
            Err(error) => Err(ReadError::Io(io::Error::other(error.to_string()))),
        };
        let file = Pending {
            name,
            digest,
            size: candidate.size,
        };
        match outcome {
            Ok(()) => Some((file, waiter)),
            Err(error) => {
                match error {
                    ReadError::Interrupted => {
                        ImportProgress::add(&progress.files_interrupted, 1);
                        tracing::info!(source = cx.name(), file = %file.name, "Import interrupted");
                    }
                    ReadError::Changed => {
                        ImportProgress::add(&progress.files_failed, 1);
                        tracing::error!(
                            source = cx.name(),
                            file = %file.name,
                            "The file changed while it was read: not recorded, import it again"
                        );
                    }
                    ReadError::Io(error) => {
                        ImportProgress::add(&progress.files_failed, 1);
                        tracing::error!(source = cx.name(), file = %file.name, %error, "Cannot read the file");
                    }
                }
                ImportProgress::add(&progress.bytes_done, file.size);
                lock(claimed).remove(&file.digest);
                if let Err(error) = self.ledger.release(&file.digest).await {
                    tracing::warn!(source = cx.name(), %error, "Could not release a file lock");
                }
                None
            }
        }
    }

    /// Records or releases a file once its events' outcome is known.
    async fn settle(
        &self,
        cx: &SourceContext,
        claimed: &Mutex<HashSet<ContentDigest>>,
        file: Pending,
        outcome: Outcome,
    ) {
        lock(claimed).remove(&file.digest);
        let progress = &self.progress;
        ImportProgress::add(&progress.bytes_done, file.size);
        if outcome == Outcome::Delivered {
            match self.ledger.complete(&file.name, &file.digest).await {
                Ok(()) => {
                    ImportProgress::add(&progress.files_accepted, 1);
                    tracing::info!(source = cx.name(), file = %file.name, digest = %file.digest, "Imported");
                }
                Err(error) => {
                    ImportProgress::add(&progress.files_failed, 1);
                    tracing::error!(
                        source = cx.name(),
                        file = %file.name,
                        %error,
                        "Every event was stored but the file could not be recorded: the next run reads it again (its stored lines are not stored twice)"
                    );
                }
            }
        } else {
            ImportProgress::add(&progress.files_failed, 1);
            tracing::error!(
                source = cx.name(),
                file = %file.name,
                ?outcome,
                "Not every event of the file was delivered: not recorded, the next run imports it again"
            );
            if let Err(error) = self.ledger.release(&file.digest).await {
                tracing::warn!(source = cx.name(), %error, "Could not release a file lock");
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn heartbeat(
    ledger: Arc<dyn FileLedger>,
    claimed: Arc<Mutex<HashSet<ContentDigest>>>,
    interval: Duration,
) {
    loop {
        tokio::time::sleep(interval).await;
        let digests: Vec<ContentDigest> = lock(&claimed).iter().copied().collect();
        for digest in digests {
            if let Err(error) = ledger.heartbeat(&digest).await {
                tracing::warn!(%error, "Could not refresh a file lock");
            }
        }
    }
}

/// `FuturesUnordered::next` polled once: `Some(item)` if one was ready.
trait NowOrNever {
    type Item;
    fn now_or_never_ready(&mut self) -> Option<Option<Self::Item>>;
}

impl<S: futures::Stream + Unpin> NowOrNever for S {
    type Item = S::Item;
    fn now_or_never_ready(&mut self) -> Option<Option<S::Item>> {
        futures::FutureExt::now_or_never(self.next())
    }
}

/// Reads one claimed file in a blocking thread and emits its events.
struct FileReader {
    frames: Arc<FrameParser>,
    emitter: Emitter,
    shutdown: CancellationToken,
    handle: tokio::runtime::Handle,
    parse_cx: ParseContext,
    batch_size: usize,
    max_line_bytes: usize,
    path_field: Option<(Text, Text)>,
    progress: Arc<ImportProgress>,
}

/// Lines gathered into one buffer, parsed and sent as one batch.
struct BatchBuilder<'a> {
    reader: &'a FileReader,
    group: &'a AckGroup,
    buffer: BytesMut,
    lines: Vec<(usize, usize, bool)>,
    interrupted: bool,
}

impl BatchBuilder<'_> {
    fn push(&mut self, line: &[u8], truncated: bool) -> io::Result<()> {
        let start = self.buffer.len();
        self.buffer.extend_from_slice(line);
        self.lines.push((start, self.buffer.len(), truncated));
        if self.lines.len() >= self.reader.batch_size {
            self.flush()?;
        }
        Ok(())
    }

    /// After the file's lines were pushed (`read` says how that ended): sends the last
    /// batch, or reports why the reading stopped.
    fn finish(mut self, read: io::Result<()>) -> Result<(), ReadError> {
        match read.and_then(|()| self.flush()) {
            Ok(()) => Ok(()),
            Err(_) if self.interrupted => Err(ReadError::Interrupted),
            Err(error) => Err(ReadError::Io(error)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.lines.is_empty() {
            return Ok(());
        }
        let chunk: Bytes = self.buffer.split().freeze();
        let lines = self
            .lines
            .drain(..)
            .map(|(start, end, truncated)| (chunk.slice(start..end), truncated));
        let sent = self.reader.send(lines, self.group);
        self.interrupted |= sent.is_err();
        sent
    }
}

impl FileReader {
    /// Emits the lines of `content`, the file's decompressed content kept when it was
    /// examined (the very bytes its digest was computed from).
    ///
    /// Each batch's lines are copied into a buffer of their own (as when streaming), not
    /// sliced out of `content`: the slices of one buffer share one reference count, which
    /// this thread increments for each field of each event while the pipeline's threads
    /// decrement it as they drop events. One count for a whole file kept two cores writing
    /// the same cache line (about a tenth of the importer's time); a copy is cheaper.
    fn read_content(&self, content: &[u8], group: &AckGroup) -> Result<(), ReadError> {
        let mut builder = self.batch_builder(group);
        let result = (|| {
            let mut splitter = LineSplitter::new(self.max_line_bytes, |line: &[u8], truncated| {
                builder.push(line, truncated)
            });
            io::Write::write_all(&mut splitter, content)?;
            splitter.finish()
        })();
        builder.finish(result)
    }

    /// Parses `lines` (each with whether it was cut) and sends their events as one batch.
    ///
    /// # Errors
    ///
    /// On shutdown, or when the pipeline closed: the reading is interrupted.
    fn send(
        &self,
        lines: impl ExactSizeIterator<Item = (Bytes, bool)>,
        group: &AckGroup,
    ) -> io::Result<()> {
        if self.shutdown.is_cancelled() {
            return Err(io::Error::other("interrupted"));
        }
        let mut batch = Vec::with_capacity(lines.len());
        for (line, truncated) in lines {
            let Some(mut event) = self.frames.parse(line, &self.parse_cx, None) else {
                continue;
            };
            if truncated {
                event.add_tag("_truncated");
            }
            if let Some((field, path)) = &self.path_field {
                event.set_field(field.clone(), path.clone());
            }
            batch.push(Envelope::new(event, group.token()));
        }
        ImportProgress::add(&self.progress.lines, batch.len() as u64);
        if self.handle.block_on(self.emitter.send(batch)).is_err() {
            return Err(io::Error::other("the pipeline closed"));
        }
        Ok(())
    }

    /// Reads the file again, streaming, and emits its lines; fails if its content is no
    /// longer the one `expected` names.
    fn read(
        &self,
        path: &std::path::Path,
        expected: &ContentDigest,
        group: &AckGroup,
    ) -> Result<(), ReadError> {
        let mut builder = self.batch_builder(group);
        let result = (|| {
            let mut splitter = LineSplitter::new(self.max_line_bytes, |line: &[u8], truncated| {
                builder.push(line, truncated)
            });
            let mut hashing = HashingWriter::new(&mut splitter);
            decode::decode_file(path, &mut hashing)?;
            let (digest, _, _) = hashing.finish();
            splitter.finish()?;
            Ok::<_, io::Error>(digest)
        })();
        let digest = match result {
            Ok(digest) => digest,
            Err(_) if builder.interrupted => return Err(ReadError::Interrupted),
            Err(error) => return Err(ReadError::Io(error)),
        };
        if digest != *expected {
            return Err(ReadError::Changed);
        }
        builder.finish(Ok(()))
    }

    /// An empty batch of this reader's size for the lines of `group`'s file.
    fn batch_builder<'a>(&'a self, group: &'a AckGroup) -> BatchBuilder<'a> {
        BatchBuilder {
            reader: self,
            group,
            buffer: BytesMut::with_capacity(256 * 1024),
            lines: Vec::with_capacity(self.batch_size),
            interrupted: false,
        }
    }
}

impl SourceConfig for FilesConfig {
    fn build(self, _cx: &BuildContext) -> Result<Box<dyn Source>, BoxError> {
        Ok(Box::new(FilesSource::new(self)?))
    }
}

loggr_core::register_source!("files", FilesConfig);

#[inline(never)]
pub(crate) fn link() {}

#[cfg(test)]
mod tests {
    use super::*;
    use loggr_core::test_util::CollectingSink;
    use loggr_core::{CancellationToken, Pipeline};

    /// A raw-line source over `dir` (names in order, lines cut at 16 bytes, batches of 3)
    /// keeping contents in memory up to `keep_up_to` bytes.
    fn source(dir: &std::path::Path, keep_up_to: usize) -> FilesSource {
        let mut config = FilesConfig::new(vec![dir.to_owned()]);
        config.format = InputFormat::Raw;
        config.max_line_bytes = 16;
        config.batch_size = 3;
        config.order_by = OrderBy::NameAsc;
        let mut source = FilesSource::new(config).unwrap();
        source.keep_content_up_to = keep_up_to;
        source
    }

    /// Runs `source` into a collecting sink: the pipeline's outcome, the import's counts,
    /// and each event's message and `_truncated` tag.
    async fn run(
        source: FilesSource,
    ) -> (
        Result<(), loggr_core::PipelineError>,
        ProgressSnapshot,
        Vec<(String, bool)>,
    ) {
        let progress = source.progress();
        let sink = CollectingSink::new();
        let outcome = Pipeline::builder()
            .source("files", source)
            .sink("collect", sink.clone())
            .build()
            .unwrap()
            .run(CancellationToken::new())
            .await;
        let events = sink
            .events()
            .iter()
            .map(|event| (event.message_str().to_owned(), event.has_tag("_truncated")))
            .collect();
        (outcome, progress.snapshot(), events)
    }

    /// The messages and `_truncated` tags of importing `dir` with files kept in memory up
    /// to `keep_up_to` bytes.
    async fn import(dir: &std::path::Path, keep_up_to: usize) -> Vec<(String, bool)> {
        let (outcome, progress, events) = run(source(dir, keep_up_to)).await;
        outcome.unwrap();
        assert_eq!(progress.files_accepted, 2);
        events
    }

    /// A memory ledger that appends a line to `path` when a file is claimed: the file
    /// changes after it was examined, before it is read.
    struct AppendOnClaim {
        inner: ledger::MemoryLedger,
        path: std::path::PathBuf,
    }

    #[async_trait]
    impl FileLedger for AppendOnClaim {
        async fn claim(
            &self,
            name: &str,
            digest: &ContentDigest,
            readall: bool,
        ) -> Result<Claim, ledger::LedgerError> {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&self.path)
                .unwrap();
            io::Write::write_all(&mut file, b"written after the examination\n").unwrap();
            self.inner.claim(name, digest, readall).await
        }
        async fn heartbeat(&self, digest: &ContentDigest) -> Result<(), ledger::LedgerError> {
            self.inner.heartbeat(digest).await
        }
        async fn complete(
            &self,
            name: &str,
            digest: &ContentDigest,
        ) -> Result<(), ledger::LedgerError> {
            self.inner.complete(name, digest).await
        }
        async fn release(&self, digest: &ContentDigest) -> Result<(), ledger::LedgerError> {
            self.inner.release(digest).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_that_changes_after_its_examination_is_not_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing.log");
        std::fs::write(&path, "line 1\nline 2\n").unwrap();
        // Let the append below move the modification time even on a coarse clock.
        std::thread::sleep(Duration::from_millis(20));
        for keep_up_to in [KEEP_CONTENT_UP_TO, 0] {
            let ledger = Arc::new(AppendOnClaim {
                inner: ledger::MemoryLedger::default(),
                path: path.clone(),
            });
            let source = source(dir.path(), keep_up_to).with_ledger(ledger);
            let (outcome, progress, _) = run(source).await;
            assert!(outcome.is_err(), "the import reports the failed file");
            assert_eq!(
                (progress.files_accepted, progress.files_failed),
                (0, 1),
                "kept up to {keep_up_to} bytes"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_read_from_memory_gives_the_same_events_as_one_streamed() {
        let dir = tempfile::tempdir().unwrap();
        // CRLF, an empty line, a line over max_line_bytes (16), and no final newline.
        let text = "first\r\n\nsecond line\nthis line is far too long to keep\nlast";
        std::fs::write(dir.path().join("a.log"), text).unwrap();
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gzip, b"zipped 1\nzipped 2\n").unwrap();
        std::fs::write(dir.path().join("b.log.gz"), gzip.finish().unwrap()).unwrap();
        let expected: Vec<(String, bool)> = [
            ("first", false),
            ("second line", false),
            ("this line is far", true),
            ("last", false),
            ("zipped 1", false),
            ("zipped 2", false),
        ]
        .iter()
        .map(|(text, cut)| ((*text).to_owned(), *cut))
        .collect();
        assert_eq!(import(dir.path(), KEEP_CONTENT_UP_TO).await, expected);
        assert_eq!(import(dir.path(), 0).await, expected, "streamed");
    }
}
