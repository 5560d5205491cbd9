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
//! - `%{NAME:field=regex}` (or `%{NAME=regex}`) defines `NAME` inline, for this reference and
//!   the later ones of the same pattern (jls-grok's syntax); braces in `regex` must balance
//!   (`\}` is a literal brace).
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
//! default engine). fancy-regex is the reference here: pure Rust (no C toolchain, no `unsafe`
//! FFI in the data path), every look-around-free part runs on the `regex` crate's
//! linear-time engines (so classic ReDoS shapes like `(a+)+` cost microseconds, not a retry
//! limit), and the backtracking part has a **step budget** ([`GrokConfig::max_backtracks`]):
//! a match that exceeds it stops with a typed error, and the event is tagged `_grok_timeout`
//! — never a silent "no match", never a stalled worker. A step budget is deterministic (the
//! same line gives the same answer on a loaded and an idle machine); `timeout_ms` adds a
//! wall-clock limit over the pattern list.
//!
//! But fancy-regex's backtracker is slow on a pattern the size of `%{SYSLOGLINE}` (2.5 kB of
//! regex), and so are the `regex` crate's own capture engines on its look-around-free twin
//! (the bounded backtracker and the PikeVM walk its 1,600 NFA states byte by byte). So the
//! captures come from a third path, `fast.rs`: fancy-regex's parse tree is cut into parts
//! that the `regex` crate's *lazy DFAs* match, and the backtracker's path is rebuilt from
//! them, one DFA run per decision, with every look-around checked on the way (the module
//! documentation of `fast.rs` proves that the answer is fancy-regex's). When that path cannot
//! decide a line (a look-around fails on it, a part meets non-ASCII text next to a Unicode
//! `\b`, …) the line goes to fancy-regex, from the start the DFA path found. 316 of the 317
//! bundled definitions and all 351 corpus cases have the DFA path; a test compares both paths
//! on every loghub line, on the corpus cases and on lines made to fail a look-around.
//!
//! Measured with `cargo bench --bench filters` (`%{SYSLOGLINE}` over the 7,996 lines of the
//! loghub corpus, both engines in the same run, with the same fields checked equal on every
//! line; loggr's figure includes cloning the event and writing the fields). The machine is
//! shared with other builds (load average 6-8 on 2 cores during these runs), so wall-clock
//! figures are the medians of three runs (range in brackets) and move with the load; the
//! CPU-time column (`LOGGR_BENCH_CPU_TIME=1 cargo bench --bench filters`: the same loops,
//! timed by the thread's CPU time; median of three runs) is steadier:
//!
//! | engine | lines/s (wall) | lines/s (CPU) | `^(a+)+$` on 30 `a`s and `!` |
//! | --- | --- | --- | --- |
//! | `grok` crate 2.4 (Oniguruma) | 28 k (27-36) | 53 k | 256 ms, then Oniguruma's retry-limit error |
//! | loggr: DFA path, fancy-regex fallback | 174 k (165-250) | 333 k | 0.7 µs (a `regex` DFA, linear) |
//!
//! loggr is 6.0 to 7.0 times the `grok` crate run by run (wall clock), 6.3 times in CPU time.
//!
//! The other candidates, per line of the same corpus (search only, release build, same loaded
//! machine): fancy-regex with a relaxed-pattern prefilter (the previous loggr) 18-25 µs; the
//! `regex` crate's captures on the relaxed pattern 8-10 µs with its meta engine, 6.4 µs with a
//! bounded backtracker on the match span; the DFA path 2.1 µs. fancy-regex alone is about
//! three times slower than with the prefilter.

mod error;
mod expand;
mod fast;
mod patterns;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;

use loggr_core::Verdict;
use loggr_core::{BoxError, BuildContext, Event, Filter, FilterConfig, FilterError, Text, Value};

pub use error::GrokError;
pub use patterns::PatternBank;

use expand::{expand, relax, Conversion};
use fast::{FastOutcome, FastPath};

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
    /// Wall-clock limit for one message over the whole pattern list, in milliseconds
    /// (default none). It is checked before each pattern after the first: when it has run
    /// out, the remaining patterns are not tried and the event is tagged `tag_on_timeout`
    /// (a match found late is kept). One pattern's match is not interrupted;
    /// `max_backtracks` bounds it.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
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
            timeout_ms: None,
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
    /// The DFA capture path, when the pattern has one.
    fast: Option<FastPath>,
    /// The relaxed twin, when the pattern needs the backtracker, has one and no fast path.
    prefilter: Option<regex::Regex>,
    captures: Vec<Capture>,
}

/// The spans of a match's captures, in the order of [`Compiled::captures`].
type Spans = Vec<Option<Range<usize>>>;

/// What a pattern list made of one text.
enum Outcome<'t> {
    Matched(&'t Compiled, Spans),
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
    timeout: Option<Duration>,
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
            timeout: config.timeout_ms.map(Duration::from_millis),
        })
    }

    fn search<'t>(&'t self, text: &'t str) -> Outcome<'t> {
        let deadline = self
            .timeout
            .and_then(|timeout| Instant::now().checked_add(timeout));
        for (index, pattern) in self.patterns.iter().enumerate() {
            if index > 0 && deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                tracing::debug!(pattern = &*pattern.text, "Grok time limit reached");
                return Outcome::OverBudget;
            }
            let start = if let Some(fast) = &pattern.fast {
                match fast.search(text, true) {
                    FastOutcome::Matched(spans) => return Outcome::Matched(pattern, spans),
                    FastOutcome::NoMatch => continue,
                    FastOutcome::Fallback(start) => start,
                }
            } else {
                match &pattern.prefilter {
                    Some(prefilter) => match prefilter.find(text) {
                        Some(found) => found.start(),
                        None => continue,
                    },
                    None => 0,
                }
            };
            match pattern.regex.captures_from_pos(text, start) {
                Ok(Some(captures)) => {
                    let spans = pattern
                        .captures
                        .iter()
                        .map(|capture| captures.get(capture.group).map(|found| found.range()))
                        .collect();
                    return Outcome::Matched(pattern, spans);
                }
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
    let fast = match FastPath::new(&expansion.regex, expansion.captures.len()) {
        Ok(fast) => Some(fast),
        Err(why) => {
            tracing::debug!(
                pattern,
                reason = why.0,
                "Grok pattern runs on fancy-regex only"
            );
            None
        }
    };
    let prefilter = match relax(&expansion.regex) {
        Some(relaxed) if fast.is_none() && relaxed != expansion.regex => {
            regex::RegexBuilder::new(&relaxed)
                .dot_matches_new_line(true)
                .build()
                .ok()
        }
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
        fast,
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
            Outcome::Matched(pattern, spans) => {
                for (capture, span) in pattern.captures.iter().zip(spans) {
                    let Some(span) = span else {
                        continue;
                    };
                    if span.is_empty() && !self.keep_empty_captures {
                        continue;
                    }
                    let value = text.slice_ref(&text[span]);
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
