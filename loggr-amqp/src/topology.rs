//! Exchanges, queues (with their dead-letter queues) and bindings, declared from configuration.
//!
//! The same table serves the `amqp` sink and source (`declare = true` declares it when they
//! connect) and the `loggr ctl` command (through [`declare_topology`]):
//!
//! ```toml
//! [sinks.topology]
//! exchanges = [{ name = "loggr.events", type = "topic" }]
//! queues = [
//!   { name = "loggr.parse", type = "quorum", delivery_limit = 20,
//!     dead_letter = { exchange = "loggr.dlx", queue = "loggr.parse.dead" } },
//! ]
//! bindings = [{ queue = "loggr.parse", exchange = "loggr.events", routing_key = "loggr.#" }]
//! ```
//!
//! Declaring is idempotent: declaring what exists with the same settings changes nothing, so
//! every component may declare the whole topology when it starts. Declaring what exists with
//! *other* settings fails with `406 PRECONDITION_FAILED` (RabbitMQ never changes a queue's
//! type or arguments in place): that is a configuration error, reported as such.
//!
//! A queue's `dead_letter` table names where the messages the source rejects
//! (`basic.reject`, `requeue=false`) end up: the dead-letter exchange is declared as a durable
//! `fanout` exchange (unless `exchanges` declares it, then it keeps that type and the queue is
//! bound with `#`), the dead-letter queue like its queue (same type, durable), and bound to it.

use std::collections::BTreeSet;

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};
use serde::Deserialize;

use crate::{short_string, AmqpError};

/// The exchange types loggr declares.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ExchangeType {
    /// Routes by pattern (`loggr.*.sshd`, `loggr.#`): the usual choice for log streams.
    #[default]
    Topic,
    /// Routes every message to every bound queue.
    Fanout,
    /// Routes by exact routing key.
    Direct,
    /// Routes by message headers.
    Headers,
}

impl ExchangeType {
    fn kind(self) -> ExchangeKind {
        match self {
            ExchangeType::Topic => ExchangeKind::Topic,
            ExchangeType::Fanout => ExchangeKind::Fanout,
            ExchangeType::Direct => ExchangeKind::Direct,
            ExchangeType::Headers => ExchangeKind::Headers,
        }
    }
}

/// The queue types loggr declares.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum QueueType {
    /// A classic queue (durable by default: its persistent messages survive a broker restart).
    #[default]
    Classic,
    /// A quorum queue (replicated with Raft on a cluster; always durable). Supports
    /// `delivery_limit`.
    Quorum,
}

/// One exchange.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    /// Its name.
    pub name: String,
    /// `topic` (default), `fanout`, `direct` or `headers`.
    #[serde(default, rename = "type")]
    pub kind: ExchangeType,
    /// Survives a broker restart (default `true`).
    #[serde(default = "yes")]
    pub durable: bool,
    /// Deleted by the broker once its last binding is gone (default `false`).
    #[serde(default)]
    pub auto_delete: bool,
}

/// Where a queue's rejected messages go.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// The dead-letter exchange (`x-dead-letter-exchange`).
    pub exchange: String,
    /// The queue that keeps dead letters, bound to that exchange.
    pub queue: String,
}

/// One queue.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Its name.
    pub name: String,
    /// `classic` (default) or `quorum`.
    #[serde(default, rename = "type")]
    pub kind: QueueType,
    /// Survives a broker restart (default `true`; quorum queues must be durable).
    #[serde(default = "yes")]
    pub durable: bool,
    /// Deleted by the broker once its last consumer is gone (default `false`; not for quorum
    /// queues).
    #[serde(default)]
    pub auto_delete: bool,
    /// Where rejected messages go (`basic.reject` without requeue; for quorum queues also
    /// messages redelivered more than `delivery_limit` times). Without it they are dropped
    /// by the broker.
    #[serde(default)]
    pub dead_letter: Option<DeadLetterConfig>,
    /// Quorum queues only: after this many redeliveries (`basic.nack` with requeue, or a
    /// consumer gone without acknowledging), a message is dead-lettered instead of being
    /// delivered again (`x-delivery-limit`; default: unlimited). Stops a message that can
    /// never be stored from cycling forever.
    #[serde(default)]
    pub delivery_limit: Option<u32>,
    /// The most messages the queue holds (`x-max-length`; default: unlimited). With it the
    /// queue refuses more (`x-overflow = reject-publish`): publishers get a `basic.nack`, which
    /// loggr's sink treats as a failed write, rather than the oldest messages being dropped.
    #[serde(default)]
    pub max_length: Option<u64>,
}

/// A binding of a queue to an exchange.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BindingConfig {
    /// The queue.
    pub queue: String,
    /// The exchange.
    pub exchange: String,
    /// The binding key (default `#`: everything, on a topic exchange; ignored by fanout).
    #[serde(default = "hash")]
    pub routing_key: String,
}

/// A set of exchanges, queues and bindings (see the [module docs](self)).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TopologyConfig {
    /// Exchanges, declared first.
    pub exchanges: Vec<ExchangeConfig>,
    /// Queues, with their dead-letter exchange and queue.
    pub queues: Vec<QueueConfig>,
    /// Bindings, declared last.
    pub bindings: Vec<BindingConfig>,
}

