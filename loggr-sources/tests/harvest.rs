//! The harvest source, with real files in a temporary directory and a real pipeline: lines
//! become labelled events, a file still being written is left alone until it is complete, a
//! file is deleted only after every line was delivered (kept and retried otherwise, set aside
//! when rejected or undecodable, kept when its outcome is unknown at shutdown or when it
//! changed meanwhile), dot-files are ignored and empty files removed, compressed uploads are
//! read decompressed.

#![cfg(feature = "harvest")]
#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loggr_core::test_util::{CollectingSink, ControlledSink, SinkController};
use loggr_core::{
    async_trait, CancellationToken, Event, Facility, Pipeline, PipelineBuilder, PipelineError,
    PipelineOptions, RetryConfig, Severity, Sink, SinkError, SinkOptions, Value,
};
use loggr_sources::harvest::{HarvestConfig, HarvestDirectory, HarvestSource};
use loggr_sources::InputFormat;
use tokio::time::Instant;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// One directory with distinctive header values; quick rescans and retries.
fn config(dir: &Path, stable_after: Duration) -> HarvestConfig {
    let mut directory = HarvestDirectory::new(dir, "batchjob");
    directory.hostname = "uploader1".into();
    directory.facility = Facility::Local3;
    directory.severity = Severity::Warning;
    HarvestConfig {
        stable_after,
        poll_interval: ms(100),
        retry_after: ms(500),
        ..HarvestConfig::new([directory])
    }
}

struct Running {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), PipelineError>>,
}

impl Running {
    fn start(config: HarvestConfig, builder: PipelineBuilder) -> Running {
        let pipeline = builder
            .source("harvest", HarvestSource::new(config).unwrap())
            .build()
            .unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(pipeline.run(shutdown.clone()));
        Running { shutdown, task }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("the pipeline stops")
            .unwrap()
            .unwrap();
    }
}

/// Polls `condition` until it holds, failing after a generous deadline.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(ms(20)).await;
    }
}

fn messages(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| e.message_str().to_owned()).collect()
}

fn numbered(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix} line {i}")).collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

