//! Syslog formats: parsers from frames to [`Event`]s, and serializers back.
//!
//! | format | parser | serializer |
//! | --- | --- | --- |
//! | RFC 5424, strict | [`Rfc5424Parser`] | [`serialize::rfc5424`] |
//! | RFC 3164, as devices send it | [`Rfc3164Parser`] | [`serialize::rfc3164`] |
//! | RFC 3339 file lines (rsyslog's file format, BuzzSaw) | [`Rfc3339Parser`] | [`serialize::rsyslog_file`] |
//! | loggr's canonical JSON | [`JsonParser`] | [`serialize::json`] |
//! | detected per message | [`AutoParser`] | |
//!
//! A source picks a parser from its configuration with [`Format`] and [`SyslogOptions`]:
//!
//! ```
//! use loggr_core::syslog::{Format, SyslogOptions};
//! use loggr_core::{Bytes, ParseContext, Parser};
//!
//! let options = SyslogOptions { year: Some(2024), timezone: Some("UTC".into()), ..Default::default() };
//! let parser = Format::Auto.parser(&options)?;
//! let event = parser.parse(
//!     Bytes::from_static(b"<34>Oct 11 22:14:15 mymachine su[42]: 'su root' failed"),
//!     &ParseContext::now(),
//! )?;
//! assert_eq!(event.app_name.as_deref(), Some("su"));
//! assert_eq!(event.procid.as_deref(), Some("42"));
//! assert_eq!(event.timestamp.unwrap().to_string(), "2024-10-11T22:14:15Z");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Policy
//!
//! - Parsers are hand-written byte scanners: no regex, no allocation for fields (they are
//!   [`Text`] slices of the frame), no panic on any input.
//! - RFC 5424 is read strictly (PRI 0–191 without leading zeros, VERSION 1, field lengths,
//!   SD syntax and escapes, no duplicate SD-ID). Timestamps may carry up to **9** fraction
//!   digits (the RFC says 6; go-syslog and rust-syslog-rfc5424 accept 9 and
//!   Go's `RFC3339Nano` senders emit 9; nanoseconds are exactly what [`jiff::Timestamp`]
//!   holds, so nothing is lost). [`Rfc5424Parser::max_fraction_digits`] makes it 6.
//! - A UTF-8 BOM before the MSG is stripped and noted with the tag [`BOM_TAG`]; the text after a
//!   BOM must then be UTF-8. A MSG without BOM may be any bytes: invalid UTF-8 is decoded
//!   lossily, the frame kept in `raw` and the event tagged
//!   [`INVALID_UTF8_TAG`](crate::parser::INVALID_UTF8_TAG).
//! - RFC 3164 is read leniently (see [`Rfc3164Parser`]); a missing PRI means `user.notice`.
//! - On failure the caller applies its [`FailurePolicy`](crate::FailurePolicy): by default
//!   the message is kept, tagged `_parse_failure`.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::event::{Event, Facility, Severity, Text};
use crate::parser::{text_from_bytes, ParseError, Parser};

pub mod auto;
#[doc(hidden)]
pub mod checks;
pub mod json;
pub mod rfc3164;
pub mod rfc3339;
pub mod rfc5424;
pub mod serialize;
pub mod time;
pub mod tool;
pub mod trusted;

pub use auto::AutoParser;
pub use json::JsonParser;
pub use rfc3164::Rfc3164Parser;
pub use rfc3339::Rfc3339Parser;
pub use rfc5424::Rfc5424Parser;
pub use time::TimeZoneError;

/// The tag of events whose MSG started with a UTF-8 BOM (stripped).
pub const BOM_TAG: &str = "_bom";

/// The syslog format a source reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Detected per message: `{` JSON, `<PRI>1 ` RFC 5424, `<PRI>` RFC 3164, a leading RFC
    /// 3339 timestamp a file line, anything else RFC 3164 without PRI.
    #[default]
    Auto,
    /// RFC 5424, strict.
    Rfc5424,
    /// RFC 3164 (BSD syslog), lenient.
    Rfc3164,
    /// RFC 3339 file lines: `TIMESTAMP HOST app[pid]: message`.
    Rfc3339,
    /// loggr's canonical event JSON.
    Json,
}

impl Format {
    /// All formats, in the order of their names in documentation.
    pub const ALL: [Format; 5] = [
        Format::Auto,
        Format::Rfc5424,
        Format::Rfc3164,
        Format::Rfc3339,
        Format::Json,
    ];

