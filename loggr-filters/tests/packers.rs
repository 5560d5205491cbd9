//! Packers merge multi-line messages, and the lines' acknowledgements wait for the merged
//! event's commit.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::time::Duration;

use loggr_core::ack::Outcome;
use loggr_core::packer::Packer;
use loggr_core::test_util::{CollectingSink, ControlledSink, MemorySource};
use loggr_core::{
    CancellationToken, Envelope, Event, Pipeline, RetryConfig, SinkError, SinkOptions,
};
use loggr_filters::packers::{MergeByFormat, MergeByTime};
use tokio::time::Instant;

fn line(host: &str, app: &str, message: &str) -> Event {
    let mut event = Event::new(message);
    event.hostname = Some(host.into());
    event.app_name = Some(app.into());
    event
}

fn java_trace() -> Vec<Event> {
    vec![
        line("app1", "java", "2026-11-21 10:00:00 ERROR request failed"),
        line("app1", "java", "java.lang.NullPointerException: boom"),
        line("app1", "java", "\tat com.example.Foo.bar(Foo.java:42)"),
        line("app1", "java", "2026-11-21 10:00:01 INFO next request"),
    ]
}

fn by_format() -> Box<dyn Packer> {
    Box::new(
        MergeByFormat::new(
            &[r"^\d{4}-\d{2}-\d{2} ".to_owned()],
            Duration::from_millis(300),
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn merge_by_format_rebuilds_a_stack_trace_and_acks_every_line() {
    let (source, outcomes) = MemorySource::new(java_trace(), 1);
    let sink = CollectingSink::new();
    Pipeline::builder()
        .source("java", source)
        .packer("java", by_format(), None)
        .sink("collect", sink.clone())
        .build()
        .unwrap()
        .run(CancellationToken::new())
        .await
        .unwrap();
    let events = sink.events();
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0].message_str(),
        "2026-11-21 10:00:00 ERROR request failed\njava.lang.NullPointerException: boom\n\tat com.example.Foo.bar(Foo.java:42)"
    );
    assert!(events[0].has_tag("_merged"));
    assert_eq!(
        events[1].message_str(),
        "2026-11-21 10:00:01 INFO next request"
    );
    assert_eq!(
        outcomes.get(),
        vec![Some(Outcome::Delivered); 4],
        "one ack per original line"
    );
}

#[tokio::test]
async fn lines_of_a_merged_event_are_not_acked_before_its_commit_and_retried_on_failure() {
    let (source, outcomes) = MemorySource::new(java_trace(), 1);
    let (sink, mut controller) = ControlledSink::new();
    let options = SinkOptions {
        retry: RetryConfig {
            max_attempts: Some(1),
            ..RetryConfig::default()
        },
        ..SinkOptions::default()
    };
    let run = tokio::spawn(
        Pipeline::builder()
            .source("java", source)
            .packer("java", by_format(), None)
            .sink_with("controlled", sink, options)
            .build()
            .unwrap()
            .run(CancellationToken::new()),
    );
    let mut written = 0;
    while written < 2 {
        let write = controller.next_write().await.unwrap();
        written += write.events.len();
        assert!(
            outcomes.get().is_empty(),
            "nothing acknowledged before the commit"
        );
        write.fail(SinkError::transient("database down"));
    }
    run.await.unwrap().unwrap();
    assert_eq!(
        outcomes.get(),
        vec![Some(Outcome::Retry); 4],
        "every original line is resent"
    );
}

#[tokio::test]
async fn a_condition_limits_the_packer_to_matching_events() {
    let mut events = java_trace();
    events.insert(2, line("app1", "nginx", "GET / 200"));
    let (source, outcomes) = MemorySource::new(events, 1);
    let sink = CollectingSink::new();
    let only_java: loggr_core::PackerCondition =
        Box::new(|e: &Event| e.app_name.as_deref() == Some("java"));
    Pipeline::builder()
        .source("mixed", source)
        .packer("mixed", by_format(), Some(only_java))
        .sink("collect", sink.clone())
        .build()
        .unwrap()
        .run(CancellationToken::new())
        .await
        .unwrap();
    let messages: Vec<String> = sink
        .events()
        .iter()
        .map(|e| e.message_str().to_owned())
        .collect();
    assert!(
        messages.contains(&"GET / 200".to_owned()),
        "passed through untouched: {messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.ends_with("Foo.java:42)") && m.contains("boom")),
        "{messages:?}"
    );
    assert_eq!(messages.len(), 3);
    assert!(outcomes.all_delivered());
}

#[test]
fn merge_by_time_groups_by_host_facility_and_app_within_the_window() {
    let mut packer = MergeByTime::new(Duration::from_millis(500), Duration::from_secs(2));
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut released = Vec::new();
    released.extend(packer.push(Envelope::detached(line("h", "db", "SELECT *")), at(0)));
    released.extend(packer.push(Envelope::detached(line("h", "web", "unrelated")), at(100)));
    released.extend(packer.push(Envelope::detached(line("h", "db", "FROM t")), at(300)));
    released.extend(packer.push(Envelope::detached(line("h", "db", "WHERE x")), at(700)));
    assert!(released.is_empty(), "still within the windows");
    assert_eq!(
        packer.next_due(),
        Some(at(600)),
        "web's window closes first"
    );
    released.extend(packer.release_due(at(650)));
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].event.message_str(), "unrelated");
    // A gap longer than the window starts a new message.
    released.extend(packer.push(Envelope::detached(line("h", "db", "-- next")), at(1300)));
    assert_eq!(released[1].event.message_str(), "SELECT *\nFROM t\nWHERE x");
    released.extend(packer.release_all());
    assert_eq!(released[2].event.message_str(), "-- next");
}

#[test]
fn merge_by_time_never_holds_a_message_past_max_age() {
    let mut packer = MergeByTime::new(Duration::from_millis(500), Duration::from_secs(1));
    let t0 = Instant::now();
    for ms in (0..1500).step_by(200) {
        let released = packer.push(
            Envelope::detached(line("h", "app", "tick")),
            t0 + Duration::from_millis(ms),
        );
        if ms == 1000 {
            assert_eq!(released.len(), 1, "the first message closed at max_age");
            assert_eq!(released[0].event.message_str().lines().count(), 5);
        }
    }
}

#[test]
fn the_most_severe_severity_and_all_structured_data_survive_the_merge() {
    let mut first = line("h", "app", "one");
    first.severity = loggr_core::Severity::Warning;
    first.structured_data.push("a@1", "k", "v");
    let mut second = line("h", "app", "two");
    second.severity = loggr_core::Severity::Critical;
    second.structured_data.push("b@1", "k", "w");
    let merged = loggr_core::packer::merge(vec![
        Envelope::detached(first.clone()),
        Envelope::detached(second),
    ])
    .unwrap();
    assert_eq!(merged.event.severity, loggr_core::Severity::Critical);
    assert!(
        merged.event.structured_data.get("a@1").is_some()
            && merged.event.structured_data.get("b@1").is_some()
    );
    assert_ne!(merged.event.content_id(), first.content_id(), "a new id");
}

#[test]
fn packers_are_registered() {
    loggr_filters::link();
    let registry = loggr_core::Registry::from_inventory().unwrap();
    assert_eq!(
        registry.packer_types().collect::<Vec<_>>(),
        ["merge_by_format", "merge_by_time"]
    );
}
