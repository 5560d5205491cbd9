//! The Redis spool against a real Redis: the sink appends, the source replays with the
//! reliable-queue pattern (removed only after commit, requeued on Retry, dead-lettered on
//! Reject, recovered after a crash), the eviction-policy guard, and the `fallback` sink that
//! spools while its primary is down.
//!
//! Uses the Redis at `LOGGR_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`) with unique
//! keys, and private `redis-server` processes for the tests that stop Redis or change its
//! configuration. Start the shared one with `bash scripts/services.sh`.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod support;

use std::time::{Duration, Instant};

use loggr::core::test_util::{numbered_events, CollectingSink};
use loggr::core::{
    async_trait, spool, CancellationToken, Event, Pipeline, PipelineOptions, Sink, SinkError,
};
use loggr::sinks::fallback::FallbackSink;
use loggr::sinks::redis_spool::{RedisSpoolSink, RedisSpoolSinkConfig};
use loggr::sources::redis_spool::{RedisSpoolSource, RedisSpoolSourceConfig};
use support::PrivateRedis;

fn redis_url() -> String {
    std::env::var("LOGGR_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn unique_key(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("loggr-test:{test}:{}:{nanos}", std::process::id())
}

async fn redis(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).unwrap();
    match client.get_multiplexed_async_connection().await {
        Ok(connection) => connection,
        Err(error) => panic!(
            "Redis is not reachable at {url} ({error}): start it with `bash scripts/services.sh` \
             or set LOGGR_TEST_REDIS_URL"
        ),
    }
}

async fn llen(connection: &mut redis::aio::MultiplexedConnection, key: &str) -> u64 {
    redis::cmd("LLEN")
        .arg(key)
        .query_async(connection)
        .await
        .unwrap()
}

async fn cleanup(connection: &mut redis::aio::MultiplexedConnection, key: &str) {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{key}*"))
        .query_async(connection)
        .await
        .unwrap();
    for key in keys {
        let _: () = redis::cmd("DEL")
            .arg(key)
            .query_async(connection)
            .await
            .unwrap();
    }
}

fn messages(events: &[Event]) -> Vec<String> {
    let mut messages: Vec<String> = events.iter().map(|e| e.message_str().to_owned()).collect();
    messages.sort();
    messages
}

