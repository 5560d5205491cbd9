//! pyloggr's packers: `merge_by_time` and `merge_by_format`, which turn multi-line messages
//! (stack traces, multi-line SQL, banners) back into one event.
//!
//! Both hold lines back per key until their group is complete, then release one merged event
//! (see [`loggr_core::packer::merge`]) whose acknowledgement token joins the originals' tokens:
//! the RELP transaction of every line is answered only when the merged event is committed.
//!
//! ```toml
//! [[packers]]
//! type = "merge_by_format"
//! source = "relp"                       # the source whose events it merges
//! start_patterns = ['^\d{4}-\d{2}-\d{2} ', '^[A-Z][a-z]{2} +\d+ ']
//! max_age = "5s"
//! app_name = "^java$"                   # only events of matching apps (optional)
//! ```

use std::collections::HashMap;
use std::time::Duration;

use regex::{Regex, RegexSet};
use serde::Deserialize;
use tokio::time::Instant;

use loggr_core::packer::{merge, Packer, PackerCondition, Window};
use loggr_core::{BoxError, BuildContext, Envelope, Event, Facility, PackerConfig, Text};

/// Which events a packer applies to (both conditions must hold; absent means any).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// A regex the app name must match.
    #[serde(default)]
    pub app_name: Option<String>,
    /// A regex the host name must match.
    #[serde(default)]
    pub hostname: Option<String>,
}

impl Condition {
    fn build(&self) -> Result<Option<PackerCondition>, BoxError> {
        let compile = |pattern: &Option<String>| pattern.as_deref().map(Regex::new).transpose();
        let (app, host) = (compile(&self.app_name)?, compile(&self.hostname)?);
        if app.is_none() && host.is_none() {
            return Ok(None);
        }
        Ok(Some(Box::new(move |event: &Event| {
            let matches = |regex: &Option<Regex>, text: &Option<Text>| {
                regex
                    .as_ref()
                    .is_none_or(|r| r.is_match(text.as_deref().unwrap_or("")))
            };
            matches(&app, &event.app_name) && matches(&host, &event.hostname)
        })))
    }
}

/// One key's held lines.
#[derive(Debug)]
struct Group {
    lines: Vec<Envelope>,
    first: Instant,
    last: Instant,
}

impl Group {
    fn new(envelope: Envelope, now: Instant) -> Group {
        Group {
            lines: vec![envelope],
            first: now,
            last: now,
        }
    }
}

/// Takes every group due at `now` (all of them with `now = None`) out of `groups`, merged,
/// oldest first.
fn take_groups<K: Eq + std::hash::Hash + Clone>(
    groups: &mut HashMap<K, Group>,
    due: impl Fn(&Group) -> Instant,
    now: Option<Instant>,
) -> Vec<Envelope> {
    let mut ready: Vec<(Instant, K)> = groups
        .iter()
        .filter(|(_, group)| now.is_none_or(|now| due(group) <= now))
        .map(|(key, group)| (group.first, key.clone()))
        .collect();
    ready.sort_by_key(|(first, _)| *first);
    ready
        .into_iter()
        .filter_map(|(_, key)| groups.remove(&key))
        .filter_map(|group| merge(group.lines))
        .collect()
}

/// Configuration of the `merge_by_time` packer.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeByTimeConfig {
    /// Lines of one host, facility and app that follow each other within this time are one
    /// message (default `500ms`).
    #[serde(default = "default_window", with = "loggr_core::config::duration")]
    pub window: Duration,
    /// The longest a message is held, however lines keep coming (default `5s`).
    #[serde(default = "default_max_age", with = "loggr_core::config::duration")]
    pub max_age: Duration,
    /// Which events it applies to.
    #[serde(flatten)]
    pub condition: Condition,
}

fn default_window() -> Duration {
    Duration::from_millis(500)
}

fn default_max_age() -> Duration {
    Duration::from_secs(5)
}

type TimeKey = (Option<Text>, Facility, Option<Text>);

/// Merges consecutive lines of one (host, facility, app) that arrive within a window.
#[derive(Debug)]
pub struct MergeByTime {
    window: Window,
    groups: HashMap<TimeKey, Group>,
}

impl MergeByTime {
    /// A packer with these limits.
    pub fn new(window: Duration, max_age: Duration) -> Self {
        MergeByTime {
            window: Window { window, max_age },
            groups: HashMap::new(),
        }
    }
}

