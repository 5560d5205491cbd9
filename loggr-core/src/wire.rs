//! loggr's wire format: how batches of events travel as message bodies (AMQP messages, Redis
//! spool entries), and how any body received back becomes events.
//!
//! # The format, version 1
//!
//! A message carries one or several events, described by two headers that travel next to the
//! body (AMQP's `content-type` and `content-encoding` properties; a spool entry's header line):
//!
//! | events | content type | content encoding | body |
//! | --- | --- | --- | --- |
//! | one | `application/json` | none | the event's [canonical JSON](crate::event) |
//! | several | `application/vnd.loggr.events+jsonl; version=1` | none or `lz4` | one canonical JSON event per line, each line ending in LF |
//!
//! - A single event is plain JSON, never compressed, so that any consumer can read it.
//! - `lz4` is the standard [LZ4 frame format](https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md)
//!   (what the `lz4` command line tool and Python's `lz4.frame` read and write) applied to the
//!   whole JSON-lines body.
//! - JSON escapes every control character, so a line is never split inside an event.
//! - Batches are cut at `max_events` events or when the next event would take the (uncompressed)
//!   body past `max_bytes`; an event larger than `max_bytes` travels alone.
//! - A later version of the format changes the `version` parameter. A decoder that does not know
//!   the version keeps the whole body as one event tagged [`WIRE_DECODE_FAILURE_TAG`] (see below),
//!   so nothing is lost on the way to an upgrade.
//!
//! # Decoding anything
//!
//! [`decode`] (or [`decode_bytes`] for an owned body, without a copy) accepts every body a loggr
//! queue may hold:
//!
//! - the two forms above (compressed or not);
//! - a JSON object without a content type, or with any other one: read as an event (keys that
//!   are not part of the model become fields);
//! - anything else (syslog lines other programs published, plain text): **one event whose
//!   message is the body** (less one trailing newline; invalid UTF-8 is decoded lossily, kept in
//!   `raw` and tagged `_invalid_utf8`).
//!
//! Canonical lines (what loggr writes) take a fast path that allocates no keys and slices the
//! text fields out of the body; anything else goes through the full
//! [`Event`] deserializer, with the same result.
//!
//! Nothing is dropped silently: a line of a batch that is not an event, a body that cannot be
//! decompressed, or an unknown version or encoding becomes an event tagged
//! [`WIRE_DECODE_FAILURE_TAG`], with the undecodable bytes in `raw` (and, lossily, in the
//! message) and the reason in the [`WIRE_ERROR_FIELD`] field.
//!
//! ```
//! use loggr_core::wire::{decode, Compression, WireEncoder};
//! use loggr_core::Event;
//!
//! let events: Vec<Event> = (0..5).map(|i| Event::new(format!("line {i}"))).collect();
//! let mut encoder = WireEncoder::new(3, 1 << 20, Compression::Lz4);
//! let messages: Vec<_> = encoder.encode(&events).collect();
//! assert_eq!(messages.len(), 2); // 3 events, then 2
//! assert_eq!(messages[0].content_encoding, Some("lz4"));
//!
//! let mut back = Vec::new();
//! for message in &messages {
//!     let decoded = decode(Some(message.content_type), message.content_encoding, &message.body);
//!     assert_eq!(decoded.failures, 0);
//!     back.extend(decoded.events);
//! }
//! assert_eq!(back, events);
//! ```

use std::borrow::Cow;
use std::io::{Read, Write};
use std::iter::Peekable;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::event::{Event, Facility, Severity, StructuredData, Text, Value};
use crate::parser::text_from_bytes;

/// The media type of a batch (without its parameters).
pub const BATCH_MEDIA_TYPE: &str = "application/vnd.loggr.events+jsonl";
/// The version of the batch format this module writes.
pub const VERSION: u32 = 1;
/// The full content type of a batch, version included.
pub const BATCH_CONTENT_TYPE: &str = "application/vnd.loggr.events+jsonl; version=1";
/// The content type of a message holding a single event.
pub const EVENT_CONTENT_TYPE: &str = "application/json";
/// The content encoding of an LZ4-compressed body.
pub const LZ4_ENCODING: &str = "lz4";
/// The tag of an event made of bytes that could not be decoded.
pub const WIRE_DECODE_FAILURE_TAG: &str = "_wire_decode_failure";
/// The field holding why the bytes of a [`WIRE_DECODE_FAILURE_TAG`] event could not be decoded.
pub const WIRE_ERROR_FIELD: &str = "wire_error";
/// The most bytes a compressed body may expand to (a guard against decompression bombs);
/// beyond it the body is kept, still compressed, as a failure event.
pub const MAX_DECODED_BYTES: usize = 512 << 20;

