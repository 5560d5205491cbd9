//! The `redis_spool` sink: events pushed onto a Redis list, the spool that takes over when
//! RabbitMQ is away (pyloggr's design). The `redis_spool` source and the `collector` daemon
//! replay it.
//!
//! ```toml
//! [[sinks]]
//! type = "redis_spool"
//! url = "redis://127.0.0.1:6379"
//! key = "loggr:spool"
//! max_entry_events = 1000     # events per list entry
//! max_length = 1000000        # refuse (transiently) once the spool holds this many entries
//! ```
//!
//! Each batch is encoded in loggr's wire format ([`loggr_core::wire`]), split into entries of
//! at most `max_entry_events` events / `max_entry_bytes` bytes, and appended with **one**
//! `RPUSH` (atomic: all entries of a write or none). Entry layout: [`loggr_core::spool`].
//!
//! # Durability
//!
//! `Ok` means Redis replied to the `RPUSH`: the events are in Redis's memory, and on disk as far
//! as Redis's own persistence promises (`appendonly yes` with `appendfsync always` survives a
//! power loss; `everysec` may lose the last second; no persistence survives only a loggr
//! crash). With `wait_replicas = N`, `Ok` also waits until `N` replicas have the entries.
//!
//! The sink refuses to start against a Redis whose `maxmemory-policy` may evict keys without a
//! TTL (`allkeys-*`): an evicted spool is a silent loss. Set `check_eviction_policy = false` only
//! for a server that forbids `CONFIG GET` and that you checked by hand.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use serde::Deserialize;

use loggr_core::wire::{Compression, WireEncoder};
use loggr_core::{async_trait, spool, BoxError, BuildContext, Event, Sink, SinkConfig, SinkError};

/// Configuration of the `redis_spool` sink.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSpoolSinkConfig {
    /// Redis URL (default `redis://127.0.0.1:6379`; `redis://:password@host:port/db`).
    #[serde(default = "default_url")]
    pub url: String,
    /// The spool list (default `loggr:spool`).
    #[serde(default = "default_key")]
    pub key: String,
    /// Most events in one list entry (default 1000).
    #[serde(default = "default_max_entry_events")]
    pub max_entry_events: usize,
    /// Most encoded bytes in one list entry before compression (default 1 MiB).
    #[serde(default = "default_max_entry_bytes")]
    pub max_entry_bytes: usize,
    /// Entry compression: `none` (default) or `lz4`.
    #[serde(default)]
    pub compression: Compression,
    /// Refuse writes (a transient error, so sources stop acknowledging) while the spool holds
    /// this many entries or more (default: no limit).
    #[serde(default)]
    pub max_length: Option<u64>,
    /// After each write, wait until this many replicas acknowledged it (`WAIT`; default 0).
    #[serde(default)]
    pub wait_replicas: u32,
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

fn default_max_entry_events() -> usize {
    1000
}

fn default_max_entry_bytes() -> usize {
    1 << 20
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_true() -> bool {
    true
}

impl RedisSpoolSinkConfig {
    /// Every default, spooling to `key` on the Redis at `url`.
    pub fn new(url: impl Into<String>, key: impl Into<String>) -> Self {
        RedisSpoolSinkConfig {
            url: url.into(),
            key: key.into(),
            max_entry_events: default_max_entry_events(),
            max_entry_bytes: default_max_entry_bytes(),
            compression: Compression::default(),
            max_length: None,
            wait_replicas: 0,
            timeout: default_timeout(),
            check_eviction_policy: true,
        }
    }
}

/// Why the spool cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisSpoolError {
    /// The URL does not parse.
    #[error("invalid Redis URL: {0}")]
    Url(#[source] redis::RedisError),
    /// Redis answered with an error or the connection failed.
    #[error("redis: {0}")]
    Redis(#[source] redis::RedisError),
    /// The operation took longer than the configured timeout.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// The server's eviction policy could drop spool entries.
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
}

/// Opens a connection and checks the eviction policy; shared by the sink and its tests.
///
/// # Errors
///
/// Connection failures, timeouts, and an unsafe `maxmemory-policy`.
pub async fn connect(
    client: &redis::Client,
    timeout: Duration,
    check_eviction_policy: bool,
) -> Result<MultiplexedConnection, RedisSpoolError> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(RedisSpoolError::Redis)?;
    if check_eviction_policy {
        let reply: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut connection)
            .await
            .map_err(RedisSpoolError::Redis)?;
        let policy = reply.get(1).map(String::as_str).unwrap_or("unknown");
        spool::check_eviction_policy(policy)?;
    }
    Ok(connection)
}

