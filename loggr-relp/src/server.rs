//! The server side of a RELP session: [`serve`] one connection, handing every `syslog` message
//! to a [`MessageHandler`] and answering each with the verdict the handler's ack resolves to.
//!
//! # How a session runs
//!
//! One task per connection runs one `select!` loop over:
//!
//! - **reading** the next frames, only while fewer than [`ServerConfig::window`] transactions
//!   are outstanding (and the response buffer is not backed up: a peer that never reads its
//!   responses stops being read from, so memory stays bounded);
//! - **the next resolved ack**, in txnr order ([`FuturesOrdered`]): its `rsp` is appended to the
//!   write buffer; several are batched and the socket is flushed when none is ready;
//! - **shutdown** (the [`CancellationToken`]): stop reading, write the responses of the acks
//!   that resolve within [`ServerConfig::shutdown_grace`], send `serverclose`, close.
//!
//! It never waits per frame: while the handler works on earlier messages, later frames are
//! read and handed over, up to the window.
//!
//! # Protocol decisions (matching librelp 1.11, rsyslog's `imrelp`)
//!
//! | input | answer |
//! | --- | --- |
//! | `open` with `relp_version=N`, `commands=…syslog…` | `rsp 200 OK\nrelp_version=0\nrelp_software=…\ncommands=syslog` (librelp aborts on a version above 0) |
//! | `open` without `syslog`, or a non-numeric version | `rsp 500 required command not supported by client` / `rsp 500 invalid relp_version offer`, then `serverclose` |
//! | a second `open` | `rsp 200 connection already open - ignored` (librelp does the same: its clients may re-send `open`) |
//! | `syslog` before `open` | `rsp 500 command disabled`, then `serverclose` and close (librelp answers the same and tears the session down) |
//! | `close` | `rsp 0` after every earlier response, then `0 serverclose 0`, close |
//! | an unknown command (`starttls`, `rsp`, …) | `rsp 500 unknown command`, the session goes on |
//! | a txnr that is not the next one (first is 1, wraps after 999,999,999) | `serverclose`, close, [`RelpError::UnexpectedTxnr`] |
//! | a framing error (oversize DATALEN, missing LF trailer, …) | `serverclose`, close, the [`RelpError`] |
//!
//! On every fatal error the responses to messages already handed to the handler are still
//! written (within the grace period), so the peer does not resend what was committed.

use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::stream::{FuturesOrdered, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use crate::codec::{encode_parts, next_txnr, Command, Frame, FrameCodec};
use crate::{offers, RelpError};

/// Stop taking resolved acks (and reading) while this much response data waits to be written.
const WRITE_HIGH_WATER: usize = 16 * 1024;
/// Grow the read buffer by this much when it is full.
const READ_CHUNK: usize = 16 * 1024;

/// Settings of a server session.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Most transactions outstanding (read but not answered) at once; reading pauses while the
    /// window is full. rsyslog's omrelp uses a window of 128.
    pub window: usize,
    /// Largest DATA accepted, in octets; a larger DATALEN ends the session.
    pub max_data_len: usize,
    /// Our `relp_software` offer, `name,version,url` by convention.
    pub software: String,
    /// Close a session (with `serverclose`) after this long without input while nothing is
    /// outstanding. `None`: never.
    pub idle_timeout: Option<Duration>,
    /// On shutdown, after the peer's `close` or end of input, and on a fatal error: how long
    /// to wait for outstanding acks before sending `serverclose` (acks still unresolved then
    /// are dropped, so their messages get no `200`).
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            window: 128,
            max_data_len: 128 * 1024,
            software: default_software(),
            idle_timeout: None,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

pub(crate) fn default_software() -> String {
    format!(
        "loggr-relp,{},https://example.invalid/loggr",
        env!("CARGO_PKG_VERSION")
    )
}

/// What the handler decided about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Durably taken: answered `rsp 200 OK`.
    Accepted,
    /// Not taken: answered `rsp 500 <reason>`; the sender will retry it.
    Refused(String),
}

