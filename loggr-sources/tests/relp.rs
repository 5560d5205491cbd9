//! The RELP source over real sockets: `200` only after the sink committed, `500` (and a resend
//! by the client) while the sink fails, never `200` from a sink that never commits.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use loggr_core::test_util::CollectingSink;
use loggr_core::{
    async_trait, CancellationToken, Event, Pipeline, RetryConfig, Sink, SinkError, SinkOptions,
};
use loggr_relp::{Client, ClientConfig};
use loggr_sources::{RelpConfig, RelpSource};
use tokio::net::TcpListener;

async fn relp_source() -> (RelpSource, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    (
        RelpSource::with_listener(RelpConfig::new(address), listener),
        address.to_string(),
    )
}

fn client_config() -> ClientConfig {
    ClientConfig {
        window: 64,
        reconnect_backoff: (Duration::from_millis(10), Duration::from_millis(100)),
        ..ClientConfig::default()
    }
}

/// Fails a number of writes transiently (refusing them fast), then stores.
#[derive(Clone, Default)]
struct RecoveringSink {
    failures_left: Arc<AtomicUsize>,
    stored: CollectingSink,
}

#[async_trait]
impl Sink for RecoveringSink {
    async fn write(&mut self, events: &[Event]) -> Result<(), SinkError> {
        if self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(SinkError::transient("database restarting"));
        }
        self.stored.write(events).await
    }
}

/// Gives each batch back after one attempt, so that the source answers `500` quickly.
fn one_attempt() -> SinkOptions {
    SinkOptions {
        retry: RetryConfig {
            max_attempts: Some(1),
            ..RetryConfig::default()
        },
        ..SinkOptions::default()
    }
}

fn messages(prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("<134>1 2026-11-21T10:00:00Z host app - - - {prefix} {i}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_acknowledged_after_the_sink_committed() {
    let (source, address) = relp_source().await;
    let sink = CollectingSink::new();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(
        Pipeline::builder()
            .source("relp", source)
            .sink("collect", sink.clone())
            .build()
            .unwrap()
            .run(shutdown.clone()),
    );
    let mut client = Client::connect(&address, client_config()).await.unwrap();
    for message in messages("ok", 5000) {
        client.send(message.into()).await.unwrap();
    }
    client.flush().await.unwrap();
    // Everything acknowledged is already stored: the ack came after the commit.
    assert_eq!(sink.len(), 5000);
    let stats = client.close().await.unwrap();
    assert_eq!(stats.acked, 5000);
    assert_eq!(stats.refused, 0);
    let stored = sink.events();
    assert_eq!(stored[4999].message_str(), "ok 4999");
    assert_eq!(
        stored[0].field("syslog_protocol").unwrap().to_string(),
        "relp"
    );
    shutdown.cancel();
    run.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_fails_then_recovers_costs_resends_not_messages() {
    let (source, address) = relp_source().await;
    let sink = RecoveringSink {
        failures_left: Arc::new(AtomicUsize::new(5)),
        ..RecoveringSink::default()
    };
    let shutdown = CancellationToken::new();
    let pipeline = Pipeline::builder()
        .source("relp", source)
        .sink_with("recovering", sink.clone(), one_attempt())
        .build()
        .unwrap();
    let metrics = pipeline.metrics().clone();
    let run = tokio::spawn(pipeline.run(shutdown.clone()));
    let mut client = Client::connect(&address, client_config()).await.unwrap();
    for message in messages("retry", 2000) {
        client.send(message.into()).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(30), client.flush())
        .await
        .unwrap()
        .unwrap();
    let stats = client.close().await.unwrap();
    assert!(
        stats.refused > 0,
        "the client saw 500s while the sink failed: {stats:?}"
    );
    assert!(stats.resent > 0, "and resent those messages: {stats:?}");
    let stored: std::collections::BTreeSet<String> = sink
        .stored
        .events()
        .iter()
        .map(|e| e.message_str().to_owned())
        .collect();
    let expected: std::collections::BTreeSet<String> =
        (0..2000).map(|i| format!("retry {i}")).collect();
    assert_eq!(stored, expected, "0 lost");
    let text = metrics.render_prometheus();
    let acked = format!(
        "loggr_events_delivered_total{{component_kind=\"source\",component=\"relp\"}} {}",
        stats.acked
    );
    let nacked = format!(
        "loggr_events_retried_total{{component_kind=\"source\",component=\"relp\"}} {}",
        stats.refused
    );
    assert!(
        text.contains(&acked) && text.contains(&nacked),
        "acks and nacks per listener: {text}"
    );
    shutdown.cancel();
    run.await.unwrap().unwrap();
}

struct AlwaysDown;

#[async_trait]
impl Sink for AlwaysDown {
    async fn write(&mut self, _: &[Event]) -> Result<(), SinkError> {
        Err(SinkError::transient("disk gone"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_never_commits_never_earns_a_200() {
    let (source, address) = relp_source().await;
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(
        Pipeline::builder()
            .source("relp", source)
            .sink_with("down", AlwaysDown, one_attempt())
            .options(loggr_core::PipelineOptions {
                grace_period: Duration::from_secs(1),
                ..Default::default()
            })
            .build()
            .unwrap()
            .run(shutdown.clone()),
    );
    let config = ClientConfig {
        resend_refused: false,
        ..client_config()
    };
    let mut client = Client::connect(&address, config).await.unwrap();
    for message in messages("lost?", 50) {
        client.send(message.into()).await.unwrap();
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
    let stats = client.stats();
    assert_eq!(
        stats.acked, 0,
        "no 200 for anything not committed: {stats:?}"
    );
    assert!(stats.refused > 0, "the client was told: {stats:?}");
    shutdown.cancel();
    run.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relp_session_is_listed_while_it_is_open() {
    let (source, address) = relp_source().await;
    let shutdown = CancellationToken::new();
    let pipeline = Pipeline::builder()
        .source("relp_in", source)
        .sink("collect", CollectingSink::new())
        .build()
        .unwrap();
    let metrics = pipeline.metrics().clone();
    let run = tokio::spawn(pipeline.run(shutdown.clone()));
    let listed = || {
        metrics
            .connections()
            .connections
            .iter()
            .map(|c| (c.listener.clone(), c.peer.clone(), c.protocol))
            .collect::<Vec<_>>()
    };

    let mut client = Client::connect(&address, client_config()).await.unwrap();
    for message in messages("listed", 3) {
        client.send(message.into()).await.unwrap();
    }
    client.flush().await.unwrap();
    let rows = listed();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "relp_in");
    assert!(rows[0].1.starts_with("127.0.0.1:"), "{rows:?}");
    assert_eq!(rows[0].2, "relp");

    client.close().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !listed().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still listed after close: {:?}",
            listed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    run.await.unwrap().unwrap();
}
