//! The `amqp` source (feature `amqp`): consumes a RabbitMQ queue with manual
//! acknowledgements, each delivery acknowledged only after every sink committed its events.
//!
//! ```toml
//! [[sources]]
//! type = "amqp"
//! url = "amqp://guest:guest@127.0.0.1:5672/%2f"
//! queue = "loggr.parse"
//! prefetch = 64          # deliveries in flight (basic.qos)
//! declare = true
//! [sources.topology]
//! queues = [{ name = "loggr.parse", dead_letter = { exchange = "loggr.dlx", queue = "loggr.parse.dead" } }]
//! ```
//!
//! # Acknowledgements
//!
//! Each delivery is one acknowledgement group: its body is decoded with
//! [`loggr_core::wire::decode_bytes`] (a batch of the `amqp` sink, a single JSON event, or any
//! other body as one event whose message is the body; undecodable lines are kept, tagged
//! `_wire_decode_failure`), every event gets a token of the group, and the group's outcome
//! settles the delivery:
//!
//! | outcome | AMQP | what the broker does |
//! | --- | --- | --- |
//! | Delivered | `basic.ack` | forgets the message |
//! | Retry | `basic.nack`, `requeue=true` | delivers it again (to this or another consumer) |
//! | Rejected | `basic.reject`, `requeue=false` | dead-letters it (the queue's `dead_letter`), or drops it if the queue has none |
//!
//! Up to `prefetch` deliveries are in flight (`basic.qos`), settled in whatever order their
//! outcomes come. If the connection drops, the broker delivers the unsettled messages again,
//! to the reconnected source or another consumer: delivery is at least once, and events that
//! were already committed may be seen twice (sinks can deduplicate on `id`). The source
//! reconnects with exponential backoff (`reconnect`).
//!
//! At shutdown the source cancels its consumer (`basic.cancel`), keeps settling the deliveries
//! in flight until `shutdown_grace` has passed (or the pipeline aborts), then closes the
//! channel: the broker requeues whatever is still unsettled.

use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions,
};
use lapin::types::FieldTable;
use lapin::{Acker, Channel, Connection, Consumer};
use serde::Deserialize;

use loggr_amqp::{short_string, AmqpError, Backoff, Endpoint, ReconnectConfig};
use loggr_core::ack::{AckGroup, Outcome, UnorderedAcks};
use loggr_core::metrics::ComponentMetrics;
use loggr_core::{
    async_trait, wire, BoxError, BuildContext, Envelope, Source, SourceConfig, SourceContext,
    SourceError,
};

pub use loggr_amqp::{declare_topology, TopologyConfig};

/// Configuration of the `amqp` source.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpSourceConfig {
    /// The broker (default `amqp://guest:guest@127.0.0.1:5672/%2f`).
    #[serde(default = "default_url")]
    pub url: String,
    /// The connection's name, shown by `rabbitmqctl list_connections` and the management UI
    /// (default `loggr-source-<component name>`).
    #[serde(default)]
    pub connection_name: Option<String>,
    /// The queue to consume.
    pub queue: String,
    /// Deliveries (messages, each holding one or many events) in flight at once: the
    /// `basic.qos` prefetch count and the acknowledgement window (default 64, at least 1).
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
    /// The consumer tag (default: chosen by the broker).
    #[serde(default)]
    pub consumer_tag: Option<String>,
    /// Declare `topology` on every (re)connection, before consuming (default `false`).
    #[serde(default)]
    pub declare: bool,
    /// Exchanges, queues and bindings to declare (see [`TopologyConfig`]).
    #[serde(default)]
    pub topology: TopologyConfig,
    /// Waits between reconnection attempts (default from `100ms` doubling up to `10s`).
    #[serde(default)]
    pub reconnect: ReconnectConfig,
    /// How long connecting, declaring and subscribing may take (default `10s`).
    #[serde(
        default = "default_connect_timeout",
        with = "loggr_core::config::duration"
    )]
    pub connect_timeout: Duration,
    /// At shutdown, how long to keep settling the deliveries in flight before closing (default
    /// `5s`; keep it below the pipeline's grace period).
    #[serde(
        default = "default_shutdown_grace",
        with = "loggr_core::config::duration"
    )]
    pub shutdown_grace: Duration,
}

