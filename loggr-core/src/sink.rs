//! The [`Sink`] trait and the sink runner that batches, retries and resolves tokens.
//!
//! A sink only writes. Everything around the write (gathering batches by count, bytes and
//! linger, timeouts, retries with backoff, isolating a poison event, committing or failing the
//! tokens) is the runner's job, the same for every sink.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ack::{AckToken, Failure};
use crate::envelope::Batch;
use crate::event::Event;
use crate::metrics::ComponentMetrics;

/// A sink could not write a batch.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct SinkError {
    failure: Failure,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SinkError {
    /// A failure that may go away (a server down, a timeout): the batch will be retried.
    pub fn transient(message: impl Into<String>) -> Self {
        SinkError {
            failure: Failure::Transient,
            message: message.into(),
            source: None,
        }
    }

    /// A failure that will not go away for these events (they are malformed for this sink):
    /// the runner isolates the culprit events and rejects them.
    pub fn permanent(message: impl Into<String>) -> Self {
        SinkError {
            failure: Failure::Permanent,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        self.failure == Failure::Transient
    }

    /// The failure class.
    pub fn failure(&self) -> Failure {
        self.failure
    }
}

impl From<std::io::Error> for SinkError {
    fn from(error: std::io::Error) -> Self {
        SinkError::transient(format!("i/o error: {error}")).with_source(error)
    }
}

/// Where events end up: a file, a broker, a database.
///
/// # Durability
///
/// `write` returning `Ok(())` is a promise: **every event of the batch is durably taken** (the
/// file was fsynced, the COMMIT returned, the broker confirmed). The runner commits the events'
/// tokens on `Ok` and on nothing else, and sources acknowledge upstream on that basis. Each
/// implementation documents what `Ok` means for it in a `# Durability` section.
///
/// The same batch may be written again after an error or a crash (at-least-once delivery):
/// sinks that can should be idempotent, for example by using [`Event::content_id`].
///
/// ```
/// use loggr_core::{async_trait, Event, Sink, SinkError};
///
/// /// Counts events; nothing to make durable.
/// struct Count(usize);
///
/// #[async_trait]
/// impl Sink for Count {
///     async fn write(&mut self, events: &[Event]) -> Result<(), SinkError> {
///         self.0 += events.len();
///         Ok(())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait Sink: Send + 'static {
    /// Writes a batch (never empty).
    ///
    /// # Errors
    ///
    /// [`SinkError::transient`] when a retry may succeed; [`SinkError::permanent`] when these
    /// events can never be written (the runner then splits the batch to find the culprits and
    /// rejects only them).
    ///
    /// # Cancel safety
    ///
    /// Not required: the runner stops awaiting a write only when the write timeout expires or
    /// the pipeline is aborted, and then treats the batch as not written.
    async fn write(&mut self, events: &[Event]) -> Result<(), SinkError>;

    /// Whether several instances of this sink may write at once, each with its own batches
    /// (a sink's `writers` setting): true when the target takes concurrent writers safely,
    /// such as a database over separate connections. False by default: two writers of one
    /// file or one SQLite database would only contend, or interleave.
    fn concurrent_writers(&self) -> bool {
        false
    }

    /// Flushes and releases resources at shutdown.
    ///
    /// # Errors
    ///
    /// Reported in the logs; the tokens were already resolved.
    async fn close(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// How the runner gathers events into batches.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Most events in one write (default 10,000: batches fill by themselves under load, and
    /// large ones amortise each commit or fsync).
    pub max_events: usize,
    /// Most bytes (estimated) in one write (default 8 MiB).
    pub max_bytes: usize,
    /// How long to wait for more events before writing a batch that is not full. `0` (the
    /// default) writes whatever is ready at once: under load, batches fill up by themselves
    /// while the previous write runs, and at low rates acknowledgements are not delayed.
    #[serde(with = "crate::config::duration")]
    pub linger: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_events: 10_000,
            max_bytes: 8 << 20,
            linger: Duration::ZERO,
        }
    }
}

