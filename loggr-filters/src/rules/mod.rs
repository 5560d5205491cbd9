//! The `rules` filter: pyloggr's rules language, read with a [pest](https://pest.rs) grammar
//! (`rules.pest`) and compiled once into a tree the workers evaluate per event.
//!
//! ```text
//! # Tag and enrich web server errors; drop health checks.
//! if app_name == "nginx" and [status] ~ "^5" {
//!     tags += "server_error"
//!     [summary] := hostname + ": " + [status] + " " + [path]
//! } else if "healthcheck" in tags {
//!     drop
//! }
//! if grok("%{COMBINEDAPACHELOG}", prefix="http_") {
//!     useragent([http_agent])
//!     if "bot" in tags { stop }
//! }
//! tags -= "_grokparsefailure"
//! ```
//!
//! - Statements: `if TEST { … } else { … }` (`else if` chains), `tags += "x"`, `tags -= "x"`,
//!   `[field] := EXPR` (concatenation of literals, `[fields]` and attributes with `+`), `drop`
//!   (the event is discarded on purpose: acknowledged, not stored), `stop` (ends the rules for
//!   this event — really: pyloggr's `stop` did not), and filter calls.
//! - Filter calls: any registered filter type by name, keyword arguments becoming its
//!   configuration (`grok("P1", "P2", prefix="x_")`: positional arguments are grok's
//!   `patterns`; `useragent([agent])`: the field to read). Built once, when the rules load. As
//!   a test (`if grok(…) { … }`), a call succeeds when the filter kept the event without
//!   adding a failure tag (a tag starting with `_`, such as `_grokparsefailure`).
//! - Conditions: `==`, `!=`, `~` (regex), `~*` (case-insensitive regex; the right side of
//!   `~`/`~*` is a string literal, compiled once), `"x" in tags`, `"x" in fields`, `notin`,
//!   `not`, `and`, `or` and parentheses. Operands are string literals, `[custom]` fields and
//!   the event's attributes `severity`, `facility` (by name: `"err"`, `"local3"`),
//!   `hostname`/`host`, `app_name`/`program`, `procid`/`pid`, `msgid`, `message`. A missing
//!   field or attribute equals nothing (`==` is false, `!=` true, `~` false).
//! - Strings are in double quotes; `\"` and `\\` are escapes, any other backslash is kept as is
//!   (so regexes are written naturally: `"^5\d\d$"`).
//! - Errors in a rules file give the file, line and column with a caret under the culprit.

use std::borrow::Cow;
use std::path::PathBuf;

use pest::error::{Error as PestError, ErrorVariant};
use pest::iterators::Pair;
use pest::Parser as _;
use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use loggr_core::{
    BoxError, BuildContext, Event, Filter, FilterConfig, FilterError, Registry, Text, Verdict,
};

mod grammar {
    //! The parser pest generates from `rules.pest`.
    #![allow(missing_docs, unreachable_pub)] // generated code

    #[derive(pest_derive::Parser)]
    #[grammar = "rules/rules.pest"]
    pub(super) struct Grammar;
}

use grammar::{Grammar, Rule};

/// A rules file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// The file could not be read.
    #[error("cannot read rules file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A syntax or meaning error, rendered with file, line, column and a caret.
    #[error("{0}")]
    Invalid(String),
    /// The configuration names neither a file nor inline rules (or both).
    #[error("give exactly one of `file` and `rules`")]
    Source,
}

/// Configuration of the `rules` filter.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// A file of rules.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Rules given inline (instead of `file`).
    #[serde(default)]
    pub rules: Option<String>,
}

/// An event attribute usable in conditions.
#[derive(Clone, Copy, Debug)]
enum Attribute {
    Severity,
    Facility,
    Hostname,
    AppName,
    Procid,
    Msgid,
    Message,
}

#[derive(Debug)]
enum Operand {
    Literal(Text),
    Field(Text),
    Attribute(Attribute),
}

#[derive(Debug)]
enum Compare {
    Equal,
    NotEqual,
    Matches(Regex),
}

#[derive(Debug)]
enum Condition {
    Or(Vec<Condition>),
    And(Vec<Condition>),
    Not(Box<Condition>),
    InTags {
        value: Text,
        negate: bool,
    },
    InFields {
        value: Text,
        negate: bool,
    },
    Compare {
        left: Operand,
        compare: Compare,
        right: Operand,
    },
}

