//! RELP framing: bytes ⇄ [`Frame`]s.
//!
//! A RELP frame is `TXNR SP COMMAND SP DATALEN [SP DATA] LF`:
//!
//! - `TXNR`: 1 to 9 digits. Peers number their transactions from 1 to 999,999,999 and wrap to 1
//!   ([`next_txnr`]); 0 is reserved for `serverclose`.
//! - `COMMAND`: 1 to 32 ASCII letters, case-sensitive (`open`, `syslog`, `rsp`, …).
//! - `DATALEN`: 1 to 9 digits, the length of DATA in octets. When it is 0 there is neither the
//!   SP nor DATA: `4 rsp 0\n`.
//! - The trailer is a single LF after DATA (DATA itself may contain LFs).
//!
//! [`FrameCodec`] is strict: every deviation is an error, and every decoding error is fatal to
//! the stream ([`RelpError::can_continue`] is false) because the end of a malformed frame
//! cannot be found. DATALEN is checked against the configured maximum as soon as it is read,
//! before anything is buffered. Decoding is zero-copy: [`Frame::data`] shares the read buffer.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::RelpError;

/// The largest transaction number; the next one is 1.
pub const MAX_TXNR: u32 = 999_999_999;

/// The longest command name allowed by RELP.
pub const MAX_COMMAND_LEN: usize = 32;

/// The largest DATALEN the wire format can express (9 digits).
const MAX_WIRE_DATALEN: usize = 999_999_999;

/// The transaction number after `txnr`: `txnr + 1`, wrapping from 999,999,999 to 1.
pub fn next_txnr(txnr: u32) -> u32 {
    if txnr >= MAX_TXNR {
        1
    } else {
        txnr + 1
    }
}

/// A RELP command.
///
/// [`Display`](fmt::Display) writes the wire name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Command {
    /// `open`: the client starts a session and sends its offers.
    Open,
    /// `syslog`: one syslog message.
    Syslog,
    /// `close`: the client ends the session.
    Close,
    /// `rsp`: the answer to a transaction.
    Rsp,
    /// `serverclose`: the server ends the session (always with txnr 0).
    ServerClose,
    /// Any other command: 1 to 32 ASCII letters.
    Other(String),
}

impl Command {
    /// The wire name of the command.
    pub fn as_str(&self) -> &str {
        match self {
            Command::Open => "open",
            Command::Syslog => "syslog",
            Command::Close => "close",
            Command::Rsp => "rsp",
            Command::ServerClose => "serverclose",
            Command::Other(name) => name,
        }
    }

    fn from_wire(name: &[u8]) -> Command {
        match name {
            b"syslog" => Command::Syslog,
            b"rsp" => Command::Rsp,
            b"open" => Command::Open,
            b"close" => Command::Close,
            b"serverclose" => Command::ServerClose,
            // The decoder only passes ASCII letters here.
            other => Command::Other(String::from_utf8_lossy(other).into_owned()),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One RELP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Transaction number (0 only for `serverclose`).
    pub txnr: u32,
    /// The command.
    pub command: Command,
    /// DATA, empty when DATALEN is 0.
    pub data: Bytes,
}

impl Frame {
    /// A frame from its parts.
    pub fn new(txnr: u32, command: Command, data: impl Into<Bytes>) -> Frame {
        Frame {
            txnr,
            command,
            data: data.into(),
        }
    }
}

/// A parsed header waiting for the rest of its frame.
#[derive(Debug, Clone)]
struct Header {
    txnr: u32,
    command: Command,
    /// Offset of DATA (or of the trailer when DATALEN is 0).
    data_start: usize,
    data_len: usize,
}

impl Header {
    /// Length of the whole frame, trailer included.
    fn frame_len(&self) -> usize {
        self.data_start + self.data_len + 1
    }
}

/// [`Decoder`] and [`Encoder`] of RELP [`Frame`]s.
///
/// The decoder refuses frames whose DATALEN exceeds `max_data_len` as soon as the header is
/// read ([`RelpError::DataTooLong`]); the encoder does not apply the limit (it is the peer's
/// to enforce).
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_data_len: usize,
    header: Option<Header>,
}

impl FrameCodec {
    /// A codec accepting DATA of at most `max_data_len` octets.
    pub fn new(max_data_len: usize) -> Self {
        FrameCodec {
            max_data_len: max_data_len.min(MAX_WIRE_DATALEN),
            header: None,
        }
    }

