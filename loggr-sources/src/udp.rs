//! The `udp` and `unix_datagram` sources: one syslog message per datagram.
//!
//! Best effort by nature: a datagram dropped by the network or by a full socket buffer is gone
//! without anyone knowing. loggr counts what it receives and reads a datagram only when the
//! previous batch was handed on, so under pressure the kernel's receive buffer (raise
//! `net.core.rmem_max` and `receive_buffer_bytes`) is where the loss happens, and the
//! kernel's own counters (`netstat -su`) show it.

use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use tokio::net::{UdpSocket, UnixDatagram};

use loggr_core::syslog::SyslogOptions;
use loggr_core::{
    async_trait, BoxError, BuildContext, Envelope, FailurePolicy, ParseContext, Source,
    SourceConfig, SourceContext, SourceError, Text, Timestamp,
};

use crate::ingest::{FrameParser, InputFormat, Origin};

/// The largest datagram read (the UDP maximum).
const MAX_DATAGRAM: usize = 65_535;

/// Configuration of the `udp` source.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpConfig {
    /// The address to listen on, e.g. `"127.0.0.1:5514"`.
    pub address: SocketAddr,
    /// Message format: `auto` (default), `rfc5424`, `rfc3164`, `rfc3339`, `json`, `raw`.
    #[serde(default)]
    pub format: InputFormat,
    /// Parser options.
    #[serde(default)]
    pub syslog: SyslogOptions,
    /// Most datagrams handed on at once (default 512).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// What to do with a datagram that does not parse: `keep` (default, tagged) or `drop`.
    #[serde(default)]
    pub on_parse_error: FailurePolicy,
}

fn default_batch_size() -> usize {
    512
}

impl UdpConfig {
    /// A configuration with every default, listening on `address`.
    pub fn new(address: SocketAddr) -> Self {
        UdpConfig {
            address,
            format: InputFormat::default(),
            syslog: SyslogOptions::default(),
            batch_size: default_batch_size(),
            on_parse_error: FailurePolicy::default(),
        }
    }
}

/// Configuration of the `unix_datagram` source (a `/dev/log`-style socket).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnixDatagramConfig {
    /// The socket's path (removed and recreated at start).
    pub path: PathBuf,
    /// Message format (default `auto`).
    #[serde(default)]
    pub format: InputFormat,
    /// Parser options.
    #[serde(default)]
    pub syslog: SyslogOptions,
    /// Most datagrams handed on at once (default 512).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// What to do with a datagram that does not parse.
    #[serde(default)]
    pub on_parse_error: FailurePolicy,
}

enum Socket {
    Udp(UdpSocket),
    Unix(UnixDatagram, Text),
}

impl Socket {
    /// Receives one datagram, with its origin's address.
    async fn recv(&self, buf: &mut BytesMut) -> std::io::Result<Text> {
        match self {
            Socket::Udp(socket) => {
                let (_, peer) = socket.recv_buf_from(buf).await?;
                Ok(Text::from(peer.ip().to_string()))
            }
            Socket::Unix(socket, path) => {
                socket.recv_buf(buf).await?;
                Ok(path.clone())
            }
        }
    }

    /// Receives one datagram if one is waiting.
    fn try_recv(&self, buf: &mut BytesMut) -> std::io::Result<Text> {
        match self {
            Socket::Udp(socket) => {
                let (_, peer) = socket.try_recv_buf_from(buf)?;
                Ok(Text::from(peer.ip().to_string()))
            }
            Socket::Unix(socket, path) => {
                socket.try_recv_buf(buf)?;
                Ok(path.clone())
            }
        }
    }
}

/// Receives syslog datagrams over UDP or a unix socket.
pub struct UdpSource {
    socket: Option<Socket>,
    address: Option<SocketAddr>,
    unix_path: Option<PathBuf>,
    format: InputFormat,
    syslog: SyslogOptions,
    batch_size: usize,
    on_parse_error: FailurePolicy,
}

impl UdpSource {
    /// A UDP source that binds `config.address` when it starts.
    pub fn new(config: UdpConfig) -> Self {
        UdpSource {
            socket: None,
            address: Some(config.address),
            unix_path: None,
            format: config.format,
            syslog: config.syslog,
            batch_size: config.batch_size,
            on_parse_error: config.on_parse_error,
        }
    }

    /// A UDP source on an already bound socket.
    pub fn with_socket(config: UdpConfig, socket: UdpSocket) -> Self {
        UdpSource {
            socket: Some(Socket::Udp(socket)),
            ..UdpSource::new(config)
        }
    }

