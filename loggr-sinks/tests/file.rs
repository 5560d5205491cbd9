//! The file sink writes the canonical JSON form, appends across writes, and reports a failing
//! disk as a transient error instead of panicking or acknowledging.

use loggr_core::{Event, Facility, Sink};
use loggr_sinks::{FileSink, FileSinkConfig, Fsync, LineFormat};

#[tokio::test]
async fn events_round_trip_through_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/events.jsonl");
    let mut sink = FileSink::new(FileSinkConfig {
        path: path.clone(),
        fsync: Fsync::Always,
        format: LineFormat::Json,
    });
    let mut first = Event::new("first");
    first.facility = Facility::Local3;
    first.raw = Some(bytes::Bytes::from_static(b"\xff raw"));
    let second = Event::new("second \"quoted\"\nwith newline");
    sink.write(std::slice::from_ref(&first)).await.unwrap();
    sink.write(std::slice::from_ref(&second)).await.unwrap();
    sink.close().await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "one line per event, newlines escaped: {text}"
    );
    let back: Vec<Event> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(back, vec![first, second]);
}

#[tokio::test]
async fn a_full_disk_is_a_transient_error() {
    let mut sink = FileSink::new(FileSinkConfig {
        path: "/dev/full".into(),
        fsync: Fsync::Never,
        format: LineFormat::Json,
    });
    let error = sink.write(&[Event::new("x")]).await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("No space left"), "{error}");
}

#[tokio::test]
async fn an_unwritable_path_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"").unwrap();
    // A path below a regular file cannot be created.
    let mut sink = FileSink::new(FileSinkConfig {
        path: blocker.join("events.jsonl"),
        fsync: Fsync::Always,
        format: LineFormat::Json,
    });
    assert!(sink.write(&[Event::new("x")]).await.is_err());
}

#[tokio::test]
async fn the_rsyslog_line_format_writes_rsyslog_file_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messages");
    let config = FileSinkConfig {
        format: LineFormat::Rsyslog,
        ..FileSinkConfig::new(&path)
    };
    let mut sink = FileSink::new(config);
    let mut event = Event::new("Accepted publickey for alice");
    event.timestamp = Some("2026-11-21T09:59:59.5Z".parse().unwrap());
    event.hostname = Some("web1".into());
    event.app_name = Some("sshd".into());
    event.procid = Some("812".into());
    sink.write(std::slice::from_ref(&event)).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        "2026-11-21T09:59:59.500000+00:00 web1 sshd[812]: Accepted publickey for alice\n"
    );
}
