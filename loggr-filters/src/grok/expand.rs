//! Grok expansion: `%{NAME:field:type}` references replaced by their definitions, captures
//! renamed to `_g0`, `_g1`, … (so any field name works, `[process][pid]` included), and the
//! Oniguruma dialect of the logstash files brought to the engine: `\d \w \s \h` are ASCII
//! classes as in Ruby/Joni, plain `( )` groups do not capture (Oniguruma's rule when named
//! groups exist). A source map remembers where every output byte came from, so a regex syntax
//! error can point into the right definition.

use std::collections::HashMap;
use std::ops::Range;

use super::error::GrokError;
use super::patterns::{valid_name, PatternBank};

/// Largest expansion accepted (bytes of regex).
pub(crate) const MAX_EXPANSION: usize = 1 << 20;

/// How a capture's text becomes a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conversion {
    /// Kept as text.
    Text,
    /// `:int`, a 64-bit integer.
    Int,
    /// `:float`.
    Float,
}

/// One capture group of an expansion: group `_g{index}` fills `field`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CaptureSpec {
    pub(crate) field: String,
    pub(crate) conversion: Conversion,
}

/// The result of expanding one configured pattern.
#[derive(Debug)]
pub(crate) struct Expansion {
    /// The regex, in the engine's dialect.
    pub(crate) regex: String,
    /// Capture `i` is the group named `_g{i}`.
    pub(crate) captures: Vec<CaptureSpec>,
    /// For each byte of `regex`: (source, byte offset in that source's text).
    origins: Vec<(u32, u32)>,
    /// Source 0 is the configured pattern, the others are definitions (name, text).
    sources: Vec<(Option<String>, String)>,
}

impl Expansion {
    /// Where byte `at` of the regex came from: (definition name, its text, offset).
    pub(crate) fn locate(&self, at: usize) -> (Option<&str>, &str, usize) {
        let (source, offset) = self
            .origins
            .get(at)
            .or(self.origins.last())
            .copied()
            .unwrap_or((0, 0));
        let (name, text) = &self.sources[source as usize];
        let offset = if at >= self.origins.len() {
            text.len()
        } else {
            offset as usize
        };
        (name.as_deref(), text, offset)
    }
}

struct Expander<'a> {
    bank: &'a PatternBank,
    /// Inline definitions met so far (`%{NAME=regex}`): they win over the bank.
    inline: HashMap<String, String>,
    named_captures_only: bool,
    top: &'a str,
    out: String,
    origins: Vec<(u32, u32)>,
    sources: Vec<(Option<String>, String)>,
    captures: Vec<CaptureSpec>,
    stack: Vec<String>,
}

/// Expands `pattern` against `bank`.
pub(crate) fn expand(
    bank: &PatternBank,
    pattern: &str,
    named_captures_only: bool,
) -> Result<Expansion, GrokError> {
    let mut expander = Expander {
        bank,
        inline: HashMap::new(),
        named_captures_only,
        top: pattern,
        out: String::with_capacity(pattern.len() * 8),
        origins: Vec::new(),
        sources: vec![(None, pattern.to_owned())],
        captures: Vec::new(),
        stack: Vec::new(),
    };
    expander.expand_text(pattern, 0, None)?;
    Ok(Expansion {
        regex: expander.out,
        captures: expander.captures,
        origins: expander.origins,
        sources: expander.sources,
    })
}