/// How batch bodies are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Compression {
    /// Not compressed.
    #[default]
    None,
    /// The LZ4 frame format (content encoding `lz4`): about 4-8x smaller for log lines, at
    /// several hundred MB/s per core each way.
    Lz4,
}

impl Compression {
    /// The content encoding a body compressed this way declares, if any.
    pub const fn content_encoding(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Lz4 => Some(LZ4_ENCODING),
        }
    }
}

/// One encoded message: a body and the headers that say how to read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireMessage {
    /// [`EVENT_CONTENT_TYPE`] or [`BATCH_CONTENT_TYPE`].
    pub content_type: &'static str,
    /// `Some("lz4")` when the body is compressed.
    pub content_encoding: Option<&'static str>,
    /// The body.
    pub body: Vec<u8>,
    /// How many events the body holds.
    pub events: usize,
}

/// Cuts events into [`WireMessage`]s of at most `max_events` events and about `max_bytes`
/// bytes, compressed as configured. Keep one per sink: it reuses its buffers.
#[derive(Debug)]
pub struct WireEncoder {
    max_events: usize,
    max_bytes: usize,
    compression: Compression,
    /// The line of the event that did not fit in the previous message.
    carry: Vec<u8>,
    /// The capacity to give a new body.
    size_hint: usize,
}

impl WireEncoder {
    /// An encoder cutting at `max_events` events or `max_bytes` bytes of JSON (both at least 1).
    pub fn new(max_events: usize, max_bytes: usize, compression: Compression) -> Self {
        WireEncoder {
            max_events: max_events.max(1),
            max_bytes: max_bytes.max(1),
            compression,
            carry: Vec::new(),
            size_hint: 0,
        }
    }

    /// The configured compression.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The messages for `events`, in order; every event is in exactly one message.
    pub fn encode<'a, I>(&'a mut self, events: I) -> Messages<'a, I::IntoIter>
    where
        I: IntoIterator<Item = &'a Event>,
    {
        self.carry.clear();
        Messages {
            encoder: self,
            events: events.into_iter().peekable(),
            carried: false,
        }
    }

    /// Encodes one event into a message of its own (`application/json`).
    pub fn encode_one(event: &Event) -> WireMessage {
        let mut body = Vec::with_capacity(event.estimated_size() * 2);
        crate::encode::json(&mut body, event);
        WireMessage {
            content_type: EVENT_CONTENT_TYPE,
            content_encoding: None,
            body,
            events: 1,
        }
    }
}

/// The messages of one [`WireEncoder::encode`] call.
#[derive(Debug)]
pub struct Messages<'a, I: Iterator<Item = &'a Event>> {
    encoder: &'a mut WireEncoder,
    events: Peekable<I>,
    /// Whether `encoder.carry` holds the line of an event taken but not yet placed.
    carried: bool,
}

impl<'a, I: Iterator<Item = &'a Event>> Iterator for Messages<'a, I> {
    type Item = WireMessage;

    fn next(&mut self) -> Option<WireMessage> {
        let encoder = &mut *self.encoder;
        // Sized like the largest message so far: no regrowth (and copy) while filling.
        let mut body = Vec::with_capacity(encoder.size_hint);
        let mut count = 0usize;
        if self.carried {
            self.carried = false;
            body.append(&mut encoder.carry);
            count = 1;
        }
        while count < encoder.max_events {
            let Some(event) = self.events.next() else {
                break;
            };
            let start = body.len();
            crate::encode::json(&mut body, event);
            body.push(b'\n');
            if count > 0 && body.len() > encoder.max_bytes {
                // It does not fit: it opens the next message.
                encoder.carry.clear();
                encoder.carry.extend_from_slice(&body[start..]);
                body.truncate(start);
                self.carried = true;
                break;
            }
            count += 1;
        }
        encoder.size_hint = encoder
            .size_hint
            .max(body.len())
            .min(encoder.max_bytes.saturating_add(64 << 10));
        if count == 0 {
            return None;
        }
        if count == 1 {
            body.pop(); // the LF: a single event is a plain JSON document
            return Some(WireMessage {
                content_type: EVENT_CONTENT_TYPE,
                content_encoding: None,
                body,
                events: 1,
            });
        }
        let (body, content_encoding) = match encoder.compression {
            Compression::None => (body, None),
            // Compressing into memory cannot fail; if it ever did, send the body as it is.
            Compression::Lz4 => match lz4_compress(&body) {
                Some(compressed) => (compressed, Some(LZ4_ENCODING)),
                None => (body, None),
            },
        };
        Some(WireMessage {
            content_type: BATCH_CONTENT_TYPE,
            content_encoding,
            body,
            events: count,
        })
    }
}

