//! The embedded store against a real SQLite file: what `insert` stores and reads back, the
//! list filters and keyset paging, persistence across reopening, and the sink in a pipeline
//! while another process holds the database locked.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use loggr_core::test_util::MemorySource;
use loggr_core::{
    CancellationToken, Event, Facility, Pipeline, RetryConfig, Severity, SinkOptions, Value,
};
use loggr_store::{EventFilter, SqliteConfig, SqliteStore, Store, StoreSink};

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + seconds).unwrap()
}

/// Event `n` of a known set: host `web{n%3}`, program `sshd` for even n else `cron`,
/// severity `n % 8`, tag `odd` on odd n, logtime 1 s apart.
fn event(n: i64) -> Event {
    let mut event = Event::new(format!(
        "message {n} {}",
        if n % 5 == 0 { "50%_off" } else { "plain" }
    ));
    event.timestamp = Some(at(n));
    event.received_at = at(n + 1000);
    event.hostname = Some(format!("web{}", n % 3).into());
    event.app_name = Some(if n % 2 == 0 { "sshd" } else { "cron" }.into());
    event.severity = Severity::from_code((n % 8) as u8).unwrap();
    event.facility = Facility::from_code(4).unwrap();
    if n % 2 == 1 {
        event.add_tag("odd");
    }
    event
}

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(SqliteConfig::new(dir.path().join("data/loggr.db"))).unwrap()
}

#[tokio::test]
async fn stores_everything_once_and_reads_it_back_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut rich = event(1);
    rich.procid = Some("812".into());
    rich.msgid = Some("ID47".into());
    rich.set_field("userid", "alice");
    rich.set_field("port", Value::Int(22));
    rich.structured_data.push("origin@1", "ip", "192.0.2.1");
    rich.raw = Some(bytes::Bytes::from_static(b"<34>raw\0bytes"));
    rich.message = Some("nul\0inside <script>".into());
    {
        let store = open(&dir);
        let stats = store
            .insert(&[rich.clone(), event(2), rich.clone()])
            .await
            .unwrap();
        assert_eq!((stats.inserted, stats.duplicates), (2, 1));
        // Redelivery of the whole batch stores nothing new.
        let again = store.insert(&[rich.clone(), event(2)]).await.unwrap();
        assert_eq!((again.inserted, again.duplicates), (0, 2));
    }
    let store = open(&dir);
    let listed = store.events(&EventFilter::default(), 10).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let id = listed.iter().find(|e| e.tags == ["odd"]).unwrap().id;
    let detail = store.event(id).await.unwrap().unwrap();
    assert_eq!(
        detail.summary.message.as_deref(),
        Some("nul\u{FFFD}inside <script>")
    );
    assert_eq!(detail.summary.hostname.as_deref(), Some("web1"));
    assert_eq!(detail.summary.program.as_deref(), Some("cron"));
    assert_eq!(detail.summary.pid.as_deref(), Some("812"));
    assert_eq!(detail.summary.logtime, at(1));
    assert_eq!(detail.summary.received_at, at(1001));
    assert_eq!(detail.summary.severity, 1);
    assert_eq!(detail.summary.facility, 4);
    assert_eq!(detail.msgid.as_deref(), Some("ID47"));
    assert_eq!(detail.userid.as_deref(), Some("alice"));
    assert_eq!(detail.extra, vec![("port".to_owned(), "22".to_owned())]);
    assert_eq!(detail.digest, rich.content_id().0.to_vec());
    assert_eq!(detail.logdate, "2023-11-14");
    assert!(detail.reported);
    assert_eq!(detail.raw.as_deref(), Some(&b"<34>raw\0bytes"[..]));
    assert_eq!(
        detail.structured_data,
        Some(serde_json::json!({"origin@1": {"ip": "192.0.2.1"}}))
    );
    assert!(store.event(id + 100).await.unwrap().is_none());
    let status = store.status(Duration::from_secs(60)).await.unwrap();
    assert_eq!(status.events, 2);
    assert_eq!(status.recent, 0, "the events are from 2023");
    assert_eq!(status.newest, Some(at(2)));
}