/// How the runner retries transient failures.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// The first wait after a failure.
    #[serde(with = "crate::config::duration")]
    pub initial_backoff: Duration,
    /// The longest wait between two attempts (the wait doubles up to this).
    #[serde(with = "crate::config::duration")]
    pub max_backoff: Duration,
    /// After this many failed attempts the batch's events are given back as `Retry` (the
    /// upstream resends them). Unset (the default): retry until the sink recovers or the
    /// pipeline shuts down, which is what sources without acknowledgements need.
    pub max_attempts: Option<u32>,
    /// How long one write may take before it counts as a transient failure.
    #[serde(with = "crate::config::duration")]
    pub timeout: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_attempts: None,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Per-sink runner settings: the `batch` and `retry` tables and the `writers` count of a
/// sink's configuration.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SinkOptions {
    /// Batching.
    pub batch: BatchConfig,
    /// Retries.
    pub retry: RetryConfig,
    /// Instances of the sink writing at once (default 1), each taking the next batch from
    /// the sink's queue when its previous write is done, so one's commit overlaps the
    /// others' work. Only sinks that take concurrent writers
    /// ([`Sink::concurrent_writers`]) accept more than 1; batches may then be stored out of
    /// order.
    pub writers: usize,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            batch: BatchConfig::default(),
            retry: RetryConfig::default(),
            writers: 1,
        }
    }
}

/// Drives one sink: gathers batches from its queue, writes them, resolves the tokens.
pub(crate) struct SinkRunner {
    pub(crate) name: Arc<str>,
    pub(crate) sink: Box<dyn Sink>,
    pub(crate) options: SinkOptions,
    pub(crate) metrics: Arc<ComponentMetrics>,
    /// Cancelled when the grace period is over: stop retrying, give the tokens back.
    pub(crate) abort: CancellationToken,
}

