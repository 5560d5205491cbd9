//! AMQP throughput, side by side in one run against the real RabbitMQ (`LOGGR_TEST_AMQP_URL`,
//! default `amqp://guest:guest@127.0.0.1:5672/%2f`; start it with `bash scripts/services.sh`):
//!
//! 1. **bare**: one persistent message per event, `mandatory`, publisher confirms with up to
//!    1000 unconfirmed messages in flight: what a client that does not batch gets;
//! 2. **loggr hop**: memory source → `amqp` sink (batched messages, confirms) → RabbitMQ →
//!    `amqp` source (manual acks, prefetch 64) → null sink, every event acknowledged end to end,
//!    with and without lz4.
//!
//! ```text
//! cargo bench --features amqp --bench amqp            # LOGGR_BENCH_EVENTS=1000000 for more
//! ```
//!
//! `LOGGR_BENCH_BARE_EVENTS` sets the bare loop's count (default a fifth of the events, at least
//! 10,000; `0` skips it).
//!
//! Prints events/s and the CPU seconds spent by this process (both loggr sides) and by the
//! broker. Goal: the loggr hop at least 10x the bare loop.

#![allow(clippy::print_stdout)] // the table on stdout is the benchmark's output

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use loggr::amqp::lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueuePurgeOptions,
};
use loggr::amqp::lapin::types::FieldTable;
use loggr::amqp::lapin::{BasicProperties, Channel, Confirmation};
use loggr::amqp::topology::{BindingConfig, ExchangeConfig, QueueConfig};
use loggr::amqp::{declare_topology, delete_topology, TopologyConfig};
use loggr::core::ack::AckGroup;
use loggr::core::wire::Compression;
use loggr::core::{BatchConfig, NullSink, PipelineOptions, SinkOptions};
use loggr::sinks::amqp::{AmqpSink, AmqpSinkConfig};
use loggr::sources::amqp::{AmqpSource, AmqpSourceConfig};
use loggr::{
    async_trait, CancellationToken, Envelope, Event, Outcome, Pipeline, Severity, Source,
    SourceContext, SourceError,
};

const WINDOW: usize = 1000;

fn amqp_url() -> String {
    std::env::var("LOGGR_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn events_to_send() -> usize {
    std::env::var("LOGGR_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500_000)
}

/// A typical syslog event (about 420 bytes of canonical JSON).
fn template() -> Event {
    let mut event = Event::new(
        "Accepted publickey for deploy from 10.20.30.40 port 52144 ssh2: ED25519 SHA256:x1y2z3",
    );
    event.timestamp = Some(event.received_at);
    event.severity = Severity::Informational;
    event.hostname = Some("web-42.example.net".into());
    event.app_name = Some("sshd".into());
    event.procid = Some("31337".into());
    event.set_field("syslog_client_host", "10.20.30.40");
    event.set_field("syslog_server_port", 514i64);
    event.add_tag("auth");
    event
}

/// Emits clones of the template in acknowledged groups of 1000 and checks every outcome.
struct Template {
    event: Event,
    count: usize,
}

#[async_trait]
impl Source for Template {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let mut waiters = Vec::new();
        let mut left = self.count;
        while left > 0 {
            let n = left.min(1000);
            let (group, waiter) = AckGroup::new();
            let batch = (0..n)
                .map(|_| Envelope::new(self.event.clone(), group.token()))
                .collect();
            group.seal();
            waiters.push(waiter);
            cx.emitter()
                .send(batch)
                .await
                .map_err(|_| SourceError::other("closed"))?;
            left -= n;
        }
        for waiter in waiters {
            if waiter.await != Outcome::Delivered {
                return Err(SourceError::other("an event was not delivered"));
            }
        }
        Ok(())
    }
}

/// CPU seconds (user + system) of a process, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The broker's process (`beam.smp`), if it runs on this machine.
fn broker_pid() -> Option<String> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid = entry.file_name().to_string_lossy().into_owned();
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (comm.trim() == "beam.smp").then_some(pid)
        })
}

struct Measured {
    what: String,
    events: usize,
    elapsed: Duration,
    own_cpu: f64,
    broker_cpu: Option<f64>,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

async fn measure<F: std::future::Future<Output = anyhow::Result<usize>>>(
    what: String,
    run: F,
) -> anyhow::Result<Measured> {
    let broker = broker_pid();
    let own_before = cpu_seconds("self").unwrap_or(0.0);
    let broker_before = broker.as_deref().and_then(cpu_seconds);
    let started = Instant::now();
    let events = run.await?;
    let elapsed = started.elapsed();
    let own_cpu = cpu_seconds("self").unwrap_or(0.0) - own_before;
    let broker_cpu = broker
        .as_deref()
        .and_then(cpu_seconds)
        .zip(broker_before)
        .map(|(after, before)| after - before);
    Ok(Measured {
        what,
        events,
        elapsed,
        own_cpu,
        broker_cpu,
    })
}

/// One message per event, confirms with `WINDOW` in flight.
async fn bare_loop(channel: &Channel, queue: &str, count: usize) -> anyhow::Result<usize> {
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let body = serde_json::to_vec(&template())?;
    let mut in_flight = VecDeque::with_capacity(WINDOW);
    let check = |confirmation: Confirmation| {
        anyhow::ensure!(
            confirmation == Confirmation::Ack(None),
            "not confirmed: {confirmation:?}"
        );
        Ok(())
    };
    for _ in 0..count {
        if in_flight.len() >= WINDOW {
            if let Some(confirm) = in_flight.pop_front() {
                check(confirm.await?)?;
            }
        }
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                },
                &body,
                properties,
            )
            .await?;
        in_flight.push_back(confirm);
    }
    for confirm in in_flight {
        check(confirm.await?)?;
    }
    Ok(count)
}

