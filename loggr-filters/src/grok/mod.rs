//! The `grok` filter: logstash grok patterns (`%{SYSLOGLINE}`, `%{IP:client}`,
//! `%{NUMBER:bytes:int}`) turned into event fields.
//!
//! ```toml
//! [[filters]]
//! type = "grok"
//! patterns = ["%{SYSLOG5424LINE}", "%{SYSLOGLINE}"]   # tried in order, first match wins
//! prefix = "x_"                                      # optional, before every field name
//! pattern_definitions = { QUEUEID = "[0-9A-F]{10,11}" }
//! patterns_dir = ["/etc/loggr/patterns"]
//! ```
//!
//! The logstash-patterns-core `legacy` definitions are compiled in (see
//! `loggr-filters/patterns/`, Apache-2.0), so the filter needs no files at run time; user
//! pattern files and inline definitions come on top and override them.
//!
//! # Semantics (logstash's, where it has one)
//!
//! - `%{NAME}` matches without capturing (unless `named_captures_only = false`),
//!   `%{NAME:field}` captures into `field`, `%{NAME:field:int}` / `:float` converts (a value
//!   that does not convert stays text). Field references such as `[process][pid]` become the
//!   dotted name `process.pid`. Raw `(?<name>…)` groups capture too.
//! - The pattern is searched (not anchored), with "dot matches newline"; `\d \w \s \h` are
//!   ASCII classes, as in Ruby/Joni.
//! - Empty and unmatched captures are dropped (unless `keep_empty_captures`). A capture into a
//!   field the event already has appends (the field becomes a list) unless the field is in
//!   `overwrite`. A capture named `message` sets the event's message only when `message` is in
//!   `overwrite`; otherwise it is the field `message`.
//! - On a match, the field `grok_pattern` (see `pattern_field`) names the pattern that matched.
//! - No pattern matches: the event is tagged `_grokparsefailure` (`tag_on_failure`). A missing
//!   source field is left alone, as logstash does. The filter never drops an event.
//!
//! # The regex engine, and hostile input
//!
//! Logstash patterns need look-around (`IPV4` starts with `(?<![0-9])`) and atomic groups
//! (`YEAR`, `QUOTEDSTRING`), which the `regex` crate does not have. The two candidates were
//! [`fancy-regex`](https://docs.rs/fancy-regex) and `onig` (Oniguruma, the `grok` crate's
//! default engine). Measured on this machine (`%{SYSLOGLINE}` over the 7,996 lines of the
//! loghub corpus, one core; figures vary ±20% with load):
//!
//! | engine | lines/s | `^(a+)+$` on 30 `a`s and `!` |
//! | --- | --- | --- |
//! | `grok` crate 2.4 (Oniguruma) | ~100-145 k | 256 ms, then Oniguruma's retry-limit error |
//! | `onig` directly | ~100-145 k | same |
//! | `fancy-regex` 0.20 | ~27-32 k | 15 µs (delegated to `regex`, linear) |
//! | `fancy-regex` 0.20 + the relaxed prefilter below | ~100-130 k | 15 µs |
//!
//! loggr uses `fancy-regex`: pure Rust (no C toolchain, no `unsafe` FFI in the data path),
//! every look-around-free part runs on the `regex` crate's linear-time engines (so classic
//! ReDoS shapes like `(a+)+` cost microseconds, not a retry limit), and the backtracking part
//! has a **step budget** ([`GrokConfig::max_backtracks`]): a match that exceeds it stops
//! with a typed error, and the event is tagged `_grok_timeout` — never a silent "no match",
//! never a stalled worker. A step budget is deterministic (the same line gives the same
//! answer on a loaded and an idle machine), which a wall-clock timeout is not.
//!
//! Speed comes from a prefilter: each pattern also gets a *relaxed* twin for the `regex`
//! crate, with look-arounds replaced by nothing and atomic groups by plain ones. It matches
//! everything the real pattern matches, so a line it rejects is rejected without running the
//! backtracker, and its match start is where the backtracker begins. The bench
//! `benches/filters.rs` runs loggr and the `grok` crate side by side.

mod error;
mod expand;
mod patterns;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use loggr_core::Verdict;
use loggr_core::{BoxError, BuildContext, Event, Filter, FilterConfig, FilterError, Text, Value};