    /// A unix-datagram source.
    pub fn unix(config: UnixDatagramConfig) -> Self {
        UdpSource {
            socket: None,
            address: None,
            unix_path: Some(config.path),
            format: config.format,
            syslog: config.syslog,
            batch_size: config.batch_size,
            on_parse_error: config.on_parse_error,
        }
    }

    fn bind(&mut self) -> Result<(Socket, Option<u16>, &'static str), SourceError> {
        if let Some(socket) = self.socket.take() {
            let port = match &socket {
                Socket::Udp(udp) => udp.local_addr().ok().map(|a| a.port()),
                Socket::Unix(..) => None,
            };
            let protocol = if port.is_some() { "udp" } else { "unix" };
            return Ok((socket, port, protocol));
        }
        if let Some(path) = &self.unix_path {
            let _ = std::fs::remove_file(path);
            let socket = UnixDatagram::bind(path).map_err(|error| {
                SourceError::other(format!(
                    "cannot bind unix socket {}: {error}",
                    path.display()
                ))
            })?;
            return Ok((
                Socket::Unix(socket, Text::from(path.display().to_string())),
                None,
                "unix",
            ));
        }
        let address = self
            .address
            .ok_or_else(|| SourceError::other("no address to listen on"))?;
        let socket = std::net::UdpSocket::bind(address)
            .and_then(|socket| {
                socket.set_nonblocking(true)?;
                UdpSocket::from_std(socket)
            })
            .map_err(|error| {
                SourceError::other(format!("cannot listen on udp {address}: {error}"))
            })?;
        let port = socket.local_addr()?.port();
        Ok((Socket::Udp(socket), Some(port), "udp"))
    }
}

#[async_trait]
impl Source for UdpSource {
    async fn run(mut self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let (socket, port, protocol) = self.bind()?;
        tracing::info!(
            source = cx.name(),
            protocol,
            "Listening for syslog datagrams"
        );
        let metrics = cx.emitter().metrics().clone();
        let parser = self
            .format
            .parser(&self.syslog)
            .map_err(|error| SourceError::other(error.to_string()))?;
        let frames = FrameParser::new(parser, self.on_parse_error, metrics);
        let mut buffer = BytesMut::with_capacity(MAX_DATAGRAM * 4);
        let batch_size = self.batch_size.max(1);
        let origin_of = |client_host: Text| Origin {
            client_host,
            server_port: port,
            protocol,
        };
        loop {
            reserve(&mut buffer);
            let first = tokio::select! {
                received = socket.recv(&mut buffer) => received,
                () = cx.shutdown().cancelled() => break,
            };
            let cx_parse = ParseContext {
                received_at: Timestamp::now(),
                peer: None,
            };
            let mut batch = Vec::with_capacity(16);
            let mut next = first;
            loop {
                match next {
                    Ok(peer) => {
                        let datagram: Bytes = buffer.split().freeze();
                        let origin = origin_of(peer);
                        if let Some(event) = frames.parse(datagram, &cx_parse, Some(&origin)) {
                            batch.push(Envelope::detached(event));
                        }
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(error) => {
                        tracing::warn!(source = cx.name(), %error, "Receiving a datagram failed");
                        break;
                    }
                }
                if batch.len() >= batch_size {
                    break;
                }
                reserve(&mut buffer);
                next = socket.try_recv(&mut buffer);
            }
            if cx.emitter().send(batch).await.is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// Makes room for one more datagram, reusing the buffer's allocation when possible.
fn reserve(buffer: &mut BytesMut) {
    if buffer.capacity() - buffer.len() < MAX_DATAGRAM {
        buffer.reserve(MAX_DATAGRAM);
    }
}

impl SourceConfig for UdpConfig {
    fn build(self, _cx: &BuildContext) -> Result<Box<dyn Source>, BoxError> {
        self.format.parser(&self.syslog)?;
        Ok(Box::new(UdpSource::new(self)))
    }
}

impl SourceConfig for UnixDatagramConfig {
    fn build(self, _cx: &BuildContext) -> Result<Box<dyn Source>, BoxError> {
        self.format.parser(&self.syslog)?;
        Ok(Box::new(UdpSource::unix(self)))
    }
}

loggr_core::register_source!("udp", UdpConfig);
loggr_core::register_source!("unix_datagram", UnixDatagramConfig);

#[inline(never)]
pub(crate) fn link() {}