impl SinkRunner {
    /// Writes what `input` brings until it closes. Several runners of one sink (its
    /// `writers`) share `input`: one gathers a batch while holding it, and lets go before
    /// writing, so that another gathers the next batch during the write. A runner waits for
    /// `input` only when it holds no events: the rest of a batch too big for one write is
    /// written without it (topped up only if `input` is free), so that no event waits behind
    /// a runner that waits for more. Batches queued together are joined into one write, in
    /// order, up to the batch limits.
    pub(crate) async fn run(mut self, input: Arc<tokio::sync::Mutex<mpsc::Receiver<Batch>>>) {
        // Batches received and not yet written, in order; the first may be partly written.
        let mut pending: VecDeque<std::vec::IntoIter<crate::Envelope>> = VecDeque::new();
        let max_events = self.options.batch.max_events.max(1);
        let max_bytes = self.options.batch.max_bytes.max(1);
        loop {
            pending.retain(|batch| batch.len() > 0);
            let mut input = if pending.is_empty() {
                let mut input = input.lock().await;
                match input.recv().await {
                    Some(batch) => pending.push_back(batch.into_iter()),
                    None => break,
                }
                Some(input)
            } else {
                input.try_lock().ok()
            };
            // Gather whole batches up to the limits first, without moving their events, so
            // that the write's vectors are allocated once at their size: grown push by push,
            // they were copied over and over (an event is a few hundred bytes).
            let mut held = Held::default();
            for batch in &pending {
                held.count(batch.as_slice(), max_events, max_bytes);
            }
            let deadline = tokio::time::Instant::now() + self.options.batch.linger;
            while held.events < max_events && held.bytes < max_bytes {
                let Some(input) = input.as_mut() else {
                    break;
                };
                let batch = match input.try_recv() {
                    Ok(batch) => batch,
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        if self.options.batch.linger.is_zero() {
                            break;
                        }
                        tokio::select! {
                            batch = input.recv() => match batch {
                                Some(batch) => batch,
                                None => break,
                            },
                            () = tokio::time::sleep_until(deadline) => break,
                        }
                    }
                };
                held.count(&batch, max_events, max_bytes);
                pending.push_back(batch.into_iter());
            }
            drop(input);
            // `held` counted exactly the events this write takes (the first ones that reach
            // a limit): they move without being sized again.
            let mut events = Vec::with_capacity(held.events);
            let mut tokens = Vec::with_capacity(held.events);
            for batch in pending.iter_mut() {
                let take = (held.events - events.len()).min(batch.len());
                for envelope in batch.by_ref().take(take) {
                    events.push(envelope.event);
                    tokens.push(envelope.ack);
                }
                if events.len() == held.events {
                    break;
                }
            }
            ComponentMetrics::add(&self.metrics.received, events.len() as u64);
            self.deliver(events, tokens).await;
        }
        if let Err(error) = self.sink.close().await {
            tracing::warn!(sink = %self.name, %error, "Sink failed to close cleanly");
        }
    }

    /// Writes one batch, retrying transient failures and splitting on permanent ones until
    /// every token is resolved.
    async fn deliver(&mut self, events: Vec<Event>, tokens: Vec<AckToken>) {
        let mut work = vec![(events, tokens)];
        while let Some((mut events, mut tokens)) = work.pop() {
            match self.write_with_retries(&events).await {
                Ok(()) => {
                    ComponentMetrics::add(&self.metrics.delivered, tokens.len() as u64);
                    tokens.into_iter().for_each(AckToken::commit);
                }
                Err(failure @ Failure::Transient) => {
                    ComponentMetrics::add(&self.metrics.retried, tokens.len() as u64);
                    tokens.into_iter().for_each(|token| token.fail(failure));
                }
                Err(Failure::Permanent) if events.len() > 1 => {
                    // Find the poison: write each half on its own.
                    let half = events.len() / 2;
                    let second = (events.split_off(half), tokens.split_off(half));
                    work.push(second);
                    work.push((events, tokens));
                }
                Err(failure @ Failure::Permanent) => {
                    ComponentMetrics::add(&self.metrics.rejected, tokens.len() as u64);
                    tracing::warn!(sink = %self.name, "Event rejected for good by the sink");
                    tokens.into_iter().for_each(|token| token.fail(failure));
                }
            }
        }
    }

    async fn write_with_retries(&mut self, events: &[Event]) -> Result<(), Failure> {
        let retry = self.options.retry.clone();
        let mut backoff = retry.initial_backoff;
        let mut attempts = 0u32;
        loop {
            let result = tokio::select! {
                biased;
                () = self.abort.cancelled() => return Err(Failure::Transient),
                result = tokio::time::timeout(retry.timeout, self.sink.write(events)) => result,
            };
            let error = match result {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(error)) => error,
                Err(_elapsed) => SinkError::transient(format!(
                    "write timed out after {} ms",
                    retry.timeout.as_millis()
                )),
            };
            ComponentMetrics::add(&self.metrics.write_errors, 1);
            if !error.is_transient() {
                tracing::warn!(sink = %self.name, events = events.len(), %error, "Sink refused a batch");
                return Err(Failure::Permanent);
            }
            attempts += 1;
            if retry.max_attempts.is_some_and(|max| attempts >= max) {
                tracing::warn!(sink = %self.name, attempts, %error, "Giving the batch back for a retry upstream");
                return Err(Failure::Transient);
            }
            tracing::warn!(
                sink = %self.name,
                attempts,
                backoff_ms = backoff.as_millis() as u64,
                %error,
                "Sink write failed; retrying"
            );
            tokio::select! {
                () = self.abort.cancelled() => return Err(Failure::Transient),
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(retry.max_backoff);
        }
    }
}

/// The events a runner holds for its next write, counted up to the batch limits only: a
/// batch far bigger than one write is not counted whole before each of its writes.
#[derive(Default)]
struct Held {
    events: usize,
    /// Their estimated size, as the batch limit counts it.
    bytes: usize,
}

