//! [`CopyWriter`]: rows in PostgreSQL's binary `COPY` format, sent in large chunks.
//!
//! `tokio_postgres::binary_copy::BinaryCopyInWriter` checks each value's type through
//! `dyn ToSql` and hands the connection a message every 4 kB (a channel send, a task wake-up
//! and a `write` each: over a thousand per batch of 10,000 events). The sink knows its
//! column types statically, so it writes the values straight into one buffer and sends it in
//! chunks of [`CHUNK`] bytes.

use std::pin::Pin;

use bytes::{BufMut, Bytes, BytesMut};
use futures::SinkExt;
use loggr_core::Timestamp;
use tokio_postgres::CopyInSink;

/// The binary `COPY` signature, flags and header extension length.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// How many bytes are buffered before they are handed to the connection.
const CHUNK: usize = 256 * 1024;

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01T00:00:00Z).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A `COPY … FROM STDIN (FORMAT binary)` in progress: [`row`](Self::row), then its fields.
pub(crate) struct CopyWriter {
    sink: Pin<Box<CopyInSink<Bytes>>>,
    buf: CopyBuf,
}

impl CopyWriter {
    /// Starts writing to `sink` (the header goes first).
    pub(crate) fn new(sink: CopyInSink<Bytes>) -> Self {
        CopyWriter {
            sink: Box::pin(sink),
            buf: CopyBuf::new(),
        }
    }

    /// Starts a row of `fields` fields, to be written into the returned buffer; first sends
    /// what is buffered when it makes a chunk.
    pub(crate) async fn row(&mut self, fields: i16) -> Result<&mut CopyBuf, tokio_postgres::Error> {
        if self.buf.0.len() >= CHUNK {
            let chunk = self.buf.0.split().freeze();
            self.sink.send(chunk).await?;
        }
        self.buf.0.put_i16(fields);
        Ok(&mut self.buf)
    }

    /// Ends the `COPY`; returns the number of rows PostgreSQL stored.
    pub(crate) async fn finish(mut self) -> Result<u64, tokio_postgres::Error> {
        self.buf.0.put_i16(-1);
        let rest = self.buf.0.split().freeze();
        self.sink.send(rest).await?;
        self.sink.as_mut().finish().await
    }
}

/// The oid of PostgreSQL's `text` type (the element type of a `text[]`).
const TEXT_OID: u32 = 25;

/// Rows being encoded (the fields of the current row are appended in column order), and a
/// scratch buffer for values written in two steps.
pub(crate) struct CopyBuf(BytesMut, Vec<u8>);

impl CopyBuf {
    /// A buffer starting with the header.
    fn new() -> Self {
        let mut buf = BytesMut::with_capacity(CHUNK + CHUNK / 4);
        buf.put_slice(HEADER);
        CopyBuf(buf, Vec::with_capacity(256))
    }

    /// A NULL.
    pub(crate) fn null(&mut self) {
        self.0.put_i32(-1);
    }

    /// A `bytea` or `text` (UTF-8) value.
    pub(crate) fn bytes(&mut self, value: &[u8]) {
        // A field is at most 1 GB in PostgreSQL; the server refuses a bigger one.
        self.0
            .put_i32(i32::try_from(value.len()).unwrap_or(i32::MAX));
        self.0.put_slice(value);
    }

    /// A `text` value or NULL.
    pub(crate) fn text(&mut self, value: Option<&str>) {
        match value {
            Some(text) => self.bytes(text.as_bytes()),
            None => self.null(),
        }
    }

    /// A `bytea` value or NULL.
    pub(crate) fn bytea(&mut self, value: Option<&[u8]>) {
        match value {
            Some(bytes) => self.bytes(bytes),
            None => self.null(),
        }
    }

    /// A `boolean`.
    pub(crate) fn bool(&mut self, value: bool) {
        self.0.put_i32(1);
        self.0.put_u8(u8::from(value));
    }

    /// A `smallint`.
    pub(crate) fn i16(&mut self, value: i16) {
        self.0.put_i32(2);
        self.0.put_i16(value);
    }

    /// A `bigint`.
    pub(crate) fn i64(&mut self, value: i64) {
        self.0.put_i32(8);
        self.0.put_i64(value);
    }

    /// A `timestamptz`: microseconds since 2000-01-01 (truncated). No range check: PostgreSQL
    /// refuses what it cannot hold (years before 4713 BC) with SQLSTATE 22008.
    pub(crate) fn timestamp(&mut self, at: Timestamp) {
        self.0.put_i32(8);
        self.0
            .put_i64(at.as_microsecond().saturating_sub(PG_EPOCH_MICROS));
    }

