//! The `relp` source: syslog over RELP, acknowledged only after every sink committed.
//!
//! Each `syslog` frame becomes one event with its own acknowledgement group. The session
//! answers `rsp 200 OK` when the group resolves to Delivered, and `rsp 500` when it resolves
//! to Retry or Rejected (or never, if the connection or the process dies first): the sender
//! keeps the message and sends it again. A crash anywhere can duplicate a message, never lose
//! an acknowledged one.
//!
//! Frames are parsed as they are read and handed to the pipeline in batches: whenever the
//! session's read buffer runs dry or its window (default 128 outstanding transactions) fills.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use tokio::net::TcpListener;

use loggr_core::ack::{AckToken, AckWaiter, Outcome};
use loggr_core::metrics::ComponentMetrics;
use loggr_core::syslog::SyslogOptions;
use loggr_core::{
    async_trait, BoxError, BuildContext, Emitter, Envelope, FailurePolicy, ParseContext, Source,
    SourceConfig, SourceContext, SourceError, Text, Timestamp,
};
use loggr_relp::{MessageHandler, ServerConfig, Verdict};

use crate::ingest::{FrameParser, InputFormat, Origin};
use crate::listener::{accept_connections, listen};

/// Configuration of the `relp` source.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelpConfig {
    /// The address to listen on, e.g. `"127.0.0.1:2514"` (RELP's customary port is 2514).
    pub address: SocketAddr,
    /// Message format: `auto` (default), `rfc5424`, `rfc3164`, `rfc3339`, `json`, `raw`.
    #[serde(default)]
    pub format: InputFormat,
    /// Parser options (`year`, `timezone`, …).
    #[serde(default)]
    pub syslog: SyslogOptions,
    /// Outstanding (unanswered) transactions per connection (default 128).
    #[serde(default = "default_window")]
    pub window: usize,
    /// Longest accepted message in bytes (default 128 KiB); a longer frame ends the session.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Most simultaneous connections (default 1024).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Close a session idle for this long (default `10m`).
    #[serde(
        default = "default_idle_timeout",
        with = "loggr_core::config::duration"
    )]
    pub idle_timeout: Duration,
    /// At shutdown, how long to keep answering outstanding transactions before `serverclose`
    /// (default `5s`; keep it below the pipeline's grace period).
    #[serde(
        default = "default_shutdown_grace",
        with = "loggr_core::config::duration"
    )]
    pub shutdown_grace: Duration,
    /// What to do with a message that does not parse: `keep` (default, tagged) or `drop`
    /// (acknowledged and counted).
    #[serde(default)]
    pub on_parse_error: FailurePolicy,
    /// TLS (feature `tls`): certificate, key, client certificates and peer authentication.
    #[cfg(feature = "tls")]
    #[serde(default)]
    pub tls: Option<crate::tls::TlsListenerConfig>,
}

fn default_window() -> usize {
    128
}

fn default_max_message_bytes() -> usize {
    128 * 1024
}

fn default_max_connections() -> usize {
    1024
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(600)
}

fn default_shutdown_grace() -> Duration {
    Duration::from_secs(5)
}

