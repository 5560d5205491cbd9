//! Two pipelines configured in TOML and built through the registry, joined by RabbitMQ:
//! syslog over TCP → `amqp` sink (declaring the topology) → broker → `amqp` source → file.
//! Every line arrives once, parsed, and the queue is left empty.
//!
//! Uses the broker at `LOGGR_TEST_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`)
//! with an exchange and queue named for the test and deleted at the end. Start it with
//! `bash scripts/services.sh`.

#![cfg(feature = "amqp")]
#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::io::Write;
use std::time::{Duration, Instant};

use loggr::amqp::lapin::options::QueueDeclareOptions;
use loggr::amqp::lapin::types::FieldTable;
use loggr::amqp::{delete_topology, TopologyConfig};
use loggr::{CancellationToken, Event, PipelineBuilder, PipelineConfig};

mod support;

use support::free_port;

fn amqp_url() -> String {
    std::env::var("LOGGR_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Deletes the test's topology when dropped, even after a failed assertion (best effort).
struct Cleanup(TopologyConfig);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let topology = self.0.clone();
        let cleaner = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let connected =
                    loggr::amqp::connect(&amqp_url(), "loggr-test-cleanup", Duration::from_secs(5))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_crosses_rabbitmq_between_two_configured_pipelines() {
    let url = amqp_url();
    let (connection, channel) =
        match loggr::amqp::connect(&url, "loggr-test-pipeline", Duration::from_secs(10)).await {
            Ok(connection) => {
                let channel = connection.create_channel().await.unwrap();
                (connection, channel)
            }
            Err(error) => panic!(
            "RabbitMQ is not reachable at {} ({error}): start it with `bash scripts/services.sh`",
            loggr::amqp::redact_url(&url)
        ),
        };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("loggr-test-pipeline-{}-{nanos}", std::process::id());
    let topology_toml = format!(
        r#"
        exchanges = [{{ name = "{name}", type = "topic" }}]
        queues = [{{ name = "{name}", type = "quorum", dead_letter = {{ exchange = "{name}.dlx", queue = "{name}.dead" }} }}]
        bindings = [{{ queue = "{name}", exchange = "{name}", routing_key = "loggr.#" }}]
        "#
    );
    let topology: TopologyConfig = toml::from_str(&topology_toml).unwrap();
    let _cleanup = Cleanup(topology.clone());
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");

    let registry = loggr::registry().unwrap();
    let ingest = PipelineConfig::from_toml(&format!(
        r#"
        [[sources]]
        type = "tcp"
        address = "127.0.0.1:{port}"

        [[sinks]]
        type = "amqp"
        url = "{url}"
        exchange = "{name}"
        routing_key = "loggr.{{app_name}}"
        compression = "lz4"
        max_events_per_message = 50
        declare = true
        batch = {{ max_events = 200, linger = "20ms" }}
        [sinks.topology]
        {topology_toml}
        "#
    ))
    .unwrap();
    let store = PipelineConfig::from_toml(&format!(
        r#"
        [pipeline]
        grace_period = "5s"

        [[sources]]
        type = "amqp"
        url = "{url}"
        queue = "{name}"
        prefetch = 8
        declare = true
        [sources.topology]
        {topology_toml}

        [[sinks]]
        type = "file"
        path = "{}"
        "#,
        out.display()
    ))
    .unwrap();
    let ingest = PipelineBuilder::from_config(ingest, &registry)
        .unwrap()
        .build()
        .unwrap();
    let store = PipelineBuilder::from_config(store, &registry)
        .unwrap()
        .build()
        .unwrap();
    let stop_ingest = CancellationToken::new();
    let stop_store = CancellationToken::new();
    let ingest = tokio::spawn(ingest.run(stop_ingest.clone()));
    let store = tokio::spawn(store.run(stop_store.clone()));

    // Send syslog lines once the listener is up.
    let lines = 500;
    let started = Instant::now();
    let mut stream = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("the tcp source did not listen: {error}"),
        }
    };
    let mut text = String::new();
    for i in 0..lines {
        let app = if i % 2 == 0 { "sshd" } else { "cron" };
        text.push_str(&format!(
            "<38>1 2026-11-21T10:00:00Z web1 {app} 42 - - line {i}\n"
        ));
    }
    stream.write_all(text.as_bytes()).unwrap();
    drop(stream);

    let read = || -> Vec<Event> {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    let started = Instant::now();
    while read().len() < lines {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} of {lines} lines arrived",
            read().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_ingest.cancel();
    ingest.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop_store.cancel();
    store.await.unwrap().unwrap();

    let events = read();
    assert_eq!(events.len(), lines, "each line exactly once");
    let mut numbers: Vec<usize> = events
        .iter()
        .map(|e| e.message_str().trim_start_matches("line ").parse().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (0..lines).collect::<Vec<_>>());
    assert!(events
        .iter()
        .all(|e| e.hostname.as_deref() == Some("web1") && e.procid.as_deref() == Some("42")));
    let left = channel
        .queue_declare(
            name.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count();
    assert_eq!(left, 0, "every delivery acknowledged");
    drop(connection);
}
