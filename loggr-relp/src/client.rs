//! The sending side of RELP: [`Client`] keeps a window of unacknowledged messages, reconnects
//! when the connection is lost and sends every unacknowledged message again, in order.
//!
//! A message counts as delivered only when the server answered `rsp 200`. Answers are matched
//! by txnr; a `500` either queues the message again (after a growing pause, when
//! [`ClientConfig::resend_refused`] is set, the default) or counts it as refused and drops it.
//! After a reconnect, messages the old server had taken but not yet answered are sent again:
//! RELP is at-least-once, duplicates are bounded by the window per reconnect.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::codec::FramedRead;

use crate::codec::{encode_parts, next_txnr, Command, Frame, FrameCodec};
use crate::{offers, RelpError};

/// Frames are written once this much is buffered, or when the client is about to wait.
const WRITE_BATCH: usize = 16 * 1024;

/// Largest `rsp` DATA the client accepts (the answer to `open` is about 100 octets).
const MAX_RSP_LEN: usize = 64 * 1024;

/// Settings of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Most messages sent (or queued) but not yet acknowledged; [`Client::send`] waits while
    /// the window is full.
    pub window: usize,
    /// Largest message accepted by [`Client::send`], in octets (match the server's limit).
    pub max_data_len: usize,
    /// Limit for one connection attempt: TCP connect, TLS handshake and the `open` exchange.
    pub connect_timeout: Duration,
    /// Pause between reconnection attempts: from the first value, doubling up to the second.
    /// Also the pause before a refused message is sent again.
    pub reconnect_backoff: (Duration, Duration),
    /// Reconnection attempts after a connection loss before giving up; `None`: never give up.
    pub max_reconnects: Option<u32>,
    /// Send again the messages the server answered with `500` (default `true`); when `false`
    /// they are counted in [`ClientStats::refused`] and dropped.
    pub resend_refused: bool,
    /// Our `relp_software` offer.
    pub software: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            window: 128,
            max_data_len: 128 * 1024,
            connect_timeout: Duration::from_secs(10),
            reconnect_backoff: (Duration::from_millis(100), Duration::from_secs(30)),
            max_reconnects: None,
            resend_refused: true,
            software: crate::server::default_software(),
        }
    }
}

/// Counters of a [`Client`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Messages given to [`Client::send`].
    pub sent: u64,
    /// Messages answered `200`.
    pub acked: u64,
    /// Answers other than `200` (each refusal of a message counts).
    pub refused: u64,
    /// Messages sent again (after a reconnect or a refusal).
    pub resent: u64,
    /// Successful reconnections.
    pub reconnects: u64,
}

/// What the client's connection runs on.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
type BoxIo = Box<dyn Io>;

/// How to reach the server.
#[derive(Clone)]
enum Connector {
    Tcp,
    #[cfg(feature = "tls")]
    Tls(crate::tls::TlsClientConfig),
}

struct Conn {
    reader: FramedRead<ReadHalf<BoxIo>, FrameCodec>,
    writer: WriteHalf<BoxIo>,
    wbuf: BytesMut,
    /// The last txnr used.
    txnr: u32,
}

/// A RELP sender.
///
/// ```no_run
/// # async fn run() -> Result<(), loggr_relp::RelpError> {
/// use loggr_relp::{Client, ClientConfig};
/// let mut client = Client::connect("127.0.0.1:20514", ClientConfig::default()).await?;
/// client.send("<13>1 - host app - - - hello".into()).await?;
/// client.flush().await?; // every message answered 200
/// let stats = client.close().await?;
/// # Ok(()) }
/// ```
pub struct Client {
    addr: String,
    config: ClientConfig,
    connector: Connector,
    conn: Option<Conn>,
    /// Sent on the current connection, awaiting `rsp`, in txnr order.
    inflight: VecDeque<(u32, Bytes)>,
    /// To send again (refused, or lost with a connection), before `fresh`.
    retry: VecDeque<Bytes>,
    /// Given to `send`, not sent yet.
    fresh: VecDeque<Bytes>,
    /// Refused messages wait until then.
    retry_at: Option<Instant>,
    refusal_backoff: Duration,
    /// Pause before the next reconnection; zero after progress.
    reconnect_backoff: Duration,
    lost_reason: Option<RelpError>,
    stats: ClientStats,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .field("connected", &self.conn.is_some())
            .field("unacked", &self.unacked())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to `addr` (`host:port`) and opens a RELP session.
    ///
    /// Makes one attempt (reconnection applies to connections lost later).
    ///
    /// # Errors
    ///
    /// The connection failed, timed out ([`ClientConfig::connect_timeout`]) or the server
    /// refused the `open` offers.
    pub async fn connect(addr: &str, config: ClientConfig) -> Result<Client, RelpError> {
        Client::connect_with(addr, config, Connector::Tcp).await
    }

