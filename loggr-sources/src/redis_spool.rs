//! The `redis_spool` source: replays the Redis spool written by the `redis_spool` sink, with
//! Redis's reliable-queue pattern, so an entry leaves Redis only after every one of its events
//! was committed downstream.
//!
//! ```toml
//! [[sources]]
//! type = "redis_spool"
//! url = "redis://127.0.0.1:6379"
//! key = "loggr:spool"
//! consumer = "collector-1"   # names this consumer's processing list
//! window = 32                # entries in flight
//! ```
//!
//! For each entry: `BLMOVE spool → processing` (atomic), decode, hand the events on as one
//! acknowledgement group, then
//! - Delivered → `LREM processing` (the entry is gone for good);
//! - Retry → `LREM processing` + `LPUSH spool` in one `MULTI` (back at the head, in order);
//! - Rejected → `LREM processing` + `RPUSH dead-letter` in one `MULTI`.
//!
//! At start the consumer moves whatever its processing list holds (entries taken before a
//! crash) back to the head of the spool. An entry that cannot be decoded goes to the
//! dead-letter list (counted and logged), never dropped. An acknowledgement that cannot reach
//! Redis is retried until it can, or until the abort deadline; an entry whose removal never
//! happened is replayed after the restart (at-least-once).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use serde::Deserialize;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use loggr_core::ack::{AckGroup, Outcome, UnorderedAcks};
use loggr_core::metrics::ComponentMetrics;
use loggr_core::{
    async_trait, spool, wire, BoxError, BuildContext, Envelope, Source, SourceConfig,
    SourceContext, SourceError,
};

/// Configuration of the `redis_spool` source.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSpoolSourceConfig {
    /// Redis URL (default `redis://127.0.0.1:6379`).
    #[serde(default = "default_url")]
    pub url: String,
    /// The spool list (default `loggr:spool`).
    #[serde(default = "default_key")]
    pub key: String,
    /// This consumer's name, unique among the consumers of one spool: its processing list is
    /// `<key>:processing:<consumer>` (default `default`).
    #[serde(default = "default_consumer")]
    pub consumer: String,
    /// Where undecodable and rejected entries go (default `<key>:dead`).
    #[serde(default)]
    pub dead_letter_key: Option<String>,
    /// Entries in flight (taken, not yet acknowledged; default 32).
    #[serde(default = "default_window")]
    pub window: usize,
    /// How long one `BLMOVE` waits for an entry (default `1s`; also how quickly shutdown is
    /// noticed while the spool is empty).
    #[serde(default = "default_poll", with = "loggr_core::config::duration")]
    pub poll_interval: Duration,
    /// Connect and command timeout (default `5s`).
    #[serde(default = "default_timeout", with = "loggr_core::config::duration")]
    pub timeout: Duration,
    /// Refuse a Redis whose `maxmemory-policy` may evict the spool (default `true`).
    #[serde(default = "default_true")]
    pub check_eviction_policy: bool,
}

fn default_url() -> String {
    "redis://127.0.0.1:6379".to_owned()
}

fn default_key() -> String {
    "loggr:spool".to_owned()
}

fn default_consumer() -> String {
    "default".to_owned()
}

fn default_window() -> usize {
    32
}

fn default_poll() -> Duration {
    Duration::from_secs(1)
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_true() -> bool {
    true
}

impl RedisSpoolSourceConfig {
    /// Every default, replaying `key` on the Redis at `url` as consumer `consumer`.
    pub fn new(
        url: impl Into<String>,
        key: impl Into<String>,
        consumer: impl Into<String>,
    ) -> Self {
        RedisSpoolSourceConfig {
            url: url.into(),
            key: key.into(),
            consumer: consumer.into(),
            dead_letter_key: None,
            window: default_window(),
            poll_interval: default_poll(),
            timeout: default_timeout(),
            check_eviction_policy: true,
        }
    }
}

/// Replays a Redis spool.
pub struct RedisSpoolSource {
    config: RedisSpoolSourceConfig,
    client: redis::Client,
}

impl RedisSpoolSource {
    /// A source for this configuration.
    ///
    /// # Errors
    ///
    /// An invalid URL.
    pub fn new(config: RedisSpoolSourceConfig) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(config.url.as_str())?;
        Ok(RedisSpoolSource { config, client })
    }
}

/// The key names one consumer works with.
#[derive(Clone, Debug)]
struct Keys {
    spool: String,
    processing: String,
    dead: String,
}

/// What happens to an entry once its events resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Disposal {
    Remove,
    Requeue,
    DeadLetter,
}

impl Disposal {
    fn of(outcome: Outcome) -> Disposal {
        match outcome {
            Outcome::Delivered => Disposal::Remove,
            Outcome::Retry => Disposal::Requeue,
            _ => Disposal::DeadLetter,
        }
    }
}