/// LZ4 frames of 64 KiB blocks, the format's default (`lz4_flex` picks 4 MiB blocks for a
/// write over 256 KiB, and its decoder then allocates and zeroes 4 MiB for every message,
/// whatever its size).
fn lz4_compress(body: &[u8]) -> Option<Vec<u8>> {
    let info = lz4_flex::frame::FrameInfo::new()
        .block_size(lz4_flex::frame::BlockSize::Max64KB)
        .content_size(Some(body.len() as u64));
    let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(
        info,
        Vec::with_capacity(body.len() / 3 + 64),
    );
    encoder.write_all(body).ok()?;
    encoder.finish().ok()
}

/// What [`decode`] made of a body.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decoded {
    /// The events, in order, failures included (tagged [`WIRE_DECODE_FAILURE_TAG`]).
    pub events: Vec<Event>,
    /// How many of them are failure events.
    pub failures: usize,
}

impl Decoded {
    fn push_failure(&mut self, bytes: &[u8], error: impl std::fmt::Display) {
        self.events.push(failure_event(bytes, &error.to_string()));
        self.failures += 1;
    }
}

/// The event kept for bytes that could not be decoded: the bytes as message (lossily) and in
/// `raw`, tagged [`WIRE_DECODE_FAILURE_TAG`], the reason in [`WIRE_ERROR_FIELD`].
pub fn failure_event(bytes: &[u8], error: &str) -> Event {
    let mut event = Event::empty(jiff::Timestamp::now());
    event.message = Some(Text::from(String::from_utf8_lossy(bytes).into_owned()));
    event.raw = Some(bytes::Bytes::copy_from_slice(bytes));
    event.add_tag(WIRE_DECODE_FAILURE_TAG);
    event.set_field(WIRE_ERROR_FIELD, error.to_owned());
    event
}

/// The kinds of body the decoder tells apart, from the content type.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Batch,
    UnknownBatchVersion(String),
    Event,
    Other,
}

fn kind_of(content_type: Option<&str>) -> Kind {
    let Some(content_type) = content_type else {
        return Kind::Other;
    };
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case(EVENT_CONTENT_TYPE) {
        return Kind::Event;
    }
    if !media.eq_ignore_ascii_case(BATCH_MEDIA_TYPE) {
        return Kind::Other;
    }
    for parameter in parts {
        let Some((name, value)) = parameter.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("version") {
            let value = value.trim().trim_matches('"');
            if value != "1" {
                return Kind::UnknownBatchVersion(value.to_owned());
            }
        }
    }
    // No version parameter: version 1, the only one there was before versions were named.
    Kind::Batch
}

/// Decodes a message body into events; see the [module docs](self) for what is accepted.
/// Never fails: what cannot be decoded is kept as failure events.
///
/// Copies the body first; [`decode_bytes`] takes an owned body instead.
pub fn decode(content_type: Option<&str>, content_encoding: Option<&str>, body: &[u8]) -> Decoded {
    decode_bytes(content_type, content_encoding, Bytes::copy_from_slice(body))
}

/// [`decode`] for an owned body (`Bytes::from(vec)` costs no copy). The text fields of the
/// events are slices of the (decompressed) body where the JSON needed no unescaping, so the
/// body's memory lives as long as one of its events.
pub fn decode_bytes(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: Bytes,
) -> Decoded {
    let mut decoded = Decoded::default();
    let kind = kind_of(content_type);
    if let Kind::UnknownBatchVersion(version) = &kind {
        decoded.push_failure(
            &body,
            format_args!("unsupported wire format version {version} (this decoder reads 1)"),
        );
        return decoded;
    }
    let body = match content_encoding.map(str::trim) {
        None | Some("") => body,
        Some(encoding) if encoding.eq_ignore_ascii_case("identity") => body,
        Some(encoding) if encoding.eq_ignore_ascii_case(LZ4_ENCODING) => {
            match lz4_decompress(&body) {
                Ok(inflated) => Bytes::from(inflated),
                Err(error) => {
                    decoded
                        .push_failure(&body, format_args!("cannot decompress lz4 body: {error}"));
                    return decoded;
                }
            }
        }
        Some(encoding) => {
            decoded.push_failure(
                &body,
                format_args!("unsupported content-encoding `{encoding}`"),
            );
            return decoded;
        }
    };
    match kind {
        Kind::Batch => {
            decoded.events.reserve(body.len() / 256);
            for line in body.split(|&byte| byte == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match decode_event(line, &body) {
                    Ok(event) => decoded.events.push(event),
                    Err(error) => {
                        decoded.push_failure(line, format_args!("invalid event: {error}"))
                    }
                }
            }
        }
        Kind::Event => match decode_event(&body, &body) {
            Ok(event) => decoded.events.push(event),
            Err(error) => decoded.push_failure(&body, format_args!("invalid event: {error}")),
        },
        Kind::Other | Kind::UnknownBatchVersion(_) => {
            let looks_like_json = body
                .iter()
                .find(|byte| !byte.is_ascii_whitespace())
                .is_some_and(|&byte| byte == b'{');
            match looks_like_json.then(|| decode_event(&body, &body)) {
                Some(Ok(event)) => decoded.events.push(event),
                _ => decoded.events.push(text_event(&body)),
            }
        }
    }
    decoded
}