pub use error::GrokError;
pub use patterns::PatternBank;

use expand::{expand, relax, Conversion};

/// Configuration of the `grok` filter.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrokConfig {
    /// The grok patterns, tried in order; the first that matches wins.
    pub patterns: Vec<String>,
    /// The field to match: `message` (default) is the event's message, any other name a
    /// field (a missing field leaves the event alone).
    #[serde(default = "default_source")]
    pub source: String,
    /// Put before every captured field name (default none), e.g. `x_`.
    #[serde(default)]
    pub prefix: String,
    /// Extra definitions, `{ NAME = "regex" }`; they override files and the bundled set.
    #[serde(default)]
    pub pattern_definitions: BTreeMap<String, String>,
    /// Directories whose every file is a pattern file (`NAME REGEX` lines), read in file-name
    /// order.
    #[serde(default)]
    pub patterns_dir: Vec<PathBuf>,
    /// Single pattern files, read after `patterns_dir`.
    #[serde(default)]
    pub pattern_files: Vec<PathBuf>,
    /// Whether the bundled logstash `legacy` definitions are loaded first (default `true`).
    #[serde(default = "yes")]
    pub builtin_patterns: bool,
    /// Capture only `%{NAME:field}` and `(?<field>…)` (default `true`); with `false`, a bare
    /// `%{NAME}` also captures into `NAME`, as logstash's `named_captures_only => false`.
    #[serde(default = "yes")]
    pub named_captures_only: bool,
    /// Keep captures that matched the empty string (default `false`).
    #[serde(default)]
    pub keep_empty_captures: bool,
    /// Fields a capture replaces instead of appending to (default none). Put `message` here to
    /// replace the event's message with a `message` capture.
    #[serde(default)]
    pub overwrite: Vec<String>,
    /// The field naming the pattern that matched (default `grok_pattern`; empty: none).
    #[serde(default = "default_pattern_field")]
    pub pattern_field: String,
    /// Tags added when no pattern matches (default `["_grokparsefailure"]`).
    #[serde(default = "default_tag_on_failure")]
    pub tag_on_failure: Vec<String>,
    /// Tag added when a match ran out of its step budget (default `_grok_timeout`).
    #[serde(default = "default_tag_on_timeout")]
    pub tag_on_timeout: String,
    /// The step budget of one pattern on one message: how many times the backtracker may
    /// backtrack before the match is abandoned and the event tagged `tag_on_timeout`
    /// (default 500000, about 40 ms on a 2020s core in the worst case). Look-around-free
    /// patterns run in linear time and never need it.
    #[serde(default = "default_max_backtracks")]
    pub max_backtracks: usize,
}

fn default_source() -> String {
    "message".to_owned()
}

fn yes() -> bool {
    true
}

fn default_pattern_field() -> String {
    "grok_pattern".to_owned()
}

fn default_tag_on_failure() -> Vec<String> {
    vec!["_grokparsefailure".to_owned()]
}

fn default_tag_on_timeout() -> String {
    "_grok_timeout".to_owned()
}

fn default_max_backtracks() -> usize {
    500_000
}

impl GrokConfig {
    /// A configuration with every default and these patterns.
    pub fn new<S: Into<String>>(patterns: impl IntoIterator<Item = S>) -> Self {
        GrokConfig {
            patterns: patterns.into_iter().map(Into::into).collect(),
            source: default_source(),
            prefix: String::new(),
            pattern_definitions: BTreeMap::new(),
            patterns_dir: Vec::new(),
            pattern_files: Vec::new(),
            builtin_patterns: true,
            named_captures_only: true,
            keep_empty_captures: false,
            overwrite: Vec::new(),
            pattern_field: default_pattern_field(),
            tag_on_failure: default_tag_on_failure(),
            tag_on_timeout: default_tag_on_timeout(),
            max_backtracks: default_max_backtracks(),
        }
    }

