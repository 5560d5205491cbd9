//! Pipeline configuration in TOML: the file format, `${VAR}` interpolation, durations, and
//! errors that name the component and the field at fault.
//!
//! ```toml
//! [pipeline]
//! channel_capacity = 16      # batches queued between two stages
//! filter_workers = 0         # 0: one per core
//! grace_period = "10s"       # how long shutdown waits for outstanding acknowledgements
//!
//! [[sources]]
//! type = "stdin"
//!
//! [[filters]]
//! type = "buzzsaw"
//!
//! [[sinks]]
//! type = "file"
//! name = "archive"
//! path = "${LOGGR_DATA:-/var/lib/loggr}/events.jsonl"
//! batch = { max_events = 5000, linger = "20ms" }
//! retry = { max_backoff = "30s" }
//! ```
//!
//! Every component table has a `type` (the registered name of its plugin), an optional `name`
//! (unique among its kind; defaults to the type), and the plugin's own fields. Sinks also take
//! the runner's `batch` and `retry` tables and its `writers` count
//! ([`SinkOptions`](crate::SinkOptions); `writers = 2` runs two instances of a sink that takes
//! concurrent writers, such as `postgres`).

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `${NAME}` names a variable that is not set and has no default.
    #[error("line {line}: environment variable `{name}` is not set (write ${{{name}:-default}} to give a default)")]
    MissingVariable {
        /// The variable.
        name: String,
        /// 1-based line of the reference.
        line: usize,
    },
    /// A `${` without its closing `}` or with an invalid name.
    #[error("line {line}: invalid variable reference: {what}")]
    BadVariable {
        /// What is wrong.
        what: String,
        /// 1-based line.
        line: usize,
    },
    /// The text is not valid TOML or does not fit the top-level shape.
    #[error("invalid configuration: {0}")]
    Toml(String),
    /// A component's table has a bad or missing field.
    #[error("{component}: field `{field}`: {message}")]
    Field {
        /// Which component, e.g. ``sinks[1] (type `file`, name `archive`)``.
        component: String,
        /// The field path, e.g. `batch.max_events`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A component's `type` is not registered.
    #[error("{component}: unknown {kind} type `{type_name}` (known: {known})")]
    UnknownType {
        /// Which component.
        component: String,
        /// `source`, `filter` or `sink`.
        kind: &'static str,
        /// The unknown type.
        type_name: String,
        /// The registered types of that kind.
        known: String,
    },
    /// The component's configuration parsed but the component could not be built.
    #[error("{component}: {source}")]
    Build {
        /// Which component.
        component: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The pipeline as a whole is invalid (no source, duplicate names, …).
    #[error("invalid pipeline: {0}")]
    Invalid(String),
}

/// Replaces `${NAME}` and `${NAME:-default}` with environment variables; `$$` is a literal `$`.
///
/// ```
/// let text = loggr_core::config::interpolate("path = \"${NO_SUCH_VAR_X:-/tmp}/x\"", |_| None).unwrap();
/// assert_eq!(text, "path = \"/tmp/x\"");
/// ```
///
/// # Errors
///
/// [`ConfigError::MissingVariable`] and [`ConfigError::BadVariable`], with the line.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let line_of = |rest: &str| text[..text.len() - rest.len()].matches('\n').count() + 1;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                return Err(ConfigError::BadVariable {
                    what: "`${` without a closing `}`".into(),
                    line: line_of(&rest[at..]),
                });
            };
            let reference = &body[..end];
            let (name, default) = match reference.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (reference, None),
            };
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(ConfigError::BadVariable {
                    what: format!("`{name}` is not a variable name"),
                    line: line_of(&rest[at..]),
                });
            }
            match (lookup(name), default) {
                (Some(value), None) => out.push_str(&value),
                (Some(value), Some(_)) if !value.is_empty() => out.push_str(&value),
                (_, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(ConfigError::MissingVariable {
                        name: name.to_owned(),
                        line: line_of(&rest[at..]),
                    })
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The settings of the pipeline itself (the `[pipeline]` table).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineOptions {
    /// How many batches may wait between two stages (bounds memory with the batch sizes).
    pub channel_capacity: usize,
    /// Threads applying filters; `0` means one per core.
    pub filter_workers: usize,
    /// After a shutdown request, how long to wait for outstanding acknowledgements.
    #[serde(with = "duration")]
    pub grace_period: Duration,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            channel_capacity: 16,
            filter_workers: 0,
            grace_period: Duration::from_secs(10),
        }
    }
}

