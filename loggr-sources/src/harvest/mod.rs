//! The `harvest` source: watches upload directories and turns every line of every fully
//! uploaded file into an event, deleting the file only once every one of its lines was
//! committed downstream (pyloggr's `harvest`).
//!
//! ```toml
//! [[sources]]
//! type = "harvest"
//! stable_after = "20s"          # a file is complete once its size held this long…
//! poll_interval = "5s"          # …or once its writer closed it; rescans find the rest
//! retry_after = "60s"           # a file whose delivery failed is read again after this
//!
//! [[sources.directories]]
//! path = "/var/spool/loggr/harvest/web"
//! app_name = "nginx"
//! hostname = "web1"             # default: this machine's name
//! facility = "local0"           # name or number, default `user`
//! severity = "info"             # default `notice`
//! format = "raw"                # default: the line is the message
//! ```
//!
//! # When a file is read
//!
//! Files are found by inotify (through `notify`) and by a rescan of every directory each
//! `poll_interval` (which also finds the files present at start, and is all there is when the
//! watcher cannot be created). A file is read once it is **complete**: either its writer closed
//! it after writing (inotify's `IN_CLOSE_WRITE`) and it is not empty, or its size and
//! modification time stayed the same for `stable_after`, checked by two looks at the file at
//! least that far apart. Files and directories whose name starts with `.` are ignored, so an
//! uploader can write `.name.part` and rename it to `name` when done (a renamed file is read
//! `stable_after` later); symbolic links and anything but regular files are ignored too. A file
//! that stayed empty for `stable_after` is removed. A writer that closes a file and opens it
//! again to append more makes it look complete in between: such uploads should use the rename
//! pattern.
//!
//! Compressed uploads (gzip, bzip2, zstd, xz; detected from their content) are read
//! decompressed. Lines are read on a blocking thread, `batch_size` at a time, so memory stays
//! constant whatever the file's size. At most one file per directory is being read at a time,
//! so [packers](loggr_core::packer) never see the lines of two files interleaved (their outcomes
//! may be awaited together).
//!
//! # Events
//!
//! With `format = "raw"` (the default) each line is the message of an event that gets the
//! directory's `app_name`, `hostname`, `facility` and `severity`. With a syslog format (`auto`,
//! `rfc3164`, `rfc5424`, `rfc3339`, `json`) a parsed line keeps its own header and the
//! directory only fills a missing app name or host name; a line that does not parse is handled
//! by `on_parse_error` as in every syslog source and, when kept, gets the directory's values.
//! Every event is tagged `harvested` and carries the fields `directory` (the configured path)
//! and `fname` (the file's path inside it). A line longer than `max_line_bytes` is cut there and
//! tagged `_truncated`.
//!
//! # Acknowledgement
//!
//! All the events of a file carry tokens of one acknowledgement group, sealed once the whole
//! file was read. Then:
//! - **Delivered** → the file is deleted (if it did not change meanwhile, see below);
//! - **Retry** (a sink failed, the pipeline shut down) → the file stays where it is and is read
//!   again, whole, after `retry_after`: lines that were delivered the first time are delivered
//!   again (at-least-once, never a loss);
//! - **Rejected** (a sink refused some line for good) → reading it again would not help, so the
//!   file is set aside as `.NAME.rejected` next to where it was (dot-files are ignored), for an
//!   operator to look at.
//!
//! A file that cannot be decoded (corrupt or truncated compressed data) is set aside as
//! `.NAME.corrupt` the same way (the lines before the damage were delivered); other read
//! errors (permissions, I/O) are retried after `retry_after`. A file that was delivered but
//! cannot be deleted is left alone (and logged) until it changes or loggr restarts, rather than
//! delivered again and again.
//!
//! # A file that changes after it was read
//!
//! Before deleting (or setting aside) a file, the source looks at it again: if its size,
//! modification time or inode differ from what they were when reading started, someone wrote
//! to it (or replaced it) meanwhile and what was delivered may not be all of it. The file is
//! then **not** deleted: it waits until it is complete again and is read again from the start
//! (its first lines are delivered twice; nothing is lost). The check and the deletion are two
//! system calls: a writer appending in the microseconds between them would lose its append,
//! which is why uploads must be complete before they are visible under their final name.
//!
//! # Shutdown
//!
//! On shutdown the source starts no new file and stops reading the current ones (they are
//! kept, whole, for the next start); it waits for the outcome of the files it read completely,
//! deleting those delivered, until the pipeline's grace period ends. A file whose outcome is
//! unknown then is kept.
//!
//! Files harvested, set aside and retried are logged (`info` and `warn`); the source's
//! `received` counter counts the events.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use loggr_core::{
    async_trait, BoxError, BuildContext, Parser, Source, SourceConfig, SourceContext, SourceError,
    Text,
};