fn default_url() -> String {
    "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()
}

fn default_prefetch() -> u16 {
    64
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_shutdown_grace() -> Duration {
    Duration::from_secs(5)
}

impl AmqpSourceConfig {
    /// Every default, consuming `queue` on the broker at `url`.
    pub fn new(url: impl Into<String>, queue: impl Into<String>) -> Self {
        AmqpSourceConfig {
            url: url.into(),
            connection_name: None,
            queue: queue.into(),
            prefetch: default_prefetch(),
            consumer_tag: None,
            declare: false,
            topology: TopologyConfig::default(),
            reconnect: ReconnectConfig::default(),
            connect_timeout: default_connect_timeout(),
            shutdown_grace: default_shutdown_grace(),
        }
    }

    fn validate(&self) -> Result<(), AmqpError> {
        loggr_amqp::parse_url(&self.url)?;
        short_string(&self.queue)?;
        if let Some(tag) = &self.consumer_tag {
            short_string(tag)?;
        }
        self.topology.validate()?;
        if self.declare && self.topology.is_empty() {
            return Err(AmqpError::Topology(
                "`declare = true` needs a `topology` table with something to declare".into(),
            ));
        }
        Ok(())
    }
}

/// Consumes a queue.
#[derive(Debug)]
pub struct AmqpSource {
    config: AmqpSourceConfig,
    endpoint: Endpoint,
}

impl AmqpSource {
    /// A source for this configuration (it connects when it runs).
    ///
    /// # Errors
    ///
    /// A bad URL, queue name, consumer tag or topology.
    pub fn new(config: AmqpSourceConfig) -> Result<Self, AmqpError> {
        let name = config
            .connection_name
            .clone()
            .unwrap_or_else(|| "loggr-source".to_owned());
        Self::named(config, name)
    }

    fn named(config: AmqpSourceConfig, connection_name: String) -> Result<Self, AmqpError> {
        config.validate()?;
        Ok(AmqpSource {
            endpoint: Endpoint {
                url: config.url.clone(),
                name: connection_name,
            },
            config,
        })
    }
}

/// A connection, its channel, and the consumer on it.
struct Session {
    connection: Connection,
    channel: Channel,
    consumer: Consumer,
}

/// Why a session ended.
enum End {
    /// Shutdown (or the pipeline closed): the source returns.
    Shutdown,
    /// The connection, channel or consumer is gone: reconnect.
    Lost(String),
}

/// A delivery in flight: how to settle it, and how many events it held.
type InFlight = (Acker, u64);

impl AmqpSource {
    async fn open(&self) -> Result<Session, AmqpError> {
        let config = &self.config;
        let connection =
            loggr_amqp::connect(&config.url, &self.endpoint.name, config.connect_timeout).await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|error| AmqpError::lapin("opening a channel", error))?;
        if config.declare {
            declare_topology(&channel, &config.topology).await?;
        }
        channel
            .basic_qos(config.prefetch.max(1), BasicQosOptions::default())
            .await
            .map_err(|error| AmqpError::lapin("setting the prefetch window", error))?;
        let tag = short_string(config.consumer_tag.as_deref().unwrap_or(""))?;
        let consumer = channel
            .basic_consume(
                short_string(&config.queue)?,
                tag,
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|error| {
                AmqpError::lapin(format!("consuming queue `{}`", config.queue), error)
            })?;
        Ok(Session {
            connection,
            channel,
            consumer,
        })
    }

    /// Decodes a delivery into envelopes of one group.
    fn take(
        delivery: lapin::message::Delivery,
        batch: &mut Vec<Envelope>,
        acks: &mut UnorderedAcks<InFlight>,
        metrics: &ComponentMetrics,
    ) {
        let lapin::message::Delivery {
            properties,
            data,
            acker,
            ..
        } = delivery;
        let decoded = wire::decode_bytes(
            properties.content_type().as_ref().map(|t| t.as_str()),
            properties.content_encoding().as_ref().map(|e| e.as_str()),
            Bytes::from(data),
        );
        if decoded.failures > 0 {
            ComponentMetrics::add(&metrics.parse_failures, decoded.failures as u64);
            tracing::debug!(
                failures = decoded.failures,
                "Kept undecodable parts of an AMQP message as tagged events"
            );
        }
        let (group, waiter) = AckGroup::new();
        let count = decoded.events.len() as u64;
        batch.extend(
            decoded
                .events
                .into_iter()
                .map(|event| Envelope::new(event, group.token())),
        );
        group.seal();
        acks.push((acker, count), waiter);
    }

    /// Acknowledges, requeues or rejects one delivery. `Err` when the channel is gone.
    async fn settle(
        (acker, count): InFlight,
        outcome: Outcome,
        metrics: &ComponentMetrics,
    ) -> Result<(), String> {
        let result = match outcome {
            Outcome::Delivered => {
                ComponentMetrics::add(&metrics.delivered, count);
                acker.ack(BasicAckOptions::default()).await
            }
            Outcome::Retry => {
                ComponentMetrics::add(&metrics.retried, count);
                acker
                    .nack(BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    })
                    .await
            }
            Outcome::Rejected => {
                ComponentMetrics::add(&metrics.rejected, count);
                acker.reject(BasicRejectOptions { requeue: false }).await
            }
        };
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(
                "the channel closed before a delivery could be settled (the broker will \
                     deliver it again)"
                    .to_owned(),
            ),
            Err(error) => Err(format!("settling a delivery: {error}")),
        }
    }

    /// Reads deliveries and settles them until shutdown or until the session is lost.
    async fn consume(&self, session: Session, cx: &SourceContext) -> End {
        let metrics = cx.emitter().metrics().clone();
        let window = usize::from(self.config.prefetch.max(1));
        let mut acks: UnorderedAcks<InFlight> = UnorderedAcks::new(window);
        let Session {
            connection,
            channel,
            mut consumer,
        } = session;
        let end = loop {
            tokio::select! {
                biased;
                () = cx.shutdown().cancelled() => break End::Shutdown,
                (in_flight, outcome) = acks.next() => {
                    if let Err(reason) = Self::settle(in_flight, outcome, &metrics).await {
                        break End::Lost(reason);
                    }
                }
                delivery = consumer.next(), if !acks.is_full() => {
                    let delivery = match delivery {
                        Some(Ok(delivery)) => delivery,
                        Some(Err(error)) => break End::Lost(format!("consuming: {error}")),
                        None => break End::Lost(
                            "the broker cancelled the consumer (was the queue deleted?)".into(),
                        ),
                    };
                    let mut batch = Vec::new();
                    Self::take(delivery, &mut batch, &mut acks, &metrics);
                    // Hand on every delivery that is already here in one batch.
                    let mut lost = None;
                    while !acks.is_full() && batch.len() < 8192 {
                        match consumer.next().now_or_never() {
                            Some(Some(Ok(delivery))) => {
                                Self::take(delivery, &mut batch, &mut acks, &metrics);
                            }
                            Some(Some(Err(error))) => {
                                lost = Some(format!("consuming: {error}"));
                                break;
                            }
                            Some(None) => {
                                lost = Some("the broker cancelled the consumer".to_owned());
                                break;
                            }
                            None => break,
                        }
                    }
                    // Keep settling while the pipeline takes the batch (backpressure).
                    let send = cx.emitter().send(batch);
                    tokio::pin!(send);
                    let mut settle_failed = None;
                    let sent = loop {
                        tokio::select! {
                            biased;
                            sent = &mut send => break sent,
                            (in_flight, outcome) = acks.next(), if settle_failed.is_none() => {
                                if let Err(reason) = Self::settle(in_flight, outcome, &metrics).await {
                                    settle_failed = Some(reason);
                                }
                            }
                        }
                    };
                    if sent.is_err() {
                        // The pipeline is closed: its tokens came back as Retry.
                        break End::Shutdown;
                    }
                    if let Some(reason) = settle_failed.or(lost) {
                        break End::Lost(reason);
                    }
                }
            }
        };
        if let End::Lost(_) = end {
            // Unsettled deliveries go back to the queue when the connection closes.
            drop(consumer);
            let _ =
                tokio::time::timeout(Duration::from_secs(1), connection.close(200, "OK".into()))
                    .await;
            return end;
        }
        // Shutdown: no new deliveries, settle the ones in flight, then close.
        let tag = consumer.tag();
        if let Err(error) = tokio::time::timeout(
            self.config.connect_timeout,
            channel.basic_cancel(tag, BasicCancelOptions::default()),
        )
        .await
        .unwrap_or_else(|_| Ok(()))
        {
            tracing::debug!(source = cx.name(), %error, "Could not cancel the AMQP consumer");
        }
        let deadline = tokio::time::Instant::now() + self.config.shutdown_grace;
        while !acks.is_empty() {
            tokio::select! {
                biased;
                () = cx.abort().cancelled() => break,
                () = tokio::time::sleep_until(deadline) => break,
                (in_flight, outcome) = acks.next() => {
                    if Self::settle(in_flight, outcome, &metrics).await.is_err() {
                        break;
                    }
                }
            }
        }
        if !acks.is_empty() {
            tracing::info!(
                source = cx.name(),
                unsettled = acks.len(),
                "Closing with deliveries unsettled; the broker will deliver them again"
            );
        }
        let limit = Duration::from_secs(1);
        let _ = tokio::time::timeout(limit, channel.close(200, "OK".into())).await;
        let _ = tokio::time::timeout(limit, connection.close(200, "OK".into())).await;
        End::Shutdown
    }
}

