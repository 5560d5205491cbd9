//! # loggr-amqp
//!
//! The AMQP 0-9-1 (RabbitMQ) plumbing that loggr's `amqp` sink (in `loggr-sinks`) and `amqp`
//! source (in `loggr-sources`) share: connecting with a name the broker shows, classifying
//! errors, backing off between reconnections, and declaring the [topology] (exchanges, queues
//! with their dead-letter queues, bindings) from configuration.
//!
//! It sits where `loggr-relp` sits for RELP: a protocol crate below the plugin crates, so that
//! the sink and the source share one implementation without depending on each other. The
//! client is [`lapin`], re-exported so that programs (the `loggr ctl` command declaring a
//! topology, tests) use the very version loggr was built with.
//!
//! ```no_run
//! use loggr_amqp::topology::{declare_topology, TopologyConfig};
//!
//! # async fn example() -> Result<(), loggr_amqp::AmqpError> {
//! let topology: TopologyConfig = toml::from_str(r#"
//!     exchanges = [{ name = "loggr.events", type = "topic" }]
//!     queues = [{ name = "loggr.parse", type = "quorum",
//!                 dead_letter = { exchange = "loggr.dlx", queue = "loggr.parse.dead" } }]
//!     bindings = [{ queue = "loggr.parse", exchange = "loggr.events", routing_key = "loggr.#" }]
//! "#).expect("valid topology");
//! let connection = loggr_amqp::connect(
//!     "amqp://guest:guest@127.0.0.1:5672/%2f",
//!     "loggr-ctl",
//!     std::time::Duration::from_secs(10),
//! )
//! .await?;
//! let channel = connection
//!     .create_channel()
//!     .await
//!     .map_err(|error| loggr_amqp::AmqpError::lapin("opening a channel", error))?;
//! declare_topology(&channel, &topology).await?;
//! # Ok(()) }
//! ```

pub mod topology;

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

pub use lapin;
use lapin::types::ShortString;
use lapin::uri::AMQPUri;

pub use topology::{declare_topology, delete_topology, TopologyConfig};

/// An AMQP operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AmqpError {
    /// The URL does not parse.
    #[error("invalid AMQP URL `{url}`: {message}")]
    Url {
        /// The URL, password hidden.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// A name is longer than AMQP's 255 bytes.
    #[error("`{name}…` is longer than AMQP's limit of 255 bytes")]
    NameTooLong {
        /// The beginning of the name.
        name: String,
    },
    /// The topology is not consistent (a quorum queue that is not durable, …).
    #[error("invalid topology: {0}")]
    Topology(String),
    /// The client or the broker reported an error while doing `what`.
    #[error("{what}: {source}")]
    Lapin {
        /// What loggr was doing (`connecting to amqp://…`, ``declaring queue `x` ``).
        what: String,
        /// The error.
        #[source]
        source: lapin::Error,
    },
    /// The broker did not answer in time.
    #[error("{what}: no answer within {} ms", .timeout.as_millis())]
    Timeout {
        /// What loggr was doing.
        what: String,
        /// The limit.
        timeout: Duration,
    },
}

impl AmqpError {
    /// Wraps a client error with what was being done.
    pub fn lapin(what: impl Into<String>, source: lapin::Error) -> Self {
        AmqpError::Lapin {
            what: what.into(),
            source,
        }
    }

    /// The AMQP reply code, when the broker closed the channel or connection with one
    /// (404 `NOT_FOUND`, 406 `PRECONDITION_FAILED`, 320 `CONNECTION_FORCED`, …).
    pub fn reply_code(&self) -> Option<u16> {
        match self {
            AmqpError::Lapin { source, .. } => reply_code(source),
            _ => None,
        }
    }

    /// Whether trying again later may help: a lost connection, a timeout or a broker going
    /// down may; a bad URL, a refused login, a missing queue or a declaration that contradicts
    /// the existing one (406) needs a change of configuration first.
    pub fn is_transient(&self) -> bool {
        match self {
            AmqpError::Url { .. } | AmqpError::NameTooLong { .. } | AmqpError::Topology(_) => false,
            AmqpError::Timeout { .. } => true,
            AmqpError::Lapin { source, .. } => is_transient(source),
        }
    }
}

/// The reply code of a channel or connection closed by the broker.
pub fn reply_code(error: &lapin::Error) -> Option<u16> {
    match error.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => Some(amqp.get_id()),
        _ => None,
    }
}

