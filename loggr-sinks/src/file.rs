//! The `file` sink: events as JSON lines appended to a file.
//!
//! # Durability
//!
//! With `fsync = "always"` (the default), `write` returns `Ok` only after the batch was written
//! and `fdatasync(2)` returned: the events survive a crash of loggr or of the machine. With
//! `fsync = "never"`, `Ok` means the bytes reached the operating system: they survive a crash of
//! loggr, not a power loss.
//!
//! A failed write is rolled back (the file is truncated to its length before the batch), so a
//! retry never leaves a torn line behind; a batch written twice after a crash appears twice
//! (at-least-once; consumers can deduplicate on `id`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use serde::Deserialize;

use loggr_core::{async_trait, BoxError, BuildContext, Event, Sink, SinkConfig, SinkError};

/// When to force written data to disk.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Fsync {
    /// After every batch, before acknowledging it.
    #[default]
    Always,
    /// Never (the operating system decides).
    Never,
}

/// How events are written, one per line.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LineFormat {
    /// loggr's canonical event JSON (every field kept; readable back).
    #[default]
    Json,
    /// rsyslog's `RSYSLOG_FileFormat`: `TIMESTAMP HOST app[pid]: MSG`, in UTC (what
    /// `/var/log/syslog` readers expect; tags, fields and structured data are not written).
    Rsyslog,
}

/// Configuration of the `file` sink.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The file to append to (created if missing, with its parent directories).
    pub path: PathBuf,
    /// `always` (default) or `never`.
    #[serde(default)]
    pub fsync: Fsync,
    /// `json` (default) or `rsyslog`.
    #[serde(default)]
    pub format: LineFormat,
}

impl FileSinkConfig {
    /// JSON lines appended to `path`, fsynced before each acknowledgement.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileSinkConfig {
            path: path.into(),
            fsync: Fsync::Always,
            format: LineFormat::Json,
        }
    }
}

/// Appends JSON lines to a file.
#[derive(Debug)]
pub struct FileSink {
    config: FileSinkConfig,
    file: Option<File>,
    buffer: Vec<u8>,
}

impl FileSink {
    /// A sink for this file (opened on first write).
    pub fn new(config: FileSinkConfig) -> Self {
        FileSink {
            config,
            file: None,
            buffer: Vec::new(),
        }
    }

    fn open(&self) -> Result<File, SinkError> {
        if let Some(parent) = self
            .config
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)?;
        }
        Ok(OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.config.path)?)
    }
}

#[async_trait]
impl Sink for FileSink {
    async fn write(&mut self, events: &[Event]) -> Result<(), SinkError> {
        self.buffer.clear();
        match self.config.format {
            LineFormat::Json => crate::write_json_lines(events, &mut self.buffer),
            LineFormat::Rsyslog => {
                for event in events {
                    loggr_core::encode::rsyslog_line(&mut self.buffer, event);
                    self.buffer.push(b'\n');
                }
            }
        }
        let file = match self.file.take() {
            Some(file) => file,
            None => self.open()?,
        };
        let buffer = std::mem::take(&mut self.buffer);
        let fsync = self.config.fsync;
        let (file, buffer, result) = tokio::task::spawn_blocking(move || {
            let result = append(&file, &buffer, fsync);
            (file, buffer, result)
        })
        .await
        .map_err(|error| SinkError::transient(format!("file writer task failed: {error}")))?;
        self.buffer = buffer;
        match result {
            Ok(()) => {
                self.file = Some(file);
                Ok(())
            }
            // Drop the handle: the next attempt reopens the file (it may have been rotated).
            Err(error) => Err(SinkError::from(error)),
        }
    }

    async fn close(&mut self) -> Result<(), SinkError> {
        if let Some(file) = self.file.take() {
            file.sync_all()?;
        }
        Ok(())
    }
}

fn append(mut file: &File, bytes: &[u8], fsync: Fsync) -> std::io::Result<()> {
    let before = file.metadata()?.len();
    let written = file.write_all(bytes).and_then(|()| match fsync {
        Fsync::Always => file.sync_data(),
        Fsync::Never => Ok(()),
    });
    if written.is_err() {
        // Roll back a torn batch so that a retry does not leave half a line in the file.
        let _ = file.set_len(before);
    }
    written
}

impl SinkConfig for FileSinkConfig {
    fn build(self, _cx: &BuildContext) -> Result<Box<dyn Sink>, BoxError> {
        Ok(Box::new(FileSink::new(self)))
    }
}

loggr_core::register_sink!("file", FileSinkConfig);

#[inline(never)]
pub(crate) fn link() {}
