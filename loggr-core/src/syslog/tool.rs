//! The logic of the `parse` debugging tool (`cargo run --example parse`): frames from a
//! reader, each parsed and printed as one JSON object per line.
//!
//! Each output object has exactly the keys `facility`, `severity` (numbers), `timestamp`
//! (RFC 3339 in UTC or `null`), `hostname`, `app_name`, `procid`, `msgid` (strings or
//! `null`), `structured_data` (SD-ID → param → string, or an array of strings when a param
//! repeats) and `message` (string or `null`); plus `tags` and `fields` when the parser set
//! any (a stripped BOM, invalid UTF-8, rsyslog trusted properties). A frame that cannot be
//! parsed or framed prints `{"error": "<why>", "raw": "<input>"}` and the tool goes on (a
//! fatal framing error ends the input).
//!
//! With a filter stack ([`render_with_filters`]; the tool's `--filters FILE` and `--buzzsaw`),
//! each parsed event goes through the filters ([`apply_chain`]: the first discard stops it)
//! and its object always has `tags` (a sorted array) and `fields` (an object), plus
//! `"dropped": true` when a filter discarded it.

use std::io::{self, Read, Write};

use bytes::BytesMut;
use jiff::Timestamp;
use serde_json::{json, Map};
use tokio_util::codec::Decoder;

use super::{Format, SyslogOptions, TimeZoneError};
use crate::codec::{FramingError, LineDecoder, OctetCountingDecoder};
use crate::config::{ComponentConfig, ConfigError};
use crate::event::Event;
use crate::filter::{apply_chain, Filter, Verdict};
use crate::metrics::Metrics;
use crate::parser::{ParseContext, Parser};
use crate::registry::{BuildContext, Registry};

/// A JSON value, as the tool prints it (`serde_json::Value`, re-exported so callers need not
/// depend on serde_json).
pub use serde_json::Value as Json;

/// How the input is cut into messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// One message per line (CR before LF trimmed).
    #[default]
    Lf,
    /// RFC 6587 octet counting.
    Octet,
}

impl std::str::FromStr for Framing {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "lf" => Ok(Framing::Lf),
            "octet" => Ok(Framing::Octet),
            _ => Err(format!("unknown framing `{name}` (expected lf or octet)")),
        }
    }
}

/// What the tool was asked to do.
#[derive(Clone, Debug, Default)]
pub struct ToolOptions {
    /// The format (`--format`).
    pub format: Format,
    /// Year and time zone (`--year`, `--tz`).
    pub syslog: SyslogOptions,
    /// The framing (`--framing`).
    pub framing: Framing,
    /// The reception time given to parsers (default: now, per message).
    pub received_at: Option<Timestamp>,
}

/// The largest frame the tool accepts.
pub const MAX_FRAME: usize = 1024 * 1024;

/// The JSON object printed for an event.
pub fn event_json(event: &Event) -> Json {
    let mut object = Map::new();
    object.insert("facility".into(), json!(event.facility.code()));
    object.insert("severity".into(), json!(event.severity.code()));
    object.insert(
        "timestamp".into(),
        event
            .timestamp
            .map_or(Json::Null, |at| json!(at.to_string())),
    );
    let text = |value: &Option<crate::Text>| value.as_deref().map_or(Json::Null, |v| json!(v));
    object.insert("hostname".into(), text(&event.hostname));
    object.insert("app_name".into(), text(&event.app_name));
    object.insert("procid".into(), text(&event.procid));
    object.insert("msgid".into(), text(&event.msgid));
    object.insert(
        "structured_data".into(),
        serde_json::to_value(&event.structured_data).unwrap_or(Json::Null),
    );
    object.insert("message".into(), text(&event.message));
    if !event.tags.is_empty() {
        object.insert("tags".into(), json!(event.tags));
    }
    if !event.fields.is_empty() {
        object.insert(
            "fields".into(),
            serde_json::to_value(&event.fields).unwrap_or(Json::Null),
        );
    }
    Json::Object(object)
}

/// The JSON object printed for a frame that failed.
pub fn error_json(error: &dyn std::fmt::Display, raw: &[u8]) -> Json {
    json!({"error": error.to_string(), "raw": String::from_utf8_lossy(raw)})
}

/// The JSON object printed for an event that went through a filter stack: [`event_json`]
/// with `tags` and `fields` always present, and `"dropped": true` when it was discarded.
pub fn filtered_event_json(event: &Event, verdict: Verdict) -> Json {
    let mut json = event_json(event);
    if let Json::Object(object) = &mut json {
        object
            .entry("tags")
            .or_insert_with(|| Json::Array(Vec::new()));
        object
            .entry("fields")
            .or_insert_with(|| Json::Object(Map::new()));
        if verdict == Verdict::Discard {
            object.insert("dropped".into(), Json::Bool(true));
        }
    }
    json
}

/// Parses one frame into its output object.
pub fn render_frame(parser: &dyn Parser, frame: &bytes::Bytes, options: &ToolOptions) -> Json {
    render_frame_with(parser, frame, options, None)
}

fn render_frame_with(
    parser: &dyn Parser,
    frame: &bytes::Bytes,
    options: &ToolOptions,
    filters: Option<&[Box<dyn Filter>]>,
) -> Json {
    let cx = ParseContext {
        received_at: options.received_at.unwrap_or_else(Timestamp::now),
        peer: None,
    };
    match (parser.parse(frame.clone(), &cx), filters) {
        (Ok(event), None) => event_json(&event),
        (Ok(mut event), Some(filters)) => {
            let verdict = apply_chain(filters, &mut event);
            filtered_event_json(&event, verdict)
        }
        (Err(error), _) => error_json(&error, frame),
    }
}

