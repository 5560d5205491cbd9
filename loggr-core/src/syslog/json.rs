//! The JSON parser: one frame holds one event in loggr's canonical JSON form (see
//! [`crate::event`]); facility and severity may be numbers or names.

use bytes::Bytes;

use crate::event::Event;
use crate::parser::{ParseContext, ParseError, Parser};

/// Parses loggr's canonical event JSON. A missing `received_at` is the context's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JsonParser;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

impl Parser for JsonParser {
    fn parse(&self, frame: Bytes, cx: &ParseContext) -> Result<Event, ParseError> {
        let mut event: Event =
            serde_json::from_slice(&frame).map_err(|error| ParseError::Json(error.to_string()))?;
        if !contains(&frame, b"\"received_at\"") {
            event.received_at = cx.received_at;
        }
        if event.hostname.is_none() {
            event.hostname = cx.peer.clone();
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Facility, Severity};

    #[test]
    fn names_or_numbers_and_context_time() {
        let cx = ParseContext::now();
        let event = JsonParser
            .parse(
                Bytes::from_static(br#"{"facility":"auth","severity":"err","message":"m"}"#),
                &cx,
            )
            .unwrap();
        assert_eq!(event.facility, Facility::Auth);
        assert_eq!(event.severity, Severity::Error);
        assert_eq!(event.received_at, cx.received_at);
        let event = JsonParser
            .parse(Bytes::from_static(br#"{"facility":4,"severity":6}"#), &cx)
            .unwrap();
        assert_eq!(event.facility, Facility::Auth);
        for bad in [&b"{"[..], b"[]", b"{\"severity\":9}", b"\xff"] {
            assert!(matches!(
                JsonParser.parse(Bytes::from_static(bad), &cx),
                Err(ParseError::Json(_))
            ));
        }
    }
}