/// Sink → broker → source → null, all acknowledged; returns when the null sink has them all.
async fn hop(
    exchange: &str,
    queue: &str,
    compression: Compression,
    count: usize,
) -> anyhow::Result<usize> {
    let null = NullSink::new();
    let stop_consumer = CancellationToken::new();
    let mut source = AmqpSourceConfig::new(amqp_url(), queue);
    source.prefetch = 64;
    let consumer = Pipeline::builder()
        .source("amqp", AmqpSource::new(source)?)
        .sink("null", null.clone())
        .build()?;
    let consumer = tokio::spawn(consumer.run(stop_consumer.clone()));

    let mut sink = AmqpSinkConfig::new(amqp_url(), exchange);
    sink.routing_key = "loggr.{app_name}".into();
    sink.compression = compression;
    let options = SinkOptions {
        batch: BatchConfig {
            max_events: 10_000,
            max_bytes: 64 << 20,
            linger: Duration::ZERO,
        },
        ..SinkOptions::default()
    };
    let producer = Pipeline::builder()
        .source(
            "memory",
            Template {
                event: template(),
                count,
            },
        )
        .sink_with("amqp", AmqpSink::new(sink)?, options)
        .options(PipelineOptions {
            channel_capacity: 64,
            ..PipelineOptions::default()
        })
        .build()?;
    let producer = tokio::spawn(producer.run(CancellationToken::new()));

    let started = Instant::now();
    while null.count() < count as u64 {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "only {} of {count} events arrived",
            null.count()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    producer.await??;
    stop_consumer.cancel();
    consumer.await??;
    anyhow::ensure!(
        null.count() == count as u64,
        "{} events arrived",
        null.count()
    );
    Ok(count)
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let url = amqp_url();
    let connection = loggr::amqp::connect(&url, "loggr-bench", Duration::from_secs(10))
        .await
        .with_context(|| {
            format!(
                "RabbitMQ is not reachable at {}: start it with `bash scripts/services.sh`",
                loggr::amqp::redact_url(&url)
            )
        })?;
    let channel = connection.create_channel().await?;
    let name = format!("loggr-bench-{}", std::process::id());
    let topology = TopologyConfig {
        exchanges: vec![ExchangeConfig {
            name: name.clone(),
            kind: Default::default(),
            durable: true,
            auto_delete: false,
        }],
        queues: vec![QueueConfig {
            name: name.clone(),
            kind: Default::default(),
            durable: true,
            auto_delete: false,
            dead_letter: None,
            delivery_limit: None,
            max_length: None,
        }],
        bindings: vec![BindingConfig {
            queue: name.clone(),
            exchange: name.clone(),
            routing_key: "loggr.#".into(),
        }],
    };
    declare_topology(&channel, &topology).await?;
    let result = compare(&channel, &name).await;
    let cleanup = connection.create_channel().await?;
    delete_topology(&cleanup, &topology).await?;
    result
}

async fn compare(channel: &Channel, name: &str) -> anyhow::Result<()> {
    let count = events_to_send();
    let bare_count = std::env::var("LOGGR_BENCH_BARE_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or((count / 5).max(10_000));
    let mut results = Vec::new();
    if bare_count > 0 {
        let bare = measure(
            format!("bare: 1 persistent msg/event, confirms, window {WINDOW}"),
            bare_loop(channel, name, bare_count),
        )
        .await?;
        channel
            .queue_purge(name.into(), QueuePurgeOptions::default())
            .await?;
        results.push(bare);
    }
    for (label, compression) in [("none", Compression::None), ("lz4", Compression::Lz4)] {
        let measured = measure(
            format!("loggr hop: sink → broker → source → null, 1000 events/msg, {label}"),
            hop(name, name, compression, count),
        )
        .await?;
        results.push(measured);
    }
    let left = channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?
        .message_count();
    anyhow::ensure!(left == 0, "{left} messages left in the queue");

    // Without the bare loop (LOGGR_BENCH_BARE_EVENTS=0) the ratios are to the first hop.
    let baseline = results.first().map_or(1.0, Measured::rate);
    println!(
        "{:<72} {:>9} {:>12} {:>8} {:>10} {:>9}",
        "", "events", "events/s", "x bare", "loggr CPU", "broker CPU"
    );
    for result in &results {
        println!(
            "{:<72} {:>9} {:>12.0} {:>8.1} {:>9.2}s {:>9}",
            result.what,
            result.events,
            result.rate(),
            result.rate() / baseline,
            result.own_cpu,
            result
                .broker_cpu
                .map_or_else(|| "-".to_owned(), |cpu| format!("{cpu:.2}s")),
        );
    }
    Ok(())
}
