//! The pipeline's promises: outcomes reach the source only after every sink committed, a
//! failing sink never yields a false "delivered", memory stays bounded under a stalled sink,
//! and each source's order survives the parallel filter stage.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loggr_core::ack::{AckGroup, AckToken, Outcome};
use loggr_core::test_util::{numbered_events, CollectingSink, ControlledSink, MemorySource};
use loggr_core::{
    async_trait, CancellationToken, Envelope, Event, Filter, FilterError, Pipeline,
    PipelineOptions, RetryConfig, Sink, SinkError, SinkOptions, Source, SourceContext, SourceError,
    Verdict,
};

/// A sink that fails (transiently or for good) on a schedule or on matching events.
#[derive(Clone)]
struct FlakySink {
    written: Arc<Mutex<Vec<String>>>,
    transient_failures_left: Arc<AtomicUsize>,
    always_fail: bool,
    poison: Option<&'static str>,
}

impl FlakySink {
    fn new() -> Self {
        FlakySink {
            written: Arc::default(),
            transient_failures_left: Arc::default(),
            always_fail: false,
            poison: None,
        }
    }

    fn written(&self) -> Vec<String> {
        self.written.lock().expect("sink lock").clone()
    }
}

#[async_trait]
impl Sink for FlakySink {
    async fn write(&mut self, events: &[Event]) -> Result<(), SinkError> {
        if self.always_fail {
            return Err(SinkError::transient("broker down"));
        }
        if self
            .transient_failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(SinkError::transient("connection reset"));
        }
        if let Some(poison) = self.poison {
            if events.iter().any(|e| e.message_str().contains(poison)) {
                return Err(SinkError::permanent("value too long for column"));
            }
        }
        self.written
            .lock()
            .expect("sink lock")
            .extend(events.iter().map(|e| e.message_str().to_owned()));
        Ok(())
    }
}

fn quick_retry(max_attempts: Option<u32>) -> SinkOptions {
    SinkOptions {
        retry: RetryConfig {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            max_attempts,
            ..RetryConfig::default()
        },
        ..SinkOptions::default()
    }
}