/// Receives the messages of a session and tells, through one future per message, whether each
/// was taken.
///
/// # Why it is shaped so
///
/// RELP's promise is that `200 OK` means "durably taken". The session cannot know when that
/// happens, so every message returns an `Ack` future that resolves when the handler (and
/// whatever is behind it) is done; the session writes the responses in txnr order as they
/// resolve, while it keeps reading up to the window. `on_message` is synchronous so that the
/// session can hand over a whole read buffer of frames without an await per frame; `flush`
/// is the one point where the handler may wait (to hand a batch on, with backpressure).
///
/// The trait is not object-safe on purpose (no `#[async_trait]`): [`serve`] is generic over it
/// and nothing boxes per message.
///
/// # Example
///
/// ```
/// use bytes::Bytes;
/// use futures::future::{ready, Ready};
/// use loggr_relp::{MessageHandler, Verdict};
///
/// /// Accepts everything that is valid UTF-8.
/// struct Utf8Only(Vec<String>);
///
/// impl MessageHandler for Utf8Only {
///     type Ack = Ready<Verdict>;
///
///     fn on_message(&mut self, data: Bytes) -> Self::Ack {
///         match String::from_utf8(data.to_vec()) {
///             Ok(text) => {
///                 self.0.push(text);
///                 ready(Verdict::Accepted)
///             }
///             Err(_) => ready(Verdict::Refused("not UTF-8".into())),
///         }
///     }
///
///     async fn flush(&mut self) {}
/// }
/// ```
pub trait MessageHandler: Send {
    /// Resolves to the verdict on one message. Dropping it unresolved (the session ended
    /// first) means the peer gets no `200` and will resend.
    type Ack: Future<Output = Verdict> + Send + 'static;

    /// Called for every `syslog` frame, in txnr order. Must not block for long.
    fn on_message(&mut self, data: Bytes) -> Self::Ack;

    /// Called when no further frame is immediately available (the read buffer is drained) or
    /// the window is full, before the session waits for more input or for acks: the handler
    /// hands on what it accumulated (may await backpressure). Not called when no message
    /// arrived since the last call.
    fn flush(&mut self) -> impl Future<Output = ()> + Send;
}

/// Counters of one session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// `syslog` messages handed to the handler.
    pub messages: u64,
    /// Messages whose ack resolved to [`Verdict::Accepted`] (answered `200`).
    pub accepted: u64,
    /// Messages whose ack resolved to [`Verdict::Refused`] (answered `500`).
    pub refused: u64,
}

/// A response decided without the handler.
enum Reply {
    Verdict(Verdict),
    /// `rsp` with this DATA.
    Data(Bytes),
    /// `rsp 0` to `close`, then `serverclose`.
    Close,
    /// `rsp` with this DATA, then `serverclose`: the session ends.
    Fatal(Bytes),
}

enum Job<A> {
    Now(Reply),
    Ack(A),
}

