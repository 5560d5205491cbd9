//! Harvesting one file once it is due: the last look before reading it, reading its lines
//! into events on a blocking thread under one acknowledgement group, awaiting their outcome,
//! then deleting the file, keeping it to be read again, or setting it aside.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use loggr_core::ack::{AckGroup, AckWaiter, Outcome};
use loggr_core::parser::PARSE_FAILURE_TAG;
use loggr_core::{Emitter, Envelope, Event, Facility, ParseContext, Severity, Text, Timestamp};

use crate::files::decode::{decode_file, Compression, LineSplitter};
use crate::ingest::FrameParser;

use super::watch::{Snapshot, State};
use super::{Harvester, Progress, DIRECTORY_FIELD, FNAME_FIELD, HARVESTED_TAG, TRUNCATED_TAG};

/// A configured directory, ready to label events.
pub(super) struct Directory {
    pub(super) root: PathBuf,
    pub(super) display: Text,
    pub(super) app_name: Text,
    pub(super) hostname: Text,
    pub(super) facility: Facility,
    pub(super) severity: Severity,
    pub(super) raw: bool,
    pub(super) frames: FrameParser,
}

impl Directory {
    fn parse_context(&self) -> ParseContext {
        ParseContext {
            received_at: Timestamp::now(),
            peer: Some(self.hostname.clone()),
        }
    }

    /// The event of one line, or `None` when the parse-failure policy drops it.
    fn event(
        &self,
        line: &[u8],
        truncated: bool,
        cx: &ParseContext,
        fname: &Text,
    ) -> Option<Event> {
        let mut event = self.frames.parse(Bytes::copy_from_slice(line), cx, None)?;
        if self.raw || event.has_tag(PARSE_FAILURE_TAG) {
            event.app_name = Some(self.app_name.clone());
            event.hostname = Some(self.hostname.clone());
            event.facility = self.facility;
            event.severity = self.severity;
        } else {
            event.app_name.get_or_insert_with(|| self.app_name.clone());
            event.hostname.get_or_insert_with(|| self.hostname.clone());
        }
        if truncated {
            event.add_tag(TRUNCATED_TAG);
        }
        event.add_tag(HARVESTED_TAG);
        event.set_field(Text::from_static(DIRECTORY_FIELD), self.display.clone());
        event.set_field(Text::from_static(FNAME_FIELD), fname.clone());
        Some(event)
    }
}

/// The settings a file's reading task needs.
#[derive(Clone)]
pub(super) struct Reading {
    pub(super) dirs: Arc<[Directory]>,
    pub(super) emitter: Emitter,
    pub(super) shutdown: CancellationToken,
    pub(super) max_line: usize,
    pub(super) batch_size: usize,
}

/// How reading a file ended.
pub(super) enum ReadEnd {
    /// Read to the end; the group is sealed.
    Sealed {
        waiter: AckWaiter,
        lines: u64,
        truncated: u64,
        compression: Compression,
    },
    /// Stopped by shutdown (or a closed pipeline): the group was dropped, so it is a Retry.
    Interrupted,
    /// Reading failed.
    Failed(io::Error),
}

/// How harvesting a file ended.
#[derive(Debug)]
pub(super) enum FileEnd {
    /// Delivered and deleted (or already gone).
    Harvested { lines: u64 },
    /// Delivered or rejected, but it changed since it was read: kept, to be read again.
    Changed(Snapshot),
    /// Not delivered: kept, to be read again later.
    Undelivered(Outcome),
    /// Renamed to a dot-file.
    SetAside { to: PathBuf, why: &'static str },
    /// Done with, but could not be deleted or set aside.
    Stuck(io::Error),
    /// The grace period ended before the outcome was known: kept.
    Unknown,
}

impl Harvester {
    /// A due file: starts it if it is still what it was, removes it if it stayed empty.
    pub(super) async fn examine(&mut self, path: PathBuf) {
        let meta = tokio::fs::symlink_metadata(&path).await;
        let now = Instant::now();
        let Some(tracked) = self.tracked.get_mut(&path) else {
            return;
        };
        let meta = match meta {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => {
                self.tracked.remove(&path);
                return;
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                self.tracked.remove(&path);
                return;
            }
            Err(error) => {
                tracing::warn!(source = %self.name, file = %path.display(), %error,
                    "Cannot look at a file; trying again later");
                tracked.state = State::RetryAt(now + self.retry_after);
                return;
            }
        };
        let snapshot = Snapshot::of(&meta);
        tracked.seen_at = now;
        if snapshot != tracked.snapshot {
            tracked.snapshot = snapshot;
            tracked.changed_at = now;
            tracked.closed = false;
            tracked.state = State::Waiting;
            return;
        }
        if snapshot.len == 0 {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {
                    tracing::info!(source = %self.name, file = %path.display(),
                        "Removed an empty file");
                    self.tracked.remove(&path);
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    self.tracked.remove(&path);
                }
                Err(error) => {
                    tracing::warn!(source = %self.name, file = %path.display(), %error,
                        "Cannot remove an empty file");
                    tracked.state = State::RetryAt(now + self.retry_after);
                }
            }
            return;
        }
        tracked.state = State::Harvesting;
        let dir = tracked.dir;
        self.busy[dir] = Some(path.clone());
        let fname = path
            .strip_prefix(&self.reading.dirs[dir].root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        tracing::debug!(source = %self.name, file = %path.display(), bytes = snapshot.len,
            "Harvesting a file");
        let task = tokio::spawn(read_file(
            self.reading.clone(),
            dir,
            path.clone(),
            Text::from(fname),
        ));
        self.in_flight.push(Box::pin(async move {
            let end = task.await.unwrap_or_else(|error| {
                ReadEnd::Failed(io::Error::other(format!(
                    "the reading task failed: {error}"
                )))
            });
            Progress::Read {
                path,
                dir,
                snapshot,
                end,
            }
        }));
    }