/// A plain-text body: the message is the body less one trailing newline.
fn text_event(body: &Bytes) -> Event {
    let mut text = body.clone();
    if text.last() == Some(&b'\n') {
        text.truncate(text.len() - 1);
        if text.last() == Some(&b'\r') {
            text.truncate(text.len() - 1);
        }
    }
    let mut event = Event::empty(jiff::Timestamp::now());
    let message = text_from_bytes(&text, &mut event);
    event.message = Some(message);
    event
}

/// One event's JSON (`json` lies within `owner`): the fast path for the canonical form, the
/// [`Event`] deserializer (which also takes names, unknown keys, `raw_base64`, repeated keys)
/// for anything else.
fn decode_event(json: &[u8], owner: &Bytes) -> Result<Event, serde_json::Error> {
    let fast = serde_json::from_slice::<Canonical<'_>>(json)
        .ok()
        .and_then(|canonical| canonical.into_event(owner));
    match fast {
        Some(event) => Ok(event),
        None => serde_json::from_slice::<Event>(json),
    }
}

/// The canonical event JSON, read without allocating keys and with text borrowed from the
/// body. Anything it does not take (an unknown key, `raw_base64`, a facility given by name, a
/// repeated key, a `null` where the canonical form has an object) makes it fail, and the full
/// deserializer decides.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Canonical<'a> {
    #[serde(default, rename = "id")]
    _id: serde::de::IgnoredAny,
    #[serde(default)]
    received_at: Option<jiff::Timestamp>,
    #[serde(default)]
    timestamp: Option<jiff::Timestamp>,
    #[serde(default)]
    facility: Option<u8>,
    #[serde(default)]
    severity: Option<u8>,
    #[serde(default, borrow)]
    hostname: Option<Str<'a>>,
    #[serde(default, borrow)]
    app_name: Option<Str<'a>>,
    #[serde(default, borrow)]
    procid: Option<Str<'a>>,
    #[serde(default, borrow)]
    msgid: Option<Str<'a>>,
    #[serde(default)]
    structured_data: StructuredData,
    #[serde(default, borrow)]
    message: Option<Str<'a>>,
    #[serde(default, borrow)]
    tags: Vec<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "pairs")]
    fields: Vec<(Str<'a>, Value)>,
    #[serde(default, borrow)]
    raw: Option<Str<'a>>,
}

impl Canonical<'_> {
    /// The event; `None` for an out-of-range facility or severity (the full deserializer
    /// reports those).
    fn into_event(self, owner: &Bytes) -> Option<Event> {
        let text = |value: Str<'_>| shared_text(value.0, owner);
        let mut event = Event::empty(self.received_at.unwrap_or_else(jiff::Timestamp::now));
        event.timestamp = self.timestamp;
        if let Some(code) = self.facility {
            event.facility = Facility::from_code(code)?;
        }
        if let Some(code) = self.severity {
            event.severity = Severity::from_code(code)?;
        }
        event.hostname = self.hostname.map(text);
        event.app_name = self.app_name.map(text);
        event.procid = self.procid.map(text);
        event.msgid = self.msgid.map(text);
        event.structured_data = self.structured_data;
        event.message = self.message.map(text);
        event.tags = self.tags.into_iter().map(text).collect();
        for (name, value) in self.fields {
            event.fields.insert(text(name), value);
        }
        event.raw = self.raw.map(|raw| text(raw).into_bytes());
        Some(event)
    }
}