    /// The configuration name (`auto`, `rfc5424`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Rfc5424 => "rfc5424",
            Format::Rfc3164 => "rfc3164",
            Format::Rfc3339 => "rfc3339",
            Format::Json => "json",
        }
    }

    /// Looks a format up by its configuration name.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|format| format.name() == name)
    }

    /// Builds the parser for this format.
    ///
    /// # Errors
    ///
    /// A [`TimeZoneError`] when `options.timezone` names no known zone.
    pub fn parser(self, options: &SyslogOptions) -> Result<Box<dyn Parser>, TimeZoneError> {
        Ok(match self {
            Format::Auto => Box::new(AutoParser::new(options)?),
            Format::Rfc5424 => Box::new(Rfc5424Parser::new(options)),
            Format::Rfc3164 => Box::new(Rfc3164Parser::new(options)?),
            Format::Rfc3339 => Box::new(Rfc3339Parser::new(options)?),
            Format::Json => Box::new(JsonParser),
        })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Format::from_name(name).ok_or_else(|| {
            format!("unknown format `{name}` (expected auto, rfc5424, rfc3164, rfc3339 or json)")
        })
    }
}

/// Options shared by the syslog parsers (the `[source.*]` keys of a syslog source).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogOptions {
    /// The year of RFC 3164 timestamps that carry none. By default, the year that puts the
    /// stamp nearest to the reception time (`Dec 31` received on Jan 1 is last year's).
    pub year: Option<i16>,
    /// The time zone of timestamps without offset (RFC 3164 stamps, file lines without
    /// offset): an IANA name (`Europe/Paris`), `UTC`, `local` or `+HH:MM`. Default: `local`.
    pub timezone: Option<String>,
    /// Turn rsyslog's trusted-properties suffix (`@[_PID=… _UID=… …]`) at the end of a
    /// message into fields (default true).
    pub trusted_properties: bool,
    /// The most fraction digits accepted in RFC 5424 timestamps (default 9; RFC 5424 says 6).
    pub max_fraction_digits: u8,
}

impl Default for SyslogOptions {
    fn default() -> Self {
        SyslogOptions {
            year: None,
            timezone: None,
            trusted_properties: true,
            max_fraction_digits: 9,
        }
    }
}

impl SyslogOptions {
    /// The configured time zone (the system zone when none is set).
    ///
    /// # Errors
    ///
    /// A [`TimeZoneError`] when the name is unknown.
    pub fn time_zone(&self) -> Result<jiff::tz::TimeZone, TimeZoneError> {
        time::time_zone(self.timezone.as_deref().unwrap_or("local"))
    }
}

/// A slice of the frame, clamped to its bounds (never panics).
pub(crate) fn slice(frame: &Bytes, start: usize, end: usize) -> Bytes {
    let end = end.min(frame.len());
    frame.slice(start.min(end)..end)
}

/// Header text: a slice of the frame, decoded without copying when it is UTF-8 (header
/// fields are checked to be ASCII by the scanners; anything else is decoded lossily).
/// A frame and, when the whole frame is valid UTF-8, its text: checked once, so that header
/// fields, structured data and the message are then handed out as slices without validating
/// each of them again.
pub(crate) struct FrameText<'a> {
    pub(crate) bytes: &'a Bytes,
    text: Option<Text>,
}

impl<'a> FrameText<'a> {
    pub(crate) fn new(bytes: &'a Bytes) -> Self {
        FrameText {
            bytes,
            text: Text::try_from(bytes.clone()).ok(),
        }
    }

    /// Bytes `start..end` as text, when they are valid UTF-8.
    pub(crate) fn text(&self, start: usize, end: usize) -> Option<Text> {
        match &self.text {
            Some(text) => text.get(start..end).map(|part| text.slice_ref(part)),
            None => Text::try_from(slice(self.bytes, start, end)).ok(),
        }
    }

    /// Bytes `start..end` as text, decoded lossily if they are not UTF-8.
    pub(crate) fn header(&self, start: usize, end: usize) -> Text {
        self.text(start, end)
            .unwrap_or_else(|| header_text(self.bytes, start, end))
    }

