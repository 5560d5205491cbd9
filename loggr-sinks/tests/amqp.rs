//! The `amqp` sink against the real RabbitMQ: every event arrives, batched, persistent, with
//! its content type; an unroutable (returned) or refused (nacked) message fails the write
//! instead of counting as delivered; a broken connection or channel is a transient error and
//! the sink recovers.
//!
//! Uses the broker at `LOGGR_TEST_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`)
//! with exchanges and queues named for the test and deleted at the end. Start it with
//! `bash scripts/services.sh`.

#![cfg(feature = "amqp")]
#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::collections::BTreeMap;
use std::time::Duration;

use lapin::options::{BasicGetOptions, ExchangeDeleteOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection};

use loggr_core::wire::{self, Compression};
use loggr_core::{Event, Sink};
use loggr_sinks::amqp::{
    delete_topology, AmqpSink, AmqpSinkConfig, BindingConfig, ExchangeConfig, QueueConfig,
    TopologyConfig, EVENTS_HEADER,
};

fn amqp_url() -> String {
    std::env::var("LOGGR_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("loggr-test-sink-{test}-{}-{nanos}", std::process::id())
}

async fn broker() -> (Connection, Channel) {
    let url = amqp_url();
    let connection = loggr_amqp::connect(&url, "loggr-test-sink-helper", Duration::from_secs(10))
        .await
        .unwrap_or_else(|error| {
            panic!(
                "RabbitMQ is not reachable at {} ({error}): start it with `bash scripts/services.sh`",
                loggr_amqp::redact_url(&url)
            )
        });
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

/// An exchange `name` and a queue `name` bound to it with `binding` (or unbound).
fn topology(name: &str, binding: Option<&str>) -> TopologyConfig {
    TopologyConfig {
        exchanges: vec![ExchangeConfig {
            name: name.to_owned(),
            kind: Default::default(),
            durable: true,
            auto_delete: false,
        }],
        queues: vec![QueueConfig {
            name: name.to_owned(),
            kind: Default::default(),
            durable: true,
            auto_delete: false,
            dead_letter: None,
            delivery_limit: None,
            max_length: None,
        }],
        bindings: binding
            .map(|key| BindingConfig {
                queue: name.to_owned(),
                exchange: name.to_owned(),
                routing_key: key.to_owned(),
            })
            .into_iter()
            .collect(),
    }
}

/// Deletes the test's topology when dropped, even after a failed assertion.
struct Cleanup(TopologyConfig);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let topology = self.0.clone();
        // Best effort, and never a panic (this may run while a failed test unwinds).
        let cleaner = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let connected =
                    loggr_amqp::connect(&amqp_url(), "loggr-test-cleanup", Duration::from_secs(5))
                        .await;
                if let Ok(connection) = connected {
                    if let Ok(channel) = connection.create_channel().await {
                        let _ = delete_topology(&channel, &topology).await;
                    }
                }
            });
        });
        let _ = cleaner.join();
    }
}

fn sink_config(name: &str, topology: &TopologyConfig) -> AmqpSinkConfig {
    let mut config = AmqpSinkConfig::new(amqp_url(), name);
    config.connection_name = Some(name.to_owned());
    config.declare = true;
    config.topology = topology.clone();
    config
}

fn events(count: usize, apps: &[&str]) -> Vec<Event> {
    (0..count)
        .map(|i| {
            let mut event = Event::new(format!("event {i}"));
            event.app_name = Some(apps[i % apps.len()].into());
            event.set_field("n", i as i64);
            event
        })
        .collect()
}

/// Every message in the queue (taken), with its routing key, properties and body.
async fn drain(channel: &Channel, queue: &str) -> Vec<lapin::message::Delivery> {
    let mut messages = Vec::new();
    while let Some(message) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        messages.push(message.delivery);
    }
    messages
}