/// A file of `[[filters]]` tables (the tool's `--filters FILE`), as in a daemon's
/// configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterFile {
    #[serde(default)]
    filters: Vec<ComponentConfig>,
}

/// Builds the filter stack of a TOML text made of `[[filters]]` tables (`type = "…"` and the
/// filter's own keys), each through the registry.
///
/// # Errors
///
/// A [`ConfigError`] naming the line, or the filter (`filters[1] (type `grok`)`) and field.
pub fn filters_from_toml(
    text: &str,
    registry: &Registry,
) -> Result<Vec<Box<dyn Filter>>, ConfigError> {
    let file: FilterFile = crate::config::parse_toml(text)?;
    build_filters(file.filters, registry)
}

/// Builds filters from their tables, in order, through the registry.
///
/// # Errors
///
/// [`ConfigError::UnknownType`], or the field or build error naming the filter.
pub fn build_filters(
    components: Vec<ComponentConfig>,
    registry: &Registry,
) -> Result<Vec<Box<dyn Filter>>, ConfigError> {
    let metrics = Metrics::new();
    let mut filters = Vec::with_capacity(components.len());
    for (index, component) in components.into_iter().enumerate() {
        let at = format!("filters[{index}] (type `{}`)", component.type_name);
        let plugin =
            registry
                .filter(&component.type_name)
                .ok_or_else(|| ConfigError::UnknownType {
                    component: at.clone(),
                    kind: "filter",
                    type_name: component.type_name.clone(),
                    known: registry.filter_types().collect::<Vec<_>>().join(", "),
                })?;
        let cx = BuildContext {
            name: component
                .name
                .clone()
                .unwrap_or_else(|| component.type_name.clone()),
            metrics: metrics.clone(),
        };
        filters.push(plugin.build(&at, component.table, &cx)?);
    }
    Ok(filters)
}

/// Reads `input` to its end, writing one JSON line per message to `out`.
///
/// # Errors
///
/// An I/O error reading `input` or writing `out`; an unknown time zone is reported as an
/// [`io::ErrorKind::InvalidInput`] error. Parse and framing errors are printed, not returned.
pub fn render(input: impl Read, options: &ToolOptions, out: &mut dyn Write) -> io::Result<()> {
    render_inner(input, options, None, out)
}

/// As [`render`], with every parsed event put through `filters` (see the module docs for the
/// keys this adds).
///
/// # Errors
///
/// As [`render`].
pub fn render_with_filters(
    input: impl Read,
    options: &ToolOptions,
    filters: &[Box<dyn Filter>],
    out: &mut dyn Write,
) -> io::Result<()> {
    render_inner(input, options, Some(filters), out)
}

fn render_inner(
    input: impl Read,
    options: &ToolOptions,
    filters: Option<&[Box<dyn Filter>]>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let parser = options
        .format
        .parser(&options.syslog)
        .map_err(|error: TimeZoneError| io::Error::new(io::ErrorKind::InvalidInput, error))?;
    match options.framing {
        Framing::Lf => run(
            input,
            LineDecoder::new(MAX_FRAME),
            &*parser,
            (options, filters),
            out,
        ),
        Framing::Octet => run(
            input,
            OctetCountingDecoder::new(MAX_FRAME),
            &*parser,
            (options, filters),
            out,
        ),
    }
}

fn run<D>(
    mut input: impl Read,
    mut decoder: D,
    parser: &dyn Parser,
    (options, filters): (&ToolOptions, Option<&[Box<dyn Filter>]>),
    out: &mut dyn Write,
) -> io::Result<()>
where
    D: Decoder<Item = bytes::Bytes, Error = FramingError>,
{
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut eof = false;
    loop {
        let result = if eof {
            decoder.decode_eof(&mut buf)
        } else {
            decoder.decode(&mut buf)
        };
        match result {
            Ok(Some(frame)) => {
                writeln!(
                    out,
                    "{}",
                    render_frame_with(parser, &frame, options, filters)
                )?;
            }
            Ok(None) if eof => break,
            Ok(None) => {
                let read = input.read(&mut chunk)?;
                if read == 0 {
                    eof = true;
                } else {
                    buf.extend_from_slice(chunk.get(..read).unwrap_or_default());
                }
            }
            Err(error) => {
                let fatal = !error.can_continue();
                let raw = if fatal {
                    buf.split().freeze()
                } else {
                    Default::default()
                };
                writeln!(out, "{}", error_json(&error, &raw))?;
                if fatal || eof {
                    break;
                }
            }
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], options: &ToolOptions) -> Vec<Json> {
        let mut out = Vec::new();
        render(input, options, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn renders_events_and_errors() {
        let options = ToolOptions {
            syslog: SyslogOptions {
                year: Some(2024),
                timezone: Some("UTC".into()),
                ..SyslogOptions::default()
            },
            ..ToolOptions::default()
        };
        let got = lines(b"<34>Oct 11 22:14:15 host su: hi\n<34>1 bad\n", &options);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            json!({"facility": 4, "severity": 2, "timestamp": "2024-10-11T22:14:15Z",
                   "hostname": "host", "app_name": "su", "procid": null, "msgid": null,
                   "structured_data": {}, "message": "hi"})
        );
        assert_eq!(got[1]["raw"], "<34>1 bad");
        assert!(got[1]["error"].as_str().unwrap().contains("TIMESTAMP"));
        let octet = ToolOptions {
            framing: Framing::Octet,
            ..options
        };
        let got = lines(b"16 <1>1 - - - - - -x", &octet);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["severity"], 1);
        assert!(got[1]["error"].as_str().unwrap().contains("MSG-LEN"));
    }
}
