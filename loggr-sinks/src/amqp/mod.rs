//! The `amqp` sink (feature `amqp`): events published to a RabbitMQ exchange, many per
//! message, with publisher confirms.
//!
//! ```toml
//! [[sinks]]
//! type = "amqp"
//! url = "amqp://guest:guest@127.0.0.1:5672/%2f"
//! exchange = "loggr.events"
//! routing_key = "loggr.{app_name}"   # one message per routing key and batch
//! compression = "lz4"
//! batch = { max_events = 10000 }      # the runner's batch: up to 10 messages in flight
//! declare = true                      # declare the topology below when connecting
//! [sinks.topology]
//! exchanges = [{ name = "loggr.events", type = "topic" }]
//! queues = [{ name = "loggr.parse", dead_letter = { exchange = "loggr.dlx", queue = "loggr.parse.dead" } }]
//! bindings = [{ queue = "loggr.parse", exchange = "loggr.events", routing_key = "loggr.#" }]
//! ```
//!
//! # Messages
//!
//! RabbitMQ spends tens of microseconds of CPU on each persistent message, whatever its size,
//! so one message per event caps a broker near 20,000 events per second. The sink therefore
//! packs the runner's batch into messages of up to `max_events_per_message` events or
//! `max_message_bytes` bytes in loggr's [wire format](loggr_core::wire)
//! (`application/vnd.loggr.events+jsonl; version=1`, optionally `lz4`-compressed; a lone event
//! is plain `application/json`). Events are grouped by their routing key first
//! ([`routing::RoutingKey`]), in the order of first appearance; the order of events with the
//! same key is kept.
//!
//! Each message is published `persistent` (delivery mode 2), `mandatory`, with its content type
//! and encoding, `app_id = "loggr"`, a timestamp and an `x-loggr-events` header (its event
//! count). The messages of a write are all in flight at once; the write then waits for their
//! confirms.
//!
//! # Durability
//!
//! `Ok` means that **every message of the batch was confirmed by the broker (`basic.ack`) and
//! none was returned (`basic.return`)**. With persistent messages and durable queues the broker
//! confirms only after the message is on disk in every queue it was routed to (quorum queues:
//! on a majority of their replicas). Every failure is transient (the runner retries, and the
//! events may be published twice: consumers see at-least-once delivery and can deduplicate on
//! the events' `id`):
//!
//! - a returned message (`mandatory`: no queue is bound for its routing key; without
//!   `mandatory` the broker would confirm it and drop it: a silent loss);
//! - a `basic.nack` (the broker could not store it, e.g. a full `reject-publish` queue);
//! - a lost connection or channel (the next write reconnects, and declares the topology
//!   again when `declare = true`);
//! - a connection blocked by the broker (`connection.blocked`, a memory or disk alarm) for
//!   longer than `blocked_timeout`: the sink does not publish into a blocked connection;
//! - no confirm within `confirm_timeout`.
//!
//! The one permanent failure is a message the broker refuses for its size
//! (`406 PRECONDITION_FAILED`, RabbitMQ's `max_message_size`): the runner then isolates the
//! event that is too large and rejects only it.

pub mod routing;

use std::collections::HashMap;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use serde::Deserialize;

use loggr_amqp::{short_string, AmqpError, Endpoint};
use loggr_core::wire::{Compression, WireEncoder, WireMessage};
use loggr_core::{async_trait, BoxError, BuildContext, Event, Sink, SinkConfig, SinkError};

pub use loggr_amqp::topology::{
    BindingConfig, DeadLetterConfig, ExchangeConfig, ExchangeType, QueueConfig, QueueType,
};
pub use loggr_amqp::{declare_topology, delete_topology, TopologyConfig};
pub use routing::{RoutingKey, TemplateError};

/// The header giving the number of events in a message.
pub const EVENTS_HEADER: &str = "x-loggr-events";

