//! Framing: `tokio_util::codec` decoders that cut a byte stream into frames.
//!
//! Framing is not parsing: a decoder only finds where each message starts and ends, and hands
//! out [`Bytes`] slices of its buffer without copying.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

/// A framing error. [`can_continue`](FramingError::can_continue) says whether the stream is
/// still usable after it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// A frame longer than the limit; its bytes are skipped up to the next delimiter and the
    /// stream goes on.
    #[error("frame of more than {max} bytes discarded")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// The stream cannot be framed any further (for example a bad octet count).
    #[error("unrecoverable framing error: {0}")]
    Fatal(String),
    /// The underlying stream failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl FramingError {
    /// Whether decoding may go on after this error.
    pub fn can_continue(&self) -> bool {
        matches!(self, FramingError::TooLong { .. })
    }
}

/// Newline-delimited frames: `\n` ends a frame, a `\r` before it is trimmed, empty frames are
/// skipped. A frame longer than `max_length` is reported once and skipped up to the next `\n`
/// (the "discarding" state), and decoding goes on.
#[derive(Clone, Debug)]
pub struct LineDecoder {
    max_length: usize,
    /// Bytes of the buffer already searched for `\n`.
    searched: usize,
    discarding: bool,
}

impl LineDecoder {
    /// A decoder accepting frames of up to `max_length` bytes.
    pub fn new(max_length: usize) -> Self {
        LineDecoder {
            max_length: max_length.max(1),
            searched: 0,
            discarding: false,
        }
    }

    /// The limit.
    pub fn max_length(&self) -> usize {
        self.max_length
    }
}

impl Default for LineDecoder {
    fn default() -> Self {
        LineDecoder::new(64 * 1024)
    }
}

fn trim_frame(mut frame: Bytes) -> Bytes {
    if frame.last() == Some(&b'\r') {
        frame.truncate(frame.len() - 1);
    }
    frame
}

/// One step of a decoder: a frame, nothing more to do in the buffer, or a frame boundary
/// passed without a frame (an empty line, the end of a discarded frame).
enum Step {
    Frame(Bytes),
    NeedMore,
    Boundary,
}

