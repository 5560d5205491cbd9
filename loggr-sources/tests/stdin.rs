//! The stdin source: every line becomes an event (oversize lines skipped and counted, invalid
//! UTF-8 kept and flagged), and an input that was not fully delivered makes the run fail.

use std::time::Duration;

use loggr_core::test_util::CollectingSink;
use loggr_core::{
    async_trait, CancellationToken, Event, Pipeline, RetryConfig, Sink, SinkError, SinkOptions,
};
use loggr_sources::{StdinConfig, StdinSource};

#[tokio::test]
async fn lines_become_events_and_bad_lines_lose_nothing_else() {
    let input: &'static [u8] = b"one\r\ncaf\xe9\n\nthis line is far too long\nlast without newline";
    let config = StdinConfig {
        max_line_bytes: 20,
        ..StdinConfig::default()
    };
    let sink = CollectingSink::new();
    let pipeline = Pipeline::builder()
        .source("stdin", StdinSource::new(config).with_reader(input))
        .sink("collect", sink.clone())
        .build()
        .unwrap();
    let metrics = pipeline.metrics().clone();
    pipeline.run(CancellationToken::new()).await.unwrap();
    let events = sink.events();
    let messages: Vec<&str> = events.iter().map(Event::message_str).collect();
    assert_eq!(messages, ["one", "caf\u{fffd}", "last without newline"]);
    assert!(events[1].has_tag("_invalid_utf8"));
    assert_eq!(events[1].raw.as_deref(), Some(&b"caf\xe9"[..]));
    let text = metrics.render_prometheus();
    assert!(
        text.contains(
            "loggr_parse_failures_total{component_kind=\"source\",component=\"stdin\"} 1"
        ),
        "{text}"
    );
}

struct Down;

#[async_trait]
impl Sink for Down {
    async fn write(&mut self, _: &[Event]) -> Result<(), SinkError> {
        Err(SinkError::transient("database down"))
    }
}

#[tokio::test(start_paused = true)]
async fn undelivered_input_makes_the_run_fail() {
    let input: &'static [u8] = b"a\nb\nc\n";
    let options = SinkOptions {
        retry: RetryConfig {
            max_attempts: Some(2),
            initial_backoff: Duration::from_millis(1),
            ..RetryConfig::default()
        },
        ..SinkOptions::default()
    };
    let error = Pipeline::builder()
        .source(
            "stdin",
            StdinSource::new(StdinConfig::default()).with_reader(input),
        )
        .sink_with("down", Down, options)
        .build()
        .unwrap()
        .run(CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "source `stdin` failed: 3 input lines were not delivered"
    );
}