    pub(super) fn read_ended(&mut self, path: PathBuf, snapshot: Snapshot, end: ReadEnd) {
        match end {
            ReadEnd::Sealed {
                waiter,
                lines,
                truncated,
                compression,
            } => {
                if truncated > 0 {
                    tracing::warn!(source = %self.name, file = %path.display(), truncated,
                        "Lines longer than max_line_bytes were cut");
                }
                tracing::debug!(source = %self.name, file = %path.display(), lines, %compression,
                    "Read a file; awaiting its delivery");
                self.in_flight.push(Box::pin(settle(
                    path,
                    snapshot,
                    waiter,
                    lines,
                    self.abort.clone(),
                )));
            }
            ReadEnd::Interrupted => {
                tracing::info!(source = %self.name, file = %path.display(),
                    "Stopped reading a file at shutdown; it is kept");
                self.tracked.remove(&path);
            }
            ReadEnd::Failed(error) if undecodable(&error) => {
                tracing::warn!(source = %self.name, file = %path.display(), %error,
                    "Cannot decode a file; setting it aside");
                self.in_flight.push(Box::pin(async move {
                    let end = match set_aside(&path, "corrupt").await {
                        Ok(to) => FileEnd::SetAside { to, why: "corrupt" },
                        Err(error) => FileEnd::Stuck(error),
                    };
                    Progress::Finished { path, end }
                }));
            }
            ReadEnd::Failed(error) => {
                tracing::warn!(source = %self.name, file = %path.display(), %error,
                    retry_after_ms = self.retry_after.as_millis() as u64,
                    "Cannot read a file; it is kept and tried again later");
                self.failed += 1;
                self.retry_later(&path);
            }
        }
    }

    pub(super) fn finished(&mut self, path: &Path, end: FileEnd) {
        let now = Instant::now();
        match end {
            FileEnd::Harvested { lines } => {
                self.harvested += 1;
                tracing::info!(source = %self.name, file = %path.display(), lines,
                    "Harvested a file");
                self.tracked.remove(path);
            }
            FileEnd::Changed(snapshot) => {
                tracing::warn!(source = %self.name, file = %path.display(),
                    "A file changed while harvested; kept, to be read again once complete");
                if let Some(tracked) = self.tracked.get_mut(path) {
                    tracked.snapshot = snapshot;
                    tracked.changed_at = now;
                    tracked.seen_at = now;
                    tracked.closed = false;
                    tracked.state = State::Waiting;
                }
            }
            FileEnd::Undelivered(outcome) => {
                self.failed += 1;
                tracing::warn!(source = %self.name, file = %path.display(), ?outcome,
                    retry_after_ms = self.retry_after.as_millis() as u64,
                    "A file was not delivered; it is kept and read again later");
                self.retry_later(path);
            }
            FileEnd::SetAside { to, why } => {
                self.failed += 1;
                tracing::warn!(source = %self.name, file = %path.display(), to = %to.display(), why,
                    "Set a file aside");
                self.tracked.remove(path);
            }
            FileEnd::Stuck(error) => {
                self.failed += 1;
                tracing::error!(source = %self.name, file = %path.display(), %error,
                    "Cannot delete or set aside a harvested file; left alone until it changes");
                if let Some(tracked) = self.tracked.get_mut(path) {
                    tracked.state = State::Parked;
                }
            }
            FileEnd::Unknown => {
                tracing::warn!(source = %self.name, file = %path.display(),
                    "The outcome of a file is unknown at shutdown; it is kept");
                self.tracked.remove(path);
            }
        }
    }

    fn retry_later(&mut self, path: &Path) {
        if let Some(tracked) = self.tracked.get_mut(path) {
            tracked.state = State::RetryAt(Instant::now() + self.retry_after);
        }
    }
}

/// Read failures that reading again will not cure.
fn undecodable(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof
    )
}