impl LineDecoder {
    fn step(&mut self, buf: &mut BytesMut) -> Result<Step, FramingError> {
        let newline = buf
            .get(self.searched..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'));
        match newline {
            Some(offset) => {
                let end = self.searched + offset;
                self.searched = 0;
                if self.discarding {
                    buf.advance(end + 1);
                    self.discarding = false;
                    return Ok(Step::Boundary);
                }
                let mut line = buf.split_to(end + 1).freeze();
                line.truncate(end);
                let line = trim_frame(line);
                if line.len() > self.max_length {
                    return Err(FramingError::TooLong {
                        max: self.max_length,
                    });
                }
                if line.is_empty() {
                    return Ok(Step::Boundary);
                }
                Ok(Step::Frame(line))
            }
            None if self.discarding => {
                buf.clear();
                self.searched = 0;
                Ok(Step::NeedMore)
            }
            None if buf.len() > self.max_length + 1 => {
                self.discarding = true;
                buf.clear();
                self.searched = 0;
                Err(FramingError::TooLong {
                    max: self.max_length,
                })
            }
            None => {
                self.searched = buf.len();
                Ok(Step::NeedMore)
            }
        }
    }
}

impl Decoder for LineDecoder {
    type Item = Bytes;
    type Error = FramingError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FramingError> {
        loop {
            match self.step(buf)? {
                Step::Frame(frame) => return Ok(Some(frame)),
                Step::Boundary => continue,
                Step::NeedMore => return Ok(None),
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FramingError> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        self.searched = 0;
        if self.discarding || buf.is_empty() {
            buf.clear();
            self.discarding = false;
            return Ok(None);
        }
        let line = trim_frame(buf.split().freeze());
        if line.len() > self.max_length {
            return Err(FramingError::TooLong {
                max: self.max_length,
            });
        }
        Ok((!line.is_empty()).then_some(line))
    }
}

/// RFC 6587 octet counting: each frame is `MSG-LEN SP SYSLOG-MSG`, MSG-LEN being the number
/// of octets (not characters) of the message, in decimal without leading zero.
///
/// A frame longer than `max_length` is reported ([`FramingError::TooLong`], the stream goes
/// on) and its octets skipped. Anything else where a MSG-LEN should be, or a stream ending
/// inside a frame, is [`FramingError::Fatal`]: with the count lost the stream cannot be
/// resynchronised.
#[derive(Clone, Debug)]
pub struct OctetCountingDecoder {
    max_length: usize,
    state: OctetState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OctetState {
    Length,
    Body(usize),
    Discard(usize),
}

/// MSG-LEN has at most this many digits (more would overflow any sane limit).
const MAX_LEN_DIGITS: usize = 10;

impl OctetCountingDecoder {
    /// A decoder accepting frames of up to `max_length` bytes.
    pub fn new(max_length: usize) -> Self {
        OctetCountingDecoder {
            max_length: max_length.max(1),
            state: OctetState::Length,
        }
    }

    /// The limit.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Step, FramingError> {
        match self.state {
            OctetState::Length => {
                let mut len = 0usize;
                let mut digits = 0;
                loop {
                    match buf.get(digits).copied() {
                        None => return Ok(Step::NeedMore),
                        Some(b' ') if digits > 0 => break,
                        Some(b'0') if digits == 0 => {
                            return Err(fatal("MSG-LEN starts with 0"));
                        }
                        Some(digit @ b'0'..=b'9') if digits < MAX_LEN_DIGITS => {
                            len = len * 10 + usize::from(digit - b'0');
                            digits += 1;
                        }
                        Some(byte) if digits == 0 => {
                            return Err(fatal(format!(
                                "expected a MSG-LEN digit, found {:?}",
                                char::from(byte)
                            )));
                        }
                        Some(byte) => {
                            return Err(fatal(format!(
                                "expected SP after MSG-LEN, found {:?}",
                                char::from(byte)
                            )));
                        }
                    }
                }
                buf.advance(digits + 1);
                if len > self.max_length {
                    self.state = OctetState::Discard(len);
                    return Err(FramingError::TooLong {
                        max: self.max_length,
                    });
                }
                self.state = OctetState::Body(len);
                self.step(buf)
            }
            OctetState::Body(len) => {
                if buf.len() >= len {
                    self.state = OctetState::Length;
                    Ok(Step::Frame(buf.split_to(len).freeze()))
                } else {
                    buf.reserve(len - buf.len());
                    Ok(Step::NeedMore)
                }
            }
            OctetState::Discard(left) => {
                let skip = left.min(buf.len());
                buf.advance(skip);
                if skip == left {
                    self.state = OctetState::Length;
                    Ok(Step::Boundary)
                } else {
                    self.state = OctetState::Discard(left - skip);
                    Ok(Step::NeedMore)
                }
            }
        }
    }

    fn end(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FramingError> {
        let state = std::mem::replace(&mut self.state, OctetState::Length);
        let pending = !buf.is_empty();
        buf.clear();
        match state {
            OctetState::Length if !pending => Ok(None),
            OctetState::Discard(_) => Ok(None),
            OctetState::Length => Err(fatal("stream ended inside a MSG-LEN")),
            OctetState::Body(len) => Err(fatal(format!(
                "stream ended inside a frame of {len} octets"
            ))),
        }
    }
}

fn fatal(why: impl Into<String>) -> FramingError {
    FramingError::Fatal(why.into())
}

impl Default for OctetCountingDecoder {
    fn default() -> Self {
        OctetCountingDecoder::new(64 * 1024)
    }
}

impl Decoder for OctetCountingDecoder {
    type Item = Bytes;
    type Error = FramingError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FramingError> {
        loop {
            match self.step(buf)? {
                Step::Frame(frame) => return Ok(Some(frame)),
                Step::Boundary => continue,
                Step::NeedMore => return Ok(None),
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FramingError> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        self.end(buf)
    }
}

/// Octet counting or LF, decided per frame as rsyslog's `imtcp` does: a frame starting with a
/// digit is octet-counted, anything else runs to the next LF. Stray CR/LF between frames
/// (senders that end octet-counted frames with LF) are skipped.
#[derive(Clone, Debug)]
pub struct AutoFramingDecoder {
    lines: LineDecoder,
    octets: OctetCountingDecoder,
    mode: Mode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Start,
    Octet,
    Line,
}

impl AutoFramingDecoder {
    /// A decoder accepting frames of up to `max_length` bytes in either framing.
    pub fn new(max_length: usize) -> Self {
        AutoFramingDecoder {
            lines: LineDecoder::new(max_length),
            octets: OctetCountingDecoder::new(max_length),
            mode: Mode::Start,
        }
    }
}

impl Default for AutoFramingDecoder {
    fn default() -> Self {
        AutoFramingDecoder::new(64 * 1024)
    }
}

impl Decoder for AutoFramingDecoder {
    type Item = Bytes;
    type Error = FramingError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FramingError> {
        loop {
            let step = match self.mode {
                Mode::Start => {
                    match buf.first() {
                        None => return Ok(None),
                        Some(b'\n' | b'\r') => buf.advance(1),
                        Some(b'1'..=b'9') => self.mode = Mode::Octet,
                        Some(_) => self.mode = Mode::Line,
                    }
                    continue;
                }
                Mode::Octet => self.octets.step(buf),
                Mode::Line => self.lines.step(buf),
            };
            match step {
                Ok(Step::Frame(frame)) => {
                    self.mode = Mode::Start;
                    return Ok(Some(frame));
                }
                Ok(Step::Boundary) => self.mode = Mode::Start,
                Ok(Step::NeedMore) => return Ok(None),
                Err(error) => {
                    let discarding = match self.mode {
                        Mode::Line => self.lines.discarding,
                        _ => matches!(self.octets.state, OctetState::Discard(_)),
                    };
                    if !discarding {
                        self.mode = Mode::Start;
                    }
                    return Err(error);
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FramingError> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        let mode = std::mem::replace(&mut self.mode, Mode::Start);
        match mode {
            Mode::Line => self.lines.decode_eof(buf),
            Mode::Octet => self.octets.end(buf),
            Mode::Start => {
                buf.clear();
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(decoder: &mut LineDecoder, chunks: &[&[u8]]) -> Vec<Result<String, String>> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(frame)) => out.push(Ok(String::from_utf8_lossy(&frame).into_owned())),
                    Ok(None) => break,
                    Err(error) => out.push(Err(error.to_string())),
                }
            }
        }
        loop {
            match decoder.decode_eof(&mut buf) {
                Ok(Some(frame)) => out.push(Ok(String::from_utf8_lossy(&frame).into_owned())),
                Ok(None) => break,
                Err(error) => out.push(Err(error.to_string())),
            }
        }
        out
    }

    #[test]
    fn splits_lines_across_chunks_and_trims_cr() {
        let mut decoder = LineDecoder::new(100);
        let got = frames(&mut decoder, &[b"one\r\ntw", b"o\n\nthree"]);
        assert_eq!(
            got,
            vec![Ok("one".into()), Ok("two".into()), Ok("three".into())]
        );
    }

    #[test]
    fn oversize_lines_are_reported_and_skipped() {
        let mut decoder = LineDecoder::new(5);
        let got = frames(&mut decoder, &[b"ok\n0123456789", b"abcdef\nnext\n"]);
        assert_eq!(
            got,
            vec![
                Ok("ok".into()),
                Err("frame of more than 5 bytes discarded".into()),
                Ok("next".into())
            ]
        );
        let mut decoder = LineDecoder::new(5);
        let got = frames(&mut decoder, &[b"0123456\nafter\n"]);
        assert_eq!(
            got,
            vec![
                Err("frame of more than 5 bytes discarded".into()),
                Ok("after".into())
            ]
        );
    }

    fn run<D>(decoder: &mut D, chunks: &[&[u8]]) -> Vec<Result<String, String>>
    where
        D: Decoder<Item = Bytes, Error = FramingError>,
    {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(frame)) => out.push(Ok(String::from_utf8_lossy(&frame).into_owned())),
                    Ok(None) => break,
                    Err(error) => {
                        let fatal = !error.can_continue();
                        out.push(Err(error.to_string()));
                        if fatal {
                            return out;
                        }
                    }
                }
            }
        }
        loop {
            match decoder.decode_eof(&mut buf) {
                Ok(Some(frame)) => out.push(Ok(String::from_utf8_lossy(&frame).into_owned())),
                Ok(None) => break,
                Err(error) => {
                    out.push(Err(error.to_string()));
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn octet_counting_splits_by_count_across_chunks() {
        let mut decoder = OctetCountingDecoder::new(100);
        let got = run(&mut decoder, &[b"5 hel", b"lo6 w\norld", b"2 ", b"ok"]);
        assert_eq!(
            got,
            vec![Ok("hello".into()), Ok("w\norld".into()), Ok("ok".into())]
        );
        // MSG-LEN counts octets, not characters.
        let got = run(&mut OctetCountingDecoder::new(100), &["6 hellø".as_bytes()]);
        assert_eq!(got, vec![Ok("hellø".into())]);
    }

    #[test]
    fn octet_counting_skips_oversize_and_stops_on_garbage() {
        let mut decoder = OctetCountingDecoder::new(4);
        let got = run(&mut decoder, &[b"6 abc", b"def3 xyz"]);
        assert_eq!(
            got,
            vec![
                Err("frame of more than 4 bytes discarded".into()),
                Ok("xyz".into())
            ]
        );
        for bad in [
            &b"x"[..],
            b"16<1>",
            b"05 abcde",
            b" 5 abcde",
            b"12345678901 x",
        ] {
            let got = run(&mut OctetCountingDecoder::new(100), &[bad]);
            assert!(
                matches!(got.last(), Some(Err(e)) if e.starts_with("unrecoverable")),
                "{got:?}"
            );
        }
        let got = run(&mut OctetCountingDecoder::new(100), &[b"16 <1>1"]);
        assert_eq!(
            got,
            vec![Err(
                "unrecoverable framing error: stream ended inside a frame of 16 octets".into()
            )]
        );
        assert!(run(&mut OctetCountingDecoder::new(100), &[b""]).is_empty());
    }

    #[test]
    fn auto_framing_mixes_octet_counted_and_lf_frames() {
        let mut decoder = AutoFramingDecoder::new(100);
        let got = run(
            &mut decoder,
            &[b"5 hello\n<13>line one\r\n", b"3 abc", b"<14>tail"],
        );
        assert_eq!(
            got,
            vec![
                Ok("hello".into()),
                Ok("<13>line one".into()),
                Ok("abc".into()),
                Ok("<14>tail".into())
            ]
        );
        let mut decoder = AutoFramingDecoder::new(4);
        let got = run(&mut decoder, &[b"9 123456789abcdefg\nok\n2 hi"]);
        assert_eq!(
            got,
            vec![
                Err("frame of more than 4 bytes discarded".into()),
                Err("frame of more than 4 bytes discarded".into()),
                Ok("ok".into()),
                Ok("hi".into())
            ]
        );
    }
}
