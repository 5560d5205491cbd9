//! Invariant checks for the fuzz targets (`fuzz/`) and their regression test
//! (`loggr-core/tests/fuzz_regressions.rs`): both call the same [`Target::check`], so a crash
//! input found by the fuzzer replays exactly in `cargo test`.
//!
//! A check panics when an invariant breaks; otherwise it returns. What is checked:
//!
//! - **Parsers** ([`Target::Rfc5424`], [`Target::Rfc3164`], [`Target::Rfc3339`],
//!   [`Target::Json`], [`Target::Auto`]): the frame is parsed with two option sets (UTC, year
//!   inferred, trusted properties, 9 fraction digits; `America/New_York` with its DST gaps,
//!   a fixed year, 6 fraction digits). Parsing never panics and gives the same result twice;
//!   every event reads back from loggr's canonical JSON unchanged (except for the order of
//!   SD-PARAMs of different names, which the JSON form groups by name, and floats a couple of
//!   ULPs apart, which serde_json's default float parsing allows); every event of an
//!   RFC 5424 parse, written with [`serialize::rfc5424`] and parsed again, has the same header,
//!   structured data, message and tags.
//! - **Decoders** ([`Target::LineDecoder`], [`Target::OctetCountingDecoder`],
//!   [`Target::AutoFramingDecoder`]): the input is `[max_length selector, split count, split
//!   lengths…, payload…]` (see [`decoder_input`]). The payload is fed in the chunks the split
//!   lengths give, `decode` called until `None` after each chunk, then `decode_eof` until
//!   `None`; a non-recoverable error (`!can_continue()`) stops the stream. Frames never exceed
//!   `max_length`, decoding terminates (a bounded number of results), and the frames and
//!   errors are the same as when the whole payload arrives in one chunk: framing does not
//!   depend on how TCP cut the stream.

use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;

use super::auto::{detect, Detected};
use super::{serialize, Format, JsonParser, Rfc5424Parser, SyslogOptions};
use crate::codec::{AutoFramingDecoder, FramingError, LineDecoder, OctetCountingDecoder};
use crate::event::{Event, Value};
use crate::parser::{ParseContext, Parser, INVALID_UTF8_TAG};