/// A string, borrowed from the input when it holds no escape.
struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for StrVisitor<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, text: &'de str) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Borrowed(text)))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(StrVisitor(std::marker::PhantomData))
    }
}

/// A JSON object as its (name, value) pairs, in order.
fn pairs<'de: 'a, 'a, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(Str<'a>, Value)>, D::Error> {
    struct PairsVisitor<'a>(std::marker::PhantomData<&'a ()>);
    impl<'de: 'a, 'a> serde::de::Visitor<'de> for PairsVisitor<'a> {
        type Value = Vec<(Str<'a>, Value)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(pair) = map.next_entry()? {
                pairs.push(pair);
            }
            Ok(pairs)
        }
    }
    deserializer.deserialize_map(PairsVisitor(std::marker::PhantomData))
}

/// Text for a string read from `owner`: a slice of it when the JSON held it verbatim.
fn shared_text(value: Cow<'_, str>, owner: &Bytes) -> Text {
    match value {
        Cow::Owned(text) => Text::from(text),
        Cow::Borrowed(text) => {
            let base = owner.as_ptr() as usize;
            let start = (text.as_ptr() as usize).wrapping_sub(base);
            match start.checked_add(text.len()) {
                Some(end) if start <= owner.len() && end <= owner.len() => {
                    Text::try_from(owner.slice(start..end)).unwrap_or_else(|_| Text::from(text))
                }
                _ => Text::from(text),
            }
        }
    }
}

/// The content size an LZ4 frame declares in its header, if it does.
fn lz4_content_size(body: &[u8]) -> Option<usize> {
    const CONTENT_SIZE_FLAG: u8 = 0x08;
    let flags = *body.get(4)?;
    if body.get(..4)? != [0x04, 0x22, 0x4d, 0x18] || flags & CONTENT_SIZE_FLAG == 0 {
        return None;
    }
    let size = u64::from_le_bytes(body.get(6..14)?.try_into().ok()?);
    usize::try_from(size).ok()
}

