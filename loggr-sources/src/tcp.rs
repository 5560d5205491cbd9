//! The `tcp` source: syslog over TCP (RFC 6587), LF or octet-counted framing detected per
//! frame as rsyslog's `imtcp` does.
//!
//! # Loss window
//!
//! Plain TCP syslog has no acknowledgements: a sender cannot know what the receiver took. loggr
//! keeps the window small: a connection reads the next chunk only after the previous one was
//! handed to the pipeline (backpressure reaches the sender's socket), so what can be lost in a
//! crash is what was read from the socket but not yet handed on (at most `batch_size` frames
//! per connection), plus what the pipeline holds before the sinks commit it, plus whatever
//! sits in the kernel's socket buffers. Use RELP when that is not acceptable.
//!
//! Malformed frames never close the connection unless the framing itself is lost (a bad
//! octet count); oversize frames are skipped and counted; invalid UTF-8 is kept and flagged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::codec::FramedRead;

use loggr_core::codec::{AutoFramingDecoder, LineDecoder, OctetCountingDecoder};
use loggr_core::metrics::ComponentMetrics;
use loggr_core::syslog::SyslogOptions;
use loggr_core::{
    async_trait, BoxError, BuildContext, Emitter, Envelope, FailurePolicy, ParseContext, Source,
    SourceConfig, SourceContext, SourceError, Text,
};

use crate::framing::Recoverable;
use crate::ingest::{FrameParser, InputFormat, Origin};
use crate::listener::{accept_connections, listen};

/// Which framing a TCP listener accepts.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// Detected per frame: a frame starting with a digit is octet-counted, others end at LF.
    #[default]
    Auto,
    /// Newline-delimited only.
    Lf,
    /// Octet counting only.
    Octet,
}

/// Configuration of the `tcp` source.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpConfig {
    /// The address to listen on, e.g. `"127.0.0.1:5514"` (the syslog port is 514; 6514 with
    /// TLS).
    pub address: SocketAddr,
    /// Message format: `auto` (default), `rfc5424`, `rfc3164`, `rfc3339`, `json`, `raw`.
    #[serde(default)]
    pub format: InputFormat,
    /// Parser options (`year`, `timezone`, `trusted_properties`, `max_fraction_digits`).
    #[serde(default)]
    pub syslog: SyslogOptions,
    /// `auto` (default), `lf` or `octet`.
    #[serde(default)]
    pub framing: Framing,
    /// Longest accepted frame in bytes (default 64 KiB); longer ones are skipped and counted.
    #[serde(default = "default_max_frame_bytes")]
    pub max_frame_bytes: usize,
    /// Most simultaneous connections (default 1024); more are closed at once and counted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Close a connection that sent nothing for this long (default `10m`).
    #[serde(
        default = "default_idle_timeout",
        with = "loggr_core::config::duration"
    )]
    pub idle_timeout: Duration,
    /// Most frames handed on at once per connection (default 512).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// What to do with a frame that does not parse: `keep` (default, tagged) or `drop`.
    #[serde(default)]
    pub on_parse_error: FailurePolicy,
    /// TLS (RFC 5425; feature `tls`): certificate, key, client certificates and peer
    /// authentication. The customary port is 6514.
    #[cfg(feature = "tls")]
    #[serde(default)]
    pub tls: Option<crate::tls::TlsListenerConfig>,
}

fn default_max_frame_bytes() -> usize {
    64 * 1024
}

fn default_max_connections() -> usize {
    1024
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(600)
}

fn default_batch_size() -> usize {
    512
}

