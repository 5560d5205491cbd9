//! [`GrokError`]: why a grok pattern, pattern file or configuration was refused.
//!
//! Errors about a pattern point at the culprit: the text of the pattern (or of the definition
//! the problem sits in) and a line of carets under the bad span.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::PathBuf;

/// A grok pattern or pattern file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrokError {
    /// `%{NAME}` names no known pattern.
    #[error("{}", pointed(&format!("unknown pattern {name} in "), within.as_deref(), text, span))]
    UnknownPattern {
        /// The unknown name.
        name: String,
        /// The definition the reference sits in (`None`: the configured pattern itself).
        within: Option<String>,
        /// The text holding the reference.
        text: String,
        /// Where the reference is in `text` (bytes).
        span: Range<usize>,
    },
    /// A `%{…}` reference that does not read `%{NAME}`, `%{NAME:field}` or
    /// `%{NAME:field:int|float}`.
    #[error("{}", pointed(&format!("{problem} in "), within.as_deref(), text, span))]
    BadReference {
        /// What is wrong.
        problem: String,
        /// The definition the reference sits in (`None`: the configured pattern itself).
        within: Option<String>,
        /// The text holding the reference.
        text: String,
        /// Where the reference is in `text` (bytes).
        span: Range<usize>,
    },
    /// Patterns refer to each other in a cycle.
    #[error("{}", pointed(&format!("pattern cycle {chain} in "), within.as_deref(), text, span))]
    Cycle {
        /// The names on the cycle, `A -> B -> A`.
        chain: String,
        /// The definition holding the reference that closes the cycle.
        within: Option<String>,
        /// The text holding the reference.
        text: String,
        /// Where the reference is in `text` (bytes).
        span: Range<usize>,
    },
    /// The expanded regex is not valid; the span points into the pattern or definition that
    /// holds the bad part.
    #[error("{}", pointed(&format!("{message} in "), within.as_deref(), text, span))]
    Syntax {
        /// The regex engine's message.
        message: String,
        /// The definition the error sits in (`None`: the configured pattern itself).
        within: Option<String>,
        /// The text holding the error.
        text: String,
        /// Where the error is in `text` (bytes).
        span: Range<usize>,
    },
    /// The regex engine refused the expanded pattern for another reason (size, an
    /// unsupported construct).
    #[error("cannot compile `{pattern}`: {message}")]
    Compile {
        /// The configured pattern.
        pattern: String,
        /// The engine's message (it may include its own pointer into the expanded regex).
        message: String,
    },
    /// The expansion grew past the size limit (patterns that refer to others many times
    /// over).
    #[error("pattern `{pattern}` expands to more than {limit} bytes")]
    TooLarge {
        /// The configured pattern.
        pattern: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// A line of a pattern file is not `NAME REGEX`.
    #[error("{origin}:{line}: expected `NAME REGEX`, found `{text}`")]
    BadDefinition {
        /// The file (or embedded set) the line comes from.
        origin: String,
        /// The line number, from 1.
        line: usize,
        /// The line.
        text: String,
    },
    /// A definition name is not made of `A-Z a-z 0-9 _`.
    #[error("invalid pattern name `{name}` (expected letters, digits and `_`)")]
    BadName {
        /// The name.
        name: String,
    },
    /// A pattern file or directory could not be read.
    #[error("cannot read grok patterns from {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The configuration names no pattern.
    #[error("`patterns` is empty: give at least one grok pattern")]
    NoPatterns,
}

/// `prefix` + "`text`" on one line, carets under `span` of `text` on the next.
fn pointed(prefix: &str, within: Option<&str>, text: &str, span: &Range<usize>) -> String {
    let mut out = String::from(prefix);
    if let Some(name) = within {
        let _ = write!(out, "the definition of {name}: ");
    }
    out.push('`');
    let indent = out.chars().count();
    out.push_str(text);
    out.push('`');
    let start = floor_char_boundary(text, span.start.min(text.len()));
    let end = floor_char_boundary(text, span.end.min(text.len())).max(start);
    let before = text[..start].chars().count();
    let width = text[start..end].chars().count().max(1);
    out.push('\n');
    out.extend(std::iter::repeat_n(' ', indent + before));
    out.extend(std::iter::repeat_n('^', width));
    out
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}
