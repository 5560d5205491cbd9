//! The `amqp` source against the real RabbitMQ: a delivery is acknowledged only after its
//! events were committed (the queue empties), requeued and delivered again on Retry,
//! dead-lettered on Reject; a consumer that dies without acknowledging loses nothing; any
//! body (batches, single JSON events, plain text, undecodable lines) becomes events.
//!
//! Uses the broker at `LOGGR_TEST_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`)
//! with queues named for the test and deleted at the end. Start it with
//! `bash scripts/services.sh`.

#![cfg(feature = "amqp")]
#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};

use loggr_core::test_util::{CollectingSink, ControlledSink};
use loggr_core::wire::{self, Compression, WireEncoder, WIRE_DECODE_FAILURE_TAG};
use loggr_core::{
    async_trait, CancellationToken, Event, Pipeline, PipelineOptions, RetryConfig, Sink, SinkError,
    SinkOptions,
};
use loggr_sources::amqp::{AmqpSource, AmqpSourceConfig};

use loggr_amqp::topology::{DeadLetterConfig, QueueConfig, QueueType};
use loggr_amqp::{delete_topology, TopologyConfig};

fn amqp_url() -> String {
    std::env::var("LOGGR_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("loggr-test-source-{test}-{}-{nanos}", std::process::id())
}

async fn broker() -> (Connection, Channel) {
    let url = amqp_url();
    let connection =
        loggr_amqp::connect(&url, "loggr-test-source-helper", Duration::from_secs(10))
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "RabbitMQ is not reachable at {} ({error}): start it with `bash scripts/services.sh`",
                    loggr_amqp::redact_url(&url)
                )
            });
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    (connection, channel)
}