impl Expander<'_> {
    fn emit(&mut self, text: &str, source: u32, offset: usize) {
        self.out.push_str(text);
        let offset = u32::try_from(offset).unwrap_or(u32::MAX);
        self.origins
            .extend(std::iter::repeat_n((source, offset), text.len()));
    }

    fn new_capture(&mut self, field: String, conversion: Conversion) -> String {
        self.captures.push(CaptureSpec { field, conversion });
        format!("(?<_g{}>", self.captures.len() - 1)
    }

    fn expand_text(
        &mut self,
        text: &str,
        source: u32,
        within: Option<&str>,
    ) -> Result<(), GrokError> {
        if self.out.len() > MAX_EXPANSION {
            return Err(GrokError::TooLarge {
                pattern: self.top.to_owned(),
                limit: MAX_EXPANSION,
            });
        }
        let bytes = text.as_bytes();
        let mut class_depth = 0usize;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match b {
                b'\\' => {
                    let Some(c) = text[i + 1..].chars().next() else {
                        self.emit("\\", source, i);
                        i += 1;
                        continue;
                    };
                    let replacement = if class_depth > 0 {
                        match c {
                            'd' => Some("0-9"),
                            'w' => Some("0-9A-Za-z_"),
                            's' => Some("\\t\\n\\x0B\\f\\r "),
                            'h' => Some("0-9A-Fa-f"),
                            _ => None,
                        }
                    } else {
                        match c {
                            'd' => Some("[0-9]"),
                            'D' => Some("[^0-9]"),
                            'w' => Some("[0-9A-Za-z_]"),
                            'W' => Some("[^0-9A-Za-z_]"),
                            's' => Some("[\\t\\n\\x0B\\f\\r ]"),
                            'S' => Some("[^\\t\\n\\x0B\\f\\r ]"),
                            'h' => Some("[0-9A-Fa-f]"),
                            'H' => Some("[^0-9A-Fa-f]"),
                            _ => None,
                        }
                    };
                    let end = i + 1 + c.len_utf8();
                    match replacement {
                        Some(replacement) => self.emit(replacement, source, i),
                        None => self.emit(&text[i..end], source, i),
                    }
                    i = end;
                }
                b'[' if class_depth > 0 => {
                    if bytes.get(i + 1) == Some(&b':') {
                        // A POSIX class `[:alpha:]`: copy through `:]`.
                        let end = text[i + 2..]
                            .find(":]")
                            .map_or(bytes.len(), |at| i + 2 + at + 2);
                        let class = &text[i..end];
                        self.emit(posix_class(class).unwrap_or(class), source, i);
                        i = end;
                    } else {
                        class_depth += 1;
                        self.emit("[", source, i);
                        i += 1;
                    }
                }
                b'[' => {
                    class_depth = 1;
                    // `[]…]` and `[^]…]` start with a literal `]`.
                    let mut end = i + 1;
                    if bytes.get(end) == Some(&b'^') {
                        end += 1;
                    }
                    if bytes.get(end) == Some(&b']') {
                        end += 1;
                    }
                    self.emit(&text[i..end], source, i);
                    i = end;
                }
                b']' if class_depth > 0 => {
                    class_depth -= 1;
                    self.emit("]", source, i);
                    i += 1;
                }
                b'%' if class_depth == 0 && bytes.get(i + 1) == Some(&b'{') => {
                    i = self.reference(text, i, source, within)?;
                }
                b'(' if class_depth == 0 => {
                    i = self.group(text, i, source, within)?;
                }
                _ => {
                    let len = text[i..].chars().next().map_or(1, char::len_utf8);
                    self.emit(&text[i..i + len], source, i);
                    i += len;
                }
            }
        }
        Ok(())
    }

    /// A group opening at `i`: named groups become captures, plain groups non-capturing.
    fn group(
        &mut self,
        text: &str,
        i: usize,
        source: u32,
        within: Option<&str>,
    ) -> Result<usize, GrokError> {
        let rest = &text[i..];
        let name_start = if rest.starts_with("(?<") {
            Some(3)
        } else if rest.starts_with("(?P<") {
            Some(4)
        } else {
            None
        };
        if let Some(start) = name_start {
            let after = &rest[start..];
            if !(after.starts_with('=') || after.starts_with('!')) {
                let Some(close) = after.find('>') else {
                    return Err(GrokError::BadReference {
                        problem: "unclosed group name".to_owned(),
                        within: within.map(str::to_owned),
                        text: text.to_owned(),
                        span: i..text.len(),
                    });
                };
                let name = &after[..close];
                let opening = self.new_capture(field_path(name), Conversion::Text);
                self.emit(&opening, source, i);
                return Ok(i + start + close + 1);
            }
        }
        if rest.starts_with("(?") || rest.starts_with("(*") {
            self.emit("(", source, i);
        } else {
            self.emit("(?:", source, i);
        }
        Ok(i + 1)
    }

    /// A `%{…}` reference at `i`; returns the index after it.
    fn reference(
        &mut self,
        text: &str,
        i: usize,
        source: u32,
        within: Option<&str>,
    ) -> Result<usize, GrokError> {
        let bad = |problem: &str, span: Range<usize>| GrokError::BadReference {
            problem: problem.to_owned(),
            within: within.map(str::to_owned),
            text: text.to_owned(),
            span,
        };
        let Some(head_len) = text[i + 2..].find(['=', '}']) else {
            return Err(bad("unclosed %{", i..i + 2));
        };
        let head_end = i + 2 + head_len;
        // `%{NAME:field=regex}` defines NAME inline (logstash's jls-grok syntax); the
        // definition runs to the `}` that balances the braces it opens (`{2,3}`), `\}` being
        // a brace of its own.
        let (definition, end) = if text.as_bytes()[head_end] == b'=' {
            let Some(close) = definition_end(text, head_end + 1) else {
                return Err(bad("unclosed %{", i..i + 2));
            };
            (Some(&text[head_end + 1..close]), close + 1)
        } else {
            (None, head_end + 1)
        };
        let span = i..end;
        let inner = &text[i + 2..head_end];
        let mut parts = inner.splitn(3, ':');
        let name = parts.next().unwrap_or_default();
        let field = parts.next();
        let conversion = match parts.next() {
            None => Conversion::Text,
            Some("int" | "integer" | "long") => Conversion::Int,
            Some("float" | "double") => Conversion::Float,
            Some("string") => Conversion::Text,
            Some(_) => return Err(bad("unknown type (expected int or float)", span)),
        };
        if !valid_name(name) {
            return Err(bad("invalid pattern reference", span));
        }
        if let Some(position) = self.stack.iter().position(|seen| seen == name) {
            let mut chain = self.stack[position..].join(" -> ");
            chain.push_str(" -> ");
            chain.push_str(name);
            return Err(GrokError::Cycle {
                chain,
                within: within.map(str::to_owned),
                text: text.to_owned(),
                span,
            });
        }
        if let Some(definition) = definition {
            self.inline.insert(name.to_owned(), definition.to_owned());
        }
        let definition = match self.inline.get(name) {
            Some(definition) => definition.clone(),
            None => match self.bank.get(name) {
                Some(definition) => definition.to_owned(),
                None => {
                    return Err(GrokError::UnknownPattern {
                        name: name.to_owned(),
                        within: within.map(str::to_owned),
                        text: text.to_owned(),
                        span,
                    })
                }
            },
        };
        let field = match field {
            Some(field) if !field.is_empty() => Some(field_path(field)),
            _ if !self.named_captures_only => Some(name.to_owned()),
            _ => None,
        };
        let opening = match field {
            Some(field) => self.new_capture(field, conversion),
            None => "(?:".to_owned(),
        };
        self.emit(&opening, source, i);
        let definition_source = u32::try_from(self.sources.len()).unwrap_or(u32::MAX);
        self.sources
            .push((Some(name.to_owned()), definition.clone()));
        self.stack.push(name.to_owned());
        self.expand_text(&definition, definition_source, Some(name))?;
        self.stack.pop();
        self.emit(")", source, end - 1);
        Ok(end)
    }
}