/// A filter built from a call in the rules.
struct Call {
    filter: Box<dyn Filter>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Call({})", self.filter.name())
    }
}

#[derive(Debug)]
enum Test {
    Call(Call),
    Condition(Condition),
}

#[derive(Debug)]
enum Statement {
    If {
        test: Test,
        then: Vec<Statement>,
        otherwise: Vec<Statement>,
    },
    AddTag(Text),
    RemoveTag(Text),
    Assign {
        field: Text,
        parts: Vec<Operand>,
    },
    Drop,
    Stop,
    Call(Call),
}

/// What the rules decided so far for an event.
enum Flow {
    Continue,
    Stop,
    Drop,
}

/// A compiled rules file.
#[derive(Debug)]
pub struct Rules {
    statements: Vec<Statement>,
}

/// Builds filters named in calls from the registry.
struct Compiler<'a> {
    path: &'a str,
    registry: &'a Registry,
    cx: &'a BuildContext,
}

/// Unescapes `\"` and `\\`; any other backslash stays, so regexes keep `\d`, `\s`, ….
fn unescape(inner: &str) -> String {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(quoted @ ('"' | '\\')) => out.push(quoted),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The text of a `string` pair, unescaped.
fn string_of(pair: Pair<'_, Rule>) -> String {
    unescape(pair.into_inner().next().map_or("", |inner| inner.as_str()))
}

/// The name inside a `field` pair (`[name]`).
fn field_of(pair: Pair<'_, Rule>) -> Text {
    Text::from(pair.into_inner().next().map_or("", |name| name.as_str()))
}

fn attribute_of(text: &str) -> Attribute {
    match text {
        "severity" => Attribute::Severity,
        "facility" => Attribute::Facility,
        "hostname" | "host" => Attribute::Hostname,
        "app_name" | "program" => Attribute::AppName,
        "procid" | "pid" => Attribute::Procid,
        "msgid" => Attribute::Msgid,
        _ => Attribute::Message,
    }
}

impl Compiler<'_> {
    fn error(&self, pair: &Pair<'_, Rule>, message: impl Into<String>) -> RulesError {
        let error = PestError::<Rule>::new_from_span(
            ErrorVariant::CustomError {
                message: message.into(),
            },
            pair.as_span(),
        )
        .with_path(self.path);
        RulesError::Invalid(error.to_string())
    }

    fn statements(
        &self,
        pairs: pest::iterators::Pairs<'_, Rule>,
    ) -> Result<Vec<Statement>, RulesError> {
        pairs
            .filter(|pair| pair.as_rule() == Rule::statement)
            .map(|pair| self.statement(pair))
            .collect()
    }

    fn statement(&self, pair: Pair<'_, Rule>) -> Result<Statement, RulesError> {
        let Some(inner) = pair.into_inner().next() else {
            return Ok(Statement::Stop);
        };
        match inner.as_rule() {
            Rule::if_stmt => self.if_statement(inner),
            Rule::tag_stmt => {
                let mut parts = inner.into_inner();
                let add = parts.next().is_some_and(|op| op.as_str() == "+=");
                let tag = Text::from(parts.next().map(string_of).unwrap_or_default());
                Ok(if add {
                    Statement::AddTag(tag)
                } else {
                    Statement::RemoveTag(tag)
                })
            }
            Rule::assign => {
                let mut parts = inner.into_inner();
                let field = parts.next().map(field_of).unwrap_or_default();
                let concat = parts
                    .next()
                    .map(|c| c.into_inner().map(|o| self.operand(o)).collect());
                Ok(Statement::Assign {
                    field,
                    parts: concat.unwrap_or_default(),
                })
            }
            Rule::drop_stmt => Ok(Statement::Drop),
            Rule::stop_stmt => Ok(Statement::Stop),
            Rule::call => Ok(Statement::Call(self.call(inner)?)),
            _ => Err(self.error(&inner, "unexpected statement")),
        }
    }

    fn if_statement(&self, pair: Pair<'_, Rule>) -> Result<Statement, RulesError> {
        let mut parts = pair.into_inner();
        let test = match parts.next().and_then(|t| t.into_inner().next()) {
            Some(inner) if inner.as_rule() == Rule::call => Test::Call(self.call(inner)?),
            Some(inner) => Test::Condition(self.condition(inner)?),
            None => return Err(RulesError::Invalid("an `if` without a test".into())),
        };
        let then = match parts.next() {
            Some(block) => self.statements(block.into_inner())?,
            None => Vec::new(),
        };
        let otherwise = match parts.next() {
            Some(next) if next.as_rule() == Rule::if_stmt => vec![self.if_statement(next)?],
            Some(block) => self.statements(block.into_inner())?,
            None => Vec::new(),
        };
        Ok(Statement::If {
            test,
            then,
            otherwise,
        })
    }

    fn operand(&self, pair: Pair<'_, Rule>) -> Operand {
        let inner = if pair.as_rule() == Rule::operand {
            pair.into_inner().next()
        } else {
            Some(pair)
        };
        match inner {
            Some(p) if p.as_rule() == Rule::string => Operand::Literal(Text::from(string_of(p))),
            Some(p) if p.as_rule() == Rule::field => Operand::Field(field_of(p)),
            Some(p) => Operand::Attribute(attribute_of(p.as_str())),
            None => Operand::Literal(Text::new()),
        }
    }

    fn condition(&self, pair: Pair<'_, Rule>) -> Result<Condition, RulesError> {
        match pair.as_rule() {
            Rule::condition => {
                let parts: Vec<Condition> = pair
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::disjunct)
                    .map(|p| self.condition(p))
                    .collect::<Result<_, _>>()?;
                Ok(if parts.len() == 1 {
                    parts.into_iter().next().unwrap_or(Condition::Or(vec![]))
                } else {
                    Condition::Or(parts)
                })
            }
            Rule::disjunct => {
                let parts: Vec<Condition> = pair
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::negated)
                    .map(|p| self.condition(p))
                    .collect::<Result<_, _>>()?;
                Ok(if parts.len() == 1 {
                    parts.into_iter().next().unwrap_or(Condition::And(vec![]))
                } else {
                    Condition::And(parts)
                })
            }
            Rule::negated => {
                let mut parts = pair.into_inner();
                match parts.next() {
                    Some(first) if first.as_rule() == Rule::not => {
                        let inner = parts.next().ok_or_else(|| {
                            RulesError::Invalid("`not` without a condition".into())
                        })?;
                        Ok(Condition::Not(Box::new(self.condition(inner)?)))
                    }
                    Some(atom) => self.condition(atom),
                    None => Err(RulesError::Invalid("empty condition".into())),
                }
            }
            Rule::atom => match pair.into_inner().next() {
                Some(inner) => self.condition(inner),
                None => Err(RulesError::Invalid("empty condition".into())),
            },
            Rule::membership => {
                let mut parts = pair.into_inner();
                let value = Text::from(parts.next().map(string_of).unwrap_or_default());
                let negate = parts.next().is_some_and(|p| p.as_rule() == Rule::notin);
                let in_fields = parts
                    .next()
                    .is_some_and(|p| p.as_str().starts_with("fields"));
                Ok(if in_fields {
                    Condition::InFields { value, negate }
                } else {
                    Condition::InTags { value, negate }
                })
            }
            Rule::comparison => {
                let mut parts = pair.into_inner();
                let (Some(left), Some(op), Some(right)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(RulesError::Invalid("incomplete comparison".into()));
                };
                let compare = match op.as_str() {
                    "==" => Compare::Equal,
                    "!=" => Compare::NotEqual,
                    op_text => {
                        let literal = right
                            .clone()
                            .into_inner()
                            .next()
                            .filter(|p| p.as_rule() == Rule::string);
                        let Some(literal) = literal else {
                            return Err(self.error(&right, format!("the right side of `{op_text}` must be a string literal (a regex)")));
                        };
                        let pattern = string_of(literal);
                        let regex = RegexBuilder::new(&pattern)
                            .case_insensitive(op_text == "~*")
                            .build()
                            .map_err(|error| {
                                self.error(&right, format!("invalid regex: {error}"))
                            })?;
                        Compare::Matches(regex)
                    }
                };
                Ok(Condition::Compare {
                    left: self.operand(left),
                    compare,
                    right: self.operand(right),
                })
            }
            _ => Err(self.error(&pair, "unexpected condition")),
        }
    }

    fn call(&self, pair: Pair<'_, Rule>) -> Result<Call, RulesError> {
        let whole = pair.clone();
        let mut parts = pair.into_inner();
        let Some(name) = parts.next() else {
            return Err(self.error(&whole, "a call without a name"));
        };
        let filter_name = name.as_str();
        let Some(plugin) = self.registry.filter(filter_name) else {
            let known: Vec<&str> = self.registry.filter_types().collect();
            return Err(self.error(
                &name,
                format!(
                    "unknown filter `{filter_name}` (known: {})",
                    known.join(", ")
                ),
            ));
        };
        let mut table = toml::Table::new();
        let mut positional = Vec::new();
        for argument in parts {
            let Some(inner) = argument.into_inner().next() else {
                continue;
            };
            match inner.as_rule() {
                Rule::keyword => {
                    let mut kv = inner.into_inner();
                    let (Some(key), Some(value)) = (kv.next(), kv.next()) else {
                        continue;
                    };
                    table.insert(key.as_str().to_owned(), value_of(value));
                }
                _ => positional.push((inner.clone(), value_of(inner))),
            }
        }
        match (filter_name, positional.is_empty()) {
            (_, true) => {}
            ("grok", false) => {
                let patterns = positional.into_iter().map(|(_, v)| v).collect();
                table.insert("patterns".into(), toml::Value::Array(patterns));
            }
            ("useragent", false) if positional.len() == 1 => {
                let (_, value) = positional.remove(0);
                table.insert("source".into(), value);
            }
            (_, false) => {
                return Err(self.error(
                    &positional[0].0,
                    format!("`{filter_name}` takes keyword arguments only (name = value)"),
                ));
            }
        }
        let component = format!("{}:{}", self.path, whole.line_col().0);
        let filter = plugin.build(&component, table, self.cx).map_err(|error| {
            self.error(&whole, format!("cannot build `{filter_name}`: {error}"))
        })?;
        Ok(Call { filter })
    }
}

