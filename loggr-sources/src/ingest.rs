//! What every syslog source does to a frame: trim it, parse it with the configured format,
//! apply the failure policy, count, and record where it came from.

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;

use loggr_core::metrics::ComponentMetrics;
use loggr_core::parser::{parse_or_keep, RawParser, PARSE_FAILURE_TAG};
use loggr_core::syslog::{Format, SyslogOptions};
use loggr_core::{BoxError, Event, FailurePolicy, ParseContext, Parser, Text};

/// How frames are parsed: a syslog [`Format`] or `raw`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    /// One of the syslog formats (`auto`, `rfc5424`, `rfc3164`, `rfc3339`, `json`).
    Syslog(Format),
    /// The whole frame is the message.
    Raw,
}

impl Default for InputFormat {
    fn default() -> Self {
        InputFormat::Syslog(Format::Auto)
    }
}

impl<'de> Deserialize<'de> for InputFormat {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        if name == "raw" {
            return Ok(InputFormat::Raw);
        }
        name.parse::<Format>()
            .map(InputFormat::Syslog)
            .map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for InputFormat {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        if name == "raw" {
            return Ok(InputFormat::Raw);
        }
        name.parse::<Format>().map(InputFormat::Syslog)
    }
}

impl InputFormat {
    /// The parser for this format.
    ///
    /// # Errors
    ///
    /// When the options name an unknown time zone.
    pub fn parser(self, options: &SyslogOptions) -> Result<Arc<dyn Parser>, BoxError> {
        Ok(match self {
            InputFormat::Raw => Arc::new(RawParser),
            InputFormat::Syslog(format) => Arc::from(format.parser(options)?),
        })
    }
}

/// The field naming the sending peer's address (pyloggr's name).
pub const CLIENT_HOST_FIELD: &str = "syslog_client_host";
/// The field naming the local port the message arrived on.
pub const SERVER_PORT_FIELD: &str = "syslog_server_port";
/// The field naming the transport (`tcp`, `tls`, `relp`, `udp`, `unix`).
pub const PROTOCOL_FIELD: &str = "syslog_protocol";

/// Where a connection or datagram came from, recorded in each event's fields.
#[derive(Clone, Debug)]
pub struct Origin {
    /// The peer's address (IP without port), or the socket path.
    pub client_host: Text,
    /// The local port.
    pub server_port: Option<u16>,
    /// The transport name.
    pub protocol: &'static str,
}

/// Parses frames for one source.
#[derive(Clone)]
pub struct FrameParser {
    parser: Arc<dyn Parser>,
    policy: FailurePolicy,
    metrics: Arc<ComponentMetrics>,
}

impl std::fmt::Debug for FrameParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameParser")
            .field("policy", &self.policy)
            .finish()
    }
}

impl FrameParser {
    /// A frame parser with this parser and failure policy, counting into `metrics`.
    pub fn new(
        parser: Arc<dyn Parser>,
        policy: FailurePolicy,
        metrics: Arc<ComponentMetrics>,
    ) -> Self {
        FrameParser {
            parser,
            policy,
            metrics,
        }
    }

    /// The frame parser of a source configured with `format` and `options`.
    ///
    /// # Errors
    ///
    /// When the options name an unknown time zone.
    pub fn configured(
        format: InputFormat,
        options: &SyslogOptions,
        policy: FailurePolicy,
        metrics: Arc<ComponentMetrics>,
    ) -> Result<Self, loggr_core::SourceError> {
        let parser = format
            .parser(options)
            .map_err(|error| loggr_core::SourceError::other(error.to_string()))?;
        Ok(FrameParser::new(parser, policy, metrics))
    }

    /// Turns a frame into an event, or `None` when the policy drops it (counted either way).
    /// A trailing LF (and CR) is not part of the message, as rsyslog's inputs agree.
    pub fn parse(&self, frame: Bytes, cx: &ParseContext, origin: Option<&Origin>) -> Option<Event> {
        let frame = trim_trailing_newline(frame);
        let mut event = match parse_or_keep(&*self.parser, frame, cx, self.policy) {
            Ok(event) => event,
            Err(error) => {
                ComponentMetrics::add(&self.metrics.parse_failures, 1);
                tracing::debug!(%error, "Dropped a frame that does not parse");
                return None;
            }
        };
        if event.has_tag(PARSE_FAILURE_TAG) {
            ComponentMetrics::add(&self.metrics.parse_failures, 1);
        }
        if let Some(origin) = origin {
            if event.hostname.is_none() {
                event.hostname = Some(origin.client_host.clone());
            }
            // Static names (`Text::from(&str)` would allocate a copy of each name per event),
            // set in name order (each one is appended to the sorted fields).
            event.set_field(
                Text::from_static(CLIENT_HOST_FIELD),
                origin.client_host.clone(),
            );
            event.set_field(
                Text::from_static(PROTOCOL_FIELD),
                Text::from_static(origin.protocol),
            );
            if let Some(port) = origin.server_port {
                event.set_field(Text::from_static(SERVER_PORT_FIELD), i64::from(port));
            }
        }
        Some(event)
    }
}

/// Removes one trailing `\n` (and a `\r` before it).
pub fn trim_trailing_newline(mut frame: Bytes) -> Bytes {
    if frame.last() == Some(&b'\n') {
        frame.truncate(frame.len() - 1);
        if frame.last() == Some(&b'\r') {
            frame.truncate(frame.len() - 1);
        }
    }
    frame
}