/// Configuration of the `amqp` sink.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpSinkConfig {
    /// The broker (default `amqp://guest:guest@127.0.0.1:5672/%2f`; the vhost is URL-encoded,
    /// `%2f` is `/`).
    #[serde(default = "default_url")]
    pub url: String,
    /// The connection's name, shown by `rabbitmqctl list_connections` and the management UI
    /// (default `loggr-sink-<component name>`).
    #[serde(default)]
    pub connection_name: Option<String>,
    /// The exchange to publish to (`""` is the default exchange, which routes by queue name).
    pub exchange: String,
    /// The routing key: text with placeholders `{hostname}`, `{app_name}`, `{procid}`,
    /// `{msgid}`, `{facility}`, `{severity}`, `{fields.NAME}` (default `loggr`).
    #[serde(default = "default_routing_key")]
    pub routing_key: String,
    /// What a placeholder becomes when the event has no such value (default `unknown`).
    #[serde(default = "default_routing_key_default")]
    pub routing_key_default: String,
    /// Publish `mandatory` (default `true`): a message no queue takes comes back and the write
    /// fails, instead of the broker dropping it.
    #[serde(default = "yes")]
    pub mandatory: bool,
    /// Publish persistent messages (delivery mode 2; default `true`), written to disk by durable
    /// queues before they are confirmed.
    #[serde(default = "yes")]
    pub persistent: bool,
    /// Most events in one message (default 1000).
    #[serde(default = "default_max_events_per_message")]
    pub max_events_per_message: usize,
    /// Most bytes of JSON in one message, before compression (default 1 MiB; a larger event
    /// travels alone).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// `none` (default) or `lz4` (consumers must support the `lz4` content encoding; loggr's
    /// `amqp` source does).
    #[serde(default)]
    pub compression: Compression,
    /// How long a write may wait for the broker's confirms (default `30s`).
    #[serde(
        default = "default_confirm_timeout",
        with = "loggr_core::config::duration"
    )]
    pub confirm_timeout: Duration,
    /// How long a write waits for a blocked connection (`connection.blocked`: the broker is
    /// short of memory or disk) to be unblocked before failing (default `5s`).
    #[serde(
        default = "default_blocked_timeout",
        with = "loggr_core::config::duration"
    )]
    pub blocked_timeout: Duration,
    /// How long connecting (and opening the channel, declaring the topology) may take
    /// (default `10s`).
    #[serde(
        default = "default_connect_timeout",
        with = "loggr_core::config::duration"
    )]
    pub connect_timeout: Duration,
    /// Declare `topology` on every (re)connection (default `false`).
    #[serde(default)]
    pub declare: bool,
    /// Exchanges, queues and bindings to declare (see [`TopologyConfig`]).
    #[serde(default)]
    pub topology: TopologyConfig,
}

fn yes() -> bool {
    true
}

fn default_url() -> String {
    "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()
}

fn default_routing_key() -> String {
    "loggr".to_owned()
}

fn default_routing_key_default() -> String {
    "unknown".to_owned()
}

fn default_max_events_per_message() -> usize {
    1000
}

fn default_max_message_bytes() -> usize {
    1 << 20
}

fn default_confirm_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_blocked_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}

impl AmqpSinkConfig {
    /// Every default, publishing to `exchange` on the broker at `url`.
    pub fn new(url: impl Into<String>, exchange: impl Into<String>) -> Self {
        AmqpSinkConfig {
            url: url.into(),
            connection_name: None,
            exchange: exchange.into(),
            routing_key: default_routing_key(),
            routing_key_default: default_routing_key_default(),
            mandatory: true,
            persistent: true,
            max_events_per_message: default_max_events_per_message(),
            max_message_bytes: default_max_message_bytes(),
            compression: Compression::None,
            confirm_timeout: default_confirm_timeout(),
            blocked_timeout: default_blocked_timeout(),
            connect_timeout: default_connect_timeout(),
            declare: false,
            topology: TopologyConfig::default(),
        }
    }
}

