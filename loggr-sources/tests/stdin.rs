//! The stdin source: every line becomes an event (oversize lines skipped and counted, invalid
//! UTF-8 kept and flagged), and an input that was not fully delivered makes the run fail.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

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

#[tokio::test]
async fn a_configured_format_parses_each_line() {
    use loggr_core::syslog::{Format, SyslogOptions};
    use loggr_core::{BuildContext, Metrics, SourceConfig};
    use loggr_sources::InputFormat;

    let input: &'static [u8] =
        b"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure\n<999>bad priority\n";
    let config = StdinConfig {
        format: InputFormat::Syslog(Format::Rfc3164),
        syslog: SyslogOptions {
            year: Some(2005),
            timezone: Some("UTC".into()),
            ..SyslogOptions::default()
        },
        ..StdinConfig::default()
    };
    let cx = BuildContext {
        name: "stdin".into(),
        metrics: Metrics::new(),
    };
    // Built the way configuration builds it, then fed from a byte string.
    let parser = config.format.parser(&config.syslog).unwrap();
    let _ = config.clone().build(&cx).unwrap();
    let source = StdinSource::new(config)
        .with_parser(parser)
        .with_reader(input);
    let sink = CollectingSink::new();
    Pipeline::builder()
        .source("stdin", source)
        .sink("collect", sink.clone())
        .build()
        .unwrap()
        .run(CancellationToken::new())
        .await
        .unwrap();
    let events = sink.events();
    assert_eq!(events.len(), 2, "the unparsable line is kept too");
    assert_eq!(events[0].hostname.as_deref(), Some("combo"));
    assert_eq!(events[0].app_name.as_deref(), Some("sshd(pam_unix)"));
    assert_eq!(events[0].procid.as_deref(), Some("19939"));
    assert_eq!(
        events[0].timestamp.unwrap().to_string(),
        "2005-06-14T15:16:01Z"
    );
    assert!(events[1].has_tag("_parse_failure"), "{:?}", events[1]);
}