/// A durable queue `name` with a dead-letter queue `name.dead`.
fn topology(name: &str, kind: QueueType) -> TopologyConfig {
    TopologyConfig {
        queues: vec![QueueConfig {
            name: name.to_owned(),
            kind,
            durable: true,
            auto_delete: false,
            dead_letter: Some(DeadLetterConfig {
                exchange: format!("{name}.dlx"),
                queue: format!("{name}.dead"),
            }),
            delivery_limit: None,
            max_length: None,
        }],
        ..TopologyConfig::default()
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

/// Declares the topology and returns its cleanup guard.
async fn declared(topology: TopologyConfig) -> Cleanup {
    let (_connection, channel) = broker().await;
    loggr_amqp::declare_topology(&channel, &topology)
        .await
        .unwrap();
    Cleanup(topology)
}

fn events(prefix: &str, count: usize) -> Vec<Event> {
    (0..count)
        .map(|i| {
            let mut event = Event::new(format!("{prefix} {i}"));
            event.set_field("n", i as i64);
            event
        })
        .collect()
}

/// Publishes `events` to `queue` in messages of `per_message`, waiting for the confirms.
async fn publish(channel: &Channel, queue: &str, events: &[Event], per_message: usize) {
    let mut encoder = WireEncoder::new(per_message, 1 << 20, Compression::Lz4);
    let messages: Vec<_> = encoder.encode(events).collect();
    for message in messages {
        publish_raw(
            channel,
            queue,
            Some(message.content_type),
            message.content_encoding,
            &message.body,
        )
        .await;
    }
}

async fn publish_raw(
    channel: &Channel,
    queue: &str,
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
) {
    let mut properties = BasicProperties::default().with_delivery_mode(2);
    if let Some(content_type) = content_type {
        properties = properties.with_content_type(content_type.into());
    }
    if let Some(encoding) = content_encoding {
        properties = properties.with_content_encoding(encoding.into());
    }
    let confirm = channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions {
                mandatory: true,
                immediate: false,
            },
            body,
            properties,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(confirm, lapin::Confirmation::Ack(None));
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

fn source(queue: &str) -> AmqpSource {
    let mut config = AmqpSourceConfig::new(amqp_url(), queue);
    config.connection_name = Some(format!("{queue}-consumer"));
    config.prefetch = 4;
    config.shutdown_grace = Duration::from_secs(2);
    AmqpSource::new(config).unwrap()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn options() -> PipelineOptions {
    PipelineOptions {
        grace_period: Duration::from_secs(5),
        ..PipelineOptions::default()
    }
}

#[tokio::test]
async fn committed_deliveries_are_acknowledged_and_the_queue_empties() {
    let name = unique("ack");
    let _cleanup = declared(topology(&name, QueueType::Classic)).await;
    let (_connection, channel) = broker().await;
    let batch = events("batched", 250);
    publish(&channel, &name, &batch, 100).await; // 3 messages
    let single = Event::new("alone");
    publish(&channel, &name, std::slice::from_ref(&single), 100).await;
    publish_raw(&channel, &name, None, None, b"<13>plain syslog line\n").await;
    let mut corrupt = Vec::new();
    loggr_core::encode::json(&mut corrupt, &batch[0]);
    corrupt.extend_from_slice(b"\n{\"truncated\n");
    publish_raw(
        &channel,
        &name,
        Some(wire::BATCH_CONTENT_TYPE),
        None,
        &corrupt,
    )
    .await;
    assert_eq!(queue_length(&channel, &name).await, 6);

    let sink = CollectingSink::new();
    let shutdown = CancellationToken::new();
    let pipeline = Pipeline::builder()
        .source("amqp", source(&name))
        .sink("memory", sink.clone())
        .options(options())
        .build()
        .unwrap();
    let running = tokio::spawn(pipeline.run(shutdown.clone()));
    wait_for("every event", || sink.len() == 250 + 1 + 1 + 2).await;
    // Let the acknowledgements reach the broker, then stop: nothing may be requeued.
    shutdown.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(
        queue_length(&channel, &name).await,
        0,
        "every delivery acked"
    );
    assert_eq!(queue_length(&channel, &format!("{name}.dead")).await, 0);

    let received = sink.events();
    assert_eq!(
        received[..250],
        batch[..],
        "batches decode to the very events"
    );
    assert_eq!(received[250], single);
    assert_eq!(received[251].message_str(), "<13>plain syslog line");
    assert_eq!(received[252], batch[0]);
    assert!(received[253].has_tag(WIRE_DECODE_FAILURE_TAG));
    assert_eq!(received[253].raw.as_deref(), Some(&b"{\"truncated"[..]));
}

#[tokio::test]
async fn a_retried_delivery_is_requeued_and_delivered_again() {
    let name = unique("retry");
    let _cleanup = declared(topology(&name, QueueType::Classic)).await;
    let (_connection, channel) = broker().await;
    let sent = events("retry", 10);
    publish(&channel, &name, &sent, 10).await;

    let (sink, mut controller) = ControlledSink::new();
    // One failed attempt gives the events back as Retry.
    let sink_options = SinkOptions {
        retry: RetryConfig {
            max_attempts: Some(1),
            ..RetryConfig::default()
        },
        ..SinkOptions::default()
    };
    let shutdown = CancellationToken::new();
    let pipeline = Pipeline::builder()
        .source("amqp", source(&name))
        .sink_with("controlled", sink, sink_options)
        .options(options())
        .build()
        .unwrap();
    let running = tokio::spawn(pipeline.run(shutdown.clone()));
    let first = controller.next_write().await.unwrap();
    assert_eq!(first.events, sent);
    first.fail(SinkError::transient("store down"));
    // basic.nack with requeue: the broker delivers the same message again.
    let second = tokio::time::timeout(Duration::from_secs(10), controller.next_write())
        .await
        .expect("the message is delivered again")
        .unwrap();
    assert_eq!(second.events, sent);
    second.succeed();
    shutdown.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(queue_length(&channel, &name).await, 0);
    assert_eq!(queue_length(&channel, &format!("{name}.dead")).await, 0);
}

/// Refuses every event for good.
struct Poisoned(Arc<AtomicUsize>);

#[async_trait]
impl Sink for Poisoned {
    async fn write(&mut self, events: &[Event]) -> Result<(), SinkError> {
        self.0.fetch_add(events.len(), Ordering::SeqCst);
        Err(SinkError::permanent("malformed for this store"))
    }
}

#[tokio::test]
async fn a_rejected_delivery_lands_in_the_dead_letter_queue() {
    let name = unique("reject");
    let _cleanup = declared(topology(&name, QueueType::Quorum)).await;
    let (_connection, channel) = broker().await;
    let sent = events("poison", 4);
    publish(&channel, &name, &sent, 10).await;

    let writes = Arc::new(AtomicUsize::new(0));
    let shutdown = CancellationToken::new();
    let pipeline = Pipeline::builder()
        .source("amqp", source(&name))
        .sink("poisoned", Poisoned(writes.clone()))
        .options(options())
        .build()
        .unwrap();
    let running = tokio::spawn(pipeline.run(shutdown.clone()));
    let dead = format!("{name}.dead");
    let started = Instant::now();
    while queue_length(&channel, &dead).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "nothing dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(queue_length(&channel, &name).await, 0, "not requeued");
    let letter = channel
        .basic_get(dead.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("the rejected message");
    let properties = &letter.delivery.properties;
    let decoded = wire::decode(
        properties.content_type().as_ref().map(|t| t.as_str()),
        properties.content_encoding().as_ref().map(|e| e.as_str()),
        &letter.delivery.data,
    );
    assert_eq!(decoded.events, sent, "the whole message, intact");
    assert!(writes.load(Ordering::SeqCst) >= sent.len());
}

#[tokio::test]
async fn a_consumer_killed_mid_stream_loses_nothing() {
    let name = unique("killed");
    let _cleanup = declared(topology(&name, QueueType::Classic)).await;
    let (_connection, channel) = broker().await;
    let sent = events("crash", 60);
    publish(&channel, &name, &sent, 5).await; // 12 messages, 4 in flight at a time

    // The first consumer commits its first write, then its store hangs; it is killed.
    let (sink, mut controller) = ControlledSink::new();
    let pipeline = Pipeline::builder()
        .source("amqp", source(&name))
        .sink("hanging", sink)
        .options(options())
        .build()
        .unwrap();
    let running = tokio::spawn(pipeline.run(CancellationToken::new()));
    let first = controller.next_write().await.unwrap();
    let committed = first.events.clone();
    assert!(!committed.is_empty() && committed.len() < sent.len());
    first.succeed();
    let stuck = controller.next_write().await.unwrap();
    assert!(!stuck.events.is_empty());
    // Give the acknowledgement of the committed write time to reach the broker.
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.abort();
    let _ = running.await;
    drop(stuck);

    // A second consumer gets everything that was not committed.
    let sink = CollectingSink::new();
    let shutdown = CancellationToken::new();
    let pipeline = Pipeline::builder()
        .source("amqp", source(&name))
        .sink("memory", sink.clone())
        .options(options())
        .build()
        .unwrap();
    let running = tokio::spawn(pipeline.run(shutdown.clone()));
    let expected = sent.len() - committed.len();
    wait_for("the redelivered events", || sink.len() >= expected).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(queue_length(&channel, &name).await, 0);
    let mut seen: Vec<String> = committed
        .iter()
        .chain(sink.events().iter())
        .map(|e| e.message_str().to_owned())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen.len(),
        sent.len(),
        "every event, committed once or redelivered"
    );
    assert_eq!(
        sink.len(),
        expected,
        "committed deliveries were acked, not redelivered"
    );
}

#[tokio::test]
async fn the_source_waits_for_the_broker_and_consumes_what_appears() {
    // The queue does not exist yet: the source retries with backoff, then consumes.
    let name = unique("late");
    let topology = topology(&name, QueueType::Classic);
    let cleanup = Cleanup(topology.clone());
    let sink = CollectingSink::new();
    let shutdown = CancellationToken::new();
    let pipeline = Pipeline::builder()
        .source("amqp", source(&name))
        .sink("memory", sink.clone())
        .options(options())
        .build()
        .unwrap();
    let running = tokio::spawn(pipeline.run(shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_connection, channel) = broker().await;
    loggr_amqp::declare_topology(&channel, &topology)
        .await
        .unwrap();
    publish(&channel, &name, &events("late", 3), 10).await;
    wait_for("the events", || sink.len() == 3).await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    drop(cleanup);
}