/// Reads a file, hands its lines on under one acknowledgement group, and seals it.
async fn read_file(reading: Reading, dir: usize, path: PathBuf, fname: Text) -> ReadEnd {
    let (group, waiter) = AckGroup::new();
    let (batches, mut received) = mpsc::channel::<Vec<Event>>(2);
    let reader = {
        let (dirs, path) = (reading.dirs.clone(), path.clone());
        let (max_line, batch_size) = (reading.max_line, reading.batch_size);
        tokio::task::spawn_blocking(move || {
            read_lines(&dirs[dir], &path, &fname, max_line, batch_size, &batches)
        })
    };
    let mut interrupted = false;
    loop {
        let batch = tokio::select! {
            batch = received.recv() => batch,
            () = reading.shutdown.cancelled() => { interrupted = true; break; }
        };
        let Some(events) = batch else { break };
        let envelopes = events
            .into_iter()
            .map(|event| Envelope::new(event, group.token()))
            .collect();
        tokio::select! {
            sent = reading.emitter.send(envelopes) => {
                if sent.is_err() {
                    interrupted = true;
                    break;
                }
            }
            () = reading.shutdown.cancelled() => { interrupted = true; break; }
        }
    }
    // The reader stops at its next batch once nobody receives.
    drop(received);
    let read = reader.await;
    if interrupted {
        return ReadEnd::Interrupted;
    }
    match read {
        Ok(Ok(stats)) => {
            group.seal();
            ReadEnd::Sealed {
                waiter,
                lines: stats.lines,
                truncated: stats.truncated,
                compression: stats.compression,
            }
        }
        Ok(Err(error)) => ReadEnd::Failed(error),
        Err(error) => ReadEnd::Failed(io::Error::other(format!("the reader failed: {error}"))),
    }
}

/// What the blocking reader saw.
struct ReadStats {
    lines: u64,
    truncated: u64,
    compression: Compression,
}

/// Decodes a file line by line into batches of events. Blocking.
fn read_lines(
    dir: &Directory,
    path: &Path,
    fname: &Text,
    max_line: usize,
    batch_size: usize,
    batches: &mpsc::Sender<Vec<Event>>,
) -> io::Result<ReadStats> {
    let stopped = || io::Error::other("the harvest stopped reading");
    let (mut lines, mut truncated) = (0u64, 0u64);
    let mut batch = Vec::with_capacity(batch_size);
    let mut cx = dir.parse_context();
    let mut splitter = LineSplitter::new(max_line, |line: &[u8], cut| {
        truncated += u64::from(cut);
        if let Some(event) = dir.event(line, cut, &cx, fname) {
            batch.push(event);
            lines += 1;
        }
        if batch.len() >= batch_size {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
            batches.blocking_send(full).map_err(|_| stopped())?;
            cx = dir.parse_context();
        }
        Ok(())
    });
    let compression = decode_file(path, &mut splitter)?;
    splitter.finish()?;
    drop(splitter);
    if !batch.is_empty() {
        batches.blocking_send(batch).map_err(|_| stopped())?;
    }
    Ok(ReadStats {
        lines,
        truncated,
        compression,
    })
}

/// Awaits a read file's outcome and deletes, keeps or sets the file aside accordingly.
async fn settle(
    path: PathBuf,
    snapshot: Snapshot,
    waiter: AckWaiter,
    lines: u64,
    abort: CancellationToken,
) -> Progress {
    let outcome = tokio::select! {
        outcome = waiter => outcome,
        () = abort.cancelled() => return Progress::Finished { path, end: FileEnd::Unknown },
    };
    let end = match outcome {
        Outcome::Retry => FileEnd::Undelivered(outcome),
        Outcome::Delivered | Outcome::Rejected => match tokio::fs::symlink_metadata(&path).await {
            Ok(meta) if Snapshot::of(&meta) != snapshot => FileEnd::Changed(Snapshot::of(&meta)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => FileEnd::Harvested { lines },
            Err(error) => FileEnd::Stuck(error),
            Ok(_) if outcome == Outcome::Rejected => match set_aside(&path, "rejected").await {
                Ok(to) => FileEnd::SetAside {
                    to,
                    why: "a sink rejected some of its lines",
                },
                Err(error) => FileEnd::Stuck(error),
            },
            Ok(_) => match tokio::fs::remove_file(&path).await {
                Ok(()) => FileEnd::Harvested { lines },
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    FileEnd::Harvested { lines }
                }
                Err(error) => FileEnd::Stuck(error),
            },
        },
    };
    Progress::Finished { path, end }
}

/// Renames `dir/name` to `dir/.name.why` (or `.name.why.N` if taken), never replacing a file.
pub(super) async fn set_aside(path: &Path, why: &str) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("not a file name"))?
        .to_string_lossy()
        .into_owned();
    let parent = path.parent().unwrap_or_else(|| Path::new("."));
    for attempt in 0..1000u32 {
        let target = match attempt {
            0 => parent.join(format!(".{name}.{why}")),
            n => parent.join(format!(".{name}.{why}.{n}")),
        };
        // A hard link fails if the target exists: no rename ever replaces a set-aside file.
        match tokio::fs::hard_link(path, &target).await {
            Ok(()) => {
                tokio::fs::remove_file(path).await?;
                return Ok(target);
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
    Err(io::Error::other("too many set-aside copies of this file"))
}