#[async_trait]
impl Source for AmqpSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let mut backoff = Backoff::new(self.config.reconnect.clone());
        loop {
            let opened = tokio::select! {
                opened = tokio::time::timeout(self.config.connect_timeout, self.open()) => opened,
                () = cx.shutdown().cancelled() => break,
            };
            match opened {
                Ok(Ok(session)) => {
                    backoff.reset();
                    tracing::info!(
                        source = cx.name(), endpoint = %self.endpoint, queue = %self.config.queue,
                        "Consuming from the AMQP broker"
                    );
                    match self.consume(session, &cx).await {
                        End::Shutdown => break,
                        End::Lost(reason) => tracing::warn!(
                            source = cx.name(), endpoint = %self.endpoint, %reason,
                            "AMQP session lost; reconnecting"
                        ),
                    }
                }
                Ok(Err(error)) if error.is_transient() => tracing::warn!(
                    source = cx.name(), endpoint = %self.endpoint, %error,
                    "Cannot consume from the AMQP broker; retrying"
                ),
                Ok(Err(error)) => tracing::error!(
                    source = cx.name(), endpoint = %self.endpoint, %error,
                    "Cannot consume from the AMQP broker (check the configuration); retrying"
                ),
                Err(_elapsed) => tracing::warn!(
                    source = cx.name(), endpoint = %self.endpoint,
                    timeout_ms = self.config.connect_timeout.as_millis() as u64,
                    "The AMQP broker did not answer in time; retrying"
                ),
            }
            let delay = backoff.next_delay();
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = cx.shutdown().cancelled() => break,
            }
        }
        Ok(())
    }
}

