//! Finding the files to harvest and telling when each is complete: the inotify watcher
//! (through `notify`), the rescans of every directory, and the tracking of each known file's
//! size, modification time and closes until it falls due.

use std::collections::{HashMap, HashSet};
use std::fs::Metadata;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Harvester;

/// How many watch events may wait for the source (more are dropped and a rescan catches up).
pub(super) const WATCH_QUEUE: usize = 4096;

/// What identifies a file's content closely enough to notice a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Snapshot {
    pub(super) len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Snapshot {
    pub(super) fn of(meta: &Metadata) -> Snapshot {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Snapshot {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        }
    }
}

/// Where a known file stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// Waiting to be complete.
    Waiting,
    /// Being read, or its outcome awaited: nobody else touches it.
    Harvesting,
    /// Its delivery failed; look again at this time.
    RetryAt(Instant),
    /// Delivered but could not be deleted: left alone until it changes.
    Parked,
}

/// A file the source knows about.
#[derive(Debug)]
pub(super) struct Tracked {
    pub(super) dir: usize,
    pub(super) snapshot: Snapshot,
    /// When the snapshot was last seen to change (or first seen).
    pub(super) changed_at: Instant,
    /// When the file was last observed (by a watch event or a scan).
    pub(super) seen_at: Instant,
    /// Its writer closed it after the last change.
    pub(super) closed: bool,
    pub(super) state: State,
}