impl PipelineOptions {
    /// The number of filter workers, with `0` resolved to the number of cores.
    pub fn effective_filter_workers(&self) -> usize {
        match self.filter_workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

/// One `[[sources]]`, `[[filters]]` or `[[sinks]]` table.
#[derive(Clone, Debug, PartialEq)]
pub struct ComponentConfig {
    /// The plugin's registered name (`type = "…"`).
    pub type_name: String,
    /// The component's name, if given.
    pub name: Option<String>,
    /// The remaining keys, for the plugin.
    pub table: toml::Table,
}

impl<'de> Deserialize<'de> for ComponentConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(deserializer)?;
        let type_name = match table.remove("type") {
            Some(toml::Value::String(name)) => name,
            Some(_) => return Err(D::Error::custom("`type` must be a string")),
            None => {
                return Err(D::Error::custom(
                    "missing `type` (the component's plugin name)",
                ))
            }
        };
        let name = match table.remove("name") {
            Some(toml::Value::String(name)) => Some(name),
            Some(_) => return Err(D::Error::custom("`name` must be a string")),
            None => None,
        };
        Ok(ComponentConfig {
            type_name,
            name,
            table,
        })
    }
}

/// A whole pipeline configuration file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// `[pipeline]`.
    #[serde(default)]
    pub pipeline: PipelineOptions,
    /// `[[sources]]`.
    #[serde(default)]
    pub sources: Vec<ComponentConfig>,
    /// `[[filters]]`, applied in order.
    #[serde(default)]
    pub filters: Vec<ComponentConfig>,
    /// `[[sinks]]`, each receiving every event.
    #[serde(default)]
    pub sinks: Vec<ComponentConfig>,
    /// `[[packers]]`: each merges the events of the source its `source` key names.
    #[serde(default)]
    pub packers: Vec<ComponentConfig>,
    /// `[metrics]`: where a daemon serves Prometheus `/metrics` and `/healthz`.
    #[serde(default)]
    pub metrics: Option<MetricsOptions>,
}

/// The `[metrics]` table of a daemon's configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsOptions {
    /// The address of the HTTP endpoint, e.g. `"127.0.0.1:9464"`.
    pub address: std::net::SocketAddr,
}

impl PipelineConfig {
    /// Parses TOML text after interpolating environment variables.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the line, or the component and field.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        parse_toml(text)
    }

    /// Reads and parses a file.
    ///
    /// # Errors
    ///
    /// As [`from_toml`](Self::from_toml), or [`ConfigError::Read`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        read_toml(path.as_ref())
    }
}

/// Reads a TOML file into any configuration type, with `${VAR}` interpolation.
///
/// # Errors
///
/// [`ConfigError::Read`] or the errors of [`parse_toml`].
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_toml(&text)
}

/// Parses TOML text into any configuration type, with `${VAR}` interpolation.
///
/// # Errors
///
/// Interpolation errors, or [`ConfigError::Toml`] with the line and column.
pub fn parse_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    let text = interpolate(text, |name| std::env::var(name).ok())?;
    toml::from_str(&text)
        .map_err(|error| ConfigError::Toml(error.to_string().trim_end().to_owned()))
}

/// Deserializes a component's own table into its configuration type, naming the field at fault.
///
/// # Errors
///
/// [`ConfigError::Field`].
pub fn deserialize_component<T: serde::de::DeserializeOwned>(
    component: &str,
    table: toml::Table,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|error| {
        let path = error.path().to_string();
        ConfigError::Field {
            component: component.to_owned(),
            field: if path == "." {
                "(table)".to_owned()
            } else {
                path
            },
            // toml appends "in `path`" lines of its own; the path is already given.
            message: error
                .into_inner()
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        }
    })
}