/// A fuzz target: one parser or one framing decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// [`Rfc5424Parser`](super::Rfc5424Parser).
    Rfc5424,
    /// [`Rfc3164Parser`](super::Rfc3164Parser).
    Rfc3164,
    /// [`Rfc3339Parser`](super::Rfc3339Parser) (file lines).
    Rfc3339,
    /// [`JsonParser`].
    Json,
    /// [`AutoParser`](super::AutoParser).
    Auto,
    /// [`LineDecoder`].
    LineDecoder,
    /// [`OctetCountingDecoder`].
    OctetCountingDecoder,
    /// [`AutoFramingDecoder`].
    AutoFramingDecoder,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 8] = [
        Target::Rfc5424,
        Target::Rfc3164,
        Target::Rfc3339,
        Target::Json,
        Target::Auto,
        Target::LineDecoder,
        Target::OctetCountingDecoder,
        Target::AutoFramingDecoder,
    ];

    /// The fuzz target's name (`fuzz/fuzz_targets/<name>.rs`, the fixture folder
    /// `testdata/fuzz-regressions/<name>/`).
    pub const fn name(self) -> &'static str {
        match self {
            Target::Rfc5424 => "rfc5424",
            Target::Rfc3164 => "rfc3164",
            Target::Rfc3339 => "rfc3339",
            Target::Json => "json",
            Target::Auto => "auto",
            Target::LineDecoder => "line_decoder",
            Target::OctetCountingDecoder => "octet_counting_decoder",
            Target::AutoFramingDecoder => "auto_framing_decoder",
        }
    }

    /// Looks a target up by name.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|target| target.name() == name)
    }

    /// Whether the target is a framing decoder (its input has the [`decoder_input`] layout).
    pub const fn is_decoder(self) -> bool {
        matches!(
            self,
            Target::LineDecoder | Target::OctetCountingDecoder | Target::AutoFramingDecoder
        )
    }

    /// Runs the target's checks on one input.
    ///
    /// # Panics
    ///
    /// When an invariant breaks (that is the point).
    pub fn check(self, data: &[u8]) {
        match self {
            Target::Rfc5424 => check_parser(Format::Rfc5424, data),
            Target::Rfc3164 => check_parser(Format::Rfc3164, data),
            Target::Rfc3339 => check_parser(Format::Rfc3339, data),
            Target::Json => check_parser(Format::Json, data),
            Target::Auto => check_parser(Format::Auto, data),
            Target::LineDecoder => check_decoder(data, LineDecoder::new),
            Target::OctetCountingDecoder => check_decoder(data, OctetCountingDecoder::new),
            Target::AutoFramingDecoder => check_decoder(data, AutoFramingDecoder::new),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsers

fn context() -> ParseContext {
    ParseContext {
        // 2024-06-15T12:00:00Z: year-less stamps resolve around it.
        received_at: jiff::Timestamp::from_second(1_718_452_800).unwrap_or_default(),
        peer: None,
    }
}

fn option_sets() -> [SyslogOptions; 2] {
    [
        SyslogOptions {
            year: None,
            timezone: Some("UTC".into()),
            trusted_properties: true,
            max_fraction_digits: 9,
        },
        SyslogOptions {
            year: Some(2024),
            timezone: Some("America/New_York".into()),
            trusted_properties: false,
            max_fraction_digits: 6,
        },
    ]
}

type Parsers = Vec<(Format, Vec<Box<dyn Parser>>)>;

/// The parsers of every format and option set, built once.
fn parsers(format: Format) -> &'static [Box<dyn Parser>] {
    static PARSERS: OnceLock<Parsers> = OnceLock::new();
    let all = PARSERS.get_or_init(|| {
        Format::ALL
            .into_iter()
            .map(|format| {
                let parsers = option_sets()
                    .iter()
                    .map(|options| match format.parser(options) {
                        Ok(parser) => parser,
                        Err(error) => panic!("cannot build the {format} parser: {error}"),
                    })
                    .collect();
                (format, parsers)
            })
            .collect()
    });
    all.iter()
        .find(|(f, _)| *f == format)
        .map(|(_, parsers)| parsers.as_slice())
        .unwrap_or_default()
}

/// The parser that reads back serialized RFC 5424 events: all fraction digits, and no trusted
/// properties (their fields are not part of RFC 5424, and the first parse already took the
/// suffix out of the message).
fn rfc5424_reader() -> Rfc5424Parser {
    Rfc5424Parser {
        max_fraction_digits: 9,
        trusted_properties: false,
    }
}

fn check_parser(format: Format, data: &[u8]) {
    let frame = Bytes::copy_from_slice(data);
    let cx = context();
    for parser in parsers(format) {
        let first = parser.parse(frame.clone(), &cx);
        let second = parser.parse(frame.clone(), &cx);
        assert_eq!(first, second, "parsing is not deterministic");
        let Ok(event) = first else { continue };
        check_json_round_trip(&event);
        let is_rfc5424 = match format {
            Format::Rfc5424 => true,
            Format::Auto => detect(data) == Detected::Rfc5424,
            _ => false,
        };
        if is_rfc5424 {
            check_rfc5424_round_trip(&event);
        }
    }
}

/// The event with each SD-ELEMENT's params stably sorted by name: the canonical JSON form maps
/// a PARAM-NAME to its value or list of values, so it keeps the order of the values of one
/// name but not how params of different names interleave (`a=1 b=2 a=3` reads back as
/// `a=1 a=3 b=2`), by design.
fn params_grouped(event: &Event) -> Event {
    let mut event = event.clone();
    for element in &mut event.structured_data.elements {
        element.params.sort_by(|a, b| a.name.cmp(&b.name));
    }
    event
}

/// Every event reads back from its canonical JSON unchanged (up to [`params_grouped`]).
fn check_json_round_trip(event: &Event) {
    let json = match serialize::json(event) {
        Ok(json) => json,
        Err(error) => panic!("event does not serialize to JSON: {error}\n{event:?}"),
    };
    let back = match JsonParser.parse(Bytes::from(json.clone()), &context()) {
        Ok(back) => back,
        Err(error) => panic!("canonical JSON does not parse back: {error}\n{json}"),
    };
    let (mut back, mut event) = (params_grouped(&back), params_grouped(event));
    let (back_fields, event_fields) = (
        std::mem::take(&mut back.fields),
        std::mem::take(&mut event.fields),
    );
    assert_eq!(back, event, "JSON round trip changed the event\n{json}");
    let same_fields = back_fields.len() == event_fields.len()
        && back_fields
            .iter()
            .zip(&event_fields)
            .all(|((k1, v1), (k2, v2))| k1 == k2 && nearly_equal(v1, v2));
    assert!(
        same_fields,
        "JSON round trip changed the fields\n{json}\n{event_fields:?}\n{back_fields:?}"
    );
}

/// Values equal but for floats a couple of ULPs apart: serde_json, built without its
/// `float_roundtrip` feature, parses decimal floats to within about one ULP only, so a float
/// read from JSON may not read back bit for bit from its shortest form (4e-54 written
/// `0.0…04` reads as `3.9999999999999995e-54`, which reads back as `3.999999999999999e-54`).
/// Known and accepted here; the fix is that feature of serde_json.
fn nearly_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(a), Value::Float(b)) => {
            a == b
                || (a.is_sign_negative() == b.is_sign_negative()
                    && a.to_bits().abs_diff(b.to_bits()) <= 2)
        }
        (Value::List(a), Value::List(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| nearly_equal(a, b))
        }
        (a, b) => a == b,
    }
}