/// What the list returns for `filter`, as event numbers (from the message).
async fn numbers(store: &SqliteStore, filter: &EventFilter, limit: u32) -> Vec<i64> {
    store
        .events(filter, limit)
        .await
        .unwrap()
        .iter()
        .map(|e| {
            e.message
                .as_deref()
                .unwrap()
                .split(' ')
                .nth(1)
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn filters_select_exactly_the_matching_events_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let all: Vec<Event> = (0..60).map(event).collect();
    store.insert(&all).await.unwrap();
    let expect =
        |keep: &dyn Fn(i64) -> bool| -> Vec<i64> { (0..60).rev().filter(|n| keep(*n)).collect() };

    let f = EventFilter::default();
    assert_eq!(numbers(&store, &f, 100).await, expect(&|_| true));
    let f = EventFilter {
        host: Some("web2".into()),
        ..EventFilter::default()
    };
    assert_eq!(numbers(&store, &f, 100).await, expect(&|n| n % 3 == 2));
    let f = EventFilter {
        program: Some("sshd".into()),
        ..EventFilter::default()
    };
    assert_eq!(numbers(&store, &f, 100).await, expect(&|n| n % 2 == 0));
    let f = EventFilter {
        severity: Some(2),
        ..EventFilter::default()
    };
    assert_eq!(numbers(&store, &f, 100).await, expect(&|n| n % 8 <= 2));
    let f = EventFilter {
        tag: Some("odd".into()),
        ..EventFilter::default()
    };
    assert_eq!(numbers(&store, &f, 100).await, expect(&|n| n % 2 == 1));
    // Literal text, case-insensitive: `%` and `_` are not wildcards.
    let f = EventFilter {
        text: Some("50%_OFF".into()),
        ..EventFilter::default()
    };
    assert_eq!(numbers(&store, &f, 100).await, expect(&|n| n % 5 == 0));
    let f = EventFilter {
        text: Some("50%xoff".into()),
        ..EventFilter::default()
    };
    assert!(numbers(&store, &f, 100).await.is_empty());
    let f = EventFilter {
        from: Some(at(10)),
        to: Some(at(20)),
        ..EventFilter::default()
    };
    assert_eq!(
        numbers(&store, &f, 100).await,
        expect(&|n| (10..20).contains(&n))
    );
    // Injection attempts are values, not SQL.
    let f = EventFilter {
        host: Some("web1' OR '1'='1".into()),
        ..EventFilter::default()
    };
    assert!(numbers(&store, &f, 100).await.is_empty());
    // Everything at once.
    let f = EventFilter {
        host: Some("web1".into()),
        tag: Some("odd".into()),
        severity: Some(5),
        from: Some(at(5)),
        ..EventFilter::default()
    };
    assert_eq!(
        numbers(&store, &f, 100).await,
        expect(&|n| n % 3 == 1 && n % 2 == 1 && n % 8 <= 5 && n >= 5)
    );
}

#[tokio::test]
async fn keyset_pages_cover_everything_once_even_with_equal_times() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    // Three events per second: the cursor must break ties by id.
    let events: Vec<Event> = (0..40)
        .map(|n| {
            let mut e = event(n);
            e.timestamp = Some(at(n / 3));
            e
        })
        .collect();
    store.insert(&events).await.unwrap();
    let mut filter = EventFilter {
        program: Some("sshd".into()),
        ..EventFilter::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = store.events(&filter, 6).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page
            .windows(2)
            .all(|w| (w[0].logtime, w[0].id) > (w[1].logtime, w[1].id)));
        let last = page.last().unwrap();
        filter.cursor = Some((last.logtime, last.id));
        seen.extend(page.iter().map(|e| e.id));
    }
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(seen.len(), 20, "every sshd event once");
    assert_eq!(unique.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_acknowledges_only_after_commit_and_retries_while_the_database_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/loggr.db");
    let mut config = SqliteConfig::new(&path);
    config.busy_timeout_ms = 50;
    let store = Arc::new(SqliteStore::open(config).unwrap());

    // Another process's write lock: every commit fails (SQLITE_BUSY) until it is released.
    let locker = rusqlite::Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let events: Vec<Event> = (0..500).map(event).collect();
    let (source, outcomes) = MemorySource::new(events, 50);
    let options = SinkOptions {
        retry: RetryConfig {
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(50),
            max_attempts: None,
            ..RetryConfig::default()
        },
        ..SinkOptions::default()
    };
    let pipeline = Pipeline::builder()
        .source("memory", source)
        .sink_with("sqlite", StoreSink::new(store.clone()), options)
        .build()
        .unwrap();
    let run = tokio::spawn(pipeline.run(CancellationToken::new()));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        outcomes.get().iter().all(Option::is_none),
        "nothing is acknowledged while the commit cannot happen: {:?}",
        outcomes.get()
    );
    assert_eq!(store.status(Duration::ZERO).await.unwrap().events, 0);
    locker.execute_batch("ROLLBACK").unwrap();
    run.await.unwrap().unwrap();
    assert!(outcomes.all_delivered(), "{:?}", outcomes.get());
    assert_eq!(store.status(Duration::ZERO).await.unwrap().events, 500);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loggr.db");
    drop(SqliteStore::open(SqliteConfig::new(&path)).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let error = SqliteStore::open(SqliteConfig::new(&path)).unwrap_err();
    assert!(error.to_string().contains("99"), "{error}");
}