use crate::ingest::{FrameParser, InputFormat};

mod config;
mod read;
#[cfg(test)]
mod tests;
mod watch;

pub use config::{default_hostname, HarvestConfig, HarvestDirectory, HarvestError};
use read::{Directory, FileEnd, ReadEnd, Reading};
use watch::{absolute, Snapshot, Tracked, WATCH_QUEUE};

/// The tag of every harvested event.
pub const HARVESTED_TAG: &str = "harvested";
/// The tag of an event whose line was cut at `max_line_bytes`.
pub const TRUNCATED_TAG: &str = "_truncated";
/// The field holding the configured directory the file was found in.
pub const DIRECTORY_FIELD: &str = "directory";
/// The field holding the file's path relative to its directory.
pub const FNAME_FIELD: &str = "fname";

/// Harvests upload directories (see the [module documentation](self)).
pub struct HarvestSource {
    config: HarvestConfig,
    parsers: Vec<Arc<dyn Parser>>,
}

impl std::fmt::Debug for HarvestSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HarvestSource")
            .field("config", &self.config)
            .finish()
    }
}

impl HarvestSource {
    /// A source for this configuration.
    ///
    /// # Errors
    ///
    /// No directory, overlapping directories, a zero `poll_interval`, or a parser that cannot
    /// be built.
    pub fn new(config: HarvestConfig) -> Result<Self, HarvestError> {
        config.validate()?;
        let parsers = config
            .directories
            .iter()
            .map(|directory| {
                directory
                    .format
                    .parser(&config.syslog)
                    .map_err(|source| HarvestError::Parser {
                        path: directory.path.clone(),
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(HarvestSource { config, parsers })
    }
}

/// What the source's in-flight work reports.
enum Progress {
    Read {
        path: PathBuf,
        dir: usize,
        snapshot: Snapshot,
        end: ReadEnd,
    },
    Finished {
        path: PathBuf,
        end: FileEnd,
    },
}

type Work = Pin<Box<dyn Future<Output = Progress> + Send>>;

/// The running source's state.
struct Harvester {
    name: Arc<str>,
    stable_after: Duration,
    retry_after: Duration,
    recursive: bool,
    reading: Reading,
    abort: CancellationToken,
    tracked: HashMap<PathBuf, Tracked>,
    /// The file each directory is reading, if any.
    busy: Vec<Option<PathBuf>>,
    /// Whether each directory could be scanned last time.
    scannable: Vec<bool>,
    watched: Vec<bool>,
    in_flight: FuturesUnordered<Work>,
    harvested: u64,
    failed: u64,
}

#[async_trait]
impl Source for HarvestSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let HarvestSource { config, parsers } = *self;
        let metrics = cx.emitter().metrics().clone();
        let dirs: Arc<[Directory]> = config
            .directories
            .iter()
            .zip(parsers)
            .map(|(directory, parser)| Directory {
                root: absolute(&directory.path),
                display: Text::from(directory.path.to_string_lossy().into_owned()),
                app_name: Text::from(directory.app_name.as_str()),
                hostname: Text::from(directory.hostname.as_str()),
                facility: directory.facility,
                severity: directory.severity,
                raw: directory.format == InputFormat::Raw,
                frames: FrameParser::new(parser, config.on_parse_error, metrics.clone()),
            })
            .collect();
        let count = dirs.len();
        for dir in dirs.iter() {
            if let Err(error) = tokio::fs::create_dir_all(&dir.root).await {
                tracing::warn!(source = cx.name(), directory = %dir.root.display(), %error,
                    "Cannot create the directory; it will be scanned anyway");
            }
        }
        let mut harvester = Harvester {
            name: Arc::from(cx.name()),
            stable_after: config.stable_after,
            retry_after: config.retry_after,
            recursive: config.recursive,
            reading: Reading {
                dirs,
                emitter: cx.emitter().clone(),
                shutdown: cx.shutdown().clone(),
                max_line: config.max_line_bytes.max(1),
                batch_size: config.batch_size.max(1),
            },
            abort: cx.abort().clone(),
            tracked: HashMap::new(),
            busy: vec![None; count],
            scannable: vec![true; count],
            watched: vec![false; count],
            in_flight: FuturesUnordered::new(),
            harvested: 0,
            failed: 0,
        };
        let overflowed = Arc::new(AtomicBool::new(false));
        let (events_tx, mut events) = mpsc::channel(WATCH_QUEUE);
        let mut watcher = if config.watch {
            harvester.start_watcher(events_tx, overflowed.clone())
        } else {
            drop(events_tx);
            None
        };
        // Until the watcher is gone (none, or failed): then the rescans do the work.
        let mut watching = true;
        let mut rescan = tokio::time::interval(config.poll_interval);
        rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = false;
        loop {
            if !stopping {
                harvester.start_ready().await;
            } else if harvester.in_flight.is_empty() {
                break;
            }
            let next_due = if stopping { None } else { harvester.next_due() };
            let sleep = tokio::time::sleep_until(
                next_due.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
            );
            tokio::select! {
                () = cx.shutdown().cancelled(), if !stopping => {
                    stopping = true;
                    watcher = None;
                }
                Some(progress) = harvester.in_flight.next(), if !harvester.in_flight.is_empty() => {
                    harvester.progress(progress);
                }
                event = events.recv(), if !stopping && watching => match event {
                    Some(event) => {
                        harvester.on_watch_events(event, &mut events).await;
                        if overflowed.swap(false, Ordering::AcqRel) {
                            tracing::debug!(source = %harvester.name,
                                "Watch events were dropped; rescanning");
                            harvester.rescan(watcher.as_mut()).await;
                        }
                    }
                    None => watching = false,
                },
                _ = rescan.tick(), if !stopping => harvester.rescan(watcher.as_mut()).await,
                () = sleep, if next_due.is_some() => {}
            }
        }
        drop(watcher);
        tracing::info!(
            source = %harvester.name,
            harvested = harvester.harvested,
            failed = harvester.failed,
            "Harvest stopped"
        );
        Ok(())
    }
}

impl Harvester {
    /// Takes the news of in-flight work.
    fn progress(&mut self, progress: Progress) {
        match progress {
            Progress::Read {
                path,
                dir,
                snapshot,
                end,
            } => {
                if self.busy[dir].as_ref() == Some(&path) {
                    self.busy[dir] = None;
                }
                self.read_ended(path, snapshot, end);
            }
            Progress::Finished { path, end } => self.finished(&path, end),
        }
    }
}

impl SourceConfig for HarvestConfig {
    fn build(self, _cx: &BuildContext) -> Result<Box<dyn Source>, BoxError> {
        Ok(Box::new(HarvestSource::new(self)?))
    }
}

loggr_core::register_source!("harvest", HarvestConfig);

#[inline(never)]
pub(crate) fn link() {}