/// The fields an RFC 5424 message carries: everything but `received_at`, `fields` and `raw`;
/// tags without [`INVALID_UTF8_TAG`] (a lossily decoded MSG is valid UTF-8 once written); an
/// empty MSG the same as none (RFC 5424 cannot tell them apart).
fn rfc5424_view(event: &Event) -> impl PartialEq + std::fmt::Debug + '_ {
    (
        (event.facility, event.severity, event.timestamp),
        (
            event.hostname.as_deref(),
            event.app_name.as_deref(),
            event.procid.as_deref(),
            event.msgid.as_deref(),
        ),
        &event.structured_data,
        event
            .message
            .as_deref()
            .filter(|message| !message.is_empty()),
        event
            .tags
            .iter()
            .filter(|tag| &***tag != INVALID_UTF8_TAG)
            .collect::<Vec<_>>(),
    )
}

fn check_rfc5424_round_trip(event: &Event) {
    let line = serialize::rfc5424(event);
    let back = match rfc5424_reader().parse(Bytes::from(line.clone()), &context()) {
        Ok(back) => back,
        Err(error) => panic!("serialized RFC 5424 does not parse back: {error}\n{line}"),
    };
    assert_eq!(
        rfc5424_view(&back),
        rfc5424_view(event),
        "RFC 5424 round trip changed the event\n{line}"
    );
}

// ---------------------------------------------------------------------------------------------
// Decoders

/// Splits described by an input at most (more split bytes are payload).
pub const MAX_SPLITS: usize = 16;

/// The `max_length` a selector byte stands for: 1–128 for selectors below 128, else multiples
/// of 64 up to 8192.
pub fn max_length(selector: u8) -> usize {
    match selector {
        0..=127 => usize::from(selector) + 1,
        _ => usize::from(selector - 127) * 64,
    }
}

/// Builds a decoder input: `[max_selector, splits.len(), splits…, payload…]`. The payload is
/// fed in chunks of the split lengths, then the rest; [`max_length`] gives the limit.
///
/// # Panics
///
/// With more than [`MAX_SPLITS`] splits.
pub fn decoder_input(max_selector: u8, splits: &[u8], payload: &[u8]) -> Vec<u8> {
    assert!(splits.len() <= MAX_SPLITS, "at most {MAX_SPLITS} splits");
    let mut data = vec![max_selector, splits.len() as u8];
    data.extend_from_slice(splits);
    data.extend_from_slice(payload);
    data
}

/// What a decoder produced: a frame, or an error (its message and whether it was fatal).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Output {
    Frame(Bytes),
    Error { message: String, fatal: bool },
}

fn check_decoder<D>(data: &[u8], new: fn(usize) -> D)
where
    D: Decoder<Item = Bytes, Error = FramingError>,
{
    let (selector, rest) = data.split_first().map_or((0, &[][..]), |(s, r)| (*s, r));
    let (count, rest) = rest.split_first().map_or((0, &[][..]), |(c, r)| (*c, r));
    let count = usize::from(count) % (MAX_SPLITS + 1);
    let (splits, payload) = rest.split_at(count.min(rest.len()));
    let max = max_length(selector);

    let mut chunks = Vec::with_capacity(splits.len() + 1);
    let mut left = payload;
    for &split in splits {
        let (chunk, rest) = left.split_at(usize::from(split).min(left.len()));
        chunks.push(chunk);
        left = rest;
    }
    chunks.push(left);

    let split = run_decoder(&mut new(max), max, &chunks);
    let whole = run_decoder(&mut new(max), max, &[payload]);
    assert_eq!(
        split, whole,
        "framing depends on how the stream was cut into {chunks:?}"
    );
}

fn run_decoder<D>(decoder: &mut D, max: usize, chunks: &[&[u8]]) -> Vec<Output>
where
    D: Decoder<Item = Bytes, Error = FramingError>,
{
    let total: usize = chunks.iter().map(|chunk| chunk.len()).sum();
    // Every frame or error takes at least one byte, plus one `None` per call site.
    let limit = total + chunks.len() + 2;
    let mut out = Vec::new();
    let mut buf = BytesMut::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match record(&mut out, decoder.decode(&mut buf), max, limit) {
                Step::Again => continue,
                Step::Done => break,
                Step::Stop => return out,
            }
        }
    }
    // Until `None` (as tokio's `FramedRead` does at the end of a stream) or a fatal error.
    while let Step::Again = record(&mut out, decoder.decode_eof(&mut buf), max, limit) {}
    out
}

/// Records one decoder result, checking the limits, and says what to do next.
fn record(
    out: &mut Vec<Output>,
    result: Result<Option<Bytes>, FramingError>,
    max: usize,
    limit: usize,
) -> Step {
    assert!(out.len() <= limit, "decoding does not terminate: {out:?}");
    match result {
        Ok(Some(frame)) => {
            assert!(
                frame.len() <= max,
                "frame of {} bytes exceeds max_length {max}",
                frame.len()
            );
            out.push(Output::Frame(frame));
            Step::Again
        }
        Ok(None) => Step::Done,
        Err(error) => {
            let fatal = !error.can_continue();
            out.push(Output::Error {
                message: error.to_string(),
                fatal,
            });
            if fatal {
                Step::Stop
            } else {
                Step::Again
            }
        }
    }
}

enum Step {
    Again,
    Done,
    Stop,
}
