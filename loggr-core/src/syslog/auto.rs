//! Per-message format detection, as pyloggr did:
//!
//! | the frame starts with | parsed as |
//! | --- | --- |
//! | `{` | [JSON](super::JsonParser) |
//! | `<PRI>1 ` | [RFC 5424](super::Rfc5424Parser) |
//! | `<` otherwise | [RFC 3164](super::Rfc3164Parser) |
//! | an RFC 3339 timestamp and SP | [file line](super::Rfc3339Parser) |
//! | anything else | [RFC 3164](super::Rfc3164Parser) without PRI |
//!
//! There is no fallback: a frame that looks like RFC 5424 but breaks its rules is an error
//! (and the failure policy keeps it), so strictness means the same in both modes.

use bytes::Bytes;

use super::time::{parse_rfc3339, TimeZoneError};
use super::{parse_pri, JsonParser, Rfc3164Parser, Rfc3339Parser, Rfc5424Parser, SyslogOptions};
use crate::event::Event;
use crate::parser::{ParseContext, ParseError, Parser};

/// The detected format of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detected {
    /// JSON.
    Json,
    /// RFC 5424.
    Rfc5424,
    /// RFC 3164.
    Rfc3164,
    /// RFC 3339 file line.
    Rfc3339,
}

/// Says which parser a frame goes to (see the module documentation).
pub fn detect(frame: &[u8]) -> Detected {
    match frame.first() {
        Some(b'{') => Detected::Json,
        Some(b'<') => match parse_pri(frame, false) {
            Ok((_, at)) if frame.get(at..at + 2) == Some(&b"1 "[..]) => Detected::Rfc5424,
            _ => Detected::Rfc3164,
        },
        Some(byte) if byte.is_ascii_digit() => match parse_rfc3339(frame, 9, true) {
            Ok(stamp) if frame.get(stamp.len) == Some(&b' ') => Detected::Rfc3339,
            _ => Detected::Rfc3164,
        },
        _ => Detected::Rfc3164,
    }
}

/// Detects the format of each frame and parses it accordingly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AutoParser {
    /// For `<PRI>1 ` frames.
    pub rfc5424: Rfc5424Parser,
    /// For other `<PRI>` frames and frames without header.
    pub rfc3164: Rfc3164Parser,
    /// For frames starting with a timestamp.
    pub rfc3339: Rfc3339Parser,
}

impl AutoParser {
    /// A parser with these options.
    ///
    /// # Errors
    ///
    /// A [`TimeZoneError`] for an unknown `options.timezone`.
    pub fn new(options: &SyslogOptions) -> Result<Self, TimeZoneError> {
        Ok(AutoParser {
            rfc5424: Rfc5424Parser::new(options),
            rfc3164: Rfc3164Parser::new(options)?,
            rfc3339: Rfc3339Parser::new(options)?,
        })
    }
}

impl Parser for AutoParser {
    fn parse(&self, frame: Bytes, cx: &ParseContext) -> Result<Event, ParseError> {
        match detect(&frame) {
            Detected::Json => JsonParser.parse(frame, cx),
            Detected::Rfc5424 => self.rfc5424.parse(frame, cx),
            Detected::Rfc3164 => self.rfc3164.parse(frame, cx),
            Detected::Rfc3339 => self.rfc3339.parse(frame, cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        assert_eq!(detect(b"{\"message\":\"x\"}"), Detected::Json);
        assert_eq!(detect(b"<34>1 - - - - - -"), Detected::Rfc5424);
        assert_eq!(detect(b"<34>Oct 11 22:14:15 h a: m"), Detected::Rfc3164);
        assert_eq!(detect(b"<34>10 x"), Detected::Rfc3164);
        assert_eq!(detect(b"2024-01-01T00:00:00Z h a: m"), Detected::Rfc3339);
        assert_eq!(detect(b"2024 was a year"), Detected::Rfc3164);
        assert_eq!(detect(b"Oct 11 22:14:15 h a: m"), Detected::Rfc3164);
        assert_eq!(detect(b""), Detected::Rfc3164);
    }

    #[test]
    fn parses_each_kind() {
        let parser = AutoParser::default();
        let cx = ParseContext::now();
        let inputs: [&[u8]; 4] = [
            b"{\"message\":\"m\",\"app_name\":\"a\"}",
            b"<34>1 - h a - - - m",
            b"<34>Oct 11 22:14:15 h a: m",
            b"2024-01-01T00:00:00Z h a: m",
        ];
        for input in inputs {
            let event = parser.parse(Bytes::from_static(input), &cx).unwrap();
            assert_eq!(event.message_str(), "m");
            assert_eq!(event.app_name.as_deref(), Some("a"));
        }
        assert!(parser.parse(Bytes::from_static(b"<34>1 bad"), &cx).is_err());
    }
}