/// A call argument as a configuration value (`[field]` becomes the field's name).
fn value_of(pair: Pair<'_, Rule>) -> toml::Value {
    let inner = if pair.as_rule() == Rule::value {
        pair.into_inner().next()
    } else {
        Some(pair)
    };
    match inner {
        Some(p) if p.as_rule() == Rule::string => toml::Value::String(string_of(p)),
        Some(p) if p.as_rule() == Rule::field => toml::Value::String(field_of(p).to_string()),
        Some(p) if p.as_rule() == Rule::list => toml::Value::Array(
            p.into_inner()
                .map(|s| toml::Value::String(string_of(s)))
                .collect(),
        ),
        _ => toml::Value::String(String::new()),
    }
}

impl Rules {
    /// Compiles rules text; `path` names it in error messages. Filter calls are built with
    /// the plugins of `registry`.
    ///
    /// # Errors
    ///
    /// [`RulesError::Invalid`] with file, line, column and a caret.
    pub fn compile(
        text: &str,
        path: &str,
        registry: &Registry,
        cx: &BuildContext,
    ) -> Result<Rules, RulesError> {
        let mut pairs = Grammar::parse(Rule::file, text)
            .map_err(|error| RulesError::Invalid(error.with_path(path).to_string()))?;
        let file = pairs
            .next()
            .ok_or_else(|| RulesError::Invalid("empty rules".into()))?;
        let compiler = Compiler { path, registry, cx };
        Ok(Rules {
            statements: compiler.statements(file.into_inner())?,
        })
    }