async fn open(
    client: &redis::Client,
    config: &RedisSpoolSourceConfig,
    response_timeout: Duration,
) -> Result<MultiplexedConnection, SourceError> {
    let settings = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.timeout))
        .set_response_timeout(Some(response_timeout));
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&settings)
        .await
        .map_err(|error| SourceError::other(format!("connecting to redis: {error}")))?;
    if config.check_eviction_policy {
        let reply: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut connection)
            .await
            .map_err(|error| SourceError::other(format!("redis CONFIG GET: {error}")))?;
        let policy = reply.get(1).map(String::as_str).unwrap_or("unknown");
        spool::check_eviction_policy(policy)
            .map_err(|error| SourceError::other(error.to_string()))?;
    }
    Ok(connection)
}

/// Connects, retrying with backoff until it works or `cancel` fires.
async fn open_with_retries(
    client: &redis::Client,
    config: &RedisSpoolSourceConfig,
    response_timeout: Duration,
    cancel: &loggr_core::CancellationToken,
    name: &str,
) -> Option<MultiplexedConnection> {
    let mut delay = Duration::from_millis(100);
    loop {
        match open(client, config, response_timeout).await {
            Ok(connection) => return Some(connection),
            Err(error) => {
                tracing::warn!(source = name, %error, retry_in = ?delay, "Cannot reach the Redis spool");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = cancel.cancelled() => return None,
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// Moves the processing list back to the head of the spool, oldest first.
async fn recover(
    connection: &mut MultiplexedConnection,
    keys: &Keys,
) -> Result<u64, redis::RedisError> {
    let mut moved = 0;
    loop {
        let entry: Option<Vec<u8>> = redis::cmd("LMOVE")
            .arg(&keys.processing)
            .arg(&keys.spool)
            .arg("RIGHT")
            .arg("LEFT")
            .query_async(connection)
            .await?;
        if entry.is_none() {
            return Ok(moved);
        }
        moved += 1;
    }
}

async fn dispose(
    connection: &mut MultiplexedConnection,
    keys: &Keys,
    entry: &[u8],
    disposal: Disposal,
) -> Result<(), redis::RedisError> {
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("LREM")
        .arg(&keys.processing)
        .arg(1)
        .arg(entry)
        .ignore();
    match disposal {
        Disposal::Remove => {}
        Disposal::Requeue => {
            pipe.cmd("LPUSH").arg(&keys.spool).arg(entry).ignore();
        }
        Disposal::DeadLetter => {
            pipe.cmd("RPUSH").arg(&keys.dead).arg(entry).ignore();
        }
    }
    pipe.query_async::<()>(connection).await
}

/// What the fetching task needs to (re)connect.
struct Fetcher {
    client: redis::Client,
    config: RedisSpoolSourceConfig,
    response_timeout: Duration,
    keys: Keys,
    name: String,
}

/// Takes entries from the spool into the processing list and passes them on, one per permit.
/// A failed command (Redis restarted, network cut) reconnects with backoff.
async fn fetch(
    fetcher: Fetcher,
    mut connection: MultiplexedConnection,
    permits: Arc<Semaphore>,
    entries: mpsc::Sender<(Vec<u8>, OwnedSemaphorePermit)>,
    stop: loggr_core::CancellationToken,
) {
    let Fetcher {
        client,
        config,
        response_timeout,
        keys,
        name,
    } = fetcher;
    let timeout_seconds = config.poll_interval.as_secs_f64().max(0.01);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = stop.cancelled() => return,
        };
        if stop.is_cancelled() {
            return;
        }
        // Never cancelled half-way: an entry moved by Redis is always received here.
        let moved: Result<Option<Vec<u8>>, _> = redis::cmd("BLMOVE")
            .arg(&keys.spool)
            .arg(&keys.processing)
            .arg("LEFT")
            .arg("RIGHT")
            .arg(timeout_seconds)
            .query_async(&mut connection)
            .await;
        match moved {
            Ok(Some(entry)) => {
                if entries.send((entry, permit)).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(source = %name, %error, "Reading the Redis spool failed; reconnecting");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                    () = stop.cancelled() => return,
                }
                match open_with_retries(&client, &config, response_timeout, &stop, &name).await {
                    Some(fresh) => connection = fresh,
                    None => return,
                }
            }
        }
    }
}

struct InFlight {
    entry: Vec<u8>,
    events: usize,
    _permit: OwnedSemaphorePermit,
}

#[async_trait]
impl Source for RedisSpoolSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let RedisSpoolSource { config, client } = *self;
        let keys = Keys {
            processing: spool::processing_key(&config.key, &config.consumer),
            dead: config
                .dead_letter_key
                .clone()
                .unwrap_or_else(|| spool::dead_letter_key(&config.key)),
            spool: config.key.clone(),
        };
        let metrics = cx.emitter().metrics().clone();
        let blocking_timeout = config.timeout + config.poll_interval;
        let Some(mut acks_connection) =
            open_with_retries(&client, &config, config.timeout, cx.shutdown(), cx.name()).await
        else {
            return Ok(());
        };
        let recovered = recover(&mut acks_connection, &keys)
            .await
            .map_err(|error| {
                SourceError::other(format!("recovering the processing list: {error}"))
            })?;
        if recovered > 0 {
            tracing::info!(
                source = cx.name(),
                recovered,
                "Moved unfinished entries back to the spool"
            );
        }
        let Some(fetch_connection) =
            open_with_retries(&client, &config, blocking_timeout, cx.shutdown(), cx.name()).await
        else {
            return Ok(());
        };

        let window = config.window.max(1);
        let permits = Arc::new(Semaphore::new(window));
        let (entry_tx, mut entry_rx) = mpsc::channel(window);
        let stop_fetching = cx.shutdown().child_token();
        let fetcher = tokio::spawn(fetch(
            Fetcher {
                client: client.clone(),
                config: config.clone(),
                response_timeout: blocking_timeout,
                keys: keys.clone(),
                name: cx.name().to_owned(),
            },
            fetch_connection,
            permits,
            entry_tx,
            stop_fetching.clone(),
        ));

        let mut acks: UnorderedAcks<InFlight> = UnorderedAcks::new(window);
        let mut fetching = true;
        loop {
            tokio::select! {
                received = entry_rx.recv(), if fetching => {
                    let Some((entry, permit)) = received else {
                        fetching = false;
                        continue;
                    };
                    let (group, waiter) = AckGroup::new();
                    let batch = match decode(&entry) {
                        Ok(decoded) => {
                            if decoded.failures > 0 {
                                ComponentMetrics::add(&metrics.parse_failures, decoded.failures as u64);
                                tracing::warn!(source = cx.name(), failures = decoded.failures, "Kept undecodable spool lines as tagged events");
                            }
                            decoded.events
                            .into_iter()
                            .map(|event| Envelope::new(event, group.token()))
                            .collect::<Vec<_>>()
                        }
                        Err(error) => {
                            ComponentMetrics::add(&metrics.parse_failures, 1);
                            tracing::error!(source = cx.name(), %error, dead_letter = %keys.dead, "Moved an unreadable spool entry to the dead-letter list");
                            group.token().fail(loggr_core::ack::Failure::Permanent);
                            Vec::new()
                        }
                    };
                    group.seal();
                    let events = batch.len();
                    ComponentMetrics::add(&metrics.received, events as u64);
                    acks.push(InFlight { entry, events, _permit: permit }, waiter);
                    if !batch.is_empty() && cx.emitter().send(batch).await.is_err() {
                        break;
                    }
                }
                (in_flight, outcome) = acks.next(), if !acks.is_empty() => {
                    settle(&client, &config, &mut acks_connection, &keys, in_flight, outcome, &metrics, &cx).await;
                }
                () = cx.shutdown().cancelled(), if fetching => {
                    stop_fetching.cancel();
                    fetching = false;
                }
                else => break,
            }
            if !fetching && acks.is_empty() {
                break;
            }
        }
        stop_fetching.cancel();
        // Entries the fetcher moved but we never took stay in the processing list: they are
        // recovered at the next start.
        let _ = fetcher.await;
        while !acks.is_empty() {
            tokio::select! {
                (in_flight, outcome) = acks.next() => {
                    settle(&client, &config, &mut acks_connection, &keys, in_flight, outcome, &metrics, &cx).await;
                }
                () = cx.abort().cancelled() => break,
            }
        }
        Ok(())
    }
}