/// The index of the `}` closing an inline definition that starts at `start`.
fn definition_end(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'{' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Oniguruma's POSIX bracket classes are Unicode-aware on UTF-8 text (`[[:alnum:]]` matches
/// `Č`); the `regex` crate's are ASCII. The Unicode ones, as class items.
fn posix_class(class: &str) -> Option<&'static str> {
    Some(match class {
        "[:alnum:]" => r"\p{L}\p{M}\p{Nd}",
        "[:alpha:]" => r"\p{L}\p{M}",
        "[:digit:]" => r"\p{Nd}",
        "[:upper:]" => r"\p{Lu}",
        "[:lower:]" => r"\p{Ll}",
        "[:space:]" => r"\p{White_Space}",
        "[:word:]" => r"\p{L}\p{M}\p{Nd}\p{Pc}",
        _ => return None,
    })
}

/// A logstash field reference as a flat field name: `[process][pid]` → `process.pid`; a
/// trailing `?` (as in ecs-v1's `HTTPD24_ERRORLOG`) is ignored, as logstash does.
pub(crate) fn field_path(field: &str) -> String {
    let field = field.strip_suffix('?').unwrap_or(field);
    if !field.starts_with('[') {
        return field.to_owned();
    }
    field
        .split(['[', ']'])
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(".")
}