    fn run(statements: &[Statement], event: &mut Event) -> Flow {
        for statement in statements {
            match statement {
                Statement::If {
                    test,
                    then,
                    otherwise,
                } => {
                    let taken = match test {
                        Test::Call(call) => match run_call(call, event) {
                            CallOutcome::Dropped => return Flow::Drop,
                            CallOutcome::Succeeded => true,
                            CallOutcome::Failed => false,
                        },
                        Test::Condition(condition) => holds(condition, event),
                    };
                    match Self::run(if taken { then } else { otherwise }, event) {
                        Flow::Continue => {}
                        other => return other,
                    }
                }
                Statement::AddTag(tag) => event.add_tag(tag.clone()),
                Statement::RemoveTag(tag) => {
                    event.tags.remove(&**tag);
                }
                Statement::Assign { field, parts } => {
                    let mut value = String::new();
                    for part in parts {
                        if let Some(text) = resolve(part, event) {
                            value.push_str(&text);
                        }
                    }
                    event.set_field(field.clone(), value);
                }
                Statement::Drop => return Flow::Drop,
                Statement::Stop => return Flow::Stop,
                Statement::Call(call) => {
                    if let CallOutcome::Dropped = run_call(call, event) {
                        return Flow::Drop;
                    }
                }
            }
        }
        Flow::Continue
    }
}