    /// Connects to `addr` over TLS and opens a RELP session. See [`Client::connect`].
    ///
    /// # Errors
    ///
    /// As [`Client::connect`], and TLS handshake or peer authentication failures.
    #[cfg(feature = "tls")]
    pub async fn connect_tls(
        addr: &str,
        config: ClientConfig,
        tls: crate::tls::TlsClientConfig,
    ) -> Result<Client, RelpError> {
        Client::connect_with(addr, config, Connector::Tls(tls)).await
    }

    async fn connect_with(
        addr: &str,
        config: ClientConfig,
        connector: Connector,
    ) -> Result<Client, RelpError> {
        let conn = connect_once(addr, &config, &connector).await?;
        let (min, _) = config.reconnect_backoff;
        Ok(Client {
            addr: addr.to_owned(),
            connector,
            conn: Some(conn),
            inflight: VecDeque::new(),
            retry: VecDeque::new(),
            fresh: VecDeque::new(),
            retry_at: None,
            refusal_backoff: min,
            reconnect_backoff: Duration::ZERO,
            lost_reason: None,
            stats: ClientStats::default(),
            config,
        })
    }

    /// Sends one message: waits while the window is full (reading answers meanwhile), then
    /// queues it.
    ///
    /// Frames are batched: they are written once 16 KiB are buffered, and whenever the client
    /// waits (window full, [`Client::flush`], [`Client::close`]). So `Ok` means queued, neither
    /// written nor acknowledged: call [`Client::flush`] after a batch to push it out and wait
    /// for its `200`s.
    ///
    /// On connection loss it reconnects (with backoff) and sends every unacknowledged message
    /// again, in order.
    ///
    /// # Errors
    ///
    /// [`RelpError::MessageTooLarge`]; [`RelpError::ReconnectsExhausted`] when
    /// [`ClientConfig::max_reconnects`] is reached (the message stays queued: a later `send`,
    /// `flush` or `close` tries again).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: a cancelled call may have queued the message or not, and may leave a
    /// frame half written (the connection is then unusable and is replaced on the next call,
    /// which resends what is unacknowledged).
    pub async fn send(&mut self, message: Bytes) -> Result<(), RelpError> {
        if message.len() > self.config.max_data_len {
            return Err(RelpError::MessageTooLarge {
                len: message.len(),
                max: self.config.max_data_len,
            });
        }
        let window = self.config.window.max(1);
        self.drive(|client| client.unacked() < window).await?;
        self.fresh.push_back(message);
        self.stats.sent += 1;
        self.drive(|client| client.fresh.is_empty()).await
    }

    /// Waits until every message given to [`Client::send`] was answered `200` (or, with
    /// [`ClientConfig::resend_refused`] off, refused). With `resend_refused` on, a server that
    /// refuses a message forever makes this wait forever.
    ///
    /// # Errors
    ///
    /// [`RelpError::ReconnectsExhausted`].
    ///
    /// # Cancel safety
    ///
    /// As [`Client::send`]: cancelling loses nothing, unacknowledged messages stay queued.
    pub async fn flush(&mut self) -> Result<(), RelpError> {
        self.drive(|client| client.unacked() == 0).await
    }

    /// Flushes, then ends the session: `close`, and waits (at most
    /// [`ClientConfig::connect_timeout`]) for its `rsp` and the server's `serverclose`.
    ///
    /// # Errors
    ///
    /// As [`Client::flush`]. Once everything is acknowledged, failures of the `close` exchange
    /// itself are only logged: nothing can be lost any more.
    pub async fn close(mut self) -> Result<ClientStats, RelpError> {
        self.flush().await?;
        if let Some(conn) = self.conn.take() {
            let timeout = self.config.connect_timeout;
            if let Err(err) = close_conn(conn, timeout).await {
                tracing::debug!(error = %err, "RELP close exchange failed");
            }
        }
        Ok(self.stats)
    }

    /// The counters so far.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// Messages not acknowledged yet: in flight or queued.
    pub fn unacked(&self) -> usize {
        self.inflight.len() + self.retry.len() + self.fresh.len()
    }

