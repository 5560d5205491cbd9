//! Reading log files whatever their compression: detection by content magic, streaming
//! decompression (gzip, bzip2, zstd, xz, each with concatenated members where the format
//! allows), the SHA-256 identity of the decompressed content, and splitting into lines.
//!
//! Everything here is blocking I/O, meant for a blocking thread
//! ([`tokio::task::spawn_blocking`]); memory stays bounded whatever the file's size (a
//! streamed file uses fixed buffers; [`examine_file`] keeps a content only up to its limit).
//!
//! ```
//! use loggr_sources::files::decode::{decode_file, LineSplitter};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("app.log");
//! std::fs::write(&path, "first\r\nsecond\nthird").unwrap();
//! let mut lines = Vec::new();
//! let mut splitter = LineSplitter::new(1024, |line: &[u8], _truncated| {
//!     lines.push(String::from_utf8_lossy(line).into_owned());
//!     Ok(())
//! });
//! decode_file(&path, &mut splitter).unwrap();
//! splitter.finish().unwrap();
//! assert_eq!(lines, ["first", "second", "third"]);
//! ```

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// How a file is compressed, as its first bytes tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compression {
    /// Plain text.
    None,
    /// gzip (`1f 8b`), members concatenated by `cat` included.
    Gzip,
    /// bzip2 (`BZh`), multi-stream included.
    Bzip2,
    /// Zstandard (`28 b5 2f fd`), several frames included.
    Zstd,
    /// xz (`fd 37 7a 58 5a 00`).
    Xz,
}

impl Compression {
    /// The longest magic number, in bytes.
    pub const MAGIC_LEN: usize = 6;

    /// The compression whose magic number `head` starts with.
    ///
    /// ```
    /// use loggr_sources::files::decode::Compression;
    /// assert_eq!(Compression::detect(b"\x1f\x8b\x08\x00"), Compression::Gzip);
    /// assert_eq!(Compression::detect(b"Jun 14 15:16:01 combo"), Compression::None);
    /// ```
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(b"BZh") && head.get(3).is_some_and(|b| (b'1'..=b'9').contains(b))
        {
            Compression::Bzip2
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else {
            Compression::None
        }
    }

    /// Its usual name (`none`, `gzip`, `bzip2`, `zstd`, `xz`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const READ_BUFFER: usize = 128 * 1024;

/// Decompresses the file at `path` into `out` (the compression detected from its first
/// bytes), and says which compression it had.
///
/// # Errors
///
/// The file cannot be read, its compressed data is corrupt or truncated, or `out` failed.
pub fn decode_file(path: &Path, out: &mut dyn Write) -> io::Result<Compression> {
    let mut input = BufReader::with_capacity(READ_BUFFER, File::open(path)?);
    decode(&mut input, out)
}

/// As [`decode_file`], from any buffered reader.
///
/// # Errors
///
/// As [`decode_file`].
pub fn decode(input: &mut dyn BufRead, out: &mut dyn Write) -> io::Result<Compression> {
    let head = peek(input, Compression::MAGIC_LEN)?;
    let compression = Compression::detect(&head);
    match compression {
        Compression::None => {
            copy(input, out)?;
        }
        Compression::Gzip => {
            copy(&mut flate2::bufread::MultiGzDecoder::new(input), out)?;
        }
        Compression::Bzip2 => {
            copy(&mut bzip2::bufread::MultiBzDecoder::new(input), out)?;
        }
        Compression::Zstd => {
            // One decoder per frame: `zstd` writes one, `cat a.zst b.zst` several.
            while !input.fill_buf()?.is_empty() {
                let mut frame = ruzstd::decoding::StreamingDecoder::new(&mut *input)
                    .map_err(|error| corrupt(format!("zstd: {error}")))?;
                copy(&mut frame, out)?;
            }
        }
        Compression::Xz => {
            let mut input = input;
            lzma_rs::xz_decompress(&mut input, &mut WriteRef(out)).map_err(
                |error| match error {
                    lzma_rs::error::Error::IoError(error) => error,
                    other => corrupt(format!("xz: {other}")),
                },
            )?;
        }
    }
    Ok(compression)
}

/// `io::copy` with a large buffer (`io::copy`'s 8 kB costs calls on fast decoders).
fn copy(input: &mut dyn Read, out: &mut dyn Write) -> io::Result<u64> {
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut total = 0u64;
    loop {
        let read = match input.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        out.write_all(&buffer[..read])?;
        total += read as u64;
    }
}

/// The first `len` bytes (fewer at end of file), without consuming them.
fn peek(input: &mut dyn BufRead, len: usize) -> io::Result<Vec<u8>> {
    let head = input.fill_buf()?;
    Ok(head[..head.len().min(len)].to_vec())
}

fn corrupt(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// `&mut dyn Write` as a sized writer (lzma-rs wants `W: Write` by mutable reference).
struct WriteRef<'a>(&'a mut dyn Write);

impl Write for WriteRef<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// The identity of a file: the SHA-256 of its decompressed content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContentDigest(pub [u8; 32]);

impl ContentDigest {
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        self.0
            .iter()
            .fold(String::with_capacity(64), |mut hex, byte| {
                use fmt::Write as _;
                let _ = write!(hex, "{byte:02x}");
                hex
            })
    }
}