/// How a filter call went.
enum CallOutcome {
    /// The filter kept the event and added no failure tag.
    Succeeded,
    /// It failed: an error, or a new tag starting with `_` (`_grokparsefailure`, …).
    Failed,
    /// It discarded the event.
    Dropped,
}

fn run_call(call: &Call, event: &mut Event) -> CallOutcome {
    let failure_tags = |event: &Event| event.tags.iter().filter(|t| t.starts_with('_')).count();
    let before = failure_tags(event);
    match call.filter.apply(event) {
        Ok(Verdict::Discard) => CallOutcome::Dropped,
        Ok(Verdict::Keep) if failure_tags(event) > before => CallOutcome::Failed,
        Ok(Verdict::Keep) => CallOutcome::Succeeded,
        Err(error) => {
            event.add_tag(loggr_core::filter::FILTER_FAILURE_TAG);
            event.set_field(format!("{}_error", call.filter.name()), error.to_string());
            CallOutcome::Failed
        }
    }
}

fn resolve<'a>(operand: &'a Operand, event: &'a Event) -> Option<Cow<'a, str>> {
    match operand {
        Operand::Literal(text) => Some(Cow::Borrowed(text)),
        Operand::Field(name) => event.field(name).map(|value| match value.as_str() {
            Some(text) => Cow::Borrowed(text),
            None => Cow::Owned(value.to_string()),
        }),
        Operand::Attribute(attribute) => match attribute {
            Attribute::Severity => Some(Cow::Borrowed(event.severity.name())),
            Attribute::Facility => Some(Cow::Borrowed(event.facility.name())),
            Attribute::Hostname => event.hostname.as_deref().map(Cow::Borrowed),
            Attribute::AppName => event.app_name.as_deref().map(Cow::Borrowed),
            Attribute::Procid => event.procid.as_deref().map(Cow::Borrowed),
            Attribute::Msgid => event.msgid.as_deref().map(Cow::Borrowed),
            Attribute::Message => event.message.as_deref().map(Cow::Borrowed),
        },
    }
}

fn holds(condition: &Condition, event: &Event) -> bool {
    match condition {
        Condition::Or(parts) => parts.iter().any(|c| holds(c, event)),
        Condition::And(parts) => parts.iter().all(|c| holds(c, event)),
        Condition::Not(inner) => !holds(inner, event),
        Condition::InTags { value, negate } => event.has_tag(value) != *negate,
        Condition::InFields { value, negate } => event.fields.contains_key(value) != *negate,
        Condition::Compare {
            left,
            compare,
            right,
        } => {
            let left = resolve(left, event);
            match compare {
                Compare::Equal => left.is_some() && left == resolve(right, event),
                Compare::NotEqual => left.is_none() || left != resolve(right, event),
                Compare::Matches(regex) => left.is_some_and(|text| regex.is_match(&text)),
            }
        }
    }
}

/// The `rules` filter.
#[derive(Debug)]
pub struct RulesFilter {
    rules: Rules,
}

impl Filter for RulesFilter {
    fn name(&self) -> &str {
        "rules"
    }

    fn apply(&self, event: &mut Event) -> Result<Verdict, FilterError> {
        match Rules::run(&self.rules.statements, event) {
            Flow::Drop => Ok(Verdict::Discard),
            Flow::Continue | Flow::Stop => Ok(Verdict::Keep),
        }
    }
}

impl RulesFilter {
    /// Compiles rules text with the given registry (for filter calls).
    ///
    /// # Errors
    ///
    /// As [`Rules::compile`].
    pub fn new(
        text: &str,
        path: &str,
        registry: &Registry,
        cx: &BuildContext,
    ) -> Result<Self, RulesError> {
        Ok(RulesFilter {
            rules: Rules::compile(text, path, registry, cx)?,
        })
    }
}

impl FilterConfig for RulesConfig {
    fn build(self, cx: &BuildContext) -> Result<Box<dyn Filter>, BoxError> {
        let (text, path) = match (self.file, self.rules) {
            (Some(path), None) => {
                let text = std::fs::read_to_string(&path).map_err(|source| RulesError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                (text, path.display().to_string())
            }
            (None, Some(text)) => (text, "<inline rules>".to_owned()),
            _ => return Err(RulesError::Source.into()),
        };
        crate::link();
        let registry = Registry::from_inventory()?;
        Ok(Box::new(RulesFilter::new(&text, &path, &registry, cx)?))
    }
}

loggr_core::register_filter!("rules", RulesConfig);

#[inline(never)]
pub(crate) fn link() {}