fn yes() -> bool {
    true
}

fn hash() -> String {
    "#".to_owned()
}

impl TopologyConfig {
    /// Whether there is nothing to declare.
    pub fn is_empty(&self) -> bool {
        self.exchanges.is_empty() && self.queues.is_empty() && self.bindings.is_empty()
    }

    /// Checks what the broker would refuse, so that configuration errors show at start.
    ///
    /// # Errors
    ///
    /// [`AmqpError::Topology`] or [`AmqpError::NameTooLong`], naming the culprit.
    pub fn validate(&self) -> Result<(), AmqpError> {
        let mut queues = BTreeSet::new();
        for exchange in &self.exchanges {
            short_string(&exchange.name)?;
            if exchange.name.is_empty() || exchange.name.starts_with("amq.") {
                return Err(AmqpError::Topology(format!(
                    "exchange name `{}` is reserved (empty or `amq.*`)",
                    exchange.name
                )));
            }
        }
        for queue in &self.queues {
            short_string(&queue.name)?;
            if queue.name.is_empty() {
                return Err(AmqpError::Topology(
                    "a queue needs a name (server-named queues are not supported)".into(),
                ));
            }
            if !queues.insert(queue.name.as_str()) {
                return Err(AmqpError::Topology(format!(
                    "queue `{}` is declared twice",
                    queue.name
                )));
            }
            if queue.kind == QueueType::Quorum && (!queue.durable || queue.auto_delete) {
                return Err(AmqpError::Topology(format!(
                    "quorum queue `{}` must be durable and not auto_delete",
                    queue.name
                )));
            }
            if queue.delivery_limit.is_some() && queue.kind != QueueType::Quorum {
                return Err(AmqpError::Topology(format!(
                    "queue `{}`: delivery_limit needs `type = \"quorum\"`",
                    queue.name
                )));
            }
            if let Some(dead) = &queue.dead_letter {
                short_string(&dead.exchange)?;
                short_string(&dead.queue)?;
                if dead.queue == queue.name {
                    return Err(AmqpError::Topology(format!(
                        "queue `{}` cannot be its own dead-letter queue",
                        queue.name
                    )));
                }
            }
        }
        for binding in &self.bindings {
            short_string(&binding.queue)?;
            short_string(&binding.exchange)?;
            short_string(&binding.routing_key)?;
        }
        Ok(())
    }
}

fn declared<T>(what: impl FnOnce() -> String, result: lapin::Result<T>) -> Result<T, AmqpError> {
    result.map_err(|error| AmqpError::lapin(what(), error))
}

async fn declare_exchange(
    channel: &Channel,
    name: &str,
    kind: ExchangeType,
    durable: bool,
    auto_delete: bool,
) -> Result<(), AmqpError> {
    let options = ExchangeDeclareOptions {
        durable,
        auto_delete,
        ..ExchangeDeclareOptions::default()
    };
    declared(
        || format!("declaring exchange `{name}`"),
        channel
            .exchange_declare(
                short_string(name)?,
                kind.kind(),
                options,
                FieldTable::default(),
            )
            .await,
    )
}

async fn declare_queue(
    channel: &Channel,
    name: &str,
    queue: &QueueConfig,
    dead_letter_exchange: Option<&str>,
) -> Result<(), AmqpError> {
    let mut arguments = FieldTable::default();
    if queue.kind == QueueType::Quorum {
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString(LongString::from("quorum")),
        );
    }
    if let Some(exchange) = dead_letter_exchange {
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(LongString::from(exchange)),
        );
    }
    if let Some(limit) = queue.delivery_limit {
        arguments.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(limit)),
        );
    }
    if let Some(max) = queue.max_length {
        arguments.insert(
            "x-max-length".into(),
            AMQPValue::LongLongInt(i64::try_from(max).unwrap_or(i64::MAX)),
        );
        arguments.insert(
            "x-overflow".into(),
            AMQPValue::LongString(LongString::from("reject-publish")),
        );
    }
    let options = QueueDeclareOptions {
        durable: queue.durable,
        auto_delete: queue.auto_delete,
        ..QueueDeclareOptions::default()
    };
    declared(
        || format!("declaring queue `{name}`"),
        channel
            .queue_declare(short_string(name)?, options, arguments)
            .await,
    )
    .map(drop)
}