/// The entry's events (a body line that does not decode is kept as a tagged event, see
/// [`wire::decode`]), or why the entry itself is unreadable.
fn decode(entry: &[u8]) -> Result<wire::Decoded, spool::SpoolError> {
    let parts = spool::decode_entry(entry)?;
    Ok(wire::decode(
        Some(parts.content_type),
        parts.content_encoding,
        parts.body,
    ))
}

#[allow(clippy::too_many_arguments)]
async fn settle(
    client: &redis::Client,
    config: &RedisSpoolSourceConfig,
    connection: &mut MultiplexedConnection,
    keys: &Keys,
    in_flight: InFlight,
    outcome: Outcome,
    metrics: &ComponentMetrics,
    cx: &SourceContext,
) {
    let disposal = Disposal::of(outcome);
    let counter = match disposal {
        Disposal::Remove => &metrics.delivered,
        Disposal::Requeue => &metrics.retried,
        Disposal::DeadLetter => &metrics.rejected,
    };
    ComponentMetrics::add(counter, in_flight.events as u64);
    let mut delay = Duration::from_millis(100);
    loop {
        match dispose(connection, keys, &in_flight.entry, disposal).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(source = cx.name(), %error, ?disposal, "Cannot settle a spool entry; retrying");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = cx.abort().cancelled() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(5));
        if let Some(fresh) =
            open_with_retries(client, config, config.timeout, cx.abort(), cx.name()).await
        {
            *connection = fresh;
        }
    }
}

impl SourceConfig for RedisSpoolSourceConfig {
    fn build(self, _cx: &BuildContext) -> Result<Box<dyn Source>, BoxError> {
        Ok(Box::new(RedisSpoolSource::new(self)?))
    }
}

loggr_core::register_source!("redis_spool", RedisSpoolSourceConfig);

#[inline(never)]
pub(crate) fn link() {}