impl fmt::Display for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What [`digest_file`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Examined {
    /// SHA-256 of the decompressed content.
    pub digest: ContentDigest,
    /// Decompressed size in bytes.
    pub content_len: u64,
    /// The compression found.
    pub compression: Compression,
}

/// Hashes what is written through it, counting bytes, and passes it on.
#[derive(Debug)]
pub struct HashingWriter<W> {
    hasher: Sha256,
    len: u64,
    inner: W,
}

impl<W: Write> HashingWriter<W> {
    /// Hashes and forwards to `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            hasher: Sha256::new(),
            len: 0,
            inner,
        }
    }

    /// The digest and length of everything written, and the inner writer.
    pub fn finish(self) -> (ContentDigest, u64, W) {
        (
            ContentDigest(self.hasher.finalize().into()),
            self.len,
            self.inner,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.len += written as u64;
        Ok(written)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads the whole file once: its [`ContentDigest`], decompressed size and compression.
///
/// # Errors
///
/// As [`decode_file`].
pub fn digest_file(path: &Path) -> io::Result<Examined> {
    examine_file(path, 0).map(|(examined, _)| examined)
}

/// Reads the whole file once, as [`digest_file`], and also gives its decompressed content
/// when that is at most `keep_up_to` bytes, so that a small file is decompressed and hashed
/// once instead of twice (the content then parsed is exactly the content hashed). A bigger
/// file gives `None` after using at most `keep_up_to` bytes of memory.
///
/// # Errors
///
/// As [`decode_file`].
pub fn examine_file(path: &Path, keep_up_to: usize) -> io::Result<(Examined, Option<Vec<u8>>)> {
    let expected = std::fs::metadata(path).map_or(0, |meta| meta.len());
    let mut keeping = Keeping {
        kept: Some(Vec::with_capacity(
            usize::try_from(expected).unwrap_or(0).min(keep_up_to),
        )),
        limit: keep_up_to,
    };
    let mut hashing = HashingWriter::new(&mut keeping);
    let compression = decode_file(path, &mut hashing)?;
    let (digest, content_len, _) = hashing.finish();
    let examined = Examined {
        digest,
        content_len,
        compression,
    };
    Ok((examined, keeping.kept))
}

/// Keeps what is written until it exceeds `limit` bytes, then drops it and keeps nothing.
struct Keeping {
    kept: Option<Vec<u8>>,
    limit: usize,
}

impl Write for Keeping {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(kept) = &mut self.kept {
            let needed = kept.len() + buf.len();
            if needed > self.limit {
                self.kept = None;
            } else {
                if needed > kept.capacity() {
                    // Doubling, but never past the limit: the buffer (which the events of
                    // the file then share) stays within `limit` bytes.
                    let target = needed.max(kept.capacity() * 2).min(self.limit);
                    kept.reserve_exact(target - kept.len());
                }
                kept.extend_from_slice(buf);
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Splits what is written into lines and calls `on_line(line, truncated)` for each, without
/// its `\n` (nor a `\r` before it). Empty lines are skipped. A line longer than `max_line`
/// bytes is cut to its first `max_line` bytes (`truncated` is then true) and the rest of it
/// skipped. Call [`finish`](Self::finish) at the end for a last line without `\n`.
///
/// An error from `on_line` stops the writing (it is returned by `write`).
pub struct LineSplitter<F> {
    partial: Vec<u8>,
    max_line: usize,
    skipping: bool,
    on_line: F,
}

impl<F: FnMut(&[u8], bool) -> io::Result<()>> LineSplitter<F> {
    /// Lines of at most `max_line` bytes (at least 1).
    pub fn new(max_line: usize, on_line: F) -> Self {
        LineSplitter {
            partial: Vec::new(),
            max_line: max_line.max(1),
            skipping: false,
            on_line,
        }
    }

    fn emit(&mut self, line: &[u8], truncated: bool) -> io::Result<()> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Ok(());
        }
        (self.on_line)(line, truncated)
    }

    /// Emits the last line if the input did not end with `\n`.
    ///
    /// # Errors
    ///
    /// The error of `on_line`.
    pub fn finish(&mut self) -> io::Result<()> {
        let partial = std::mem::take(&mut self.partial);
        if !self.skipping {
            self.emit(&partial, false)?;
        }
        self.skipping = false;
        Ok(())
    }
}

impl<F: FnMut(&[u8], bool) -> io::Result<()>> Write for LineSplitter<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(end) = memchr(b'\n', rest) {
            let (line, after) = (&rest[..end], &rest[end + 1..]);
            rest = after;
            if self.skipping {
                self.skipping = false;
                self.partial.clear();
                continue;
            }
            if self.partial.is_empty() {
                if line.len() > self.max_line {
                    self.emit(&line[..self.max_line], true)?;
                } else {
                    self.emit(line, false)?;
                }
            } else {
                let mut partial = std::mem::take(&mut self.partial);
                let room = self.max_line.saturating_sub(partial.len());
                let truncated = line.len() > room;
                partial.extend_from_slice(&line[..line.len().min(room)]);
                let outcome = self.emit(&partial, truncated);
                partial.clear();
                self.partial = partial;
                outcome?;
            }
        }
        if !self.skipping && !rest.is_empty() {
            let room = self.max_line.saturating_sub(self.partial.len());
            if rest.len() > room {
                self.partial.extend_from_slice(&rest[..room]);
                let partial = std::mem::take(&mut self.partial);
                let outcome = self.emit(&partial, true);
                self.skipping = true;
                outcome?;
            } else {
                self.partial.extend_from_slice(rest);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<(String, bool)> {
        let mut lines = Vec::new();
        let mut splitter = LineSplitter::new(max, |line: &[u8], truncated| {
            lines.push((String::from_utf8_lossy(line).into_owned(), truncated));
            Ok(())
        });
        for chunk in chunks {
            splitter.write_all(chunk).unwrap();
        }
        splitter.finish().unwrap();
        lines
    }

    #[test]
    fn lines_across_chunk_boundaries() {
        let got = split(100, &[b"ab", b"c\nde", b"f\r", b"\n\n\ngh"]);
        assert_eq!(
            got,
            [
                ("abc".into(), false),
                ("def".into(), false),
                ("gh".into(), false)
            ]
        );
    }

    #[test]
    fn oversize_lines_are_cut_and_flagged_and_the_next_line_survives() {
        // Whole line in one chunk, and a line growing over several chunks.
        let got = split(4, &[b"abcdefgh\nok\n12", b"345", b"678\nlast"]);
        assert_eq!(
            got,
            [
                ("abcd".into(), true),
                ("ok".into(), false),
                ("1234".into(), true),
                ("last".into(), false)
            ]
        );
    }

    #[test]
    fn magic_numbers() {
        assert_eq!(Compression::detect(b"BZh91AY&SY"), Compression::Bzip2);
        assert_eq!(Compression::detect(b"BZhello"), Compression::None);
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"\xfd7zXZ\x00\x00"), Compression::Xz);
        assert_eq!(Compression::detect(b""), Compression::None);
    }

    #[test]
    fn every_compression_decodes_to_the_same_content_and_digest() {
        let text: Vec<u8> = (0..5000)
            .flat_map(|i| {
                format!("Jun 14 15:16:{:02} host app[{i}]: line {i}\n", i % 60).into_bytes()
            })
            .collect();
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&text[..1000]).unwrap();
        let mut gzip_bytes = gzip.finish().unwrap();
        // A second gzip member, as `cat a.gz b.gz` makes.
        let mut second = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        second.write_all(&text[1000..]).unwrap();
        gzip_bytes.extend(second.finish().unwrap());
        let mut bzip = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bzip.write_all(&text).unwrap();
        let bzip_bytes = bzip.finish().unwrap();
        let mut xz_bytes = Vec::new();
        lzma_rs::xz_compress(&mut &text[..], &mut xz_bytes).unwrap();
        let zstd_bytes = ruzstd::encoding::compress_to_vec(
            &text[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let expected = Sha256::digest(&text);
        for (bytes, compression) in [
            (text.clone(), Compression::None),
            (gzip_bytes, Compression::Gzip),
            (bzip_bytes, Compression::Bzip2),
            (xz_bytes, Compression::Xz),
            (zstd_bytes, Compression::Zstd),
        ] {
            let mut hashing = HashingWriter::new(Vec::new());
            let found = decode(&mut &bytes[..], &mut hashing).unwrap();
            let (digest, len, out) = hashing.finish();
            assert_eq!(found, compression);
            assert_eq!(out, text, "{compression}");
            assert_eq!(len, text.len() as u64);
            assert_eq!(digest.0[..], expected[..], "{compression}");
        }
    }

    #[test]
    fn examining_keeps_the_decompressed_content_of_a_small_file_only() {
        let text: Vec<u8> = (0..3000)
            .flat_map(|i| format!("Jun 14 15:16:00 host app: line {i}\n").into_bytes())
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small.gz");
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&text).unwrap();
        std::fs::write(&path, gzip.finish().unwrap()).unwrap();
        let streamed = digest_file(&path).unwrap();

        let (examined, kept) = examine_file(&path, text.len()).unwrap();
        assert_eq!(examined, streamed);
        assert_eq!(examined.compression, Compression::Gzip);
        assert_eq!(kept.as_deref(), Some(&text[..]), "the decompressed content");

        // One byte over the limit: nothing kept, the same identity.
        let (examined, kept) = examine_file(&path, text.len() - 1).unwrap();
        assert_eq!(examined, streamed);
        assert_eq!(kept, None);
    }

    #[test]
    fn corrupt_compressed_data_is_an_error_not_a_panic() {
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&[b'x'; 100_000]).unwrap();
        let bytes = gzip.finish().unwrap();
        let truncated = &bytes[..bytes.len() / 2];
        assert!(decode(&mut &truncated[..], &mut io::sink()).is_err());
        let mut garbage = vec![0xfd, b'7', b'z', b'X', b'Z', 0];
        garbage.extend([0x55; 64]);
        assert!(decode(&mut &garbage[..], &mut io::sink()).is_err());
    }
}