    /// The configured maximum DATALEN.
    pub fn max_data_len(&self) -> usize {
        self.max_data_len
    }
}

/// Reads 1 to 9 digits starting at `pos`. `Ok(None)`: need more input.
fn digits(
    buf: &[u8],
    pos: usize,
    err: fn() -> RelpError,
) -> Result<Option<(u64, usize)>, RelpError> {
    let mut value: u64 = 0;
    let mut i = pos;
    while i < buf.len() && buf[i].is_ascii_digit() {
        if i - pos == 9 {
            return Err(err());
        }
        value = value * 10 + u64::from(buf[i] - b'0');
        i += 1;
    }
    if i == buf.len() {
        return Ok(None);
    }
    if i == pos {
        return Err(err());
    }
    Ok(Some((value, i)))
}

/// Parses a header at the start of `buf`. `Ok(None)`: need more input (what was seen is valid).
fn parse_header(buf: &[u8], max_data_len: usize) -> Result<Option<Header>, RelpError> {
    let Some((txnr, mut i)) = digits(buf, 0, || RelpError::BadTxnr)? else {
        return Ok(None);
    };
    // `digits` stops at 9 digits, so the value fits.
    let txnr = u32::try_from(txnr).map_err(|_| RelpError::BadTxnr)?;
    if buf[i] != b' ' {
        return Err(RelpError::BadSeparator(
            "expected a space after the transaction number",
        ));
    }
    i += 1;
    let cmd_start = i;
    while i < buf.len() && buf[i].is_ascii_alphabetic() {
        if i - cmd_start == MAX_COMMAND_LEN {
            return Err(RelpError::BadCommand);
        }
        i += 1;
    }
    if i == buf.len() {
        return Ok(None);
    }
    if i == cmd_start {
        return Err(RelpError::BadCommand);
    }
    if buf[i] != b' ' {
        return Err(RelpError::BadCommand);
    }
    let command = &buf[cmd_start..i];
    i += 1;
    let len_start = i;
    let mut data_len: usize = 0;
    while i < buf.len() && buf[i].is_ascii_digit() {
        if i - len_start == 9 {
            return Err(RelpError::BadDataLen);
        }
        data_len = data_len * 10 + usize::from(buf[i] - b'0');
        if data_len > max_data_len {
            return Err(RelpError::DataTooLong {
                txnr,
                len: data_len,
                max: max_data_len,
            });
        }
        i += 1;
    }
    if i == buf.len() {
        return Ok(None);
    }
    if i == len_start {
        return Err(RelpError::BadDataLen);
    }
    // With DATALEN 0 the next octet is the trailer, checked with the frame.
    if data_len > 0 {
        if buf[i] != b' ' {
            return Err(RelpError::BadSeparator("expected a space after DATALEN"));
        }
        i += 1;
    }
    Ok(Some(Header {
        txnr,
        command: Command::from_wire(command),
        data_start: i,
        data_len,
    }))
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = RelpError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, RelpError> {
        let header = match self.header.take() {
            Some(header) => header,
            None => match parse_header(src, self.max_data_len)? {
                Some(header) => header,
                None => return Ok(None),
            },
        };
        let frame_len = header.frame_len();
        if src.len() < frame_len {
            src.reserve(frame_len - src.len());
            self.header = Some(header);
            return Ok(None);
        }
        if src[frame_len - 1] != b'\n' {
            return Err(if header.data_len == 0 {
                RelpError::BadSeparator("expected LF after DATALEN 0")
            } else {
                RelpError::MissingTrailer { txnr: header.txnr }
            });
        }
        let frame = src.split_to(frame_len).freeze();
        let data = frame.slice(header.data_start..header.data_start + header.data_len);
        Ok(Some(Frame {
            txnr: header.txnr,
            command: header.command,
            data,
        }))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, RelpError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() && self.header.is_none() => Ok(None),
            None => Err(RelpError::UnexpectedEof),
        }
    }
}

/// Appends the decimal form of `n` to `dst`.
fn put_decimal(dst: &mut BytesMut, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        // n % 10 < 10
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.put_slice(&digits[i..]);
}

/// Appends one frame to `dst`. Checks the txnr and command name, not DATA's length.
pub(crate) fn encode_parts(
    txnr: u32,
    command: &str,
    data: &[u8],
    dst: &mut BytesMut,
) -> Result<(), RelpError> {
    if txnr > MAX_TXNR {
        return Err(RelpError::Unencodable("transaction number above 999999999"));
    }
    if command.is_empty()
        || command.len() > MAX_COMMAND_LEN
        || !command.bytes().all(|b| b.is_ascii_alphabetic())
    {
        return Err(RelpError::Unencodable(
            "command is not 1 to 32 ASCII letters",
        ));
    }
    if data.len() > MAX_WIRE_DATALEN {
        return Err(RelpError::Unencodable("data longer than 999999999 octets"));
    }
    dst.reserve(9 + 1 + command.len() + 1 + 9 + 1 + data.len() + 1);
    put_decimal(dst, txnr as usize);
    dst.put_u8(b' ');
    dst.put_slice(command.as_bytes());
    dst.put_u8(b' ');
    put_decimal(dst, data.len());
    if !data.is_empty() {
        dst.put_u8(b' ');
        dst.put_slice(data);
    }
    dst.put_u8(b'\n');
    Ok(())
}