impl Harvester {
    /// Starts inotify on every directory; `None` (logged) when it cannot be created.
    pub(super) fn start_watcher(
        &mut self,
        events: mpsc::Sender<notify::Event>,
        overflowed: Arc<AtomicBool>,
    ) -> Option<notify::RecommendedWatcher> {
        let name = self.name.clone();
        let handler = move |result: notify::Result<notify::Event>| match result {
            Ok(event) => {
                if events.try_send(event).is_err() {
                    overflowed.store(true, Ordering::Release);
                }
            }
            Err(error) => {
                tracing::warn!(source = %name, %error, "File watcher error; the rescans catch up");
                overflowed.store(true, Ordering::Release);
            }
        };
        let mut watcher = match notify::recommended_watcher(handler) {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::warn!(source = %self.name, %error,
                    "Cannot watch the directories; relying on the rescans");
                return None;
            }
        };
        for index in 0..self.busy.len() {
            self.watch(&mut watcher, index);
        }
        Some(watcher)
    }

    fn watch(&mut self, watcher: &mut notify::RecommendedWatcher, index: usize) {
        let mode = if self.recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        let root = &self.reading.dirs[index].root;
        match watcher.watch(root, mode) {
            Ok(()) => self.watched[index] = true,
            Err(error) => tracing::warn!(source = %self.name, directory = %root.display(), %error,
                "Cannot watch the directory; relying on the rescans"),
        }
    }

    /// The directory a path belongs to, unless it is to be ignored.
    fn classify(&self, path: &Path) -> Option<usize> {
        self.reading.dirs.iter().position(|dir| {
            path.strip_prefix(&dir.root)
                .is_ok_and(|relative| harvestable(relative, self.recursive))
        })
    }

    /// Records what a look at a file showed.
    fn observe(&mut self, path: PathBuf, dir: usize, snapshot: Snapshot, closed: bool) {
        let now = Instant::now();
        match self.tracked.get_mut(&path) {
            None => {
                self.tracked.insert(
                    path,
                    Tracked {
                        dir,
                        snapshot,
                        changed_at: now,
                        seen_at: now,
                        closed,
                        state: State::Waiting,
                    },
                );
            }
            Some(tracked) if tracked.state == State::Harvesting => {}
            Some(tracked) => {
                tracked.seen_at = now;
                if tracked.snapshot != snapshot {
                    tracked.snapshot = snapshot;
                    tracked.changed_at = now;
                    tracked.closed = false;
                    tracked.state = State::Waiting;
                }
                if closed {
                    tracked.closed = true;
                }
            }
        }
    }

    /// Forgets a file that is gone (unless it is being harvested).
    fn forget(&mut self, path: &Path) {
        if self
            .tracked
            .get(path)
            .is_some_and(|tracked| tracked.state != State::Harvesting)
        {
            self.tracked.remove(path);
        }
    }

    /// Handles a watch event and whatever else is already queued, looking at each file once.
    pub(super) async fn on_watch_events(
        &mut self,
        first: notify::Event,
        queue: &mut mpsc::Receiver<notify::Event>,
    ) {
        use notify::event::{AccessKind, AccessMode, EventKind};
        // Per path: whether the last event was a close after writing.
        let mut touched: Vec<(PathBuf, bool)> = Vec::new();
        let mut index: HashMap<PathBuf, usize> = HashMap::new();
        let mut rescan = false;
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(event) = next.take() {
            rescan |= event.need_rescan();
            let closed = match event.kind {
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(true),
                EventKind::Access(_) => None,
                _ => Some(false),
            };
            if let Some(closed) = closed {
                for path in event.paths {
                    match index.get(&path) {
                        Some(&at) => touched[at].1 = closed,
                        None => {
                            index.insert(path.clone(), touched.len());
                            touched.push((path, closed));
                        }
                    }
                }
            }
            taken += 1;
            if taken < 1024 {
                next = queue.try_recv().ok();
            }
        }
        for (path, closed) in touched {
            let Some(dir) = self.classify(&path) else {
                continue;
            };
            match tokio::fs::symlink_metadata(&path).await {
                Ok(meta) if meta.is_file() => self.observe(path, dir, Snapshot::of(&meta), closed),
                Ok(_) => self.forget(&path),
                Err(error) if error.kind() == io::ErrorKind::NotFound => self.forget(&path),
                Err(error) => {
                    tracing::debug!(source = %self.name, file = %path.display(), %error,
                        "Cannot look at a file");
                }
            }
        }
        if rescan {
            self.rescan(None).await;
        }
    }

    /// Lists every directory again: new files, changes, files gone.
    pub(super) async fn rescan(&mut self, watcher: Option<&mut notify::RecommendedWatcher>) {
        let started = Instant::now();
        let roots: Vec<PathBuf> = self.reading.dirs.iter().map(|d| d.root.clone()).collect();
        let recursive = self.recursive;
        let scanned = tokio::task::spawn_blocking(move || {
            roots
                .iter()
                .map(|root| scan(root, recursive))
                .collect::<Vec<_>>()
        })
        .await;
        let scanned = match scanned {
            Ok(scanned) => scanned,
            Err(error) => {
                tracing::warn!(source = %self.name, %error, "Directory scan failed");
                return;
            }
        };
        let mut seen = HashSet::new();
        let mut recovered = Vec::new();
        for (dir, result) in scanned.into_iter().enumerate() {
            let root = &self.reading.dirs[dir].root;
            match result {
                Ok(files) => {
                    if !self.scannable[dir] {
                        tracing::info!(source = %self.name, directory = %root.display(),
                            "Directory readable again");
                        self.scannable[dir] = true;
                    }
                    if !self.watched[dir] {
                        recovered.push(dir);
                    }
                    for (path, snapshot) in files {
                        seen.insert(path.clone());
                        self.observe(path, dir, snapshot, false);
                    }
                }
                Err(error) => {
                    if self.scannable[dir] {
                        tracing::warn!(source = %self.name, directory = %root.display(), %error,
                            "Cannot list the directory");
                        self.scannable[dir] = false;
                    }
                    // A directory removed and made again needs a new watch.
                    self.watched[dir] = false;
                }
            }
        }
        self.tracked.retain(|path, tracked| {
            tracked.state == State::Harvesting || tracked.seen_at >= started || seen.contains(path)
        });
        if let Some(watcher) = watcher {
            for dir in recovered {
                self.watch(watcher, dir);
            }
        }
    }

    /// When a file is due to be looked at: complete, or its retry time.
    fn due(&self, tracked: &Tracked) -> Option<Instant> {
        match tracked.state {
            State::Waiting if tracked.closed && tracked.snapshot.len > 0 => {
                Some(tracked.changed_at)
            }
            State::Waiting => Some(tracked.changed_at + self.stable_after),
            State::RetryAt(at) => Some(at),
            State::Harvesting | State::Parked => None,
        }
    }

    /// The earliest time a file of an idle directory falls due.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.tracked
            .values()
            .filter(|tracked| self.busy[tracked.dir].is_none())
            .filter_map(|tracked| self.due(tracked))
            .min()
    }

    /// Looks at every due file of an idle directory, oldest first, and starts the complete ones.
    pub(super) async fn start_ready(&mut self) {
        let now = Instant::now();
        let mut ready: Vec<(Instant, PathBuf)> = self
            .tracked
            .iter()
            .filter(|(_, tracked)| self.busy[tracked.dir].is_none())
            .filter_map(|(path, tracked)| {
                self.due(tracked)
                    .filter(|due| *due <= now)
                    .map(|due| (due, path.clone()))
            })
            .collect();
        ready.sort();
        for (_, path) in ready {
            let Some(dir) = self.tracked.get(&path).map(|t| t.dir) else {
                continue;
            };
            if self.busy[dir].is_none() {
                self.examine(path).await;
            }
        }
    }
}

/// Whether a path inside a directory is to be harvested: not hidden, and directly inside it
/// unless recursive.
pub(super) fn harvestable(relative: &Path, recursive: bool) -> bool {
    let mut depth = 0;
    for component in relative.components() {
        match component {
            Component::Normal(name) if !name.as_encoded_bytes().starts_with(b".") => depth += 1,
            _ => return false,
        }
    }
    depth == 1 || (recursive && depth > 1)
}

/// The path from the current directory if it is relative, as notify resolves watched paths
/// (so that watch events and scans name files alike).
pub(super) fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path))
}

/// The regular files of a directory (and its subdirectories when recursive), dot-entries
/// skipped. Blocking.
pub(super) fn scan(root: &Path, recursive: bool) -> io::Result<Vec<(PathBuf, Snapshot)>> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    let mut top = true;
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            // A subdirectory may vanish or be unreadable: only the top one is an error.
            Err(error) if top => return Err(error),
            Err(_) => continue,
        };
        top = false;
        for entry in entries.flatten() {
            if entry.file_name().as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_file() {
                files.push((entry.path(), Snapshot::of(&meta)));
            } else if meta.is_dir() && recursive {
                pending.push(entry.path());
            }
        }
    }
    Ok(files)
}
