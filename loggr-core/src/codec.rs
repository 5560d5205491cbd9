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

impl Decoder for LineDecoder {
    type Item = Bytes;
    type Error = FramingError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FramingError> {
        loop {
            let newline = buf[self.searched..].iter().position(|&b| b == b'\n');
            match newline {
                Some(offset) => {
                    let end = self.searched + offset;
                    self.searched = 0;
                    if self.discarding {
                        buf.advance(end + 1);
                        self.discarding = false;
                        continue;
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
                        continue;
                    }
                    return Ok(Some(line));
                }
                None if self.discarding => {
                    buf.clear();
                    self.searched = 0;
                    return Ok(None);
                }
                None if buf.len() > self.max_length + 1 => {
                    self.discarding = true;
                    buf.clear();
                    self.searched = 0;
                    return Err(FramingError::TooLong {
                        max: self.max_length,
                    });
                }
                None => {
                    self.searched = buf.len();
                    return Ok(None);
                }
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
}
