//! The JSON parser: one frame holds one event in loggr's canonical JSON form (see
//! [`crate::event`]); facility and severity may be numbers or names.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::de;

use crate::event::Event;
use crate::parser::{ParseContext, ParseError, Parser};

/// Parses loggr's canonical event JSON. A missing `received_at` is the context's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JsonParser;

/// Whether the JSON object has a top-level `received_at` key (the text `"received_at"` can
/// also be a value or a nested key, so a substring search is not enough).
fn has_received_at(frame: &[u8]) -> bool {
    // A map rather than a struct: duplicate keys are accepted, as the event's own reader does.
    serde_json::from_slice::<BTreeMap<String, de::IgnoredAny>>(frame)
        .is_ok_and(|keys| keys.contains_key("received_at"))
}

impl Parser for JsonParser {
    fn parse(&self, frame: Bytes, cx: &ParseContext) -> Result<Event, ParseError> {
        let mut event: Event =
            serde_json::from_slice(&frame).map_err(|error| ParseError::Json(error.to_string()))?;
        if !has_received_at(&frame) {
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
        // A `received_at` that is not the event's own is no reason to read the clock.
        let event = JsonParser
            .parse(
                Bytes::from_static(br#"{"x":"received_at","fields":{"received_at":1}}"#),
                &cx,
            )
            .unwrap();
        assert_eq!(event.received_at, cx.received_at);
        let event = JsonParser
            .parse(
                Bytes::from_static(br#"{"received_at":"2024-01-01T00:00:00Z"}"#),
                &cx,
            )
            .unwrap();
        assert_eq!(event.received_at.to_string(), "2024-01-01T00:00:00Z");
        for bad in [&b"{"[..], b"[]", b"{\"severity\":9}", b"\xff"] {
            assert!(matches!(
                JsonParser.parse(Bytes::from_static(bad), &cx),
                Err(ParseError::Json(_))
            ));
        }
    }
}