/// Appends batches of events to a Redis list.
pub struct RedisSpoolSink {
    config: RedisSpoolSinkConfig,
    client: redis::Client,
    connection: Option<MultiplexedConnection>,
    encoder: WireEncoder,
}

impl RedisSpoolSink {
    /// A sink for this configuration (it connects on the first write).
    ///
    /// # Errors
    ///
    /// An invalid URL.
    pub fn new(config: RedisSpoolSinkConfig) -> Result<Self, RedisSpoolError> {
        let client = redis::Client::open(config.url.as_str()).map_err(RedisSpoolError::Url)?;
        let encoder = WireEncoder::new(
            config.max_entry_events.max(1),
            config.max_entry_bytes.max(1),
            config.compression,
        );
        Ok(RedisSpoolSink {
            config,
            client,
            connection: None,
            encoder,
        })
    }

    async fn connection(&mut self) -> Result<&mut MultiplexedConnection, SinkError> {
        if self.connection.is_none() {
            let connection = connect(
                &self.client,
                self.config.timeout,
                self.config.check_eviction_policy,
            )
            .await
            .map_err(|error| match error {
                RedisSpoolError::Spool(_) => SinkError::permanent(error.to_string()),
                other => SinkError::transient(other.to_string()),
            })?;
            self.connection = Some(connection);
        }
        self.connection
            .as_mut()
            .ok_or_else(|| SinkError::transient("no redis connection"))
    }

    async fn push(&mut self, entries: Vec<Vec<u8>>) -> Result<(), SinkError> {
        let key = self.config.key.clone();
        let max_length = self.config.max_length;
        let wait_replicas = self.config.wait_replicas;
        let timeout = self.config.timeout;
        let connection = self.connection().await?;
        if let Some(limit) = max_length {
            let length: u64 = redis::cmd("LLEN")
                .arg(&key)
                .query_async(connection)
                .await
                .map_err(redis_error)?;
            if length >= limit {
                return Err(SinkError::transient(format!(
                    "the spool `{key}` is full ({length} entries, max_length {limit})"
                )));
            }
        }
        let _: u64 = redis::cmd("RPUSH")
            .arg(&key)
            .arg(entries)
            .query_async(connection)
            .await
            .map_err(redis_error)?;
        if wait_replicas > 0 {
            let acknowledged: u64 = redis::cmd("WAIT")
                .arg(wait_replicas)
                .arg(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
                .query_async(connection)
                .await
                .map_err(redis_error)?;
            if acknowledged < u64::from(wait_replicas) {
                return Err(SinkError::transient(format!(
                    "only {acknowledged} of {wait_replicas} replicas acknowledged the spool write"
                )));
            }
        }
        Ok(())
    }
}

fn redis_error(error: redis::RedisError) -> SinkError {
    SinkError::transient(format!("redis: {error}")).with_source(error)
}

#[async_trait]
impl Sink for RedisSpoolSink {
    async fn write(&mut self, events: &[Event]) -> Result<(), SinkError> {
        if events.is_empty() {
            return Ok(());
        }
        let entries: Vec<Vec<u8>> = self
            .encoder
            .encode(events)
            .map(|message| {
                spool::encode_entry(
                    message.content_type,
                    message.content_encoding,
                    &message.body,
                )
            })
            .collect();
        let result = self.push(entries).await;
        if let Err(error) = &result {
            if error.is_transient() {
                // The connection may be broken: reconnect on the next write.
                self.connection = None;
            }
        }
        result
    }
}

impl SinkConfig for RedisSpoolSinkConfig {
    fn build(self, _cx: &BuildContext) -> Result<Box<dyn Sink>, BoxError> {
        Ok(Box::new(RedisSpoolSink::new(self)?))
    }
}

loggr_core::register_sink!("redis_spool", RedisSpoolSinkConfig);

#[inline(never)]
pub(crate) fn link() {}