impl Packer for MergeByTime {
    fn push(&mut self, envelope: Envelope, now: Instant) -> Vec<Envelope> {
        let event = &envelope.event;
        let key = (
            event.hostname.clone(),
            event.facility,
            event.app_name.clone(),
        );
        let window = self.window;
        match self.groups.get_mut(&key) {
            Some(group) if now < window.due(group.first, group.last) => {
                group.lines.push(envelope);
                group.last = now;
                Vec::new()
            }
            _ => {
                let previous = self.groups.insert(key, Group::new(envelope, now));
                previous
                    .and_then(|group| merge(group.lines))
                    .into_iter()
                    .collect()
            }
        }
    }

    fn release_due(&mut self, now: Instant) -> Vec<Envelope> {
        let window = self.window;
        take_groups(&mut self.groups, |g| window.due(g.first, g.last), Some(now))
    }

    fn next_due(&self) -> Option<Instant> {
        self.groups
            .values()
            .map(|g| self.window.due(g.first, g.last))
            .min()
    }

    fn release_all(&mut self) -> Vec<Envelope> {
        take_groups(&mut self.groups, |g| g.first, None)
    }
}

/// Configuration of the `merge_by_format` packer.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeByFormatConfig {
    /// Regexes of a message's first line; any other line continues the message before it.
    pub start_patterns: Vec<String>,
    /// The longest a message is held waiting for its next start line (default `5s`).
    #[serde(default = "default_max_age", with = "loggr_core::config::duration")]
    pub max_age: Duration,
    /// Which events it applies to.
    #[serde(flatten)]
    pub condition: Condition,
}

/// Merges continuation lines into the last line (of the same host) that matched a start
/// pattern.
#[derive(Debug)]
pub struct MergeByFormat {
    starts: RegexSet,
    max_age: Duration,
    groups: HashMap<Option<Text>, Group>,
}

impl MergeByFormat {
    /// A packer with these start patterns.
    ///
    /// # Errors
    ///
    /// A pattern that is not a valid regex.
    pub fn new(start_patterns: &[String], max_age: Duration) -> Result<Self, regex::Error> {
        Ok(MergeByFormat {
            starts: RegexSet::new(start_patterns)?,
            max_age,
            groups: HashMap::new(),
        })
    }
}

impl Packer for MergeByFormat {
    fn push(&mut self, envelope: Envelope, now: Instant) -> Vec<Envelope> {
        let key = envelope.event.hostname.clone();
        let starts = self.starts.is_match(envelope.event.message_str());
        match self.groups.get_mut(&key) {
            Some(group) if !starts => {
                group.lines.push(envelope);
                group.last = now;
                Vec::new()
            }
            _ => {
                let previous = self.groups.insert(key, Group::new(envelope, now));
                previous
                    .and_then(|group| merge(group.lines))
                    .into_iter()
                    .collect()
            }
        }
    }

    fn release_due(&mut self, now: Instant) -> Vec<Envelope> {
        let max_age = self.max_age;
        take_groups(&mut self.groups, |g| g.first + max_age, Some(now))
    }

    fn next_due(&self) -> Option<Instant> {
        self.groups.values().map(|g| g.first + self.max_age).min()
    }

    fn release_all(&mut self) -> Vec<Envelope> {
        take_groups(&mut self.groups, |g| g.first, None)
    }
}

impl PackerConfig for MergeByTimeConfig {
    fn build(
        self,
        _cx: &BuildContext,
    ) -> Result<(Box<dyn Packer>, Option<PackerCondition>), BoxError> {
        Ok((
            Box::new(MergeByTime::new(self.window, self.max_age)),
            self.condition.build()?,
        ))
    }
}

impl PackerConfig for MergeByFormatConfig {
    fn build(
        self,
        _cx: &BuildContext,
    ) -> Result<(Box<dyn Packer>, Option<PackerCondition>), BoxError> {
        let packer = MergeByFormat::new(&self.start_patterns, self.max_age)?;
        Ok((Box::new(packer), self.condition.build()?))
    }
}

loggr_core::register_packer!("merge_by_time", MergeByTimeConfig);
loggr_core::register_packer!("merge_by_format", MergeByFormatConfig);

#[inline(never)]
pub(crate) fn link() {}