/// Whether a client error may go away by itself (see [`AmqpError::is_transient`]).
pub fn is_transient(error: &lapin::Error) -> bool {
    match reply_code(error) {
        // ACCESS_REFUSED, NOT_FOUND, PRECONDITION_FAILED, SYNTAX_ERROR, COMMAND_INVALID,
        // NOT_ALLOWED, NOT_IMPLEMENTED, INVALID_PATH (unknown vhost).
        Some(403 | 404 | 406 | 402 | 502 | 503 | 530 | 540) => false,
        _ => true,
    }
}

/// A name as AMQP wants it (at most 255 bytes).
///
/// # Errors
///
/// [`AmqpError::NameTooLong`].
pub fn short_string(name: &str) -> Result<ShortString, AmqpError> {
    ShortString::try_new(name).map_err(|_| AmqpError::NameTooLong {
        name: name.chars().take(40).collect(),
    })
}

/// Cuts text to AMQP's 255-byte limit for short strings (at a character boundary).
pub fn truncated_short_string(text: &str) -> ShortString {
    let mut end = text.len().min(255);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    ShortString::try_new(&text[..end]).unwrap_or_default()
}

pub use loggr_core::config::redact_url;

/// Parses an AMQP URL (`amqp://user:password@host:port/vhost`, the vhost URL-encoded: `%2f` is
/// `/`).
///
/// # Errors
///
/// [`AmqpError::Url`].
pub fn parse_url(url: &str) -> Result<AMQPUri, AmqpError> {
    url.parse::<AMQPUri>().map_err(|message| AmqpError::Url {
        url: redact_url(url),
        message,
    })
}

/// Opens a connection named `connection_name` (shown by `rabbitmqctl list_connections name
/// client_properties` and the management UI, and usable with `rabbitmqctl close_connection`).
///
/// Needs a running tokio runtime.
///
/// # Errors
///
/// A bad URL, a refused connection or login, or no answer within `timeout`.
pub async fn connect(
    url: &str,
    connection_name: &str,
    timeout: Duration,
) -> Result<lapin::Connection, AmqpError> {
    let uri = parse_url(url)?;
    let properties =
        lapin::ConnectionProperties::default().with_connection_name(connection_name.into());
    let what = || format!("connecting to {}", redact_url(url));
    match tokio::time::timeout(timeout, lapin::Connection::connect_uri(uri, properties)).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(AmqpError::lapin(what(), error)),
        Err(_elapsed) => Err(AmqpError::Timeout {
            what: what(),
            timeout,
        }),
    }
}

/// How long to wait between reconnection attempts: doubling from `initial_backoff` up to
/// `max_backoff`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ReconnectConfig {
    /// The first wait after a failure (default `100ms`).
    #[serde(with = "loggr_core::config::duration")]
    pub initial_backoff: Duration,
    /// The longest wait (default `10s`).
    #[serde(with = "loggr_core::config::duration")]
    pub max_backoff: Duration,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        ReconnectConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// The state of an exponential backoff.
#[derive(Clone, Debug)]
pub struct Backoff {
    config: ReconnectConfig,
    next: Duration,
}

impl Backoff {
    /// A backoff that starts at the configured initial wait.
    pub fn new(config: ReconnectConfig) -> Self {
        let next = config.initial_backoff;
        Backoff { config, next }
    }

    /// The wait before the next attempt (and doubles the one after).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.config.max_backoff.max(self.config.initial_backoff));
        delay
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.next = self.config.initial_backoff;
    }
}

/// A connection name unique in this process: `prefix-<pid>-<n>`.
pub fn unique_connection_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Shows a connection's name and URL (password hidden) in logs.
#[derive(Clone)]
pub struct Endpoint {
    /// The URL as configured.
    pub url: String,
    /// The connection name.
    pub name: String,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &redact_url(&self.url))
            .field("name", &self.name)
            .finish()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", redact_url(&self.url), self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        let error = parse_url("amqp://u:secret@host:notaport/").unwrap_err();
        assert!(!error.to_string().contains("secret"), "{error}");
        assert!(!error.is_transient());
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_resets() {
        let mut backoff = Backoff::new(ReconnectConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
        });
        let delays: Vec<u128> = (0..5).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 350, 350, 350]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn long_names_are_refused_and_routing_keys_cut_at_a_char_boundary() {
        let long = "é".repeat(200);
        assert!(matches!(
            short_string(&long),
            Err(AmqpError::NameTooLong { .. })
        ));
        let cut = truncated_short_string(&long);
        assert_eq!(cut.as_str().len(), 254);
        assert_eq!(truncated_short_string("short").as_str(), "short");
    }

    #[test]
    fn connection_names_are_unique() {
        assert_ne!(unique_connection_name("x"), unique_connection_name("x"));
    }
}