    /// Makes progress (reconnecting, sending, reading answers) until `done`.
    async fn drive(&mut self, done: impl Fn(&Client) -> bool) -> Result<(), RelpError> {
        loop {
            if self.conn.is_none() {
                if done(self) && self.retry.is_empty() && self.fresh.is_empty() {
                    return Ok(());
                }
                self.reconnect().await?;
            }
            if let Err(err) = self.pump(false).await {
                self.lost(err);
                continue;
            }
            // Take the answers that already arrived, without waiting (only once the window is
            // half used: a read attempt is a system call).
            let window = self.config.window.max(1);
            while let Some(conn) = self
                .conn
                .as_mut()
                .filter(|_| self.inflight.len() * 2 >= window)
            {
                let Some(next) = conn.reader.next().now_or_never() else {
                    break;
                };
                self.on_read(next);
            }
            if self.conn.is_none() {
                continue;
            }
            if done(self) {
                return Ok(());
            }
            // About to wait: nothing may stay in the write buffer.
            if let Err(err) = self.pump(true).await {
                self.lost(err);
                continue;
            }
            let retry_at = self.retry_at.filter(|_| !self.retry.is_empty());
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            tokio::select! {
                next = conn.reader.next() => self.on_read(next),
                () = sleep_until_opt(retry_at), if retry_at.is_some() => self.retry_at = None,
            }
        }
    }

    fn on_read(&mut self, next: Option<Result<Frame, RelpError>>) {
        let result = match next {
            Some(Ok(frame)) => self.on_frame(frame),
            Some(Err(err)) => Err(err),
            None => Err(RelpError::ServerClosed),
        };
        if let Err(err) = result {
            self.lost(err);
        }
    }

    /// Handles one frame from the server; `Err`: the connection is to be dropped.
    fn on_frame(&mut self, frame: Frame) -> Result<(), RelpError> {
        match frame.command {
            Command::Rsp => {
                let pos = self
                    .inflight
                    .iter()
                    .position(|(txnr, _)| *txnr == frame.txnr)
                    .ok_or_else(|| {
                        RelpError::BadResponse(format!("rsp to unknown txnr {}", frame.txnr))
                    })?;
                let (status, text, _) = parse_rsp(&frame.data)?;
                let Some((txnr, message)) = self.inflight.remove(pos) else {
                    return Ok(());
                };
                if status == 200 {
                    self.stats.acked += 1;
                    self.refusal_backoff = self.config.reconnect_backoff.0;
                    self.reconnect_backoff = Duration::ZERO;
                } else {
                    self.stats.refused += 1;
                    tracing::debug!(txnr, status, reason = %text, "RELP message refused");
                    if self.config.resend_refused {
                        self.retry.push_back(message);
                        self.retry_at = Some(Instant::now() + self.refusal_backoff);
                        self.refusal_backoff =
                            (self.refusal_backoff * 2).min(self.config.reconnect_backoff.1);
                    }
                }
                Ok(())
            }
            Command::ServerClose => Err(RelpError::ServerClosed),
            other => Err(RelpError::BadResponse(format!(
                "unexpected command {other}"
            ))),
        }
    }