/// A regular over-approximation of `regex` for the `regex` crate: look-arounds become empty
/// and atomic groups plain groups, so every string the real regex matches (at some position)
/// this one matches too, at that position or earlier. `None` when the regex uses something
/// with no such approximation here (back-references, possessive quantifiers, conditionals).
pub(crate) fn relax(regex: &str) -> Option<String> {
    let bytes = regex.as_bytes();
    let mut out = String::with_capacity(regex.len());
    let mut class_depth = 0usize;
    let mut i = 0;
    let mut changed = false;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\\' => {
                let c = regex[i + 1..].chars().next()?;
                if class_depth == 0 && matches!(c, '1'..='9' | 'k' | 'g' | 'K' | 'G' | 'R' | 'X') {
                    return None;
                }
                let end = i + 1 + c.len_utf8();
                out.push_str(&regex[i..end]);
                i = end;
            }
            b'[' if class_depth > 0 => {
                if bytes.get(i + 1) == Some(&b':') {
                    let end = regex[i + 2..]
                        .find(":]")
                        .map_or(bytes.len(), |at| i + 2 + at + 2);
                    out.push_str(&regex[i..end]);
                    i = end;
                } else {
                    class_depth += 1;
                    out.push('[');
                    i += 1;
                }
            }
            b'[' => {
                class_depth = 1;
                let mut end = i + 1;
                if bytes.get(end) == Some(&b'^') {
                    end += 1;
                }
                if bytes.get(end) == Some(&b']') {
                    end += 1;
                }
                out.push_str(&regex[i..end]);
                i = end;
            }
            b']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(']');
                i += 1;
            }
            b'(' if class_depth == 0 => {
                let rest = &regex[i..];
                if ["(?=", "(?!", "(?<=", "(?<!"]
                    .iter()
                    .any(|look| rest.starts_with(look))
                {
                    i = skip_group(regex, i)?;
                    out.push_str("(?:)");
                    changed = true;
                } else if rest.starts_with("(?>") {
                    out.push_str("(?:");
                    i += 3;
                    changed = true;
                } else if rest.starts_with("(?(") || rest.starts_with("(*") {
                    return None;
                } else {
                    out.push('(');
                    i += 1;
                }
            }
            b'+' if class_depth == 0
                && i > 0
                && matches!(bytes[i - 1], b'+' | b'*' | b'?' | b'}')
                && !preceded_by_escape(bytes, i - 1) =>
            {
                // A possessive quantifier (or Oniguruma's `x{n}+`): no plain equivalent here.
                return None;
            }
            _ => {
                let len = regex[i..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&regex[i..i + len]);
                i += len;
            }
        }
    }
    Some(if changed { out } else { regex.to_owned() })
}

fn preceded_by_escape(bytes: &[u8], at: usize) -> bool {
    let backslashes = bytes[..at]
        .iter()
        .rev()
        .take_while(|&&b| b == b'\\')
        .count();
    backslashes % 2 == 1
}

/// The index after the group opening at `start` (which must be `(`).
fn skip_group(regex: &str, start: usize) -> Option<usize> {
    let bytes = regex.as_bytes();
    let mut depth = 0usize;
    let mut class_depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                i += 1 + regex[i + 1..].chars().next()?.len_utf8();
                continue;
            }
            b'[' if class_depth > 0 => {
                if bytes.get(i + 1) != Some(&b':') {
                    class_depth += 1;
                } else {
                    i = regex[i + 2..].find(":]").map(|at| i + 2 + at + 1)?;
                }
            }
            b'[' => {
                class_depth = 1;
                if bytes.get(i + 1) == Some(&b'^') {
                    i += 1;
                }
                if bytes.get(i + 1) == Some(&b']') {
                    i += 1;
                }
            }
            b']' if class_depth > 0 => class_depth -= 1,
            b'(' if class_depth == 0 => depth += 1,
            b')' if class_depth == 0 => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bank(defs: &[(&str, &str)]) -> PatternBank {
        let mut bank = PatternBank::empty();
        for (name, regex) in defs {
            bank.add(name, regex).unwrap();
        }
        bank
    }

    #[test]
    fn references_become_captures_and_classes_become_ascii() {
        let bank = bank(&[("NUM", r"\d+"), ("PAIR", "%{NUM:a}-%{NUM:b:int}")]);
        let expansion = expand(&bank, "%{PAIR} (x)[\\w.]", true).unwrap();
        assert_eq!(
            expansion.regex,
            "(?:(?<_g0>[0-9]+)-(?<_g1>[0-9]+)) (?:x)[0-9A-Za-z_.]"
        );
        assert_eq!(expansion.captures[1].field, "b");
        assert_eq!(expansion.captures[1].conversion, Conversion::Int);
        let all = expand(&bank, "%{NUM}", false).unwrap();
        assert_eq!(all.captures[0].field, "NUM");
    }

    #[test]
    fn field_paths_flatten() {
        assert_eq!(field_path("[process][pid]"), "process.pid");
        assert_eq!(field_path("[a][b]?"), "a.b");
        assert_eq!(field_path("plain"), "plain");
    }

    #[test]
    fn relax_drops_lookaround_and_atomic() {
        assert_eq!(
            relax(r"(?<![0-9])(?>a[)(]+)b(?=c(d))").as_deref(),
            Some("(?:)(?:a[)(]+)b(?:)")
        );
        assert_eq!(relax(r"(a)\1"), None);
        assert_eq!(relax(r"a++"), None);
        assert_eq!(relax(r"a\++").as_deref(), Some(r"a\++"));
    }

    #[test]
    fn source_map_points_into_definitions() {
        let bank = bank(&[("BAD", "a{2,1}")]);
        let expansion = expand(&bank, "x %{BAD}", true).unwrap();
        let at = expansion.regex.find('{').unwrap();
        let (name, text, offset) = expansion.locate(at);
        assert_eq!((name, text, offset), (Some("BAD"), "a{2,1}", 1));
    }
}