async fn next_write(controller: &mut SinkController) -> loggr_core::test_util::PendingWrite {
    tokio::time::timeout(Duration::from_secs(15), controller.next_write())
        .await
        .expect("a write reaches the sink")
        .expect("the sink is alive")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_become_labelled_events_and_the_file_is_deleted_after_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let sink = CollectingSink::new();
    let running = Running::start(
        config(dir.path(), ms(300)),
        Pipeline::builder().sink("collect", sink.clone()),
    );
    let lines = numbered("upload", 25);
    let path = dir.path().join("app.log");
    write_lines(&path, &lines);
    eventually("the file to be harvested", || !path.exists()).await;
    running.stop().await;

    let events = sink.events();
    assert_eq!(messages(&events), lines);
    for event in &events {
        assert_eq!(event.app_name.as_deref(), Some("batchjob"));
        assert_eq!(event.hostname.as_deref(), Some("uploader1"));
        assert_eq!(event.facility, Facility::Local3);
        assert_eq!(event.severity, Severity::Warning);
        assert!(event.has_tag("harvested"), "{:?}", event.tags);
        assert_eq!(
            event.field("directory").and_then(Value::as_str),
            Some(dir.path().to_str().unwrap())
        );
        assert_eq!(
            event.field("fname").and_then(Value::as_str),
            Some("app.log")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_alone_finds_and_harvests_files() {
    let dir = tempfile::tempdir().unwrap();
    // Present before the source starts: only a scan can find it.
    let lines = numbered("early", 3);
    let early = dir.path().join("early.log");
    write_lines(&early, &lines);
    let sink = CollectingSink::new();
    let running = Running::start(
        HarvestConfig {
            watch: false,
            ..config(dir.path(), ms(300))
        },
        Pipeline::builder().sink("collect", sink.clone()),
    );
    eventually("the early file to be harvested", || !early.exists()).await;
    let late_lines = numbered("late", 2);
    let late = dir.path().join("late.log");
    write_lines(&late, &late_lines);
    eventually("the late file to be harvested", || !late.exists()).await;
    running.stop().await;
    assert_eq!(messages(&sink.events()), [lines, late_lines].concat());
}

/// Writes a file slowly (a line every 300 ms for 3 s, keeping it open) and checks that
/// nothing is read before the writer stops, then that every line is read once.
async fn slow_upload_is_read_only_once_complete(config: HarvestConfig) {
    let dir = config.directories[0].path.clone();
    let sink = CollectingSink::new();
    let running = Running::start(config, Pipeline::builder().sink("collect", sink.clone()));
    let path = dir.join("slow-upload.log");
    let lines = numbered("slow", 10);
    let mut upload = std::fs::File::create(&path).unwrap();
    for line in &lines {
        upload.write_all(format!("{line}\n").as_bytes()).unwrap();
        upload.flush().unwrap();
        tokio::time::sleep(ms(300)).await;
        assert!(sink.is_empty(), "a partial upload was harvested");
        assert!(path.exists(), "a partial upload was deleted");
    }
    // The uploader stops writing (without closing): complete once it held still.
    eventually("the complete file to be harvested", || !path.exists()).await;
    drop(upload);
    running.stop().await;
    assert_eq!(messages(&sink.events()), lines, "every line, once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_still_being_written_is_read_only_once_complete() {
    // 3 s of writing is twice `stable_after`, yet the file never held still that long.
    let dir = tempfile::tempdir().unwrap();
    slow_upload_is_read_only_once_complete(config(dir.path(), ms(1500))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_inotify_a_file_must_hold_still_between_two_looks() {
    // Rescans every 2 s, `stable_after` 1 s: the file is looked at again when it falls due,
    // and found changed each time while it is written.
    let dir = tempfile::tempdir().unwrap();
    slow_upload_is_read_only_once_complete(HarvestConfig {
        watch: false,
        poll_interval: Duration::from_secs(2),
        ..config(dir.path(), ms(1000))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_closed_by_its_writer_is_read_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let sink = CollectingSink::new();
    // An hour of stability would be needed without inotify's close-after-write.
    let running = Running::start(
        HarvestConfig {
            poll_interval: Duration::from_secs(3600),
            ..config(dir.path(), Duration::from_secs(3600))
        },
        Pipeline::builder().sink("collect", sink.clone()),
    );
    // Let the watcher start before the upload.
    tokio::time::sleep(ms(300)).await;
    let path = dir.path().join("closed.log");
    let lines = numbered("closed", 4);
    write_lines(&path, &lines);
    eventually(
        "the closed file to be harvested (needs inotify's IN_CLOSE_WRITE)",
        || !path.exists(),
    )
    .await;
    running.stop().await;
    assert_eq!(messages(&sink.events()), lines);
}

/// Fails its first `failures` writes (transient), then keeps everything.
#[derive(Clone, Default)]
struct FlakySink {
    failures: usize,
    attempts: Arc<AtomicUsize>,
    events: Arc<Mutex<Vec<Event>>>,
}

#[async_trait]
impl Sink for FlakySink {
    async fn write(&mut self, events: &[Event]) -> Result<(), SinkError> {
        if self.attempts.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Err(SinkError::transient("storage down"));
        }
        self.events.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_keeps_the_file_and_retries_it() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FlakySink {
        failures: 2,
        ..FlakySink::default()
    };
    // One attempt per batch: a failure goes straight back to the source as a Retry.
    let options = SinkOptions {
        retry: RetryConfig {
            max_attempts: Some(1),
            initial_backoff: ms(10),
            ..RetryConfig::default()
        },
        ..SinkOptions::default()
    };
    let running = Running::start(
        config(dir.path(), ms(300)),
        Pipeline::builder().sink_with("flaky", sink.clone(), options),
    );
    let path = dir.path().join("batch.log");
    let lines = numbered("batch", 40);
    write_lines(&path, &lines);
    let delivered = || !sink.events.lock().unwrap().is_empty();
    eventually("the first failed write", || {
        sink.attempts.load(Ordering::SeqCst) >= 1
    })
    .await;
    // Until a write succeeded, the file must be there (checked before looking at the sink:
    // a deletion is only allowed after a success).
    eventually("a successful write", || {
        let exists = path.exists();
        let delivered = delivered();
        assert!(
            exists || delivered,
            "the file was deleted before any delivery"
        );
        delivered
    })
    .await;
    assert_eq!(
        sink.attempts.load(Ordering::SeqCst),
        3,
        "read again after each failure"
    );
    eventually("the delivered file to be deleted", || !path.exists()).await;
    running.stop().await;
    assert_eq!(
        messages(&sink.events.lock().unwrap()),
        lines,
        "every line, delivered once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_files_are_ignored_and_empty_files_removed() {
    let dir = tempfile::tempdir().unwrap();
    let hidden = dir.path().join(".upload.log.part");
    std::fs::write(&hidden, "not yet\n").unwrap();
    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, "").unwrap();
    let real = dir.path().join("real.log");
    std::fs::write(&real, "real line\n").unwrap();
    let sink = CollectingSink::new();
    let running = Running::start(
        config(dir.path(), ms(300)),
        Pipeline::builder().sink("collect", sink.clone()),
    );
    eventually(
        "the real file to be harvested and the empty one removed",
        || !real.exists() && !empty.exists(),
    )
    .await;
    // One uploaded while running (seen by inotify, closed after writing) is ignored too.
    let later = dir.path().join(".second.log");
    std::fs::write(&later, "hidden too\n").unwrap();
    let marker = dir.path().join("marker.log");
    std::fs::write(&marker, "marker line\n").unwrap();
    eventually("the marker file to be harvested", || !marker.exists()).await;
    // Several rescans later, the dot-files are still untouched.
    tokio::time::sleep(ms(500)).await;
    running.stop().await;
    assert_eq!(std::fs::read_to_string(&hidden).unwrap(), "not yet\n");
    assert_eq!(std::fs::read_to_string(&later).unwrap(), "hidden too\n");
    assert_eq!(messages(&sink.events()), ["real line", "marker line"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_upload_is_read_decompressed() {
    let dir = tempfile::tempdir().unwrap();
    let sink = CollectingSink::new();
    let running = Running::start(
        config(dir.path(), ms(300)),
        Pipeline::builder().sink("collect", sink.clone()),
    );
    let lines = numbered("compressed", 1000);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all((lines.join("\n") + "\n").as_bytes())
        .unwrap();
    let path = dir.path().join("archive.log.gz");
    std::fs::write(&path, gzip.finish().unwrap()).unwrap();
    eventually("the gzip file to be harvested", || !path.exists()).await;
    running.stop().await;
    let events = sink.events();
    assert_eq!(messages(&events), lines);
    assert_eq!(
        events[0].field("fname").and_then(Value::as_str),
        Some("archive.log.gz")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_upload_is_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let sink = CollectingSink::new();
    let running = Running::start(
        config(dir.path(), ms(300)),
        Pipeline::builder().sink("collect", sink.clone()),
    );
    let lines = numbered("cut", 20_000);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all((lines.join("\n") + "\n").as_bytes())
        .unwrap();
    let bytes = gzip.finish().unwrap();
    let truncated = &bytes[..bytes.len() / 2];
    let path = dir.path().join("broken.log.gz");
    std::fs::write(&path, truncated).unwrap();
    let aside = dir.path().join(".broken.log.gz.corrupt");
    // Set aside by a hard link, then the original's removal: wait for both.
    eventually("the corrupt file to be set aside", || {
        aside.exists() && !path.exists()
    })
    .await;
    running.stop().await;
    assert_eq!(std::fs::read(&aside).unwrap(), truncated, "kept as it was");
    let got = messages(&sink.events());
    assert!(
        got.len() < lines.len() && lines.starts_with(&got),
        "only lines before the damage: {} of {}",
        got.len(),
        lines.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subdirectories_are_harvested_when_recursive() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("web1/.partial")).unwrap();
    let nested = dir.path().join("web1/access.log");
    std::fs::write(&nested, "nested line\n").unwrap();
    let hidden = dir.path().join("web1/.partial/access.log");
    std::fs::write(&hidden, "hidden line\n").unwrap();
    let sink = CollectingSink::new();
    let running = Running::start(
        HarvestConfig {
            recursive: true,
            ..config(dir.path(), ms(300))
        },
        Pipeline::builder().sink("collect", sink.clone()),
    );
    eventually("the nested file to be harvested", || !nested.exists()).await;
    // A subdirectory created while running is found too.
    std::fs::create_dir_all(dir.path().join("web2")).unwrap();
    let later = dir.path().join("web2/error.log");
    std::fs::write(&later, "later line\n").unwrap();
    eventually("the new subdirectory's file to be harvested", || {
        !later.exists()
    })
    .await;
    running.stop().await;
    assert!(hidden.exists(), "dot-directories are skipped");
    let events = sink.events();
    assert_eq!(messages(&events), ["nested line", "later line"]);
    assert_eq!(
        events[0].field("fname").and_then(Value::as_str),
        Some("web1/access.log")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_lines_keep_their_header_and_failures_get_the_directorys() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), ms(300));
    config.directories[0].format = "rfc5424".parse::<InputFormat>().unwrap();
    let sink = CollectingSink::new();
    let running = Running::start(config, Pipeline::builder().sink("collect", sink.clone()));
    let path = dir.path().join("relay.log");
    std::fs::write(
        &path,
        "<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 - 'su root' failed\n\
         <165>1 2003-10-11T22:14:15.003Z - - - - - no host, no app\n\
         not syslog at all\n",
    )
    .unwrap();
    eventually("the file to be harvested", || !path.exists()).await;
    running.stop().await;
    let events = sink.events();
    assert_eq!(events.len(), 3);
    let parsed = &events[0];
    assert_eq!(parsed.hostname.as_deref(), Some("mymachine"));
    assert_eq!(parsed.app_name.as_deref(), Some("su"));
    assert_eq!(
        (parsed.facility, parsed.severity),
        (Facility::Auth, Severity::Critical)
    );
    assert_eq!(parsed.message_str(), "'su root' failed");
    let filled = &events[1];
    assert_eq!(filled.hostname.as_deref(), Some("uploader1"));
    assert_eq!(filled.app_name.as_deref(), Some("batchjob"));
    assert_eq!(
        (filled.facility, filled.severity),
        (Facility::Local4, Severity::Notice)
    );
    let failed = &events[2];
    assert!(failed.has_tag("_parse_failure"));
    assert_eq!(failed.message_str(), "not syslog at all");
    assert_eq!(failed.app_name.as_deref(), Some("batchjob"));
    assert_eq!(
        (failed.facility, failed.severity),
        (Facility::Local3, Severity::Warning)
    );
    assert!(events.iter().all(|e| e.has_tag("harvested")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_changed_during_delivery_is_kept_and_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, mut controller) = ControlledSink::new();
    let running = Running::start(
        config(dir.path(), ms(300)),
        Pipeline::builder().sink("controlled", sink),
    );
    let path = dir.path().join("growing.log");
    std::fs::write(&path, "a\nb\n").unwrap();
    let first = next_write(&mut controller).await;
    assert_eq!(messages(&first.events), ["a", "b"]);
    // Appended after it was read, before its delivery was known.
    let mut append = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    append.write_all(b"c\n").unwrap();
    drop(append);
    first.succeed();
    let second = next_write(&mut controller).await;
    assert!(path.exists(), "a file that changed was deleted");
    assert_eq!(
        messages(&second.events),
        ["a", "b", "c"],
        "read again whole"
    );
    second.succeed();
    eventually("the file to be deleted", || !path.exists()).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_file_is_set_aside_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, mut controller) = ControlledSink::new();
    let running = Running::start(
        config(dir.path(), ms(300)),
        Pipeline::builder().sink("controlled", sink),
    );
    let path = dir.path().join("poison.log");
    std::fs::write(&path, "poison\n").unwrap();
    let write = next_write(&mut controller).await;
    write.fail(SinkError::permanent("refused for good"));
    let aside = dir.path().join(".poison.log.rejected");
    // Set aside by a hard link, then the original's removal: wait for both.
    eventually("the rejected file to be set aside", || {
        aside.exists() && !path.exists()
    })
    .await;
    assert_eq!(std::fs::read_to_string(&aside).unwrap(), "poison\n");
    // Twice `retry_after` later, nothing was read again.
    let again = tokio::time::timeout(Duration::from_secs(1), controller.next_write()).await;
    assert!(again.is_err(), "a set-aside file was read again");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_whose_outcome_is_unknown_at_shutdown_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, mut controller) = ControlledSink::new();
    let running = Running::start(
        config(dir.path(), ms(300)),
        Pipeline::builder()
            .options(PipelineOptions {
                grace_period: ms(300),
                ..PipelineOptions::default()
            })
            .sink("stalled", sink),
    );
    let path: PathBuf = dir.path().join("pending.log");
    std::fs::write(&path, "pending\n").unwrap();
    // The sink never answers this write.
    let _stalled = next_write(&mut controller).await;
    running.stop().await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "pending\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_longer_than_the_limit_is_cut_and_tagged() {
    let dir = tempfile::tempdir().unwrap();
    let sink = CollectingSink::new();
    let running = Running::start(
        HarvestConfig {
            max_line_bytes: 10,
            ..config(dir.path(), ms(300))
        },
        Pipeline::builder().sink("collect", sink.clone()),
    );
    let path = dir.path().join("long.log");
    std::fs::write(&path, "short\n0123456789abcdefghij\nafter\n").unwrap();
    eventually("the file to be harvested", || !path.exists()).await;
    running.stop().await;
    let events = sink.events();
    assert_eq!(messages(&events), ["short", "0123456789", "after"]);
    let cut: Vec<bool> = events.iter().map(|e| e.has_tag("_truncated")).collect();
    assert_eq!(cut, [false, true, false]);
}