    /// The definitions this configuration sees: the bundled set (unless turned off), then
    /// `patterns_dir`, `pattern_files` and `pattern_definitions`.
    ///
    /// # Errors
    ///
    /// A file that cannot be read or holds a bad line, a bad definition name.
    pub fn pattern_bank(&self) -> Result<PatternBank, GrokError> {
        let mut bank = if self.builtin_patterns {
            PatternBank::legacy()
        } else {
            PatternBank::empty()
        };
        for dir in &self.patterns_dir {
            bank.load_dir(dir)?;
        }
        for file in &self.pattern_files {
            bank.load_file(file)?;
        }
        for (name, regex) in &self.pattern_definitions {
            bank.add(name, regex)?;
        }
        Ok(bank)
    }
}

/// One capture of a compiled pattern.
#[derive(Debug)]
struct Capture {
    group: usize,
    field: Text,
    conversion: Conversion,
    /// The capture sets the event's message (a `message` capture with `overwrite`).
    to_message: bool,
    overwrite: bool,
}

/// One compiled grok pattern.
#[derive(Debug)]
struct Compiled {
    /// The pattern as configured (the value of `grok_pattern`).
    text: Text,
    regex: fancy_regex::Regex,
    /// The relaxed twin, when the pattern needs the backtracker and has one.
    prefilter: Option<regex::Regex>,
    captures: Vec<Capture>,
}

/// What a pattern list made of one text.
enum Outcome<'t> {
    Matched(&'t Compiled, fancy_regex::Captures<'t, str>),
    NoMatch,
    OverBudget,
}

/// The `grok` filter (see the [module documentation](self)).
#[derive(Debug)]
pub struct Grok {
    patterns: Vec<Compiled>,
    source: Option<Text>,
    pattern_field: Option<Text>,
    keep_empty_captures: bool,
    tag_on_failure: Vec<Text>,
    tag_on_timeout: Text,
}

impl Grok {
    /// Compiles a configuration.
    ///
    /// # Errors
    ///
    /// [`GrokError`] for a bad pattern (with a pointer to it), file or definition.
    pub fn new(config: &GrokConfig) -> Result<Self, GrokError> {
        let bank = config.pattern_bank()?;
        Grok::with_bank(config, &bank)
    }

    /// Compiles a configuration against a given set of definitions (the configuration's own
    /// files and definitions are not read).
    ///
    /// # Errors
    ///
    /// [`GrokError`] for a bad pattern, with a pointer to it.
    pub fn with_bank(config: &GrokConfig, bank: &PatternBank) -> Result<Self, GrokError> {
        if config.patterns.is_empty() {
            return Err(GrokError::NoPatterns);
        }
        let patterns = config
            .patterns
            .iter()
            .map(|pattern| compile(config, bank, pattern))
            .collect::<Result<_, _>>()?;
        Ok(Grok {
            patterns,
            source: (config.source != "message").then(|| Text::from(config.source.as_str())),
            pattern_field: (!config.pattern_field.is_empty())
                .then(|| Text::from(config.pattern_field.as_str())),
            keep_empty_captures: config.keep_empty_captures,
            tag_on_failure: config
                .tag_on_failure
                .iter()
                .map(|tag| Text::from(tag.as_str()))
                .collect(),
            tag_on_timeout: Text::from(config.tag_on_timeout.as_str()),
        })
    }

    fn search<'t>(&'t self, text: &'t str) -> Outcome<'t> {
        for pattern in &self.patterns {
            let start = match &pattern.prefilter {
                Some(prefilter) => match prefilter.find(text) {
                    Some(found) => found.start(),
                    None => continue,
                },
                None => 0,
            };
            match pattern.regex.captures_from_pos(text, start) {
                Ok(Some(captures)) => return Outcome::Matched(pattern, captures),
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(pattern = &*pattern.text, %error, "Grok match abandoned");
                    return Outcome::OverBudget;
                }
            }
        }
        Outcome::NoMatch
    }
}