async fn run_job<A: Future<Output = Verdict>>(txnr: u32, job: Job<A>) -> (u32, Reply) {
    match job {
        Job::Now(reply) => (txnr, reply),
        Job::Ack(ack) => (txnr, Reply::Verdict(ack.await)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading and answering.
    Running,
    /// No more reading: answering what is outstanding until the deadline, then `serverclose`.
    Draining,
    /// `serverclose` (or the close answer) is in the write buffer: write it out and close.
    Finished,
}

/// Runs one RELP session on `io` until the peer closes it, a fatal error, or `shutdown`.
///
/// Returns the session's counters when it ended in an orderly way: the peer sent `close`, the
/// connection ended between frames, or `shutdown` was cancelled (outstanding acks are
/// answered until [`ServerConfig::shutdown_grace`], then `serverclose` is sent).
///
/// # Errors
///
/// A framing or protocol error of the peer (see the [module docs](self) for each case), after
/// `serverclose` was sent; an I/O error of the connection.
///
/// # Cancel safety
///
/// Dropping the future drops the session (and the outstanding acks) without `serverclose`;
/// use `shutdown` for an orderly end.
pub async fn serve<IO, H>(
    io: IO,
    mut handler: H,
    config: &ServerConfig,
    shutdown: CancellationToken,
) -> Result<SessionStats, RelpError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
    H: MessageHandler,
{
    let window = config.window.max(1);
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut codec = FrameCodec::new(config.max_data_len);
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut wbuf = BytesMut::with_capacity(WRITE_HIGH_WATER);
    let mut pending = FuturesOrdered::new();
    let mut stats = SessionStats::default();
    let mut session = Session {
        open: false,
        expected: 1,
        software: &config.software,
    };
    let mut phase = Phase::Running;
    let mut outcome: Result<(), RelpError> = Ok(());
    let mut unflushed_messages = false;
    let mut needs_flush = false;
    let timer = tokio::time::sleep(config.idle_timeout.unwrap_or(Duration::ZERO));
    tokio::pin!(timer);

    loop {
        // Hand over every complete frame already read, up to the window.
        if phase == Phase::Running {
            while pending.len() < window && wbuf.len() < WRITE_HIGH_WATER {
                let frame = match codec.decode(&mut rbuf) {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(err) => {
                        tracing::debug!(error = %err, "Bad RELP frame, ending the session");
                        outcome = Err(err);
                        phase = Phase::Draining;
                        timer.as_mut().reset(Instant::now() + config.shutdown_grace);
                        break;
                    }
                };
                let txnr = frame.txnr;
                match session.on_frame(frame) {
                    Action::Message(data) => {
                        stats.messages += 1;
                        unflushed_messages = true;
                        pending.push_back(run_job(txnr, Job::Ack(handler.on_message(data))));
                    }
                    Action::Reply(reply) => {
                        let ends = matches!(reply, Reply::Close);
                        pending.push_back(run_job(txnr, Job::Now(reply)));
                        if ends {
                            phase = Phase::Draining;
                            timer.as_mut().reset(Instant::now() + config.shutdown_grace);
                            break;
                        }
                    }
                    Action::End(data, err) => {
                        tracing::debug!(error = %err, "RELP protocol error, ending the session");
                        pending.push_back(run_job(txnr, Job::Now(Reply::Fatal(data))));
                        outcome = Err(err);
                        phase = Phase::Draining;
                        timer.as_mut().reset(Instant::now() + config.shutdown_grace);
                        break;
                    }
                    Action::Fail(err) => {
                        tracing::debug!(error = %err, "RELP protocol error, ending the session");
                        outcome = Err(err);
                        phase = Phase::Draining;
                        timer.as_mut().reset(Instant::now() + config.shutdown_grace);
                        break;
                    }
                }
            }
        }
        if unflushed_messages {
            unflushed_messages = false;
            handler.flush().await;
        }
        if phase == Phase::Draining && pending.is_empty() {
            put_serverclose(&mut wbuf);
            phase = Phase::Finished;
        }
        if phase == Phase::Finished && wbuf.is_empty() && !needs_flush {
            break;
        }

        let reading = phase == Phase::Running;
        if reading && rbuf.capacity() - rbuf.len() < READ_CHUNK / 4 {
            // Decoded frames keep their part of the old buffer alive: this allocates anew
            // rather than moving their bytes.
            rbuf.reserve(READ_CHUNK);
        }
        tokio::select! {
            biased;
            () = shutdown.cancelled(), if reading => {
                tracing::debug!("Shutdown: draining the RELP session");
                phase = Phase::Draining;
                timer.as_mut().reset(Instant::now() + config.shutdown_grace);
            }
            Some((txnr, reply)) = pending.next(),
                if !pending.is_empty() && wbuf.len() < WRITE_HIGH_WATER =>
            {
                match reply {
                    Reply::Verdict(Verdict::Accepted) => {
                        stats.accepted += 1;
                        put_rsp(&mut wbuf, txnr, b"200 OK");
                    }
                    Reply::Verdict(Verdict::Refused(reason)) => {
                        stats.refused += 1;
                        let mut data = Vec::with_capacity(4 + reason.len());
                        data.extend_from_slice(b"500 ");
                        data.extend_from_slice(reason.as_bytes());
                        put_rsp(&mut wbuf, txnr, &data);
                    }
                    Reply::Data(data) => put_rsp(&mut wbuf, txnr, &data),
                    Reply::Close => {
                        put_rsp(&mut wbuf, txnr, b"");
                        put_serverclose(&mut wbuf);
                        phase = Phase::Finished;
                    }
                    Reply::Fatal(data) => {
                        put_rsp(&mut wbuf, txnr, &data);
                        put_serverclose(&mut wbuf);
                        phase = Phase::Finished;
                    }
                }
            }
            res = write_or_flush(&mut wr, &mut wbuf), if !wbuf.is_empty() || needs_flush => {
                match res {
                    Ok(flushed) => needs_flush = !flushed,
                    Err(err) => return finish(outcome, stats, phase, err),
                }
            }
            res = rd.read_buf(&mut rbuf),
                if reading && pending.len() < window && wbuf.len() < WRITE_HIGH_WATER =>
            {
                match res {
                    Ok(0) => {
                        if !rbuf.is_empty() {
                            outcome = Err(RelpError::UnexpectedEof);
                        }
                        tracing::debug!("Peer closed the RELP connection");
                        phase = Phase::Draining;
                        timer.as_mut().reset(Instant::now() + config.shutdown_grace);
                    }
                    Ok(_) => {
                        if let Some(idle) = config.idle_timeout {
                            timer.as_mut().reset(Instant::now() + idle);
                        }
                    }
                    Err(err) => return finish(outcome, stats, phase, err),
                }
            }
            () = &mut timer, if phase == Phase::Draining
                || (reading && config.idle_timeout.is_some() && pending.is_empty()) =>
            {
                if phase == Phase::Draining {
                    tracing::debug!(
                        outstanding = pending.len(),
                        "Grace period over, closing the RELP session"
                    );
                    pending.clear();
                } else {
                    tracing::debug!("Idle RELP session, closing it");
                    phase = Phase::Draining;
                }
            }
        }
    }
    // Best effort: the peer may already be gone.
    let _ = wr.shutdown().await;
    outcome.map(|()| stats)
}

/// Writes some of `wbuf` (cancel safe: one `poll_write`), or flushes when it is empty.
/// `Ok(true)`: flushed.
async fn write_or_flush<W: AsyncWrite + Unpin>(
    wr: &mut W,
    wbuf: &mut BytesMut,
) -> std::io::Result<bool> {
    if wbuf.is_empty() {
        wr.flush().await?;
        Ok(true)
    } else if wr.write_buf(wbuf).await? == 0 {
        Err(std::io::ErrorKind::WriteZero.into())
    } else {
        Ok(false)
    }
}

/// The end of a session whose connection failed.
fn finish(
    outcome: Result<(), RelpError>,
    stats: SessionStats,
    phase: Phase,
    err: std::io::Error,
) -> Result<SessionStats, RelpError> {
    outcome?;
    if phase == Phase::Running {
        Err(RelpError::Io(err))
    } else {
        // The session was ending anyway; the peer did not wait for our last words.
        tracing::debug!(error = %err, "RELP peer gone while closing the session");
        Ok(stats)
    }
}

fn put_rsp(wbuf: &mut BytesMut, txnr: u32, data: &[u8]) {
    // txnr comes from a decoded frame: at most 9 digits; "rsp" is valid.
    if let Err(err) = encode_parts(txnr, "rsp", data, wbuf) {
        tracing::error!(error = %err, "Cannot encode a RELP response");
    }
}

fn put_serverclose(wbuf: &mut BytesMut) {
    wbuf.extend_from_slice(b"0 serverclose 0\n");
}

enum Action {
    /// A `syslog` message for the handler.
    Message(Bytes),
    /// Answer this, in order.
    Reply(Reply),
    /// Answer this, then `serverclose`: the session fails with the error.
    End(Bytes, RelpError),
    /// End the session without an answer to this frame.
    Fail(RelpError),
}

struct Session<'a> {
    open: bool,
    expected: u32,
    software: &'a str,
}

impl Session<'_> {
    fn on_frame(&mut self, frame: Frame) -> Action {
        if frame.txnr != self.expected {
            return Action::Fail(RelpError::UnexpectedTxnr {
                got: frame.txnr,
                expected: self.expected,
            });
        }
        self.expected = next_txnr(self.expected);
        match frame.command {
            Command::Syslog if self.open => Action::Message(frame.data),
            Command::Syslog => Action::End(
                Bytes::from_static(b"500 command disabled"),
                RelpError::NotOpen(frame.command.to_string()),
            ),
            Command::Open if self.open => Action::Reply(Reply::Data(Bytes::from_static(
                b"200 connection already open - ignored",
            ))),
            Command::Open => match offers::negotiate_server(&frame.data, self.software) {
                Ok(offers) => {
                    self.open = true;
                    Action::Reply(Reply::Data(Bytes::from(format!("200 OK\n{offers}"))))
                }
                Err(err) => {
                    let reason = match &err {
                        RelpError::Offer(reason) => reason.clone(),
                        other => other.to_string(),
                    };
                    Action::End(Bytes::from(format!("500 {reason}")), err)
                }
            },
            Command::Close => Action::Reply(Reply::Close),
            other => {
                tracing::debug!(command = %other, "Unknown RELP command");
                Action::Reply(Reply::Data(Bytes::from_static(b"500 unknown command")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::MAX_TXNR;

    #[test]
    fn txnr_wraps_after_999999999() {
        let mut session = Session {
            open: true,
            expected: MAX_TXNR,
            software: "x",
        };
        let frame = |txnr| Frame::new(txnr, Command::Syslog, "m");
        assert!(matches!(
            session.on_frame(frame(MAX_TXNR)),
            Action::Message(_)
        ));
        assert!(matches!(session.on_frame(frame(1)), Action::Message(_)));
        assert!(matches!(
            session.on_frame(frame(3)),
            Action::Fail(RelpError::UnexpectedTxnr {
                got: 3,
                expected: 2
            })
        ));
    }
}