/// The sink's configuration is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AmqpSinkError {
    /// A bad URL, name or topology.
    #[error(transparent)]
    Amqp(#[from] AmqpError),
    /// A bad routing key template.
    #[error(transparent)]
    RoutingKey(#[from] TemplateError),
    /// `declare = true` without anything to declare.
    #[error("`declare = true` needs a `topology` table with something to declare")]
    NothingToDeclare,
}

/// A connection and its channel in confirm mode.
struct Session {
    connection: Connection,
    channel: Channel,
}

impl Session {
    fn is_usable(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

/// Publishes batches of events to an exchange, with confirms.
pub struct AmqpSink {
    config: AmqpSinkConfig,
    endpoint: Endpoint,
    exchange: ShortString,
    routing: RoutingKey,
    encoder: WireEncoder,
    session: Option<Session>,
}

impl std::fmt::Debug for AmqpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpSink")
            .field("endpoint", &self.endpoint)
            .field("exchange", &self.config.exchange)
            .field("connected", &self.session.is_some())
            .finish()
    }
}

/// How a write failed, and whether the session is still usable afterwards.
struct Failed {
    error: SinkError,
    reset: bool,
}

impl Failed {
    /// The channel or connection is gone (or in doubt): reconnect on the next write.
    fn broken(error: SinkError) -> Self {
        Failed { error, reset: true }
    }

    /// The session is fine; only these messages failed.
    fn refused(error: SinkError) -> Self {
        Failed {
            error,
            reset: false,
        }
    }
}

fn lapin_failure(what: &str, error: lapin::Error) -> Failed {
    let message = format!("{what}: {error}");
    let sink_error = match loggr_amqp::reply_code(&error) {
        // The broker refuses the message itself (larger than its max_message_size).
        Some(406) => SinkError::permanent(message),
        _ => SinkError::transient(message),
    };
    Failed::broken(sink_error.with_source(error))
}

fn setup_error(error: AmqpError) -> SinkError {
    // Even a configuration error on the broker's side (a topology that contradicts the
    // existing one, missing permissions) is transient here: the events are fine, and they
    // must wait (and the upstream be held back) until the broker or the configuration is
    // fixed, not be rejected.
    SinkError::transient(error.to_string()).with_source(error)
}

impl AmqpSink {
    /// A sink for this configuration (it connects on the first write).
    ///
    /// # Errors
    ///
    /// A bad URL, exchange name, routing key template or topology.
    pub fn new(config: AmqpSinkConfig) -> Result<Self, AmqpSinkError> {
        let name = config
            .connection_name
            .clone()
            .unwrap_or_else(|| "loggr-sink".to_owned());
        Self::named(config, name)
    }

    fn named(config: AmqpSinkConfig, connection_name: String) -> Result<Self, AmqpSinkError> {
        loggr_amqp::parse_url(&config.url)?;
        let exchange = short_string(&config.exchange)?;
        let routing = RoutingKey::parse(&config.routing_key, &config.routing_key_default)?;
        config.topology.validate()?;
        if config.declare && config.topology.is_empty() {
            return Err(AmqpSinkError::NothingToDeclare);
        }
        let encoder = WireEncoder::new(
            config.max_events_per_message,
            config.max_message_bytes,
            config.compression,
        );
        Ok(AmqpSink {
            endpoint: Endpoint {
                url: config.url.clone(),
                name: connection_name,
            },
            exchange,
            routing,
            encoder,
            config,
            session: None,
        })
    }

    /// The connection's name.
    pub fn connection_name(&self) -> &str {
        &self.endpoint.name
    }

    /// The channel of a usable session, connecting first if needed.
    async fn channel(&mut self) -> Result<(Channel, bool), SinkError> {
        if let Some(session) = &self.session {
            if session.is_usable() {
                return Ok((
                    session.channel.clone(),
                    session.connection.status().blocked(),
                ));
            }
            tracing::info!(endpoint = %self.endpoint, "AMQP connection lost; reconnecting");
            self.session = None;
        }
        let timeout = self.config.connect_timeout;
        let session = tokio::time::timeout(timeout, self.connect())
            .await
            .map_err(|_| {
                setup_error(AmqpError::Timeout {
                    what: format!("setting up the AMQP session {}", self.endpoint),
                    timeout,
                })
            })?
            .map_err(setup_error)?;
        tracing::info!(endpoint = %self.endpoint, exchange = %self.config.exchange, "Connected to the AMQP broker");
        let channel = session.channel.clone();
        self.session = Some(session);
        Ok((channel, false))
    }

    async fn connect(&self) -> Result<Session, AmqpError> {
        let connection = loggr_amqp::connect(
            &self.config.url,
            &self.endpoint.name,
            self.config.connect_timeout,
        )
        .await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|error| AmqpError::lapin("opening a channel", error))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|error| AmqpError::lapin("enabling publisher confirms", error))?;
        if self.config.declare {
            declare_topology(&channel, &self.config.topology).await?;
        }
        Ok(Session {
            connection,
            channel,
        })
    }

    /// Waits (bounded) while the broker blocks the connection.
    async fn wait_unblocked(&self) -> Result<(), SinkError> {
        let Some(session) = &self.session else {
            return Ok(());
        };
        wait_until(
            || !session.connection.status().blocked(),
            self.config.blocked_timeout,
        )
        .await
        .map_err(|waited| {
            SinkError::transient(format!(
                "the broker has blocked the connection (memory or disk alarm) for {} ms",
                waited.as_millis()
            ))
        })
    }

    /// Publishes every event and waits for all confirms.
    async fn publish(&mut self, channel: &Channel, events: &[Event]) -> Result<(), Failed> {
        let mut confirms = Vec::new();
        let options = BasicPublishOptions {
            mandatory: self.config.mandatory,
            immediate: false,
        };
        let delivery_mode = if self.config.persistent { 2 } else { 1 };
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let publish_group = |key: ShortString, messages: Vec<WireMessage>| {
            let mut publishes = Vec::with_capacity(messages.len());
            for message in messages {
                let mut headers = FieldTable::default();
                headers.insert(
                    EVENTS_HEADER.into(),
                    AMQPValue::LongLongInt(i64::try_from(message.events).unwrap_or(i64::MAX)),
                );
                let mut properties = BasicProperties::default()
                    .with_content_type(ShortString::from(message.content_type))
                    .with_delivery_mode(delivery_mode)
                    .with_app_id(ShortString::from("loggr"))
                    .with_timestamp(timestamp)
                    .with_headers(headers);
                if let Some(encoding) = message.content_encoding {
                    properties = properties.with_content_encoding(ShortString::from(encoding));
                }
                publishes.push((key.clone(), message.body, properties));
            }
            publishes
        };
        let mut publishes = Vec::new();
        match self.routing.constant() {
            Some(key) => {
                let key = loggr_amqp::truncated_short_string(key);
                let messages: Vec<WireMessage> = self.encoder.encode(events).collect();
                publishes.extend(publish_group(key, messages));
            }
            None => {
                let mut groups: Vec<(String, Vec<&Event>)> = Vec::new();
                let mut index: HashMap<String, usize> = HashMap::new();
                let mut key = String::new();
                for event in events {
                    self.routing.render(event, &mut key);
                    match index.get(key.as_str()) {
                        Some(&at) => groups[at].1.push(event),
                        None => {
                            index.insert(key.clone(), groups.len());
                            groups.push((key.clone(), vec![event]));
                        }
                    }
                }
                for (key, group) in groups {
                    let messages: Vec<WireMessage> =
                        self.encoder.encode(group.iter().copied()).collect();
                    publishes.extend(publish_group(
                        loggr_amqp::truncated_short_string(&key),
                        messages,
                    ));
                }
            }
        }
        for (key, body, properties) in publishes {
            let confirm = channel
                .basic_publish(self.exchange.clone(), key, options, &body, properties)
                .await
                .map_err(|error| lapin_failure("publishing", error))?;
            confirms.push(confirm);
        }
        let count = confirms.len();
        let mut returned = 0usize;
        let mut nacked = 0usize;
        let mut first_return = None;
        for result in futures::future::join_all(confirms).await {
            match result.map_err(|error| lapin_failure("waiting for a confirm", error))? {
                Confirmation::Ack(None) => {}
                Confirmation::Ack(Some(message)) | Confirmation::Nack(Some(message)) => {
                    returned += 1;
                    first_return.get_or_insert_with(|| {
                        format!(
                            "{} {} (routing key `{}`)",
                            message.reply_code, message.reply_text, message.delivery.routing_key
                        )
                    });
                }
                Confirmation::Nack(None) => nacked += 1,
                Confirmation::NotRequested => {
                    return Err(Failed::broken(SinkError::transient(
                        "the channel is not in confirm mode",
                    )))
                }
            }
        }
        if returned > 0 {
            return Err(Failed::refused(SinkError::transient(format!(
                "{returned} of {count} messages were returned by the broker (no queue took \
                 them): {}",
                first_return.unwrap_or_default()
            ))));
        }
        if nacked > 0 {
            return Err(Failed::refused(SinkError::transient(format!(
                "the broker refused {nacked} of {count} messages (basic.nack)"
            ))));
        }
        Ok(())
    }
}