    /// A `jsonb` value: `json`, JSON text.
    pub(crate) fn jsonb(&mut self, json: &[u8]) {
        self.0
            .put_i32(i32::try_from(json.len() + 1).unwrap_or(i32::MAX));
        // jsonb's binary format: version 1, then the text.
        self.0.put_u8(1);
        self.0.put_slice(json);
    }

    /// A `jsonb` value `write` puts into the (cleared) buffer it is given and says it wrote,
    /// or NULL when it says it wrote none.
    pub(crate) fn jsonb_with(&mut self, write: impl FnOnce(&mut Vec<u8>) -> bool) {
        let mut scratch = std::mem::take(&mut self.1);
        scratch.clear();
        if write(&mut scratch) {
            self.jsonb(&scratch);
        } else {
            self.null();
        }
        self.1 = scratch;
    }

    /// A one-dimensional `text[]` of `items` (none of them NULL), or NULL when there are
    /// none (what a column without value holds: `= ANY(NULL)` is never true).
    pub(crate) fn text_array<'a>(&mut self, items: impl ExactSizeIterator<Item = &'a str>) {
        let count = items.len();
        if count == 0 {
            self.null();
            return;
        }
        let length_at = self.0.len();
        self.0.put_i32(0);
        let start = self.0.len();
        // Dimensions, whether any element is NULL, the element type; then the dimension's
        // length and lower bound; then each element, length-prefixed.
        self.0.put_i32(1);
        self.0.put_i32(0);
        self.0.put_u32(TEXT_OID);
        self.0.put_i32(i32::try_from(count).unwrap_or(i32::MAX));
        self.0.put_i32(1);
        for item in items {
            self.bytes(item.as_bytes());
        }
        let length = i32::try_from(self.0.len() - start).unwrap_or(i32::MAX);
        self.0[length_at..start].copy_from_slice(&length.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(write: impl FnOnce(&mut CopyBuf)) -> Vec<u8> {
        let mut buf = CopyBuf::new();
        write(&mut buf);
        buf.0[HEADER.len()..].to_vec()
    }

    #[test]
    fn the_header_is_the_binary_copy_signature() {
        let buf = CopyBuf::new();
        assert_eq!(&buf.0[..], b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0");
    }

    #[test]
    fn timestamps_count_from_the_postgres_epoch() {
        let at: Timestamp = "2000-01-01T00:00:01.5Z".parse().unwrap();
        let bytes = encoded(|buf| buf.timestamp(at));
        assert_eq!(bytes[..4], 8i32.to_be_bytes());
        assert_eq!(bytes[4..], 1_500_000i64.to_be_bytes());
    }

    #[test]
    fn a_text_array_is_one_dimension_of_length_prefixed_texts_and_empty_is_null() {
        let bytes = encoded(|buf| {
            buf.text_array(["ab", "c"].into_iter());
            buf.text_array(std::iter::empty());
        });
        let mut expected = Vec::new();
        expected.extend_from_slice(&(20 + 4 + 2 + 4 + 1i32).to_be_bytes());
        for header in [1i32, 0, 25, 2, 1] {
            expected.extend_from_slice(&header.to_be_bytes());
        }
        expected.extend_from_slice(&2i32.to_be_bytes());
        expected.extend_from_slice(b"ab");
        expected.extend_from_slice(&1i32.to_be_bytes());
        expected.extend_from_slice(b"c");
        expected.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(bytes, expected);
    }

    #[test]
    fn jsonb_with_writes_what_it_is_given_or_null() {
        let bytes = encoded(|buf| {
            buf.jsonb_with(|out| {
                out.extend_from_slice(b"[1]");
                true
            });
            buf.jsonb_with(|out| {
                out.extend_from_slice(b"ignored");
                false
            });
        });
        let mut expected = Vec::new();
        expected.extend_from_slice(&4i32.to_be_bytes());
        expected.extend_from_slice(b"\x01[1]");
        expected.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(bytes, expected);
    }

    #[test]
    fn fields_are_length_prefixed_and_null_is_minus_one() {
        let bytes = encoded(|buf| {
            buf.text(Some("hé"));
            buf.text(None);
            buf.bool(true);
            buf.i16(-2);
            buf.jsonb(b"{}");
        });
        let mut expected = Vec::new();
        expected.extend_from_slice(&3i32.to_be_bytes());
        expected.extend_from_slice("hé".as_bytes());
        expected.extend_from_slice(&(-1i32).to_be_bytes());
        expected.extend_from_slice(&1i32.to_be_bytes());
        expected.push(1);
        expected.extend_from_slice(&2i32.to_be_bytes());
        expected.extend_from_slice(&(-2i16).to_be_bytes());
        expected.extend_from_slice(&3i32.to_be_bytes());
        expected.extend_from_slice(b"\x01{}");
        assert_eq!(bytes, expected);
    }
}