    /// The MSG from `start`: as [`message_text`], without a second validation when the frame
    /// is valid UTF-8.
    pub(crate) fn message(&self, start: usize, event: &mut Event) -> Option<Text> {
        match &self.text {
            Some(text) => text
                .get(start..)
                .filter(|m| !m.is_empty())
                .map(|m| text.slice_ref(m)),
            None => message_text(self.bytes, start, event),
        }
    }
}

pub(crate) fn header_text(frame: &Bytes, start: usize, end: usize) -> Text {
    let bytes = slice(frame, start, end);
    match Text::try_from(bytes) {
        Ok(text) => text,
        Err(_) => Text::from(String::from_utf8_lossy(&slice(frame, start, end)).into_owned()),
    }
}

/// The MSG part: `None` when empty, else text (lossy and flagged when not UTF-8).
pub(crate) fn message_text(frame: &Bytes, start: usize, event: &mut Event) -> Option<Text> {
    let bytes = slice(frame, start, frame.len());
    if bytes.is_empty() {
        return None;
    }
    match Text::try_from(bytes.clone()) {
        Ok(text) => Some(text),
        Err(_) => {
            let text = text_from_bytes(&bytes, event);
            event.raw = Some(frame.clone());
            Some(text)
        }
    }
}

/// Reads a `<PRI>` at the start: the value and the bytes used. `strict` forbids leading
/// zeros (RFC 5424: `<002>` is invalid).
pub(crate) fn parse_pri(bytes: &[u8], strict: bool) -> Result<(u8, usize), ParseError> {
    if bytes.first() != Some(&b'<') {
        return Err(ParseError::syntax("expected `<` starting the PRI", 0));
    }
    let mut value = 0u32;
    let mut at = 1;
    while let Some(byte) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
        if at > 3 {
            return Err(ParseError::syntax("PRI is longer than 3 digits", at));
        }
        if strict && at == 2 && value == 0 {
            return Err(ParseError::syntax("PRI has a leading zero", at));
        }
        value = value * 10 + u32::from(byte - b'0');
        at += 1;
    }
    if at == 1 {
        return Err(ParseError::syntax("expected PRI digits", at));
    }
    if bytes.get(at) != Some(&b'>') {
        return Err(ParseError::syntax("expected `>` ending the PRI", at));
    }
    match u8::try_from(value) {
        Ok(pri) if pri <= 191 => Ok((pri, at + 1)),
        _ => Err(ParseError::syntax("PRI is out of range 0-191", 1)),
    }
}

/// Sets facility and severity from a PRI value (0–191).
pub(crate) fn set_pri(event: &mut Event, pri: u8) {
    if let Some(facility) = Facility::from_code(pri >> 3) {
        event.facility = facility;
    }
    if let Some(severity) = Severity::from_code(pri & 7) {
        event.severity = severity;
    }
}

/// The PRI value of an event.
pub fn pri(event: &Event) -> u8 {
    event.facility.code() * 8 + event.severity.code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pri_bounds_and_leading_zeros() {
        assert_eq!(parse_pri(b"<0>", true).unwrap(), (0, 3));
        assert_eq!(parse_pri(b"<191>x", true).unwrap(), (191, 5));
        assert!(parse_pri(b"<192>", true).is_err());
        assert!(parse_pri(b"<002>", true).is_err());
        assert_eq!(parse_pri(b"<002>", false).unwrap(), (2, 5));
        for bad in [
            &b""[..],
            b"<",
            b"<>",
            b"<1",
            b"<1000>",
            b"<aaa>",
            b"(1>",
            b"<87]",
        ] {
            assert!(parse_pri(bad, false).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formats_have_lowercase_names() {
        for format in Format::ALL {
            let json = serde_json::to_string(&format).unwrap();
            assert_eq!(json, format!("\"{}\"", format.name()));
            assert_eq!(format.name().parse::<Format>().unwrap(), format);
        }
        assert!("RFC5424".parse::<Format>().is_err());
    }

    #[test]
    fn options_deserialize_with_defaults_and_reject_unknown_keys() {
        let options: SyslogOptions = toml::from_str("year = 2020\ntimezone = \"UTC\"").unwrap();
        assert_eq!(options.year, Some(2020));
        assert!(options.trusted_properties);
        assert!(toml::from_str::<SyslogOptions>("yaer = 1").is_err());
        let bad = SyslogOptions {
            timezone: Some("Mars/Olympus".into()),
            ..SyslogOptions::default()
        };
        assert!(Format::Rfc3164.parser(&bad).is_err());
    }
}