/// Waits until `ready()` holds, checking every 20 ms, for at most `limit`.
/// `Err` carries how long it waited.
async fn wait_until(ready: impl Fn() -> bool, limit: Duration) -> Result<(), Duration> {
    if ready() {
        return Ok(());
    }
    let started = tokio::time::Instant::now();
    tracing::warn!(
        limit_ms = limit.as_millis() as u64,
        "The AMQP broker blocked the connection (resource alarm); waiting before publishing"
    );
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if ready() {
            return Ok(());
        }
        let waited = started.elapsed();
        if waited >= limit {
            return Err(waited);
        }
    }
}

#[async_trait]
impl Sink for AmqpSink {
    async fn write(&mut self, events: &[Event]) -> Result<(), SinkError> {
        if events.is_empty() {
            return Ok(());
        }
        let (channel, blocked) = self.channel().await?;
        if blocked {
            self.wait_unblocked().await?;
        }
        let limit = self.config.confirm_timeout;
        match tokio::time::timeout(limit, self.publish(&channel, events)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(failed)) => {
                if failed.reset {
                    self.session = None;
                }
                Err(failed.error)
            }
            Err(_elapsed) => {
                let blocked = self
                    .session
                    .as_ref()
                    .is_some_and(|session| session.connection.status().blocked());
                if !blocked {
                    // A broker that does not confirm is in doubt: start over with a new
                    // connection (a blocked one would be blocked again).
                    self.session = None;
                }
                Err(SinkError::transient(format!(
                    "no confirm from the broker within {} ms{}",
                    limit.as_millis(),
                    if blocked {
                        " (the connection is blocked)"
                    } else {
                        ""
                    }
                )))
            }
        }
    }

    async fn close(&mut self) -> Result<(), SinkError> {
        if let Some(session) = self.session.take() {
            let limit = self.config.connect_timeout;
            let _ = tokio::time::timeout(limit, session.channel.close(200, "OK".into())).await;
            let _ = tokio::time::timeout(limit, session.connection.close(200, "OK".into())).await;
        }
        Ok(())
    }
}