impl RelpConfig {
    /// A configuration with every default, listening on `address`.
    pub fn new(address: SocketAddr) -> Self {
        RelpConfig {
            address,
            format: InputFormat::default(),
            syslog: SyslogOptions::default(),
            window: default_window(),
            max_message_bytes: default_max_message_bytes(),
            max_connections: default_max_connections(),
            idle_timeout: default_idle_timeout(),
            shutdown_grace: default_shutdown_grace(),
            on_parse_error: FailurePolicy::default(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    fn server_config(&self) -> ServerConfig {
        ServerConfig {
            window: self.window.max(1),
            max_data_len: self.max_message_bytes,
            idle_timeout: Some(self.idle_timeout),
            shutdown_grace: self.shutdown_grace,
            ..ServerConfig::default()
        }
    }
}

/// Listens for RELP sessions.
pub struct RelpSource {
    config: RelpConfig,
    listener: Option<TcpListener>,
}

impl RelpSource {
    /// A source that binds `config.address` when it starts.
    pub fn new(config: RelpConfig) -> Self {
        RelpSource {
            config,
            listener: None,
        }
    }

    /// A source on an already bound listener.
    pub fn with_listener(config: RelpConfig, listener: TcpListener) -> Self {
        RelpSource {
            config,
            listener: Some(listener),
        }
    }
}

#[async_trait]
impl Source for RelpSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let RelpSource { config, listener } = *self;
        let listener = listen(listener, config.address, "relp").await?;
        let local = listener.local_addr()?;
        tracing::info!(source = cx.name(), address = %local, "Listening for RELP");
        let metrics = cx.emitter().metrics().clone();
        let frames = FrameParser::configured(
            config.format,
            &config.syslog,
            config.on_parse_error,
            metrics.clone(),
        )?;
        let server_config = Arc::new(config.server_config());
        #[cfg(feature = "tls")]
        let tls = crate::tls::server_config(config.tls.as_ref(), "relp")?;
        let protocol = if is_tls(&config) { "relp+tls" } else { "relp" };
        let max_connections = config.max_connections;
        accept_connections(listener, &cx, max_connections, protocol, |stream, peer| {
            let handler = Handler {
                frames: frames.clone(),
                origin: Origin {
                    client_host: Text::from(peer.ip().to_string()),
                    server_port: Some(local.port()),
                    protocol,
                },
                emitter: cx.emitter().clone(),
                pending: Vec::new(),
            };
            let server_config = server_config.clone();
            let shutdown = cx.shutdown().clone();
            let name = cx.name().to_owned();
            #[cfg(feature = "tls")]
            let tls = tls.clone();
            async move {
                #[cfg(feature = "tls")]
                let served = match tls {
                    Some(tls) => match tls.accept(stream).await {
                        Ok(stream) => {
                            loggr_relp::serve(stream, handler, &server_config, shutdown).await
                        }
                        Err(error) => Err(error),
                    },
                    None => loggr_relp::serve(stream, handler, &server_config, shutdown).await,
                };
                #[cfg(not(feature = "tls"))]
                let served = loggr_relp::serve(stream, handler, &server_config, shutdown).await;
                match served {
                    Ok(stats) => tracing::debug!(
                        source = %name, %peer, messages = stats.messages, accepted = stats.accepted,
                        refused = stats.refused, "RELP session ended"
                    ),
                    Err(error) => {
                        tracing::warn!(source = %name, %peer, %error, "RELP session failed")
                    }
                }
            }
        })
        .await;
        Ok(())
    }
}

/// One session's bridge between RELP transactions and the pipeline.
struct Handler {
    frames: FrameParser,
    origin: Origin,
    emitter: Emitter,
    pending: Vec<Envelope>,
}

impl MessageHandler for Handler {
    type Ack = Answer;

    fn on_message(&mut self, data: Bytes) -> Answer {
        let cx = ParseContext {
            received_at: Timestamp::now(),
            peer: Some(self.origin.client_host.clone()),
        };
        match self.frames.parse(data, &cx, Some(&self.origin)) {
            Some(event) => {
                let (token, waiter) = AckToken::single();
                self.pending.push(Envelope::new(event, token));
                Answer::Waiting(waiter, self.emitter.metrics().clone())
            }
            // Dropped on purpose by the parse-failure policy (counted): nothing to store.
            None => Answer::Ready(Some(Verdict::Accepted)),
        }
    }

    async fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        // If the pipeline is closed the batch comes back and is dropped: its tokens resolve as
        // Retry and the sender gets `500`.
        let _ = self.emitter.send(batch).await;
    }
}

/// The verdict on one RELP transaction, once the event's group resolves (counted as the
/// listener's delivered, rejected or retried events: its acked and nacked transactions).
enum Answer {
    Waiting(AckWaiter, Arc<ComponentMetrics>),
    Ready(Option<Verdict>),
}

impl Future for Answer {
    type Output = Verdict;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Verdict> {
        match self.get_mut() {
            Answer::Ready(verdict) => Poll::Ready(verdict.take().unwrap_or(Verdict::Accepted)),
            Answer::Waiting(waiter, metrics) => {
                Pin::new(waiter).poll(cx).map(|outcome| match outcome {
                    Outcome::Delivered => {
                        ComponentMetrics::add(&metrics.delivered, 1);
                        Verdict::Accepted
                    }
                    Outcome::Rejected => {
                        ComponentMetrics::add(&metrics.rejected, 1);
                        Verdict::Refused("rejected by a sink".into())
                    }
                    Outcome::Retry => {
                        ComponentMetrics::add(&metrics.retried, 1);
                        Verdict::Refused("not stored, retry later".into())
                    }
                })
            }
        }
    }
}

fn is_tls(_config: &RelpConfig) -> bool {
    #[cfg(feature = "tls")]
    return _config.tls.is_some();
    #[cfg(not(feature = "tls"))]
    false
}

impl SourceConfig for RelpConfig {
    fn build(self, _cx: &BuildContext) -> Result<Box<dyn Source>, BoxError> {
        self.format.parser(&self.syslog)?;
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            tls.build()?;
        }
        Ok(Box::new(RelpSource::new(self)))
    }
}

loggr_core::register_source!("relp", RelpConfig);

#[inline(never)]
pub(crate) fn link() {}
