//! [`PatternBank`]: named grok definitions, from the bundled logstash files, pattern files and
//! inline definitions.

use std::collections::HashMap;
use std::path::Path;

use super::error::GrokError;

/// The logstash-patterns-core `legacy` files, compiled in (Apache-2.0; see
/// `loggr-filters/patterns/LICENSE` and `NOTICE.TXT`). In file-name order, as logstash reads a
/// patterns directory.
pub(crate) const LEGACY: &[(&str, &str)] = &[
    ("aws", include_str!("../../patterns/legacy/aws")),
    ("bacula", include_str!("../../patterns/legacy/bacula")),
    ("bind", include_str!("../../patterns/legacy/bind")),
    ("bro", include_str!("../../patterns/legacy/bro")),
    ("exim", include_str!("../../patterns/legacy/exim")),
    ("firewalls", include_str!("../../patterns/legacy/firewalls")),
    (
        "grok-patterns",
        include_str!("../../patterns/legacy/grok-patterns"),
    ),
    ("haproxy", include_str!("../../patterns/legacy/haproxy")),
    ("httpd", include_str!("../../patterns/legacy/httpd")),
    ("java", include_str!("../../patterns/legacy/java")),
    ("junos", include_str!("../../patterns/legacy/junos")),
    (
        "linux-syslog",
        include_str!("../../patterns/legacy/linux-syslog"),
    ),
    ("maven", include_str!("../../patterns/legacy/maven")),
    (
        "mcollective",
        include_str!("../../patterns/legacy/mcollective"),
    ),
    (
        "mcollective-patterns",
        include_str!("../../patterns/legacy/mcollective-patterns"),
    ),
    ("mongodb", include_str!("../../patterns/legacy/mongodb")),
    ("nagios", include_str!("../../patterns/legacy/nagios")),
    (
        "postgresql",
        include_str!("../../patterns/legacy/postgresql"),
    ),
    ("rails", include_str!("../../patterns/legacy/rails")),
    ("redis", include_str!("../../patterns/legacy/redis")),
    ("ruby", include_str!("../../patterns/legacy/ruby")),
    ("squid", include_str!("../../patterns/legacy/squid")),
];

/// Named grok definitions (`NAME` → regex text that may use `%{OTHER}`).
///
/// A later definition of a name replaces the earlier one, so user files and inline definitions
/// override the bundled set.
///
/// ```
/// use loggr_filters::grok::PatternBank;
///
/// let mut bank = PatternBank::legacy();
/// assert!(bank.get("SYSLOGLINE").is_some());
/// bank.load_str("QUEUEID [0-9A-F]{10,11}\n# a comment\n", "inline").unwrap();
/// assert_eq!(bank.get("QUEUEID"), Some("[0-9A-F]{10,11}"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct PatternBank {
    definitions: HashMap<String, String>,
}

impl PatternBank {
    /// No definitions.
    pub fn empty() -> Self {
        PatternBank::default()
    }

    /// The bundled logstash `legacy` definitions (`IP`, `SYSLOGLINE`, `COMBINEDAPACHELOG`, …).
    pub fn legacy() -> Self {
        let mut bank = PatternBank::empty();
        for (file, text) in LEGACY {
            // The bundled files are checked by a test; a bad line cannot happen here.
            let _ = bank.load_str(text, file);
        }
        bank
    }

    /// A definition's regex text.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.definitions.get(name).map(String::as_str)
    }

    /// The defined names, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.definitions.keys().map(String::as_str)
    }

    /// How many definitions.
    pub fn len(&self) -> usize {
        self.definitions.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.definitions.is_empty()
    }

    /// Adds (or replaces) one definition.
    ///
    /// # Errors
    ///
    /// [`GrokError::BadName`] when the name is not `[A-Za-z0-9_]+`.
    pub fn add(&mut self, name: &str, regex: &str) -> Result<(), GrokError> {
        if !valid_name(name) {
            return Err(GrokError::BadName {
                name: name.to_owned(),
            });
        }
        self.definitions.insert(name.to_owned(), regex.to_owned());
        Ok(())
    }

    /// Adds the definitions of a pattern file's text: one `NAME REGEX` per line, `#` comments
    /// and blank lines ignored. `origin` names the text in errors.
    ///
    /// # Errors
    ///
    /// [`GrokError::BadDefinition`] for a line that has no regex or a bad name.
    pub fn load_str(&mut self, text: &str, origin: &str) -> Result<(), GrokError> {
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let bad = || GrokError::BadDefinition {
                origin: origin.to_owned(),
                line: index + 1,
                text: line.to_owned(),
            };
            let (name, regex) = trimmed.split_once([' ', '\t']).ok_or_else(bad)?;
            let regex = regex.trim_start_matches([' ', '\t']).trim_end_matches('\r');
            if regex.is_empty() || !valid_name(name) {
                return Err(bad());
            }
            self.definitions.insert(name.to_owned(), regex.to_owned());
        }
        Ok(())
    }

    /// Adds the definitions of one pattern file.
    ///
    /// # Errors
    ///
    /// [`GrokError::Io`] when it cannot be read, [`GrokError::BadDefinition`] for a bad line.
    pub fn load_file(&mut self, path: &Path) -> Result<(), GrokError> {
        let text = std::fs::read_to_string(path).map_err(|source| GrokError::Io {
            path: path.to_owned(),
            source,
        })?;
        self.load_str(&text, &path.display().to_string())
    }

    /// Adds the definitions of every file in a directory (not recursive), in file-name order,
    /// as logstash's `patterns_dir` does.
    ///
    /// # Errors
    ///
    /// As [`load_file`](Self::load_file), and when the directory cannot be listed.
    pub fn load_dir(&mut self, dir: &Path) -> Result<(), GrokError> {
        let io = |source| GrokError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            if entry.file_type().map_err(io)?.is_file() {
                files.push(entry.path());
            }
        }
        files.sort();
        for file in files {
            self.load_file(&file)?;
        }
        Ok(())
    }
}

pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