impl Held {
    /// Counts `batch`'s events, stopping at the limits.
    fn count(&mut self, batch: &[crate::Envelope], max_events: usize, max_bytes: usize) {
        for envelope in batch {
            if self.events >= max_events || self.bytes >= max_bytes {
                return;
            }
            self.events += 1;
            self.bytes += envelope.event.estimated_size();
        }
    }
}

/// A sink that takes everything and keeps nothing: for benchmarks and dry runs.
///
/// # Durability
///
/// None: `Ok` means the events were counted.
#[derive(Debug, Default, Clone)]
pub struct NullSink {
    count: Arc<std::sync::atomic::AtomicU64>,
}

impl NullSink {
    /// A new null sink.
    pub fn new() -> Self {
        NullSink::default()
    }

    /// How many events it took (shared by clones).
    pub fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[async_trait::async_trait]
impl Sink for NullSink {
    async fn write(&mut self, events: &[Event]) -> Result<(), SinkError> {
        self.count
            .fetch_add(events.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ComponentKind, Metrics};
    use crate::Envelope;

    /// Records the messages of each write.
    #[derive(Clone, Default)]
    struct Recorder {
        writes: Arc<std::sync::Mutex<Vec<Vec<String>>>>,
    }

    #[async_trait::async_trait]
    impl Sink for Recorder {
        async fn write(&mut self, events: &[Event]) -> Result<(), SinkError> {
            let messages = events
                .iter()
                .map(|event| event.message.as_deref().unwrap_or_default().to_owned())
                .collect();
            self.writes.lock().unwrap().push(messages);
            Ok(())
        }
    }

    /// The writes one runner makes of the batches queued before it starts, whose sizes
    /// are `sizes` (events numbered in order), under `batch`.
    async fn writes_of(sizes: &[usize], batch: BatchConfig) -> Vec<Vec<String>> {
        let (sender, receiver) = mpsc::channel::<Batch>(sizes.len());
        let mut n = 0;
        for &size in sizes {
            let events = (0..size).map(|_| {
                n += 1;
                Envelope::detached(Event::new(format!("e{n}")))
            });
            sender.send(events.collect()).await.unwrap();
        }
        drop(sender);
        let recorder = Recorder::default();
        let runner = SinkRunner {
            name: Arc::from("recorder"),
            sink: Box::new(recorder.clone()),
            options: SinkOptions {
                batch,
                ..SinkOptions::default()
            },
            metrics: Metrics::new().component(ComponentKind::Sink, "recorder"),
            abort: CancellationToken::new(),
        };
        runner
            .run(Arc::new(tokio::sync::Mutex::new(receiver)))
            .await;
        let writes = recorder.writes.lock().unwrap().clone();
        writes
    }

    fn numbered(range: std::ops::RangeInclusive<usize>) -> Vec<String> {
        range.map(|n| format!("e{n}")).collect()
    }

    #[tokio::test]
    async fn queued_batches_are_joined_and_cut_at_max_events_in_order() {
        let batch = BatchConfig {
            max_events: 5,
            ..BatchConfig::default()
        };
        let writes = writes_of(&[3, 4, 5, 1], batch.clone()).await;
        assert_eq!(
            writes,
            [numbered(1..=5), numbered(6..=10), numbered(11..=13)]
        );
        // One batch bigger than two writes.
        let writes = writes_of(&[12], batch).await;
        assert_eq!(
            writes,
            [numbered(1..=5), numbered(6..=10), numbered(11..=12)]
        );
    }

    #[tokio::test]
    async fn queued_batches_are_cut_at_max_bytes() {
        let one = Event::new("e1").estimated_size();
        let batch = BatchConfig {
            max_bytes: 3 * one,
            ..BatchConfig::default()
        };
        let writes = writes_of(&[2, 2, 3], batch).await;
        assert_eq!(writes, [numbered(1..=3), numbered(4..=6), numbered(7..=7)]);
    }
}