fn decode(delivery: &lapin::message::Delivery) -> Vec<Event> {
    let properties = &delivery.properties;
    let decoded = wire::decode(
        properties.content_type().as_ref().map(|t| t.as_str()),
        properties.content_encoding().as_ref().map(|e| e.as_str()),
        &delivery.data,
    );
    assert_eq!(decoded.failures, 0);
    decoded.events
}

async fn queue_length(channel: &Channel, queue: &str) -> u32 {
    channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count()
}

#[tokio::test]
async fn every_event_arrives_batched_per_routing_key_persistent_and_typed() {
    let name = unique("batches");
    let topology = topology(&name, Some("loggr.#"));
    let _cleanup = Cleanup(topology.clone());
    let mut config = sink_config(&name, &topology);
    config.routing_key = "loggr.{app_name}".into();
    config.max_events_per_message = 100;
    config.compression = Compression::Lz4;
    let mut sink = AmqpSink::new(config).unwrap();
    let sent = events(1000, &["sshd", "cron"]);
    sink.write(&sent).await.unwrap();
    sink.write(&sent[..1]).await.unwrap(); // a lone event
    sink.close().await.unwrap();

    let (_connection, channel) = broker().await;
    let messages = drain(&channel, &name).await;
    assert_eq!(
        messages.len(),
        11,
        "500 events per key in 100s, and the lone one"
    );
    let mut by_key: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for message in &messages[..10] {
        let properties = &message.properties;
        assert_eq!(*properties.delivery_mode(), Some(2), "persistent");
        assert_eq!(
            properties.content_type().as_ref().unwrap().as_str(),
            wire::BATCH_CONTENT_TYPE
        );
        assert_eq!(
            properties.content_encoding().as_ref().unwrap().as_str(),
            "lz4"
        );
        assert_eq!(
            properties
                .headers()
                .as_ref()
                .unwrap()
                .inner()
                .get(EVENTS_HEADER),
            Some(&AMQPValue::LongLongInt(100))
        );
        by_key
            .entry(message.routing_key.to_string())
            .or_default()
            .extend(decode(message));
    }
    let expected = |app: &str| -> Vec<Event> {
        sent.iter()
            .filter(|e| e.app_name.as_deref() == Some(app))
            .cloned()
            .collect()
    };
    assert_eq!(by_key["loggr.sshd"], expected("sshd"), "all, in order");
    assert_eq!(by_key["loggr.cron"], expected("cron"), "all, in order");
    let lone = &messages[10];
    assert_eq!(
        lone.properties.content_type().as_ref().unwrap().as_str(),
        "application/json"
    );
    assert_eq!(lone.properties.content_encoding(), &None);
    assert_eq!(
        serde_json::from_slice::<Event>(&lone.data).unwrap(),
        sent[0]
    );
}

#[tokio::test]
async fn a_returned_message_fails_the_write() {
    let name = unique("mandatory");
    // The queue exists but is not bound: nothing routes to it.
    let topology = topology(&name, None);
    let _cleanup = Cleanup(topology.clone());
    let mut sink = AmqpSink::new(sink_config(&name, &topology)).unwrap();
    let error = sink.write(&events(10, &["a"])).await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("returned"), "{error}");
    assert!(error.to_string().contains("NO_ROUTE"), "{error}");
    // The sink is still usable once a queue is bound.
    let (_connection, channel) = broker().await;
    channel
        .queue_bind(
            name.as_str().into(),
            name.as_str().into(),
            "#".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    sink.write(&events(10, &["a"])).await.unwrap();
    assert_eq!(queue_length(&channel, &name).await, 1);

    // Without `mandatory` the broker confirms the unroutable message and drops it: what the
    // sink's default prevents.
    let other = unique("not-mandatory");
    let unbound = self::topology(&other, None);
    let _cleanup_other = Cleanup(unbound.clone());
    let mut config = sink_config(&other, &unbound);
    config.mandatory = false;
    let mut careless = AmqpSink::new(config).unwrap();
    careless.write(&events(10, &["a"])).await.unwrap();
    assert_eq!(queue_length(&channel, &other).await, 0, "silently lost");
}

