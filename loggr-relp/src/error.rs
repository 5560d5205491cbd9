//! The crate's error type, [`RelpError`], with its classification methods.
//!
//! Every error says whether the stream it came from can go on ([`RelpError::can_continue`]):
//! framing errors cannot (the frame boundaries are lost, so the session ends with
//! `serverclose`), an unknown command or a refused message can.

use std::io;
use std::time::Duration;

/// Everything that can go wrong while speaking RELP.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum RelpError {
    /// The transport failed.
    #[error("i/o error")]
    Io(#[from] io::Error),
    /// The transaction number is not 1 to 9 digits.
    #[error("invalid transaction number in frame header")]
    BadTxnr,
    /// The command is not 1 to 32 ASCII letters.
    #[error("invalid command name in frame header")]
    BadCommand,
    /// DATALEN is not 1 to 9 digits.
    #[error("invalid data length in frame header")]
    BadDataLen,
    /// A header field is not followed by the single space (or, after DATALEN 0, the LF) the
    /// grammar requires.
    #[error("malformed frame header: {0}")]
    BadSeparator(&'static str),
    /// DATALEN is larger than the configured maximum.
    #[error("frame {txnr} announces {len} data bytes, more than the maximum of {max}")]
    DataTooLong {
        /// Transaction number of the frame.
        txnr: u32,
        /// The announced DATALEN.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The octet after DATA is not the LF trailer.
    #[error("frame {txnr} does not end with LF")]
    MissingTrailer {
        /// Transaction number of the frame.
        txnr: u32,
    },
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    UnexpectedEof,
    /// A frame that cannot be encoded (txnr above 999,999,999, bad command name).
    #[error("cannot encode frame: {0}")]
    Unencodable(&'static str),
    /// A transaction number that is not the next one expected.
    #[error("unexpected transaction number {got}, expected {expected}")]
    UnexpectedTxnr {
        /// What the peer sent.
        got: u32,
        /// What RELP requires next.
        expected: u32,
    },
    /// A command the session does not accept in its current state (`syslog` before `open`).
    #[error("command {0} is not allowed before open")]
    NotOpen(String),
    /// A command this implementation does not know; the session goes on.
    #[error("unknown command {0}")]
    UnknownCommand(String),
    /// The `open` offers are unacceptable (bad `relp_version`, no `syslog` command).
    #[error("open refused: {0}")]
    Offer(String),
    /// The peer answered with something that is not a valid `rsp`.
    #[error("invalid response: {0}")]
    BadResponse(String),
    /// The server refused a message (`rsp 500`); the session goes on.
    #[error("message {txnr} refused by the server: {reason}")]
    Refused {
        /// Transaction number of the refused message.
        txnr: u32,
        /// The server's text after the status code.
        reason: String,
    },
    /// The server ended the session (`serverclose`) or closed the connection.
    #[error("the server closed the session")]
    ServerClosed,
    /// Connecting (TCP, TLS and the `open` exchange) took longer than allowed.
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// The client gave up reconnecting.
    #[error("gave up after {attempts} reconnection attempts")]
    ReconnectsExhausted {
        /// How many attempts were made.
        attempts: u32,
        /// Why the last attempt failed.
        #[source]
        last: Box<RelpError>,
    },
    /// A message larger than the configured maximum was given to the client.
    #[error("message of {len} bytes is larger than the maximum of {max}")]
    MessageTooLarge {
        /// Size of the message.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The TLS setup or handshake failed.
    #[cfg(feature = "tls")]
    #[error("tls: {0}")]
    Tls(String),
}

impl RelpError {
    /// Whether the session (or decoder) cannot go on after this error.
    ///
    /// Framing errors are fatal: once a frame is malformed its end cannot be found, so the
    /// server answers with `serverclose` and closes the connection.
    pub fn is_fatal(&self) -> bool {
        !self.can_continue()
    }

    /// Whether the stream can go on after this error: an unknown command (answered with
    /// `rsp 500`) or a refused message.
    pub fn can_continue(&self) -> bool {
        matches!(
            self,
            RelpError::UnknownCommand(_) | RelpError::Refused { .. }
        )
    }

    /// Whether this is a framing error (the bytes on the wire are not RELP).
    pub fn is_framing(&self) -> bool {
        matches!(
            self,
            RelpError::BadTxnr
                | RelpError::BadCommand
                | RelpError::BadDataLen
                | RelpError::BadSeparator(_)
                | RelpError::DataTooLong { .. }
                | RelpError::MissingTrailer { .. }
                | RelpError::UnexpectedEof
        )
    }
}