/// Runs a pipeline until `done` says so (or fails the test after 30 s), then shuts it down.
async fn run_until(pipeline: Pipeline, done: impl Fn() -> bool) {
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(pipeline.run(shutdown.clone()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "the pipeline did not finish in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    let _ = running.await.unwrap();
}

fn source_config(key: &str, consumer: &str) -> RedisSpoolSourceConfig {
    let mut config = RedisSpoolSourceConfig::new(redis_url(), key, consumer);
    config.poll_interval = Duration::from_millis(100);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spooled_events_are_replayed_exactly_and_removed_only_after_commit() {
    let key = unique_key("replay");
    let mut connection = redis(&redis_url()).await;
    let mut config = RedisSpoolSinkConfig::new(redis_url(), &key);
    config.max_entry_events = 100;
    let mut sink = RedisSpoolSink::new(config).unwrap();
    let events = numbered_events("spooled", 1050);
    sink.write(&events[..1000]).await.unwrap();
    sink.write(&events[1000..]).await.unwrap();
    // 1000 events in entries of 100, then 50 in one.
    assert_eq!(llen(&mut connection, &key).await, 11);

    let source = RedisSpoolSource::new(source_config(&key, "a")).unwrap();
    let collected = CollectingSink::new();
    let pipeline = Pipeline::builder()
        .source("spool", source)
        .sink("memory", collected.clone())
        .build()
        .unwrap();
    let watched = collected.clone();
    run_until(pipeline, move || watched.len() >= 1050).await;

    assert_eq!(messages(&collected.events()), messages(&events));
    assert_eq!(llen(&mut connection, &key).await, 0, "the spool is empty");
    let processing = spool::processing_key(&key, "a");
    assert_eq!(
        llen(&mut connection, &processing).await,
        0,
        "nothing left in processing"
    );
    cleanup(&mut connection, &key).await;
}

/// A sink that refuses every event permanently (a poison stage).
struct Refusing;

#[async_trait]
impl Sink for Refusing {
    async fn write(&mut self, _events: &[Event]) -> Result<(), SinkError> {
        Err(SinkError::permanent("refused"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_and_undecodable_entries_go_to_the_dead_letter_list() {
    let key = unique_key("dead");
    let mut connection = redis(&redis_url()).await;
    let mut sink = RedisSpoolSink::new(RedisSpoolSinkConfig::new(redis_url(), &key)).unwrap();
    sink.write(&numbered_events("poison", 3)).await.unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg(&key)
        .arg("not a spool entry")
        .query_async(&mut connection)
        .await
        .unwrap();

    let source = RedisSpoolSource::new(source_config(&key, "a")).unwrap();
    let pipeline = Pipeline::builder()
        .source("spool", source)
        .sink("refusing", Refusing)
        .build()
        .unwrap();
    let dead = spool::dead_letter_key(&key);
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(pipeline.run(shutdown.clone()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while llen(&mut connection, &dead).await < 2 {
        assert!(
            Instant::now() < deadline,
            "entries did not reach the dead-letter list"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    let _ = running.await.unwrap();

    assert_eq!(llen(&mut connection, &key).await, 0);
    assert_eq!(
        llen(&mut connection, &spool::processing_key(&key, "a")).await,
        0
    );
    let dead_entries: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg(&dead)
        .arg(0)
        .arg(-1)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(
        dead_entries.len(),
        2,
        "both entries kept, in the dead-letter list"
    );
    assert!(dead_entries
        .iter()
        .any(|entry| entry == b"not a spool entry"));
    assert!(dead_entries
        .iter()
        .any(|entry| spool::decode_entry(entry).is_ok()));
    cleanup(&mut connection, &key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_a_crashed_consumer_are_recovered_and_retried_ones_stay_spooled() {
    let key = unique_key("recover");
    let mut connection = redis(&redis_url()).await;
    let mut sink = RedisSpoolSink::new(RedisSpoolSinkConfig::new(redis_url(), &key)).unwrap();
    sink.write(&numbered_events("first", 5)).await.unwrap();
    sink.write(&numbered_events("second", 5)).await.unwrap();
    // A consumer took the first entry and crashed before settling it.
    let processing = spool::processing_key(&key, "a");
    let _: Vec<u8> = redis::cmd("LMOVE")
        .arg(&key)
        .arg(&processing)
        .arg("LEFT")
        .arg("RIGHT")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(llen(&mut connection, &key).await, 1);

    // A downstream that never commits: at shutdown the tokens come back as Retry, and both
    // entries must end up back in the spool (nothing lost, nothing stranded in processing).
    let (stalled, mut controller) = loggr::core::test_util::ControlledSink::new();
    let source = RedisSpoolSource::new(source_config(&key, "a")).unwrap();
    let options = PipelineOptions {
        grace_period: Duration::from_millis(500),
        ..PipelineOptions::default()
    };
    let pipeline = Pipeline::builder()
        .options(options)
        .source("spool", source)
        .sink("stalled", stalled)
        .build()
        .unwrap();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(pipeline.run(shutdown.clone()));
    let write = tokio::time::timeout(Duration::from_secs(10), controller.next_write())
        .await
        .unwrap()
        .unwrap();
    // The recovered entry comes first: the crashed consumer's work is not starved.
    assert!(write.events[0].message_str().starts_with("first"));
    write.fail(SinkError::transient("downstream down"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    shutdown.cancel();
    let _ = running.await.unwrap();

    assert_eq!(
        llen(&mut connection, &processing).await,
        0,
        "processing list drained"
    );
    assert_eq!(
        llen(&mut connection, &key).await,
        2,
        "both entries back in the spool"
    );

    // And a healthy consumer then delivers all ten.
    let collected = CollectingSink::new();
    let pipeline = Pipeline::builder()
        .source(
            "spool",
            RedisSpoolSource::new(source_config(&key, "b")).unwrap(),
        )
        .sink("memory", collected.clone())
        .build()
        .unwrap();
    let watched = collected.clone();
    run_until(pipeline, move || watched.len() >= 10).await;
    let mut expected = numbered_events("first", 5);
    expected.extend(numbered_events("second", 5));
    assert_eq!(messages(&collected.events()), messages(&expected));
    assert_eq!(llen(&mut connection, &key).await, 0);
    cleanup(&mut connection, &key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_may_evict_keys_is_refused() {
    let server = PrivateRedis::start();
    let mut connection = redis(&server.url()).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query_async(&mut connection)
        .await
        .unwrap();
    let mut sink = RedisSpoolSink::new(RedisSpoolSinkConfig::new(server.url(), "spool")).unwrap();
    let error = sink.write(&numbered_events("x", 1)).await.unwrap_err();
    assert!(
        !error.is_transient(),
        "a configuration problem is permanent: {error}"
    );
    assert!(error.to_string().contains("allkeys-lru"), "{error}");
    assert_eq!(llen(&mut connection, "spool").await, 0, "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_survives_a_redis_restart_and_refuses_a_full_spool() {
    let server = PrivateRedis::start();
    let mut config = RedisSpoolSinkConfig::new(server.url(), "spool");
    config.max_length = Some(2);
    config.timeout = Duration::from_secs(1);
    let mut sink = RedisSpoolSink::new(config).unwrap();
    sink.write(&numbered_events("before", 3)).await.unwrap();

    let mut server = server;
    server.kill();
    let port = server.port;
    let error = sink.write(&numbered_events("during", 3)).await.unwrap_err();
    assert!(error.is_transient(), "Redis down is transient: {error}");

    let server = PrivateRedis::start_on(port);
    // The restarted server is empty (no persistence here); the sink reconnects by itself.
    sink.write(&numbered_events("after", 3)).await.unwrap();
    sink.write(&numbered_events("after2", 3)).await.unwrap();
    let mut connection = redis(&server.url()).await;
    assert_eq!(llen(&mut connection, "spool").await, 2);
    let error = sink
        .write(&numbered_events("overflow", 1))
        .await
        .unwrap_err();
    assert!(
        error.is_transient() && error.to_string().contains("full"),
        "{error}"
    );
    assert_eq!(
        llen(&mut connection, "spool").await,
        2,
        "a full spool takes nothing more"
    );
}

/// A primary sink that fails while its switch is off.
struct Switchable {
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    written: CollectingSink,
}

#[async_trait]
impl Sink for Switchable {
    async fn write(&mut self, events: &[Event]) -> Result<(), SinkError> {
        if self.up.load(std::sync::atomic::Ordering::SeqCst) {
            self.written.write(events).await
        } else {
            Err(SinkError::transient("broker unreachable"))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_spools_while_the_primary_is_down_and_fails_when_both_are() {
    let server = PrivateRedis::start();
    let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let primary = CollectingSink::new();
    let mut config = RedisSpoolSinkConfig::new(server.url(), "spool");
    config.timeout = Duration::from_secs(1);
    let mut sink = FallbackSink::new(
        Box::new(Switchable {
            up: up.clone(),
            written: primary.clone(),
        }),
        Box::new(RedisSpoolSink::new(config).unwrap()),
        Duration::from_millis(200),
    );
    let mut connection = redis(&server.url()).await;

    sink.write(&numbered_events("a", 2)).await.unwrap();
    assert_eq!(primary.len(), 2);
    assert_eq!(llen(&mut connection, "spool").await, 0);

    up.store(false, std::sync::atomic::Ordering::SeqCst);
    sink.write(&numbered_events("b", 2)).await.unwrap();
    assert!(sink.primary_is_down());
    assert_eq!(
        llen(&mut connection, "spool").await,
        1,
        "spooled while the primary is down"
    );

    let mut server = server;
    server.kill();
    let error = sink.write(&numbered_events("c", 2)).await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("both sinks failed"), "{error}");

    // The primary comes back while the secondary is still down: after the probe interval,
    // writes go to the primary again.
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(250)).await;
    sink.write(&numbered_events("d", 2)).await.unwrap();
    assert!(!sink.primary_is_down());
    assert_eq!(
        messages(&primary.events()),
        vec!["a 0", "a 1", "d 0", "d 1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_reconnects_after_a_redis_restart() {
    let server = PrivateRedis::start();
    let port = server.port;
    let mut sink = RedisSpoolSink::new(RedisSpoolSinkConfig::new(server.url(), "spool")).unwrap();
    sink.write(&numbered_events("before", 3)).await.unwrap();

    let mut config = RedisSpoolSourceConfig::new(server.url(), "spool", "a");
    config.poll_interval = Duration::from_millis(100);
    config.timeout = Duration::from_secs(1);
    let collected = CollectingSink::new();
    let pipeline = Pipeline::builder()
        .source("spool", RedisSpoolSource::new(config).unwrap())
        .sink("memory", collected.clone())
        .build()
        .unwrap();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(pipeline.run(shutdown.clone()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while collected.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the first entry was not replayed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut server = server;
    server.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server = PrivateRedis::start_on(port);
    // The sink's first write notices the broken connection (transient); the retry reconnects,
    // as the sink runner would do.
    let after = numbered_events("after", 3);
    if sink.write(&after).await.is_err() {
        sink.write(&after).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while collected.len() < 6 {
        assert!(
            Instant::now() < deadline,
            "the source did not reconnect: {} events",
            collected.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    let _ = running.await.unwrap();
    let mut connection = redis(&server.url()).await;
    assert_eq!(llen(&mut connection, "spool").await, 0);
    assert_eq!(
        llen(&mut connection, &spool::processing_key("spool", "a")).await,
        0
    );
}