fn lz4_decompress(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let capacity = lz4_content_size(body).unwrap_or(body.len().saturating_mul(4));
    let mut out = Vec::with_capacity(capacity.min(MAX_DECODED_BYTES).min(64 << 20));
    let limit = MAX_DECODED_BYTES as u64 + 1;
    lz4_flex::frame::FrameDecoder::new(body)
        .take(limit)
        .read_to_end(&mut out)?;
    if out.len() > MAX_DECODED_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the body expands past {MAX_DECODED_BYTES} bytes"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn numbered(count: usize) -> Vec<Event> {
        (0..count)
            .map(|i| {
                let mut event = Event::new(format!("event {i} \"quoted\"\nsecond line"));
                event.app_name = Some("app".into());
                event.set_field("n", i as i64);
                event
            })
            .collect()
    }

    fn round_trip(events: &[Event], encoder: &mut WireEncoder) -> (Vec<WireMessage>, Vec<Event>) {
        let messages: Vec<WireMessage> = encoder.encode(events).collect();
        let mut back = Vec::new();
        for message in &messages {
            let decoded = decode(
                Some(message.content_type),
                message.content_encoding,
                &message.body,
            );
            assert_eq!(decoded.failures, 0, "{decoded:?}");
            assert_eq!(decoded.events.len(), message.events);
            back.extend(decoded.events);
        }
        (messages, back)
    }

    #[test]
    fn batches_are_cut_by_count_and_round_trip_with_and_without_lz4() {
        let events = numbered(25);
        for compression in [Compression::None, Compression::Lz4] {
            let mut encoder = WireEncoder::new(10, 1 << 20, compression);
            let (messages, back) = round_trip(&events, &mut encoder);
            assert_eq!(back, events);
            let sizes: Vec<usize> = messages.iter().map(|m| m.events).collect();
            assert_eq!(sizes, [10, 10, 5]);
            for message in &messages {
                assert_eq!(message.content_type, BATCH_CONTENT_TYPE);
                assert_eq!(message.content_encoding, compression.content_encoding());
            }
        }
    }

    #[test]
    fn batches_are_cut_by_bytes_and_a_huge_event_travels_alone() {
        let mut events = numbered(6);
        events[3].message = Some("x".repeat(10_000).into());
        let line = |event: &Event| {
            let mut out = Vec::new();
            crate::encode::json(&mut out, event);
            out.len() + 1
        };
        // Room for two ordinary lines, not three.
        let max_bytes = line(&events[0]) * 2 + 10;
        let mut encoder = WireEncoder::new(100, max_bytes, Compression::None);
        let (messages, back) = round_trip(&events, &mut encoder);
        assert_eq!(back, events);
        let sizes: Vec<usize> = messages.iter().map(|m| m.events).collect();
        assert_eq!(
            sizes,
            [2, 1, 1, 2],
            "event 3 alone, and the batch before it cut short"
        );
        for message in &messages {
            if message.events > 1 {
                assert!(message.body.len() <= max_bytes);
            }
        }
        // The huge event is plain JSON, never compressed.
        let mut encoder = WireEncoder::new(100, max_bytes, Compression::Lz4);
        let messages: Vec<WireMessage> = encoder.encode(&events).collect();
        assert_eq!(messages[2].content_type, EVENT_CONTENT_TYPE);
        assert_eq!(messages[2].content_encoding, None);
        assert_eq!(
            serde_json::from_slice::<Event>(&messages[2].body).unwrap(),
            events[3]
        );
    }

    #[test]
    fn a_single_event_is_plain_canonical_json() {
        let events = numbered(1);
        let mut encoder = WireEncoder::new(10, 1 << 20, Compression::Lz4);
        let messages: Vec<WireMessage> = encoder.encode(&events).collect();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].content_type, "application/json");
        assert_eq!(messages[0].content_encoding, None);
        assert_eq!(messages[0].body, serde_json::to_vec(&events[0]).unwrap());
        assert_eq!(WireEncoder::encode_one(&events[0]), messages[0]);
        // Nothing to encode, no message.
        assert_eq!(encoder.encode(&[]).count(), 0);
    }

    #[test]
    fn large_lz4_bodies_are_cut_in_64_kib_blocks() {
        let events = numbered(5000);
        let mut encoder = WireEncoder::new(10_000, 16 << 20, Compression::Lz4);
        let packed: Vec<WireMessage> = encoder.encode(&events).collect();
        assert_eq!(packed.len(), 1);
        let plain_len = lz4_content_size(&packed[0].body).unwrap();
        assert!(plain_len > 256 * 1024, "{plain_len}");
        // The frame descriptor's BD byte: the block maximum size in bits 4-6, 4 for 64 KiB.
        assert_eq!(packed[0].body[5] >> 4 & 0x7, 4);
        let decoded = decode(
            Some(packed[0].content_type),
            packed[0].content_encoding,
            &packed[0].body,
        );
        assert_eq!((decoded.failures, decoded.events), (0, events));
    }

    #[test]
    fn lz4_bodies_are_standard_frames_and_smaller() {
        let events = numbered(200);
        let mut plain = WireEncoder::new(1000, 1 << 20, Compression::None);
        let mut packed = WireEncoder::new(1000, 1 << 20, Compression::Lz4);
        let plain: Vec<WireMessage> = plain.encode(&events).collect();
        let packed: Vec<WireMessage> = packed.encode(&events).collect();
        // The LZ4 frame magic number, little-endian.
        assert_eq!(&packed[0].body[..4], &[0x04, 0x22, 0x4d, 0x18]);
        assert!(packed[0].body.len() * 3 < plain[0].body.len());
        assert_eq!(lz4_decompress(&packed[0].body).unwrap(), plain[0].body);
        assert_eq!(lz4_content_size(&packed[0].body), Some(plain[0].body.len()));
        assert_eq!(lz4_content_size(b"\x04\x22\x4d"), None);
    }

    #[test]
    fn a_bad_line_is_kept_tagged_and_the_others_decode() {
        let events = numbered(2);
        let mut body = Vec::new();
        crate::encode::json(&mut body, &events[0]);
        body.extend_from_slice(b"\n{\"message\": truncated\n\n");
        crate::encode::json(&mut body, &events[1]);
        body.extend_from_slice(b"\r\n");
        let decoded = decode(Some(BATCH_CONTENT_TYPE), None, &body);
        assert_eq!(decoded.failures, 1);
        assert_eq!(decoded.events.len(), 3);
        assert_eq!(decoded.events[0], events[0]);
        assert_eq!(decoded.events[2], events[1]);
        let bad = &decoded.events[1];
        assert!(bad.has_tag(WIRE_DECODE_FAILURE_TAG));
        assert_eq!(bad.message_str(), "{\"message\": truncated");
        assert_eq!(bad.raw.as_deref(), Some(&b"{\"message\": truncated"[..]));
        let error = bad.field(WIRE_ERROR_FIELD).and_then(Value::as_str).unwrap();
        assert!(error.starts_with("invalid event:"), "{error}");
    }

    #[test]
    fn decoded_text_shares_the_body_and_odd_json_takes_the_full_deserializer() {
        let events = numbered(3);
        let mut encoder = WireEncoder::new(10, 1 << 20, Compression::None);
        let message = encoder.encode(&events).next().unwrap();
        let body = Bytes::from(message.body);
        let decoded = decode_bytes(Some(message.content_type), None, body.clone());
        assert_eq!(decoded.events, events);
        let app = decoded.events[0].app_name.as_ref().unwrap().as_bytes();
        let inside = body.as_ptr_range();
        assert!(
            inside.contains(&app.as_ptr()),
            "unescaped text is a slice of the body, not a copy"
        );
        // Names instead of numbers, an unknown key, a repeated key: the full deserializer.
        let decoded = decode(
            Some(EVENT_CONTENT_TYPE),
            None,
            br#"{"facility":"local3","message":"a","message":"b","extra":1}"#,
        );
        assert_eq!(decoded.failures, 0);
        assert_eq!(decoded.events[0].facility, Facility::Local3);
        assert_eq!(decoded.events[0].message_str(), "b");
        // An out-of-range code is an error, as the deserializer says.
        let decoded = decode(Some(EVENT_CONTENT_TYPE), None, br#"{"severity":9}"#);
        assert_eq!(decoded.failures, 1);
    }

    #[test]
    fn undecodable_bodies_are_kept_whole() {
        // Corrupt LZ4.
        let decoded = decode(
            Some(BATCH_CONTENT_TYPE),
            Some("lz4"),
            b"\x04\x22\x4d\x18garbage",
        );
        assert_eq!(decoded.failures, 1);
        assert_eq!(
            decoded.events[0].raw.as_deref(),
            Some(&b"\x04\x22\x4d\x18garbage"[..])
        );
        // An encoding this decoder does not know.
        let decoded = decode(Some(BATCH_CONTENT_TYPE), Some("zstd"), b"(\xb5/\xfd");
        assert_eq!(decoded.failures, 1);
        assert_eq!(
            decoded.events[0]
                .field(WIRE_ERROR_FIELD)
                .and_then(Value::as_str),
            Some("unsupported content-encoding `zstd`")
        );
        // A future version.
        let decoded = decode(
            Some("application/vnd.loggr.events+jsonl; version=2"),
            None,
            b"whatever v2 is",
        );
        assert_eq!(decoded.failures, 1);
        assert!(decoded.events[0].has_tag(WIRE_DECODE_FAILURE_TAG));
        assert_eq!(decoded.events[0].message_str(), "whatever v2 is");
        // A JSON content type on something that is not an event.
        let decoded = decode(Some("application/json"), None, b"[1, 2]");
        assert_eq!(decoded.failures, 1);
    }

    #[test]
    fn plain_bodies_and_foreign_json_are_accepted() {
        let decoded = decode(None, None, b"<13>Nov 21 10:00:00 host app: hello\n");
        assert_eq!(decoded.failures, 0);
        assert_eq!(
            decoded.events[0].message_str(),
            "<13>Nov 21 10:00:00 host app: hello"
        );
        assert!(decoded.events[0].raw.is_none());

        let decoded = decode(Some("text/plain"), None, b"caf\xe9");
        assert_eq!(decoded.events[0].message_str(), "caf\u{fffd}");
        assert!(decoded.events[0].has_tag(crate::parser::INVALID_UTF8_TAG));
        assert_eq!(decoded.events[0].raw.as_deref(), Some(&b"caf\xe9"[..]));

        // pyloggr-style JSON with no content type: an event, unknown keys as fields.
        let decoded = decode(
            None,
            None,
            br#" {"message": "m", "severity": "warning", "syslog_server_port": 1514}"#,
        );
        assert_eq!(decoded.failures, 0);
        let event = &decoded.events[0];
        assert_eq!(event.message_str(), "m");
        assert_eq!(event.severity, Severity::Warning);
        assert_eq!(event.field("syslog_server_port"), Some(&Value::Int(1514)));

        // A brace that is not JSON is text.
        let decoded = decode(Some("application/octet-stream"), None, b"{not json");
        assert_eq!(decoded.failures, 0);
        assert_eq!(decoded.events[0].message_str(), "{not json");

        // Content types are case-insensitive; a batch without a version is version 1.
        let events = numbered(2);
        let mut body = Vec::new();
        for event in &events {
            crate::encode::json(&mut body, event);
            body.push(b'\n');
        }
        let decoded = decode(Some("Application/Vnd.Loggr.Events+JSONL"), None, &body);
        assert_eq!(decoded.events, events);
        let decoded = decode(
            Some("application/vnd.loggr.events+jsonl;version=\"1\""),
            Some("identity"),
            &body,
        );
        assert_eq!(decoded.events, events);
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ -~]{0,40}",
            "\\PC{0,20}",
            proptest::collection::vec(any::<char>(), 0..12).prop_map(|c| c.into_iter().collect()),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            text().prop_map(Value::from),
            any::<i64>().prop_map(Value::Int),
            // serde_json (without its `float_roundtrip` feature) may read the last digit of an
            // arbitrary float back differently: use floats whose decimal form is exact.
            any::<i32>().prop_map(|n| Value::Float(f64::from(n) / 64.0)),
            any::<bool>().prop_map(Value::Bool),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            proptest::collection::vec(inner, 0..4).prop_map(Value::List)
        })
    }

    prop_compose! {
        fn event()(
            message in proptest::option::of(text()),
            host in proptest::option::of(text()),
            seconds in 0i64..253_402_300_799,
            nanos in 0u32..1_000_000_000,
            reported in any::<bool>(),
            facility in 0u8..24,
            severity in 0u8..8,
            sd in proptest::collection::vec((text(), text(), text()), 0..3),
            tags in proptest::collection::vec(text(), 0..3),
            fields in proptest::collection::vec(("[a-z]{1,8}", value()), 0..4),
            raw in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
        ) -> Event {
            let at = jiff::Timestamp::new(seconds, nanos as i32).unwrap();
            let mut event = Event::empty(at);
            event.message = message.map(Text::from);
            event.hostname = host.map(Text::from);
            event.timestamp = reported.then_some(at);
            event.facility = Facility::from_code(facility).unwrap();
            event.severity = Severity::from_code(severity).unwrap();
            for (id, name, value) in sd {
                event.structured_data.push(id, name, value);
            }
            for tag in tags {
                event.add_tag(tag);
            }
            for (name, value) in fields {
                event.set_field(name, value);
            }
            event.raw = raw.map(bytes::Bytes::from);
            event
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn any_events_round_trip(
            events in proptest::collection::vec(event(), 0..40),
            max_events in 1usize..16,
            max_bytes in 1usize..4096,
            lz4 in any::<bool>(),
        ) {
            let compression = if lz4 { Compression::Lz4 } else { Compression::None };
            let mut encoder = WireEncoder::new(max_events, max_bytes, compression);
            let messages: Vec<WireMessage> = encoder.encode(&events).collect();
            let mut back = Vec::new();
            for message in &messages {
                prop_assert!(message.events >= 1 && message.events <= max_events);
                let decoded = decode(Some(message.content_type), message.content_encoding, &message.body);
                prop_assert_eq!(decoded.failures, 0);
                prop_assert_eq!(decoded.events.len(), message.events);
                back.extend(decoded.events);
            }
            prop_assert_eq!(back, events);
        }

        #[test]
        fn canonical_lines_take_the_fast_path_and_agree_with_the_deserializer(event in event()) {
            let mut line = Vec::new();
            crate::encode::json(&mut line, &event);
            let owner = Bytes::from(line);
            let reference: Event = serde_json::from_slice(&owner).unwrap();
            let utf8_raw = event.raw.as_ref().is_none_or(|raw| std::str::from_utf8(raw).is_ok());
            match serde_json::from_slice::<Canonical<'_>>(&owner) {
                Ok(canonical) => prop_assert_eq!(canonical.into_event(&owner), Some(reference)),
                Err(error) => prop_assert!(!utf8_raw, "fast path refused a canonical line: {}", error),
            }
        }

        #[test]
        fn any_bytes_decode_without_panicking_or_losing_them(
            body in proptest::collection::vec(any::<u8>(), 0..256),
            kind in 0usize..4,
        ) {
            let (content_type, encoding) = [
                (Some(BATCH_CONTENT_TYPE), None),
                (Some(BATCH_CONTENT_TYPE), Some("lz4")),
                (Some(EVENT_CONTENT_TYPE), None),
                (None, None),
            ][kind];
            let decoded = decode(content_type, encoding, &body);
            // Every failure keeps its bytes.
            for event in decoded.events.iter().filter(|e| e.has_tag(WIRE_DECODE_FAILURE_TAG)) {
                prop_assert!(event.raw.is_some());
            }
            prop_assert!(decoded.failures <= decoded.events.len());
        }
    }
}
