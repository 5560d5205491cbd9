//! The `harvest` source's configuration: [`HarvestConfig`], its [`HarvestDirectory`] tables
//! and their defaults, and the checks that refuse a configuration that cannot work
//! ([`HarvestError`]).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use loggr_core::syslog::SyslogOptions;
use loggr_core::{BoxError, Facility, FailurePolicy, Severity};

use crate::ingest::InputFormat;

/// One directory to harvest (a `[[sources.directories]]` table).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HarvestDirectory {
    /// The directory (created at start if missing).
    pub path: PathBuf,
    /// The app name of the events (with a syslog `format`: only for lines that name none).
    pub app_name: String,
    /// The host name of the events (default: this machine's name, else `localhost`).
    #[serde(default = "default_hostname")]
    pub hostname: String,
    /// The facility of the events, by name or number (default `user`).
    #[serde(default = "default_facility")]
    pub facility: Facility,
    /// The severity of the events, by name or number (default `notice`).
    #[serde(default = "default_severity")]
    pub severity: Severity,
    /// `raw` (default: the line is the message) or a syslog format (`auto`, `rfc3164`,
    /// `rfc5424`, `rfc3339`, `json`) whose parsed header wins over the directory's values.
    #[serde(default = "default_format")]
    pub format: InputFormat,
}

impl HarvestDirectory {
    /// A directory whose lines become `user.notice` events of `app_name` from this machine.
    pub fn new(path: impl Into<PathBuf>, app_name: impl Into<String>) -> Self {
        HarvestDirectory {
            path: path.into(),
            app_name: app_name.into(),
            hostname: default_hostname(),
            facility: default_facility(),
            severity: default_severity(),
            format: default_format(),
        }
    }
}

fn default_facility() -> Facility {
    Facility::User
}

fn default_severity() -> Severity {
    Severity::Notice
}

fn default_format() -> InputFormat {
    InputFormat::Raw
}

/// This machine's host name (from the kernel), or `localhost`.
pub fn default_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Configuration of the `harvest` source.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HarvestConfig {
    /// The directories to watch, each with the header values of its events.
    pub directories: Vec<HarvestDirectory>,
    /// How long a file's size and modification time must hold still before it counts as
    /// completely uploaded (default `20s`; a file closed by its writer does not wait).
    #[serde(with = "loggr_core::config::duration")]
    pub stable_after: Duration,
    /// How often every directory is rescanned, the fallback when inotify misses something or
    /// is unavailable (default `5s`).
    #[serde(with = "loggr_core::config::duration")]
    pub poll_interval: Duration,
    /// How long to wait before reading again a file whose delivery failed (default `60s`).
    #[serde(with = "loggr_core::config::duration")]
    pub retry_after: Duration,
    /// Whether to watch the directories with inotify (default `true`); `false` relies on the
    /// rescans alone (network file systems, where inotify sees nothing).
    pub watch: bool,
    /// Whether to harvest subdirectories too (default `false`); dot-directories are skipped.
    pub recursive: bool,
    /// Longest line, in bytes (default 64 KiB); longer lines are cut and tagged `_truncated`.
    pub max_line_bytes: usize,
    /// Lines handed on together (at most; default 512).
    pub batch_size: usize,
    /// What to do with a line that does not parse with a syslog `format`: `keep` (tagged
    /// `_parse_failure`, the default) or `drop`.
    pub on_parse_error: FailurePolicy,
    /// Parser options for syslog formats: `year` and `timezone` for year-less or offset-less
    /// timestamps, `trusted_properties`, `max_fraction_digits`.
    pub syslog: SyslogOptions,
}

impl Default for HarvestConfig {
    fn default() -> Self {
        HarvestConfig {
            directories: Vec::new(),
            stable_after: Duration::from_secs(20),
            poll_interval: Duration::from_secs(5),
            retry_after: Duration::from_secs(60),
            watch: true,
            recursive: false,
            max_line_bytes: 64 * 1024,
            batch_size: 512,
            on_parse_error: FailurePolicy::Keep,
            syslog: SyslogOptions::default(),
        }
    }
}

impl HarvestConfig {
    /// Every default, harvesting these directories.
    pub fn new(directories: impl IntoIterator<Item = HarvestDirectory>) -> Self {
        HarvestConfig {
            directories: directories.into_iter().collect(),
            ..HarvestConfig::default()
        }
    }

    /// Refuses no directory, a zero `poll_interval`, and directories that would harvest the
    /// same files (the parsers are checked when they are built).
    pub(super) fn validate(&self) -> Result<(), HarvestError> {
        if self.directories.is_empty() {
            return Err(HarvestError::NoDirectories);
        }
        if self.poll_interval.is_zero() {
            return Err(HarvestError::ZeroDuration {
                field: "poll_interval",
            });
        }
        for (index, outer) in self.directories.iter().enumerate() {
            for inner in &self.directories[index + 1..] {
                let (a, b) = (&outer.path, &inner.path);
                let nested = self.recursive && (b.starts_with(a) || a.starts_with(b));
                if a == b || nested {
                    let (outer, inner) = if b.starts_with(a) { (a, b) } else { (b, a) };
                    return Err(HarvestError::Overlap {
                        outer: outer.clone(),
                        inner: inner.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// A `harvest` configuration that cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarvestError {
    /// `directories` is empty.
    #[error("no directory to harvest: add at least one `[[directories]]` table")]
    NoDirectories,
    /// Two directories would harvest the same files.
    #[error(
        "directories `{}` and `{}` overlap (the same files would be harvested twice)",
        .outer.display(),
        .inner.display()
    )]
    Overlap {
        /// The enclosing directory.
        outer: PathBuf,
        /// The directory inside it (or the same one).
        inner: PathBuf,
    },
    /// A duration that must not be zero is.
    #[error("`{field}` must be longer than zero")]
    ZeroDuration {
        /// The field.
        field: &'static str,
    },
    /// A directory's parser cannot be built (an unknown time zone).
    #[error("directory `{}`: {source}", .path.display())]
    Parser {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: BoxError,
    },
}