async fn bind(
    channel: &Channel,
    queue: &str,
    exchange: &str,
    routing_key: &str,
) -> Result<(), AmqpError> {
    declared(
        || format!("binding queue `{queue}` to exchange `{exchange}` with `{routing_key}`"),
        channel
            .queue_bind(
                short_string(queue)?,
                short_string(exchange)?,
                short_string(routing_key)?,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await,
    )
}

/// Declares every exchange, queue (with its dead-letter exchange and queue) and binding of
/// `topology`, in that order. Idempotent.
///
/// A failed declaration closes the channel (AMQP's rule): open a new one to go on.
///
/// # Errors
///
/// The first declaration the broker refused, naming it: `406 PRECONDITION_FAILED` when it
/// exists with other settings, `403 ACCESS_REFUSED` without the permission, or a connection
/// error.
pub async fn declare_topology(
    channel: &Channel,
    topology: &TopologyConfig,
) -> Result<(), AmqpError> {
    topology.validate()?;
    for exchange in &topology.exchanges {
        declare_exchange(
            channel,
            &exchange.name,
            exchange.kind,
            exchange.durable,
            exchange.auto_delete,
        )
        .await?;
    }
    for queue in &topology.queues {
        if let Some(dead) = &queue.dead_letter {
            let declared_type = topology
                .exchanges
                .iter()
                .find(|exchange| exchange.name == dead.exchange)
                .map(|exchange| exchange.kind);
            if declared_type.is_none() {
                declare_exchange(channel, &dead.exchange, ExchangeType::Fanout, true, false)
                    .await?;
            }
            let dead_queue = QueueConfig {
                name: dead.queue.clone(),
                kind: queue.kind,
                durable: true,
                auto_delete: false,
                dead_letter: None,
                delivery_limit: None,
                max_length: None,
            };
            declare_queue(channel, &dead.queue, &dead_queue, None).await?;
            let key = match declared_type {
                None | Some(ExchangeType::Fanout) => "",
                Some(_) => "#",
            };
            bind(channel, &dead.queue, &dead.exchange, key).await?;
        }
        let dead_letter_exchange = queue.dead_letter.as_ref().map(|d| d.exchange.as_str());
        declare_queue(channel, &queue.name, queue, dead_letter_exchange).await?;
    }
    for binding in &topology.bindings {
        bind(
            channel,
            &binding.queue,
            &binding.exchange,
            &binding.routing_key,
        )
        .await?;
    }
    tracing::debug!(
        exchanges = topology.exchanges.len(),
        queues = topology.queues.len(),
        bindings = topology.bindings.len(),
        "AMQP topology declared"
    );
    Ok(())
}

/// Deletes every queue (dead-letter queues included) and exchange (dead-letter exchanges
/// included) of `topology`, with the messages they hold. For tests and for tearing down a
/// test installation; what does not exist is skipped.
///
/// # Errors
///
/// The first deletion the broker refused for another reason than "not found" (which closes
/// the channel, so deletion goes on only while the channel lives).
pub async fn delete_topology(
    channel: &Channel,
    topology: &TopologyConfig,
) -> Result<(), AmqpError> {
    let mut queues: Vec<&str> = Vec::new();
    let mut exchanges: Vec<&str> = Vec::new();
    for queue in &topology.queues {
        queues.push(&queue.name);
        if let Some(dead) = &queue.dead_letter {
            queues.push(&dead.queue);
            exchanges.push(&dead.exchange);
        }
    }
    exchanges.extend(topology.exchanges.iter().map(|e| e.name.as_str()));
    // Several queues may share a dead-letter exchange and queue.
    let mut seen = BTreeSet::new();
    queues.retain(|name| seen.insert(*name));
    let mut seen = BTreeSet::new();
    exchanges.retain(|name| seen.insert(*name));
    for queue in queues {
        declared(
            || format!("deleting queue `{queue}`"),
            channel
                .queue_delete(short_string(queue)?, QueueDeleteOptions::default())
                .await,
        )?;
    }
    for exchange in exchanges {
        declared(
            || format!("deleting exchange `{exchange}`"),
            channel
                .exchange_delete(short_string(exchange)?, ExchangeDeleteOptions::default())
                .await,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> TopologyConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_are_durable_topic_and_classic() {
        let topology = parse(
            r#"
            exchanges = [{ name = "e" }]
            queues = [{ name = "q" }]
            bindings = [{ queue = "q", exchange = "e" }]
            "#,
        );
        assert_eq!(topology.exchanges[0].kind, ExchangeType::Topic);
        assert!(topology.exchanges[0].durable);
        assert_eq!(topology.queues[0].kind, QueueType::Classic);
        assert!(topology.queues[0].durable);
        assert_eq!(topology.bindings[0].routing_key, "#");
        assert!(topology.validate().is_ok());
        assert!(TopologyConfig::default().is_empty());
    }

    #[test]
    fn inconsistent_topologies_are_refused_before_reaching_the_broker() {
        for (text, expected) in [
            (
                r#"queues = [{ name = "q", type = "quorum", durable = false }]"#,
                "must be durable",
            ),
            (
                r#"queues = [{ name = "q", delivery_limit = 3 }]"#,
                "delivery_limit needs",
            ),
            (
                r#"queues = [{ name = "q" }, { name = "q" }]"#,
                "declared twice",
            ),
            (
                r#"queues = [{ name = "q", dead_letter = { exchange = "d", queue = "q" } }]"#,
                "its own dead-letter queue",
            ),
            (r#"exchanges = [{ name = "amq.topic" }]"#, "reserved"),
        ] {
            let error = parse(text).validate().unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let error = toml::from_str::<TopologyConfig>(r#"queues = [{ name = "q", typo = 1 }]"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("typo"), "{error}");
    }
}