impl Encoder<&Frame> for FrameCodec {
    type Error = RelpError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), RelpError> {
        encode_parts(frame.txnr, frame.command.as_str(), &frame.data, dst)
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = RelpError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), RelpError> {
        self.encode(&frame, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut FrameCodec, input: &[u8]) -> Result<Vec<Frame>, RelpError> {
        let mut buf = BytesMut::from(input);
        let mut frames = Vec::new();
        while let Some(frame) = codec.decode(&mut buf)? {
            frames.push(frame);
        }
        if let Some(frame) = codec.decode_eof(&mut buf)? {
            frames.push(frame);
        }
        Ok(frames)
    }

    fn one(input: &[u8]) -> Result<Frame, RelpError> {
        let mut frames = decode_all(&mut FrameCodec::new(1024), input)?;
        assert_eq!(frames.len(), 1, "{frames:?}");
        Ok(frames.remove(0))
    }

    #[test]
    fn decodes_rsyslog_open_offer() {
        let wire = b"1 open 86 relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n";
        let frame = one(wire).unwrap();
        assert_eq!(frame.txnr, 1);
        assert_eq!(frame.command, Command::Open);
        assert_eq!(frame.data.len(), 86);
        assert!(frame.data.ends_with(b"commands=syslog"));
    }

    #[test]
    fn decodes_zero_datalen_without_space() {
        assert_eq!(one(b"4 rsp 0\n").unwrap(), Frame::new(4, Command::Rsp, ""));
        assert_eq!(
            one(b"0 serverclose 0\n").unwrap(),
            Frame::new(0, Command::ServerClose, "")
        );
    }

    #[test]
    fn data_may_contain_lf() {
        let frame = one(b"2 syslog 6 a\nb\nc\n\n").unwrap();
        assert_eq!(&frame.data[..], b"a\nb\nc\n");
    }

    #[test]
    fn decodes_byte_by_byte() {
        let wire = b"2 syslog 5 hello\n3 syslog 5 world\n4 close 0\n";
        let mut codec = FrameCodec::new(100);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for &b in wire.iter() {
            buf.put_u8(b);
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(
            frames,
            vec![
                Frame::new(2, Command::Syslog, "hello"),
                Frame::new(3, Command::Syslog, "world"),
                Frame::new(4, Command::Close, ""),
            ]
        );
    }

    #[test]
    fn data_shares_the_read_buffer() {
        let mut buf = BytesMut::from(&b"2 syslog 5 hello\n"[..]);
        let base = buf.as_ptr() as usize;
        let frame = FrameCodec::new(10).decode(&mut buf).unwrap().unwrap();
        assert_eq!(frame.data.as_ptr() as usize, base + 11);
    }

    #[test]
    fn unknown_commands_are_decoded() {
        let frame = one(b"7 starttls 0\n").unwrap();
        assert_eq!(frame.command, Command::Other("starttls".into()));
        assert_eq!(frame.command.to_string(), "starttls");
    }

    #[test]
    fn limits_are_inclusive() {
        let max_cmd = "a".repeat(32);
        let wire = format!("999999999 {max_cmd} 0\n");
        let frame = one(wire.as_bytes()).unwrap();
        assert_eq!(frame.txnr, MAX_TXNR);
        let mut codec = FrameCodec::new(5);
        assert_eq!(
            decode_all(&mut codec, b"1 syslog 5 12345\n").unwrap().len(),
            1
        );
    }

    #[test]
    fn strict_errors() {
        type Check = fn(&RelpError) -> bool;
        let cases: &[(&[u8], Check)] = &[
            (b"1234567890 syslog 1 a\n", |e| {
                matches!(e, RelpError::BadTxnr)
            }),
            (b"x syslog 1 a\n", |e| matches!(e, RelpError::BadTxnr)),
            (b" 1 syslog 1 a\n", |e| matches!(e, RelpError::BadTxnr)),
            (b"1  syslog 1 a\n", |e| matches!(e, RelpError::BadCommand)),
            (b"1\tsyslog 1 a\n", |e| {
                matches!(e, RelpError::BadSeparator(_))
            }),
            (b"1 sys-log 1 a\n", |e| matches!(e, RelpError::BadCommand)),
            (b"1 sy5log 1 a\n", |e| matches!(e, RelpError::BadCommand)),
            (b"1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 0\n", |e| {
                matches!(e, RelpError::BadCommand)
            }),
            (b"1 syslog x\n", |e| matches!(e, RelpError::BadDataLen)),
            (b"1 syslog 1234567890 a\n", |e| {
                matches!(e, RelpError::DataTooLong { .. })
            }),
            (b"1 syslog 1a\n", |e| {
                matches!(e, RelpError::BadSeparator(_))
            }),
            (b"1 syslog 2 abc\n", |e| {
                matches!(e, RelpError::MissingTrailer { txnr: 1 })
            }),
            (b"1 syslog 3 ab\n", |e| {
                matches!(e, RelpError::UnexpectedEof)
            }),
            (b"1 rsp 0 \n", |e| matches!(e, RelpError::BadSeparator(_))),
            (b"1 rsp 0", |e| matches!(e, RelpError::UnexpectedEof)),
            (b"1 sys", |e| matches!(e, RelpError::UnexpectedEof)),
        ];
        for (input, check) in cases {
            let err = decode_all(&mut FrameCodec::new(1024), input).unwrap_err();
            assert!(check(&err), "{:?}: {err:?}", String::from_utf8_lossy(input));
            assert!(err.is_fatal() && err.is_framing());
        }
    }

    #[test]
    fn oversize_datalen_fails_before_the_data_arrives() {
        let mut codec = FrameCodec::new(100);
        let mut buf = BytesMut::from(&b"9 syslog 101"[..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            RelpError::DataTooLong {
                txnr: 9,
                len: 101,
                max: 100
            }
        ));
        assert_eq!(
            err.to_string(),
            "frame 9 announces 101 data bytes, more than the maximum of 100"
        );
    }

    #[test]
    fn encode_round_trip() {
        let mut codec = FrameCodec::new(1 << 20);
        let frames = vec![
            Frame::new(1, Command::Open, "relp_version=0\ncommands=syslog"),
            Frame::new(2, Command::Syslog, "<13>hello"),
            Frame::new(3, Command::Close, ""),
            Frame::new(0, Command::ServerClose, ""),
            Frame::new(MAX_TXNR, Command::Other("xyz".into()), "x\n"),
        ];
        let mut buf = BytesMut::new();
        for frame in &frames {
            codec.encode(frame, &mut buf).unwrap();
        }
        assert!(buf.starts_with(b"1 open 30 relp_version=0\ncommands=syslog\n2 syslog 9 <13>hello\n3 close 0\n0 serverclose 0\n"));
        assert_eq!(decode_all(&mut codec, &buf).unwrap(), frames);
    }

    #[test]
    fn encode_refuses_what_the_wire_cannot_carry() {
        let mut codec = FrameCodec::new(10);
        let mut buf = BytesMut::new();
        assert!(codec
            .encode(Frame::new(MAX_TXNR + 1, Command::Rsp, ""), &mut buf)
            .is_err());
        assert!(codec
            .encode(
                Frame::new(1, Command::Other("no spaces".into()), ""),
                &mut buf
            )
            .is_err());
        assert!(codec
            .encode(Frame::new(1, Command::Other(String::new()), ""), &mut buf)
            .is_err());
        assert!(buf.is_empty());
    }

    /// xorshift64*: deterministic pseudo-random input without a dependency.
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed | 1;
        move || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let mut next = rng(42);
        let alphabet = b"0123456789 \nsyslogrspclosex";
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if r.is_multiple_of(4) {
                        r as u8
                    } else {
                        alphabet[(r >> 8) as usize % alphabet.len()]
                    }
                })
                .collect();
            let _ = decode_all(&mut FrameCodec::new(16), &input);
        }
    }

    #[test]
    fn any_split_of_a_valid_stream_decodes_the_same() {
        let mut codec = FrameCodec::new(1000);
        let mut wire = BytesMut::new();
        let frames: Vec<Frame> = (1..=50u32)
            .map(|i| Frame::new(i, Command::Syslog, "x\n".repeat(i as usize % 7)))
            .collect();
        for frame in &frames {
            codec.encode(frame, &mut wire).unwrap();
        }
        let mut next = rng(7);
        for _ in 0..200 {
            let mut codec = FrameCodec::new(1000);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            let mut pos = 0;
            while pos < wire.len() {
                let step = 1 + (next() % 40) as usize;
                let end = (pos + step).min(wire.len());
                buf.extend_from_slice(&wire[pos..end]);
                pos = end;
                while let Some(frame) = codec.decode(&mut buf).unwrap() {
                    got.push(frame);
                }
            }
            assert_eq!(got, frames);
        }
    }

    #[test]
    fn txnr_wraps_to_one() {
        assert_eq!(next_txnr(1), 2);
        assert_eq!(next_txnr(MAX_TXNR - 1), MAX_TXNR);
        assert_eq!(next_txnr(MAX_TXNR), 1);
    }
}