/// Parses a duration written with a unit: `250ms`, `10s`, `1.5s`, `5m`, `2h`, `1d`, `100us`.
///
/// # Errors
///
/// A message saying what is wrong.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| {
        format!("invalid duration `{text}` (expected a number and a unit, like `10s`)")
    })?;
    let seconds = match unit.trim() {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" | "sec" | "secs" => 1.0,
        "m" | "min" | "mins" => 60.0,
        "h" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        "w" | "week" | "weeks" => 604_800.0,
        "" => return Err(format!("duration `{text}` needs a unit (ms, s, m, h, d)")),
        other => return Err(format!("unknown duration unit `{other}` in `{text}`")),
    };
    Duration::try_from_secs_f64(number * seconds)
        .map_err(|error| format!("invalid duration `{text}`: {error}"))
}

/// Serde helpers for durations written as strings with a unit (see [`parse_duration`]).
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    /// Deserializes `"10s"`-style strings.
    ///
    /// # Errors
    ///
    /// When the text is not a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// A connection URL with its password replaced by `***`, for logs, errors and pages
/// (`postgresql://bob:***@db:5432/x`, `amqp://guest:***@host/%2f`). A URL without password is
/// returned as is; a string that is not a URL (a libpq `key=value` string may hold a password)
/// becomes `***`.
///
/// ```
/// use loggr_core::config::redact_url;
/// assert_eq!(redact_url("amqp://guest:secret@127.0.0.1:5672/%2f"), "amqp://guest:***@127.0.0.1:5672/%2f");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return "***".to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let redacted = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{}{}{}", &url[..scheme_end + 3], redacted, &rest[at..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_url("postgresql://bob:s3cr@t@db:5432/x?sslmode=require"),
            "postgresql://bob:***@db:5432/x?sslmode=require"
        );
        assert_eq!(redact_url("postgresql://root@h/x"), "postgresql://root@h/x");
        assert_eq!(redact_url("amqp://host/vhost"), "amqp://host/vhost");
        assert_eq!(redact_url("amqp://u:p@h"), "amqp://u:***@h");
        assert_eq!(redact_url("host=x password=y"), "***");
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("db1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn interpolation_substitutes_defaults_and_escapes() {
        assert_eq!(interpolate("a ${HOST} b", env).unwrap(), "a db1 b");
        assert_eq!(interpolate("${NOPE:-x y}", env).unwrap(), "x y");
        assert_eq!(interpolate("${EMPTY:-fallback}", env).unwrap(), "fallback");
        assert_eq!(interpolate("${EMPTY}", env).unwrap(), "");
        assert_eq!(interpolate("cost $$5 $x", env).unwrap(), "cost $5 $x");
    }

    #[test]
    fn interpolation_errors_name_the_variable_and_line() {
        let error = interpolate("a = 1\nb = \"${MISSING}\"", env).unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 2: environment variable `MISSING` is not set (write ${MISSING:-default} to give a default)"
        );
        let error = interpolate("x\ny\n${OPEN", env).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("line 3: invalid variable reference"),
            "{error}"
        );
        let error = interpolate("${9X}", env).unwrap_err();
        assert!(
            error.to_string().contains("`9X` is not a variable name"),
            "{error}"
        );
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("10").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("10 parsecs")
            .unwrap_err()
            .contains("unknown duration unit"));
    }

    #[test]
    fn pipeline_config_reads_components_and_options() {
        let config = PipelineConfig::from_toml(
            r#"
            [pipeline]
            channel_capacity = 4
            grace_period = "3s"
            [[sources]]
            type = "stdin"
            [[sinks]]
            type = "file"
            name = "archive"
            path = "/tmp/x"
            "#,
        )
        .unwrap();
        assert_eq!(config.pipeline.channel_capacity, 4);
        assert_eq!(config.pipeline.grace_period, Duration::from_secs(3));
        assert_eq!(config.sources[0].type_name, "stdin");
        assert_eq!(config.sinks[0].name.as_deref(), Some("archive"));
        assert_eq!(config.sinks[0].table["path"].as_str(), Some("/tmp/x"));
    }

    #[test]
    fn top_level_errors_are_clear() {
        let error = PipelineConfig::from_toml("[pipline]\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown field `pipline`"), "{error}");
        let error = PipelineConfig::from_toml("[[sinks]]\npath = 1\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing `type`"), "{error}");
        let error =
            PipelineConfig::from_toml("[pipeline]\ngrace_period = \"5 fortnights\"\n").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("unknown duration unit `fortnights`"),
            "{error}"
        );
    }
}