#[tokio::test]
async fn every_group_is_delivered_when_the_sink_commits() {
    let (source, outcomes) = MemorySource::new(numbered_events("line", 100), 7);
    let sink = CollectingSink::new();
    Pipeline::builder()
        .source("memory", source)
        .sink("collect", sink.clone())
        .build()
        .unwrap()
        .run(CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(sink.len(), 100);
    assert_eq!(outcomes.get().len(), 15);
    assert!(outcomes.all_delivered(), "{:?}", outcomes.get());
}

#[tokio::test(start_paused = true)]
async fn fan_out_with_one_failing_sink_is_a_retry_but_the_other_copy_is_written() {
    let (source, outcomes) = MemorySource::new(numbered_events("line", 10), 1);
    let good = CollectingSink::new();
    let bad = FlakySink {
        always_fail: true,
        ..FlakySink::new()
    };
    Pipeline::builder()
        .source("memory", source)
        .sink("good", good.clone())
        .sink_with("bad", bad, quick_retry(Some(3)))
        .build()
        .unwrap()
        .run(CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(good.len(), 10, "the healthy sink keeps its copy");
    assert_eq!(outcomes.get(), vec![Some(Outcome::Retry); 10]);
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_until_the_sink_recovers() {
    let (source, outcomes) = MemorySource::new(numbered_events("line", 20), 5);
    let sink = FlakySink {
        transient_failures_left: Arc::new(AtomicUsize::new(3)),
        ..FlakySink::new()
    };
    let pipeline = Pipeline::builder()
        .source("memory", source)
        .sink_with("flaky", sink.clone(), quick_retry(None))
        .build()
        .unwrap();
    let metrics = pipeline.metrics().clone();
    pipeline.run(CancellationToken::new()).await.unwrap();
    assert!(outcomes.all_delivered(), "{:?}", outcomes.get());
    assert_eq!(sink.written().len(), 20);
    let text = metrics.render_prometheus();
    assert!(
        text.contains("loggr_write_errors_total{component_kind=\"sink\",component=\"flaky\"} 3"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_poison_event_is_rejected_alone_and_the_rest_of_its_batch_commits() {
    let mut events = numbered_events("line", 9);
    events.insert(4, Event::new("poison pill"));
    let (source, outcomes) = MemorySource::new(events, 1);
    let sink = FlakySink {
        poison: Some("poison"),
        ..FlakySink::new()
    };
    let options = SinkOptions {
        batch: loggr_core::BatchConfig {
            max_events: 100,
            linger: Duration::from_millis(50),
            ..Default::default()
        },
        ..quick_retry(None)
    };
    Pipeline::builder()
        .source("memory", source)
        .sink_with("strict", sink.clone(), options)
        .build()
        .unwrap()
        .run(CancellationToken::new())
        .await
        .unwrap();
    let outcomes = outcomes.get();
    assert_eq!(outcomes[4], Some(Outcome::Rejected));
    let delivered = outcomes
        .iter()
        .filter(|o| **o == Some(Outcome::Delivered))
        .count();
    assert_eq!(delivered, 9, "{outcomes:?}");
    let written = sink.written();
    assert_eq!(written.len(), 9);
    assert!(!written.iter().any(|m| m.contains("poison")));
    assert_eq!(
        written,
        numbered_events("line", 9)
            .iter()
            .map(|e| e.message_str().to_owned())
            .collect::<Vec<_>>(),
        "order kept"
    );
}

/// A sink whose write panics: the runner task dies with the tokens it held.
struct PanickingSink;

#[async_trait]
impl Sink for PanickingSink {
    async fn write(&mut self, _: &[Event]) -> Result<(), SinkError> {
        panic!("bug in a sink");
    }
}

#[tokio::test]
async fn tokens_dropped_by_a_crashing_stage_mean_retry() {
    let (source, outcomes) = MemorySource::new(numbered_events("line", 3), 1);
    let result = Pipeline::builder()
        .source("memory", source)
        .sink("panics", PanickingSink)
        .build()
        .unwrap()
        .run(CancellationToken::new())
        .await;
    assert!(result.is_err(), "a crashed task is reported");
    let outcomes = outcomes.get();
    assert!(!outcomes.is_empty());
    assert!(
        outcomes.iter().all(|o| *o == Some(Outcome::Retry)),
        "never Delivered: {outcomes:?}"
    );
}

/// Emits already-built envelopes (to put joined or custom tokens through a pipeline).
struct EnvelopeSource(Mutex<Option<Vec<Envelope>>>);

#[async_trait]
impl Source for EnvelopeSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let batch = self
            .0
            .lock()
            .expect("source lock")
            .take()
            .unwrap_or_default();
        cx.emitter()
            .send(batch)
            .await
            .map_err(|_| SourceError::other("closed"))
    }
}

#[tokio::test]
async fn join_acknowledges_every_original_only_after_the_merged_event_commits() {
    for (commit, expected) in [(true, Outcome::Delivered), (false, Outcome::Retry)] {
        // Three lines of a stack trace, each its own upstream unit, merged by a packer.
        let (tokens, waiters): (Vec<AckToken>, Vec<_>) = (0..3).map(|_| AckToken::single()).unzip();
        let merged = Envelope::new(Event::new("line 1\nline 2\nline 3"), AckToken::join(tokens));
        let (sink, mut controller) = ControlledSink::new();
        let source = EnvelopeSource(Mutex::new(Some(vec![merged])));
        let options = SinkOptions {
            retry: RetryConfig {
                max_attempts: Some(1),
                ..RetryConfig::default()
            },
            ..SinkOptions::default()
        };
        let run = tokio::spawn(
            Pipeline::builder()
                .source("packer", source)
                .sink_with("controlled", sink, options)
                .build()
                .unwrap()
                .run(CancellationToken::new()),
        );
        let write = controller.next_write().await.unwrap();
        assert_eq!(write.events.len(), 1);
        for waiter in &waiters {
            assert_eq!(
                waiter.try_outcome(),
                None,
                "no original is acked before the commit"
            );
        }
        if commit {
            write.succeed();
        } else {
            write.fail(SinkError::transient("disk full"));
        }
        run.await.unwrap().unwrap();
        for waiter in waiters {
            assert_eq!(waiter.await, expected);
        }
    }
}

struct DropDebug;

impl Filter for DropDebug {
    fn name(&self) -> &str {
        "drop_debug"
    }
    fn apply(&self, event: &mut Event) -> Result<Verdict, FilterError> {
        if event.message_str().contains("debug") {
            return Ok(Verdict::Discard);
        }
        if event.message_str().contains("broken") {
            return Err(FilterError::new("cannot parse the date"));
        }
        if event.message_str().contains("panic") {
            panic!("filter bug");
        }
        event.add_tag("seen");
        Ok(Verdict::Keep)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_discard_on_purpose_and_keep_what_they_fail_on() {
    let events = [
        "ok one",
        "debug noise",
        "broken date",
        "panic here",
        "ok two",
    ]
    .into_iter()
    .map(Event::new)
    .collect();
    let (source, outcomes) = MemorySource::new(events, 1);
    let sink = CollectingSink::new();
    Pipeline::builder()
        .source("memory", source)
        .filter(DropDebug)
        .sink("collect", sink.clone())
        .options(PipelineOptions {
            filter_workers: 2,
            ..PipelineOptions::default()
        })
        .build()
        .unwrap()
        .run(CancellationToken::new())
        .await
        .unwrap();
    assert!(
        outcomes.all_delivered(),
        "a discard counts as done: {:?}",
        outcomes.get()
    );
    let stored = sink.events();
    let messages: Vec<&str> = stored.iter().map(Event::message_str).collect();
    assert_eq!(messages, ["ok one", "broken date", "panic here", "ok two"]);
    assert!(stored[1].has_tag("_filter_failure"));
    assert_eq!(
        stored[1].field("drop_debug_error").unwrap().to_string(),
        "cannot parse the date"
    );
    assert!(
        stored[2].has_tag("_filter_failure"),
        "a panicking filter does not lose the event"
    );
    assert!(stored[3].has_tag("seen"));
}

/// Emits numbered events from one origin, in batches of varying size, as fast as it may.
struct SequenceSource {
    origin: &'static str,
    count: usize,
}

#[async_trait]
impl Source for SequenceSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let mut next = 0;
        let mut size = 1;
        while next < self.count {
            let end = (next + size).min(self.count);
            let batch = (next..end)
                .map(|i| {
                    let mut event = Event::new(i.to_string());
                    event.hostname = Some(self.origin.into());
                    Envelope::detached(event)
                })
                .collect();
            cx.emitter()
                .send(batch)
                .await
                .map_err(|_| SourceError::other("closed"))?;
            next = end;
            size = size % 13 + 1;
        }
        Ok(())
    }
}

/// Takes longer on some batches than on others, so that parallel workers finish out of order.
struct UnevenWork;

impl Filter for UnevenWork {
    fn name(&self) -> &str {
        "uneven"
    }
    fn apply(&self, event: &mut Event) -> Result<Verdict, FilterError> {
        let n: u64 = event.message_str().parse().unwrap_or(0);
        if n.is_multiple_of(7) {
            std::thread::sleep(Duration::from_micros(300));
        }
        Ok(Verdict::Keep)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_sources_order_survives_a_multi_worker_filter_stage() {
    let sink = CollectingSink::new();
    Pipeline::builder()
        .source(
            "a",
            SequenceSource {
                origin: "a",
                count: 3000,
            },
        )
        .source(
            "b",
            SequenceSource {
                origin: "b",
                count: 3000,
            },
        )
        .filter(UnevenWork)
        .sink("collect", sink.clone())
        .options(PipelineOptions {
            filter_workers: 4,
            channel_capacity: 8,
            ..Default::default()
        })
        .build()
        .unwrap()
        .run(CancellationToken::new())
        .await
        .unwrap();
    let events = sink.events();
    assert_eq!(events.len(), 6000);
    for origin in ["a", "b"] {
        let sequence: Vec<u64> = events
            .iter()
            .filter(|e| e.hostname.as_deref() == Some(origin))
            .map(|e| e.message_str().parse().unwrap())
            .collect();
        assert_eq!(
            sequence,
            (0..3000).collect::<Vec<u64>>(),
            "order of source {origin}"
        );
    }
}

/// Emits batches of ten events for ever, counting what the pipeline accepted.
struct Firehose {
    accepted: Arc<AtomicU64>,
    blocked: Arc<AtomicBool>,
}

#[async_trait]
impl Source for Firehose {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        loop {
            let (group, _waiter) = AckGroup::new();
            let batch = (0..10)
                .map(|i| Envelope::new(Event::new(format!("event {i}")), group.token()))
                .collect();
            group.seal();
            self.blocked.store(true, Ordering::SeqCst);
            tokio::select! {
                sent = cx.emitter().send(batch) => {
                    self.blocked.store(false, Ordering::SeqCst);
                    if sent.is_err() { return Ok(()); }
                    self.accepted.fetch_add(10, Ordering::SeqCst);
                }
                () = cx.shutdown().cancelled() => return Ok(()),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_sink_stops_the_source_within_the_configured_bounds() {
    let accepted = Arc::new(AtomicU64::new(0));
    let blocked = Arc::new(AtomicBool::new(false));
    let (sink, mut controller) = ControlledSink::new();
    let capacity = 2;
    let workers = 2;
    let batch_events = 10;
    let options = SinkOptions {
        batch: loggr_core::BatchConfig {
            max_events: batch_events,
            ..Default::default()
        },
        ..SinkOptions::default()
    };
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(
        Pipeline::builder()
            .source(
                "firehose",
                Firehose {
                    accepted: accepted.clone(),
                    blocked: blocked.clone(),
                },
            )
            .filter(UnevenWork)
            .sink_with("stalled", sink, options)
            .options(PipelineOptions {
                channel_capacity: capacity,
                filter_workers: workers,
                grace_period: Duration::from_millis(200),
            })
            .build()
            .unwrap()
            .run(shutdown.clone()),
    );
    // The sink receives one write and never answers it.
    let stuck = controller.next_write().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = accepted.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = accepted.load(Ordering::SeqCst);
    assert_eq!(
        first, second,
        "the source made no progress while the sink was stalled"
    );
    assert!(
        blocked.load(Ordering::SeqCst),
        "the source is waiting on backpressure"
    );
    // Everything in flight: two queues of `capacity` batches, `workers` batches in the filter
    // stage plus one being handed on, the write in progress plus one batch the runner holds,
    // and the batch the source is trying to send.
    let bound = ((2 * capacity + workers + 1 + 2 + 1) * 10) as u64;
    assert!(second <= bound, "{second} events accepted, bound {bound}");
    assert!(
        second >= 10 * capacity as u64,
        "the queues did fill ({second})"
    );
    // Releasing the sink lets the source go on: backpressure, not deadlock.
    stuck.succeed();
    let resumed = controller.next_write().await.unwrap();
    resumed.succeed();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        accepted.load(Ordering::SeqCst) > second,
        "the source resumed"
    );
    shutdown.cancel();
    // Unanswered writes keep the sink stuck; the grace period bounds the shutdown.
    let ended = tokio::time::timeout(Duration::from_secs(5), run).await;
    assert!(
        ended.is_ok(),
        "shutdown finished within grace period + abort"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_sources_and_drains_what_is_in_flight() {
    let accepted = Arc::new(AtomicU64::new(0));
    let sink = CollectingSink::new();
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(
        Pipeline::builder()
            .source(
                "firehose",
                Firehose {
                    accepted: accepted.clone(),
                    blocked: Arc::default(),
                },
            )
            .sink("collect", sink.clone())
            .build()
            .unwrap()
            .run(shutdown.clone()),
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(accepted.load(Ordering::SeqCst) > 0);
    assert_eq!(
        sink.len() as u64,
        accepted.load(Ordering::SeqCst),
        "every accepted event reached the sink"
    );
}

/// A sink whose writes wait, up to a few seconds, until `needed` writes are in progress at
/// once: it counts the writes that found company, and keeps every event written.
#[derive(Clone)]
struct RendezvousSink {
    in_write: Arc<AtomicUsize>,
    needed: usize,
    met: Arc<AtomicUsize>,
    written: Arc<Mutex<Vec<String>>>,
    concurrent: bool,
}

#[async_trait]
impl Sink for RendezvousSink {
    async fn write(&mut self, events: &[Event]) -> Result<(), SinkError> {
        self.in_write.fetch_add(1, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while self.in_write.load(Ordering::SeqCst) < self.needed
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if self.in_write.load(Ordering::SeqCst) >= self.needed {
            self.met.fetch_add(1, Ordering::SeqCst);
        }
        self.written
            .lock()
            .expect("sink lock")
            .extend(events.iter().map(|e| e.message_str().to_owned()));
        // Stay in the write until the others have seen this one.
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.in_write.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }

    fn concurrent_writers(&self) -> bool {
        self.concurrent
    }
}

impl RendezvousSink {
    fn new(needed: usize, concurrent: bool) -> Self {
        RendezvousSink {
            in_write: Arc::default(),
            needed,
            met: Arc::default(),
            written: Arc::default(),
            concurrent,
        }
    }

    /// Two instances sharing the counters, and runner settings for them: writes of at most
    /// `max_events`.
    fn two_writers(&self, max_events: usize) -> (Vec<Box<dyn Sink>>, SinkOptions) {
        let options = SinkOptions {
            batch: loggr_core::BatchConfig {
                max_events,
                ..loggr_core::BatchConfig::default()
            },
            writers: 2,
            ..SinkOptions::default()
        };
        (
            vec![Box::new(self.clone()), Box::new(self.clone())],
            options,
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_with_two_writers_writes_two_batches_at_once_and_each_event_once() {
    // Batches of 30 into writes of at most 50: a writer is often left with the rest of a
    // batch, which it must write even while the other one waits for more (the source waits
    // for every outcome before it ends).
    let (source, outcomes) = MemorySource::new(numbered_events("line", 400), 30);
    let sink = RendezvousSink::new(2, true);
    let (writers, options) = sink.two_writers(50);
    let pipeline = Pipeline::builder()
        .options(PipelineOptions {
            channel_capacity: 64,
            ..PipelineOptions::default()
        })
        .source("memory", source)
        .sink_writers("db", writers, options)
        .build()
        .unwrap();
    let metrics = pipeline.metrics().clone();
    pipeline.run(CancellationToken::new()).await.unwrap();
    assert!(outcomes.all_delivered(), "{:?}", outcomes.get());
    let mut written = sink.written.lock().unwrap().clone();
    written.sort();
    let mut expected: Vec<String> = numbered_events("line", 400)
        .iter()
        .map(|e| e.message_str().to_owned())
        .collect();
    expected.sort();
    assert_eq!(written, expected, "every event written exactly once");
    // One writer alone never finds company: every write would wait out its deadline.
    assert!(
        sink.met.load(Ordering::SeqCst) >= 2,
        "no two writes overlapped ({} did)",
        sink.met.load(Ordering::SeqCst)
    );
    let counters = metrics.component(loggr_core::metrics::ComponentKind::Sink, "db");
    assert_eq!(
        loggr_core::metrics::ComponentMetrics::get(&counters.delivered),
        400,
        "both writers count under the sink's name"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_of_a_batch_is_written_while_another_writer_waits_for_more() {
    // One batch of 60 into writes of at most 50: the first writer takes 50 and keeps 10
    // while it writes; meanwhile the second waits for more, which never comes (the source
    // waits for its outcome). The 10 must be written anyway.
    let (source, outcomes) = MemorySource::new(numbered_events("line", 60), 60);
    let sink = RendezvousSink::new(1, true);
    let (writers, options) = sink.two_writers(50);
    let run = Pipeline::builder()
        .source("memory", source)
        .sink_writers("db", writers, options)
        .build()
        .unwrap()
        .run(CancellationToken::new());
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the pipeline finished (no event stuck behind a waiting writer)")
        .unwrap();
    assert!(outcomes.all_delivered(), "{:?}", outcomes.get());
    assert_eq!(sink.written.lock().unwrap().len(), 60);
}

#[test]
fn several_writers_need_a_sink_that_takes_them() {
    let sink = RendezvousSink::new(1, false);
    let (writers, two) = sink.two_writers(10_000);
    let (source, _) = MemorySource::new(vec![], 1);
    let error = Pipeline::builder()
        .source("m", source)
        .sink_writers("file", writers, two.clone())
        .build()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid pipeline: sink `file`: this sink does not take concurrent writers; set `writers = 1`"
    );
    let (source, _) = MemorySource::new(vec![], 1);
    let error = Pipeline::builder()
        .source("m", source)
        .sink_writers("db", vec![Box::new(RendezvousSink::new(1, true))], two)
        .build()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid pipeline: sink `db`: `writers` is 2 but 1 instances were given (at least 1)"
    );
}

#[test]
fn building_rejects_incomplete_or_ambiguous_pipelines() {
    let error = Pipeline::builder()
        .sink("s", CollectingSink::new())
        .build()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid pipeline: a pipeline needs at least one source"
    );
    let (source, _) = MemorySource::new(vec![], 1);
    let error = Pipeline::builder().source("m", source).build().unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid pipeline: a pipeline needs at least one sink"
    );
    let (a, _) = MemorySource::new(vec![], 1);
    let error = Pipeline::builder()
        .source("m", a)
        .sink("s", CollectingSink::new())
        .sink("s", CollectingSink::new())
        .build()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid pipeline: two sinks are named `s`"
    );
}

#[test]
fn public_types_are_send_and_sync_where_they_cross_tasks() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Event>();
    send_sync::<Envelope>();
    send_sync::<AckToken>();
    send_sync::<AckGroup>();
    send_sync::<loggr_core::AckWaiter>();
    send_sync::<loggr_core::Emitter>();
    send_sync::<SourceContext>();
    send_sync::<loggr_core::Metrics>();
    send_sync::<loggr_core::SinkError>();
    send_sync::<loggr_core::PipelineError>();
    send_sync::<loggr_core::ConfigError>();
    send::<Pipeline>();
    send::<Box<dyn Sink>>();
    send::<Box<dyn Source>>();
    send_sync::<Box<dyn Filter>>();
    send_sync::<Box<dyn loggr_core::Parser>>();
}
