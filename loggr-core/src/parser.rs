//! The [`Parser`] trait: one frame of bytes in, one [`Event`] out.
//!
//! Framing (bytes → frames) is a `tokio_util::codec::Decoder` (see [`crate::codec`]); parsing
//! (frame → event) is pure and synchronous, so it can run on any thread and be tested and
//! fuzzed without a runtime.

use bytes::Bytes;
use jiff::Timestamp;

use crate::event::{Event, Text};

/// What a parser knows about a frame besides its bytes.
#[derive(Clone, Debug)]
pub struct ParseContext {
    /// When the frame was received.
    pub received_at: Timestamp,
    /// The sending peer's address or name, used when the message names no host.
    pub peer: Option<Text>,
}

impl ParseContext {
    /// A context for a frame received now from an unnamed peer.
    pub fn now() -> Self {
        ParseContext {
            received_at: Timestamp::now(),
            peer: None,
        }
    }
}

/// Why a frame could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The frame does not follow the expected format; `at` is the byte offset.
    #[error("{what} at byte {at}")]
    Syntax {
        /// What was expected or found.
        what: String,
        /// Byte offset into the frame.
        at: usize,
    },
    /// The frame is longer than the parser accepts.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLong {
        /// The frame's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A JSON frame that is not an event.
    #[error("invalid JSON event: {0}")]
    Json(String),
}

impl ParseError {
    /// A syntax error at a byte offset.
    pub fn syntax(what: impl Into<String>, at: usize) -> Self {
        ParseError::Syntax {
            what: what.into(),
            at,
        }
    }
}

/// Turns one frame into one event.
///
/// Implementations are pure: no I/O, no clock reads beyond what the context gives, so the same
/// input always gives the same output. They must never panic, whatever the bytes.
///
/// # Errors
///
/// A [`ParseError`] saying what is wrong and where. What happens to the message then is the
/// caller's policy (see [`FailurePolicy`]): by default it is kept, tagged `_parse_failure`.
pub trait Parser: Send + Sync {
    /// Parses one frame.
    fn parse(&self, frame: Bytes, cx: &ParseContext) -> Result<Event, ParseError>;
}

impl<P: Parser + ?Sized> Parser for Box<P> {
    fn parse(&self, frame: Bytes, cx: &ParseContext) -> Result<Event, ParseError> {
        (**self).parse(frame, cx)
    }
}

impl<P: Parser + ?Sized> Parser for std::sync::Arc<P> {
    fn parse(&self, frame: Bytes, cx: &ParseContext) -> Result<Event, ParseError> {
        (**self).parse(frame, cx)
    }
}

/// The simplest parser: the whole frame is the message (invalid UTF-8 is decoded lossily and
/// the bytes kept in `raw`).
#[derive(Clone, Copy, Debug, Default)]
pub struct RawParser;

impl Parser for RawParser {
    fn parse(&self, frame: Bytes, cx: &ParseContext) -> Result<Event, ParseError> {
        let mut event = Event::empty(cx.received_at);
        event.hostname = cx.peer.clone();
        event.message = Some(text_from_bytes(&frame, &mut event));
        Ok(event)
    }
}

/// The tag given to events whose frame could not be parsed.
pub const PARSE_FAILURE_TAG: &str = "_parse_failure";
/// The field holding the parse error of such events.
pub const PARSE_ERROR_FIELD: &str = "parse_error";
/// The tag given to events whose bytes were not valid UTF-8.
pub const INVALID_UTF8_TAG: &str = "_invalid_utf8";

/// Decodes bytes as UTF-8 without copying when they are valid; otherwise decodes lossily, keeps
/// the original bytes in `event.raw` and tags the event [`INVALID_UTF8_TAG`].
pub fn text_from_bytes(bytes: &Bytes, event: &mut Event) -> Text {
    match Text::try_from(bytes.clone()) {
        Ok(text) => text,
        Err(_) => {
            event.raw.get_or_insert_with(|| bytes.clone());
            event.add_tag(INVALID_UTF8_TAG);
            Text::from(String::from_utf8_lossy(bytes).into_owned())
        }
    }
}

/// What to do with a frame that fails to parse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Keep it: the raw frame becomes the message, tagged `_parse_failure`, with the error in
    /// the `parse_error` field.
    #[default]
    Keep,
    /// Drop it (the drop is counted and logged).
    Drop,
}

impl FailurePolicy {
    /// Applies the policy: `Some(event)` to pass on, `None` to drop.
    pub fn apply(self, frame: Bytes, error: &ParseError, cx: &ParseContext) -> Option<Event> {
        match self {
            FailurePolicy::Drop => None,
            FailurePolicy::Keep => {
                let mut event = Event::empty(cx.received_at);
                event.hostname = cx.peer.clone();
                event.message = Some(text_from_bytes(&frame, &mut event));
                event.raw = Some(frame);
                event.add_tag(PARSE_FAILURE_TAG);
                event.set_field(PARSE_ERROR_FIELD, error.to_string());
                Some(event)
            }
        }
    }
}

/// Parses a frame and applies the failure policy: the function sources call.
pub fn parse_or_keep<P: Parser + ?Sized>(
    parser: &P,
    frame: Bytes,
    cx: &ParseContext,
    policy: FailurePolicy,
) -> Result<Event, ParseError> {
    match parser.parse(frame.clone(), cx) {
        Ok(event) => Ok(event),
        Err(error) => policy.apply(frame, &error, cx).ok_or(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_parser_keeps_invalid_utf8_and_flags_it() {
        let cx = ParseContext::now();
        let event = RawParser
            .parse(Bytes::from_static(b"caf\xe9"), &cx)
            .unwrap();
        assert_eq!(event.message_str(), "caf\u{fffd}");
        assert!(event.has_tag(INVALID_UTF8_TAG));
        assert_eq!(event.raw.as_deref(), Some(&b"caf\xe9"[..]));
        let event = RawParser.parse(Bytes::from_static(b"fine"), &cx).unwrap();
        assert!(event.tags.is_empty() && event.raw.is_none());
    }

    #[test]
    fn failure_policy_keeps_by_default_and_can_drop() {
        struct Refuse;
        impl Parser for Refuse {
            fn parse(&self, _: Bytes, _: &ParseContext) -> Result<Event, ParseError> {
                Err(ParseError::syntax("expected `<`", 0))
            }
        }
        let cx = ParseContext::now();
        let kept = parse_or_keep(
            &Refuse,
            Bytes::from_static(b"junk"),
            &cx,
            FailurePolicy::Keep,
        )
        .unwrap();
        assert_eq!(kept.message_str(), "junk");
        assert!(kept.has_tag(PARSE_FAILURE_TAG));
        assert_eq!(
            kept.field(PARSE_ERROR_FIELD).unwrap().to_string(),
            "expected `<` at byte 0"
        );
        let dropped = parse_or_keep(
            &Refuse,
            Bytes::from_static(b"junk"),
            &cx,
            FailurePolicy::Drop,
        );
        assert!(dropped.is_err());
    }
}