#[tokio::test]
async fn a_refused_message_fails_the_write() {
    let name = unique("nack");
    let mut topology = topology(&name, Some("#"));
    topology.queues[0].max_length = Some(1); // and `reject-publish` when full
    let _cleanup = Cleanup(topology.clone());
    let mut sink = AmqpSink::new(sink_config(&name, &topology)).unwrap();
    sink.write(&events(5, &["a"])).await.unwrap();
    let error = sink.write(&events(5, &["a"])).await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("basic.nack"), "{error}");
    let (_connection, channel) = broker().await;
    assert_eq!(drain(&channel, &name).await.len(), 1);
    // Room again: the retry goes through.
    sink.write(&events(5, &["a"])).await.unwrap();
}

#[tokio::test]
async fn a_broken_channel_is_a_transient_error_and_the_next_write_recovers() {
    let name = unique("channel");
    let topology = topology(&name, Some("#"));
    let _cleanup = Cleanup(topology.clone());
    let mut sink = AmqpSink::new(sink_config(&name, &topology)).unwrap();
    sink.write(&events(3, &["a"])).await.unwrap();
    // Someone deletes the exchange: publishing to it closes the channel (404).
    let (_connection, channel) = broker().await;
    channel
        .exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
    let error = sink.write(&events(3, &["b"])).await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("NOT_FOUND"), "{error}");
    // The next write opens a new session, declares the topology again, and succeeds.
    sink.write(&events(3, &["c"])).await.unwrap();
    let apps: Vec<String> = drain(&channel, &name)
        .await
        .iter()
        .flat_map(decode)
        .map(|e| e.app_name.unwrap().to_string())
        .collect();
    assert_eq!(apps, ["a", "a", "a", "c", "c", "c"]);
}

/// The broker's process id of the connection named `name`.
fn connection_pid(name: &str) -> Option<String> {
    let output = std::process::Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "pid",
            "client_properties",
            "--no-table-headers",
            "-q",
        ])
        .output()
        .expect("rabbitmqctl runs (it comes with RabbitMQ: `bash scripts/services.sh`)");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find(|line| line.contains(name))
        .and_then(|line| line.split_whitespace().next())
        .map(str::to_owned)
}

#[tokio::test]
async fn a_connection_closed_by_the_broker_is_reopened() {
    let name = unique("closed");
    let topology = topology(&name, Some("#"));
    let _cleanup = Cleanup(topology.clone());
    let mut sink = AmqpSink::new(sink_config(&name, &topology)).unwrap();
    sink.write(&events(2, &["before"])).await.unwrap();
    let pid = connection_pid(&name).expect("the sink's named connection is listed");
    let status = std::process::Command::new("rabbitmqctl")
        .args(["close_connection", &pid, "loggr test: broken connection"])
        .status()
        .unwrap();
    assert!(status.success());
    // The write after the break either notices the closed connection and reconnects, or fails
    // transiently; the one after that succeeds at the latest.
    let batch = events(2, &["after"]);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match sink.write(&batch).await {
            Ok(()) => break,
            Err(error) => {
                assert!(error.is_transient(), "{error}");
                assert!(attempts < 2, "still failing: {error}");
            }
        }
    }
    let new_pid = connection_pid(&name).expect("a new connection with the same name");
    assert_ne!(new_pid, pid);
    let (_connection, channel) = broker().await;
    let apps: Vec<String> = drain(&channel, &name)
        .await
        .iter()
        .flat_map(decode)
        .map(|e| e.app_name.unwrap().to_string())
        .collect();
    assert_eq!(&apps[..2], ["before", "before"]);
    assert!(
        apps[2..].iter().all(|app| app == "after") && apps.len() >= 4,
        "{apps:?}"
    );
}
