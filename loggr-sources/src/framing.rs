//! Keeping a stream alive across recoverable framing errors.
//!
//! `tokio_util::codec::FramedRead` ends the stream after the first decoder error. loggr's
//! decoders report some errors that the stream survives (an oversize frame, which they skip);
//! [`Recoverable`] turns those into items so that the source can count and log them and read
//! on, and leaves only the fatal ones as stream errors.

use bytes::{Bytes, BytesMut};
use loggr_core::codec::FramingError;
use tokio_util::codec::Decoder;

/// Wraps a frame decoder: recoverable errors become `Err` items, fatal ones end the stream.
#[derive(Clone, Debug)]
pub struct Recoverable<D>(pub D);

impl<D> Decoder for Recoverable<D>
where
    D: Decoder<Item = Bytes, Error = FramingError>,
{
    type Item = Result<Bytes, FramingError>;
    type Error = FramingError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, FramingError> {
        match self.0.decode(buf) {
            Ok(frame) => Ok(frame.map(Ok)),
            Err(error) if error.can_continue() => Ok(Some(Err(error))),
            Err(error) => Err(error),
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, FramingError> {
        match self.0.decode_eof(buf) {
            Ok(frame) => Ok(frame.map(Ok)),
            Err(error) if error.can_continue() => Ok(Some(Err(error))),
            Err(error) => Err(error),
        }
    }
}