impl SourceConfig for AmqpSourceConfig {
    fn build(self, cx: &BuildContext) -> Result<Box<dyn Source>, BoxError> {
        let name = self
            .connection_name
            .clone()
            .unwrap_or_else(|| format!("loggr-source-{}", cx.name));
        Ok(Box::new(AmqpSource::named(self, name)?))
    }
}

loggr_core::register_source!("amqp", AmqpSourceConfig);

#[inline(never)]
pub(crate) fn link() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_is_checked_at_build_time() {
        let config: AmqpSourceConfig = toml::from_str(
            r#"
            queue = "q"
            prefetch = 8
            reconnect = { initial_backoff = "50ms", max_backoff = "1s" }
            "#,
        )
        .unwrap();
        assert_eq!(config.prefetch, 8);
        assert_eq!(config.reconnect.initial_backoff, Duration::from_millis(50));
        assert!(AmqpSource::new(config).is_ok());
        let mut config = AmqpSourceConfig::new("amqp://127.0.0.1", "q");
        config.declare = true;
        assert!(AmqpSource::new(config).is_err());
        let config = AmqpSourceConfig::new("amqp://127.0.0.1", "q".repeat(300));
        assert!(matches!(
            AmqpSource::new(config),
            Err(AmqpError::NameTooLong { .. })
        ));
        assert!(toml::from_str::<AmqpSourceConfig>("queue = \"q\"\nprefetch_count = 3").is_err());
    }
}