fn compile(config: &GrokConfig, bank: &PatternBank, pattern: &str) -> Result<Compiled, GrokError> {
    let expansion = expand(bank, pattern, config.named_captures_only)?;
    let regex = fancy_regex::RegexBuilder::new(&expansion.regex)
        .dot_matches_new_line(true)
        .oniguruma_mode(true)
        .backtrack_limit(config.max_backtracks)
        .build()
        .map_err(|error| match error {
            fancy_regex::Error::ParseError(at, kind) => {
                let (within, text, offset) = expansion.locate(at);
                let message = lowercase_first(&kind.to_string());
                GrokError::Syntax {
                    message,
                    within: within.map(str::to_owned),
                    text: text.to_owned(),
                    span: offset..offset + 1,
                }
            }
            other => {
                let mut message = lowercase_first(&other.to_string());
                if let fancy_regex::Error::CompileError(inner) = &other {
                    if let fancy_regex::CompileError::InnerError(build) = &**inner {
                        if let Some(syntax) = build.syntax_error() {
                            // regex-syntax draws its own pointer into the delegated part.
                            message = format!("{syntax}");
                        }
                    }
                }
                GrokError::Compile {
                    pattern: pattern.to_owned(),
                    message,
                }
            }
        })?;
    let prefilter = match relax(&expansion.regex) {
        Some(relaxed) if relaxed != expansion.regex => regex::RegexBuilder::new(&relaxed)
            .dot_matches_new_line(true)
            .build()
            .ok(),
        _ => None,
    };
    let mut groups = vec![0; expansion.captures.len()];
    for (index, name) in regex.capture_names().enumerate() {
        if let Some(number) = name.and_then(|name| name.strip_prefix("_g")) {
            if let Some(slot) = number.parse::<usize>().ok().and_then(|n| groups.get_mut(n)) {
                *slot = index;
            }
        }
    }
    let captures = expansion
        .captures
        .iter()
        .zip(groups)
        .map(|(spec, group)| {
            let field = format!("{}{}", config.prefix, spec.field);
            let overwrite = config.overwrite.contains(&field);
            Capture {
                group,
                to_message: overwrite && field == "message",
                overwrite,
                field: Text::from(field),
                conversion: spec.conversion,
            }
        })
        .collect();
    Ok(Compiled {
        text: Text::from(pattern),
        regex,
        prefilter,
        captures,
    })
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn convert(text: Text, conversion: Conversion) -> Value {
    match conversion {
        Conversion::Text => Value::String(text),
        Conversion::Int => match text.trim().parse::<i64>() {
            Ok(number) => Value::Int(number),
            Err(_) => Value::String(text),
        },
        Conversion::Float => match text.trim().parse::<f64>() {
            Ok(number) => Value::Float(number),
            Err(_) => Value::String(text),
        },
    }
}

impl Filter for Grok {
    fn name(&self) -> &str {
        "grok"
    }

    fn apply(&self, event: &mut Event) -> Result<Verdict, FilterError> {
        let text = match &self.source {
            None => event.message.clone(),
            Some(field) => match event.fields.get(field) {
                Some(Value::String(text)) => Some(text.clone()),
                Some(other) => Some(Text::from(other.to_string())),
                None => None,
            },
        };
        let Some(text) = text else {
            return Ok(Verdict::Keep);
        };
        match self.search(&text) {
            Outcome::Matched(pattern, captures) => {
                for capture in &pattern.captures {
                    let Some(found) = captures.get(capture.group) else {
                        continue;
                    };
                    if found.as_str().is_empty() && !self.keep_empty_captures {
                        continue;
                    }
                    let value = text.slice_ref(found.as_str());
                    if capture.to_message {
                        event.message = Some(value);
                        continue;
                    }
                    let value = convert(value, capture.conversion);
                    match event.fields.get_mut(&capture.field) {
                        Some(existing) if !capture.overwrite => existing.push(value),
                        _ => {
                            event.fields.insert(capture.field.clone(), value);
                        }
                    }
                }
                if let Some(field) = &self.pattern_field {
                    event
                        .fields
                        .insert(field.clone(), Value::String(pattern.text.clone()));
                }
            }
            Outcome::NoMatch => {
                for tag in &self.tag_on_failure {
                    event.tags.insert(tag.clone());
                }
            }
            Outcome::OverBudget => {
                event.tags.insert(self.tag_on_timeout.clone());
            }
        }
        Ok(Verdict::Keep)
    }
}

impl FilterConfig for GrokConfig {
    fn build(self, _cx: &BuildContext) -> Result<Box<dyn Filter>, BoxError> {
        Ok(Box::new(Grok::new(&self)?))
    }
}

loggr_core::register_filter!("grok", GrokConfig);

#[inline(never)]
pub(crate) fn link() {}

#[cfg(test)]
mod tests;