impl TcpConfig {
    /// A configuration with every default, listening on `address`.
    pub fn new(address: SocketAddr) -> Self {
        TcpConfig {
            address,
            format: InputFormat::default(),
            syslog: SyslogOptions::default(),
            framing: Framing::default(),
            max_frame_bytes: default_max_frame_bytes(),
            max_connections: default_max_connections(),
            idle_timeout: default_idle_timeout(),
            batch_size: default_batch_size(),
            on_parse_error: FailurePolicy::default(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

/// Listens for syslog over TCP.
pub struct TcpSource {
    config: TcpConfig,
    listener: Option<TcpListener>,
}

impl TcpSource {
    /// A source that binds `config.address` when it starts.
    pub fn new(config: TcpConfig) -> Self {
        TcpSource {
            config,
            listener: None,
        }
    }

    /// A source on an already bound listener (tests bind port 0 and read the address).
    pub fn with_listener(config: TcpConfig, listener: TcpListener) -> Self {
        TcpSource {
            config,
            listener: Some(listener),
        }
    }
}

#[async_trait]
impl Source for TcpSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let TcpSource { config, listener } = *self;
        let listener = listen(listener, config.address, "tcp").await?;
        let local = listener.local_addr()?;
        tracing::info!(source = cx.name(), address = %local, "Listening for syslog over TCP");
        let metrics = cx.emitter().metrics().clone();
        let frames = FrameParser::configured(
            config.format,
            &config.syslog,
            config.on_parse_error,
            metrics.clone(),
        )?;
        #[cfg(feature = "tls")]
        let tls = crate::tls::server_config(config.tls.as_ref(), "tcp")?;
        let config = Arc::new(config);
        let max_connections = config.max_connections;
        let protocol = if is_tls(&config) { "tcp+tls" } else { "tcp" };
        accept_connections(listener, &cx, max_connections, protocol, |stream, peer| {
            let connection = Connection {
                origin: Origin {
                    client_host: Text::from(peer.ip().to_string()),
                    server_port: Some(local.port()),
                    protocol: "tcp",
                },
                frames: frames.clone(),
                emitter: cx.emitter().clone(),
                config: config.clone(),
                shutdown: cx.shutdown().clone(),
                name: cx.name().to_owned(),
            };
            #[cfg(feature = "tls")]
            let tls = tls.clone();
            async move {
                #[cfg(feature = "tls")]
                if let Some(tls) = tls {
                    match tls.accept(stream).await {
                        Ok(stream) => {
                            let origin = Origin {
                                protocol: "tls",
                                ..connection.origin.clone()
                            };
                            Connection {
                                origin,
                                ..connection
                            }
                            .serve(stream)
                            .await;
                        }
                        Err(error) => tracing::warn!(%peer, %error, "TLS handshake failed"),
                    }
                    return;
                }
                connection.serve(stream).await;
            }
        })
        .await;
        Ok(())
    }
}

struct Connection {
    origin: Origin,
    frames: FrameParser,
    emitter: Emitter,
    config: Arc<TcpConfig>,
    shutdown: loggr_core::CancellationToken,
    name: String,
}

impl Connection {
    async fn serve<S>(self, stream: S)
    where
        S: tokio::io::AsyncRead + Unpin + Send,
    {
        tracing::debug!(source = %self.name, peer = %self.origin.client_host, "Connection opened");
        let max = self.config.max_frame_bytes;
        match self.config.framing {
            Framing::Auto => {
                self.read(FramedRead::new(
                    stream,
                    Recoverable(AutoFramingDecoder::new(max)),
                ))
                .await
            }
            Framing::Lf => {
                self.read(FramedRead::new(stream, Recoverable(LineDecoder::new(max))))
                    .await
            }
            Framing::Octet => {
                self.read(FramedRead::new(
                    stream,
                    Recoverable(OctetCountingDecoder::new(max)),
                ))
                .await
            }
        }
    }

    async fn read<S, D>(&self, framed: FramedRead<S, Recoverable<D>>)
    where
        S: tokio::io::AsyncRead + Unpin + Send,
        Recoverable<D>: tokio_util::codec::Decoder<
            Item = Result<bytes::Bytes, loggr_core::codec::FramingError>,
            Error = loggr_core::codec::FramingError,
        >,
    {
        let metrics = self.emitter.metrics().clone();
        let mut chunks = framed.ready_chunks(self.config.batch_size.max(1));
        loop {
            let chunk = tokio::select! {
                chunk = tokio::time::timeout(self.config.idle_timeout, chunks.next()) => chunk,
                () = self.shutdown.cancelled() => break,
            };
            let chunk = match chunk {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(_idle) => {
                    tracing::info!(source = %self.name, peer = %self.origin.client_host, "Closing an idle connection");
                    break;
                }
            };
            let cx = ParseContext {
                received_at: loggr_core::Timestamp::now(),
                peer: Some(self.origin.client_host.clone()),
            };
            let mut batch = Vec::with_capacity(chunk.len());
            let mut fatal = None;
            for frame in chunk {
                match frame {
                    Ok(Ok(frame)) => {
                        if let Some(event) = self.frames.parse(frame, &cx, Some(&self.origin)) {
                            batch.push(Envelope::detached(event));
                        }
                    }
                    Ok(Err(error)) => {
                        ComponentMetrics::add(&metrics.parse_failures, 1);
                        tracing::warn!(source = %self.name, peer = %self.origin.client_host, %error, "Skipped a frame");
                    }
                    Err(error) => fatal = Some(error),
                }
            }
            if self.emitter.send(batch).await.is_err() {
                break;
            }
            if let Some(error) = fatal {
                ComponentMetrics::add(&metrics.parse_failures, 1);
                tracing::warn!(source = %self.name, peer = %self.origin.client_host, %error, "Closing a connection whose framing is lost");
                break;
            }
        }
        tracing::debug!(source = %self.name, peer = %self.origin.client_host, "Connection closed");
    }
}

fn is_tls(_config: &TcpConfig) -> bool {
    #[cfg(feature = "tls")]
    return _config.tls.is_some();
    #[cfg(not(feature = "tls"))]
    false
}

impl SourceConfig for TcpConfig {
    fn build(self, _cx: &BuildContext) -> Result<Box<dyn Source>, BoxError> {
        // Fail on a bad time zone or TLS file now, not when the first connection arrives.
        self.format.parser(&self.syslog)?;
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            tls.build()?;
        }
        Ok(Box::new(TcpSource::new(self)))
    }
}

loggr_core::register_source!("tcp", TcpConfig);

#[inline(never)]
pub(crate) fn link() {}