impl SinkConfig for AmqpSinkConfig {
    fn build(self, cx: &BuildContext) -> Result<Box<dyn Sink>, BoxError> {
        let name = self
            .connection_name
            .clone()
            .unwrap_or_else(|| format!("loggr-sink-{}", cx.name));
        Ok(Box::new(AmqpSink::named(self, name)?))
    }
}

loggr_core::register_sink!("amqp", AmqpSinkConfig);

#[inline(never)]
pub(crate) fn link() {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn a_blocked_connection_is_waited_for_with_a_bound() {
        // Never unblocked: fails after the limit.
        let started = tokio::time::Instant::now();
        let waited = wait_until(|| false, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(waited >= Duration::from_secs(5) && started.elapsed() < Duration::from_secs(6));
        // Unblocked after 1 s: goes on.
        let unblocked = Arc::new(AtomicBool::new(false));
        let flag = unblocked.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            flag.store(true, Ordering::Relaxed);
        });
        let started = tokio::time::Instant::now();
        wait_until(|| unblocked.load(Ordering::Relaxed), Duration::from_secs(5))
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        // Not blocked: no wait at all.
        let started = tokio::time::Instant::now();
        wait_until(|| true, Duration::from_secs(5)).await.unwrap();
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[test]
    fn configuration_errors_show_at_build_time() {
        let mut config = AmqpSinkConfig::new("amqp://127.0.0.1", "x");
        config.routing_key = "a.{nope}".into();
        assert!(matches!(
            AmqpSink::new(config),
            Err(AmqpSinkError::RoutingKey(_))
        ));
        let mut config = AmqpSinkConfig::new("amqp://127.0.0.1", "x");
        config.declare = true;
        assert!(matches!(
            AmqpSink::new(config),
            Err(AmqpSinkError::NothingToDeclare)
        ));
        let config = AmqpSinkConfig::new("http://nope:port", "x");
        assert!(matches!(AmqpSink::new(config), Err(AmqpSinkError::Amqp(_))));
        let config: AmqpSinkConfig = toml::from_str(
            r#"
            exchange = "e"
            routing_key = "loggr.{app_name}"
            compression = "lz4"
            confirm_timeout = "2s"
            topology = { exchanges = [{ name = "e" }] }
            "#,
        )
        .unwrap();
        assert_eq!(config.compression, Compression::Lz4);
        assert_eq!(config.confirm_timeout, Duration::from_secs(2));
        assert!(config.mandatory && config.persistent);
        assert!(AmqpSink::new(config).is_ok());
    }
}