    /// Encodes queued messages while the window allows; writes them when `force` or when a
    /// batch is full.
    async fn pump(&mut self, force: bool) -> Result<(), RelpError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let window = self.config.window.max(1);
        let retry_ready = self.retry_at.is_none_or(|at| at <= Instant::now());
        while self.inflight.len() < window {
            let (message, resent) = if !self.retry.is_empty() {
                if !retry_ready {
                    break;
                }
                match self.retry.pop_front() {
                    Some(message) => (message, true),
                    None => break,
                }
            } else {
                match self.fresh.pop_front() {
                    Some(message) => (message, false),
                    None => break,
                }
            };
            let txnr = next_txnr(conn.txnr);
            encode_parts(txnr, "syslog", &message, &mut conn.wbuf)?;
            conn.txnr = txnr;
            if resent {
                self.stats.resent += 1;
            }
            self.inflight.push_back((txnr, message));
        }
        if conn.wbuf.len() >= WRITE_BATCH || (force && !conn.wbuf.is_empty()) {
            conn.writer.write_all_buf(&mut conn.wbuf).await?;
            conn.writer.flush().await?;
        }
        Ok(())
    }

    /// Drops the connection; what it had in flight is to be sent again.
    fn lost(&mut self, err: RelpError) {
        tracing::debug!(addr = %self.addr, error = %err, "RELP connection lost");
        self.conn = None;
        self.retry
            .extend(self.inflight.drain(..).map(|(_, message)| message));
        self.lost_reason = Some(err);
    }

    async fn reconnect(&mut self) -> Result<(), RelpError> {
        let (min, max) = self.config.reconnect_backoff;
        let mut attempts = 0;
        let mut last = self.lost_reason.take().unwrap_or(RelpError::ServerClosed);
        loop {
            if self
                .config
                .max_reconnects
                .is_some_and(|max| attempts >= max)
            {
                return Err(RelpError::ReconnectsExhausted {
                    attempts,
                    last: Box::new(last),
                });
            }
            if !self.reconnect_backoff.is_zero() {
                tokio::time::sleep(self.reconnect_backoff).await;
            }
            self.reconnect_backoff = if self.reconnect_backoff.is_zero() {
                min
            } else {
                (self.reconnect_backoff * 2).min(max)
            };
            attempts += 1;
            match connect_once(&self.addr, &self.config, &self.connector).await {
                Ok(conn) => {
                    tracing::debug!(addr = %self.addr, attempts, "RELP reconnected");
                    self.conn = Some(conn);
                    self.stats.reconnects += 1;
                    return Ok(());
                }
                Err(err) => {
                    tracing::debug!(addr = %self.addr, error = %err, "RELP reconnection failed");
                    last = err;
                }
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => futures::future::pending().await,
    }
}

/// Splits `rsp` DATA: `NNN[ SP text][LF rest]`.
fn parse_rsp(data: &[u8]) -> Result<(u16, String, &[u8]), RelpError> {
    let (line, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    let bad = || RelpError::BadResponse(String::from_utf8_lossy(line).into_owned());
    if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let status = line[..3]
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let text = match &line[3..] {
        [] => String::new(),
        [b' ', text @ ..] => String::from_utf8_lossy(text).into_owned(),
        _ => return Err(bad()),
    };
    Ok((status, text, rest))
}

/// One connection attempt: connect, (TLS,) `open`, check the answer.
async fn connect_once(
    addr: &str,
    config: &ClientConfig,
    connector: &Connector,
) -> Result<Conn, RelpError> {
    let attempt = async {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let io: BoxIo = match connector {
            Connector::Tcp => Box::new(tcp),
            #[cfg(feature = "tls")]
            Connector::Tls(tls) => Box::new(tls.connect(addr, tcp).await?),
        };
        let (reader, writer) = tokio::io::split(io);
        let mut conn = Conn {
            reader: FramedRead::new(reader, FrameCodec::new(MAX_RSP_LEN)),
            writer,
            wbuf: BytesMut::with_capacity(16 * 1024),
            txnr: 1,
        };
        let offers = offers::client_offers(&config.software);
        encode_parts(1, "open", offers.as_bytes(), &mut conn.wbuf)?;
        conn.writer.write_all_buf(&mut conn.wbuf).await?;
        conn.writer.flush().await?;
        let frame = match conn.reader.next().await {
            Some(frame) => frame?,
            None => return Err(RelpError::ServerClosed),
        };
        match frame.command {
            Command::Rsp if frame.txnr == 1 => {
                let (status, text, rest) = parse_rsp(&frame.data)?;
                if status != 200 {
                    return Err(RelpError::Offer(format!("server answered {status} {text}")));
                }
                offers::check_server(rest)?;
            }
            Command::ServerClose => return Err(RelpError::ServerClosed),
            other => {
                return Err(RelpError::BadResponse(format!(
                    "expected rsp to open, got {} {other}",
                    frame.txnr
                )))
            }
        }
        Ok(conn)
    };
    tokio::time::timeout(config.connect_timeout, attempt)
        .await
        .map_err(|_| RelpError::ConnectTimeout(config.connect_timeout))?
}

/// Sends `close` and waits for its `rsp` and `serverclose` (or the end of the connection).
async fn close_conn(mut conn: Conn, timeout: Duration) -> Result<(), RelpError> {
    let txnr = next_txnr(conn.txnr);
    encode_parts(txnr, "close", b"", &mut conn.wbuf)?;
    let exchange = async {
        conn.writer.write_all_buf(&mut conn.wbuf).await?;
        conn.writer.flush().await?;
        let mut answered = false;
        while let Some(frame) = conn.reader.next().await {
            let frame = frame?;
            match frame.command {
                Command::Rsp if frame.txnr == txnr => answered = true,
                Command::ServerClose => break,
                _ => {}
            }
        }
        if !answered {
            return Err(RelpError::BadResponse("no rsp to close".to_owned()));
        }
        conn.writer.shutdown().await?;
        Ok(())
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| RelpError::ConnectTimeout(timeout))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_responses() {
        let (status, text, rest) = parse_rsp(b"200 OK").unwrap();
        assert_eq!((status, text.as_str(), rest), (200, "OK", &b""[..]));
        let (status, text, rest) = parse_rsp(b"500 sink down").unwrap();
        assert_eq!((status, text.as_str(), rest), (500, "sink down", &b""[..]));
        let (status, _, rest) = parse_rsp(b"200 OK\nrelp_version=0\ncommands=syslog").unwrap();
        assert_eq!(status, 200);
        assert_eq!(rest, b"relp_version=0\ncommands=syslog");
        assert_eq!(parse_rsp(b"200").unwrap().0, 200);
        assert!(parse_rsp(b"").is_err());
        assert!(parse_rsp(b"OK").is_err());
        assert!(parse_rsp(b"2000").is_err());
    }
}
