//! What every [`Store`] backend must do, run against each: SQLite (a temporary file) and
//! PostgreSQL (a database of the test's own on the machine's server, 127.0.0.1:5432 — start it
//! with `bash scripts/services.sh`; the PostgreSQL tests fail when it is not there).
//!
//! Idempotent inserts, every column read back, each list filter, keyset paging with ties.

#![cfg(all(feature = "sqlite", feature = "postgres"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{at, event};
use loggr_core::{Event, Value};
use loggr_sinks::postgres::PostgresSinkConfig;
use loggr_store::{EventFilter, PgStore, SqliteConfig, SqliteStore, Store};

/// A store and what keeps its data alive (a temporary directory, a database).
struct Backend {
    store: Arc<dyn Store>,
    _keep: Box<dyn std::any::Any>,
}

fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("loggr.db"))).unwrap();
    Backend {
        store: Arc::new(store),
        _keep: Box::new(dir),
    }
}

/// A database of the test's own, dropped at the end.
struct Database(String);

fn psql(sql: &str) {
    let output = Command::new("psql")
        .args(["-X", "-q", "-h", "127.0.0.1", "-d", "postgres", "-c", sql])
        .output()
        .unwrap_or_else(|e| panic!("psql is missing ({e}): run `bash scripts/services.sh`"));
    assert!(
        output.status.success(),
        "{sql}: {} (is PostgreSQL running? `bash scripts/services.sh`)",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-X", "-q", "-h", "127.0.0.1", "-d", "postgres", "-c"])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0))
            .status();
    }
}

fn postgres(test: &str) -> Backend {
    let short: String = test.chars().take(24).collect();
    let name = format!("loggr_store_{short}_{}", std::process::id());
    psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    psql(&format!("CREATE DATABASE {name}"));
    let mut config = PostgresSinkConfig::new(format!("postgresql://root@127.0.0.1:5432/{name}"));
    config.migrate = true;
    Backend {
        store: Arc::new(PgStore::new(config).unwrap()),
        _keep: Box::new(Database(name)),
    }
}

/// Runs one check against both backends.
macro_rules! both {
    ($check:ident) => {
        mod $check {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let backend = super::sqlite();
                super::$check(&*backend.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let backend = super::postgres(stringify!($check));
                super::$check(&*backend.store).await;
            }
        }
    };
}

both!(stores_once_and_reads_every_column_back);
both!(filters_select_exactly_the_matching_events_newest_first);
both!(keyset_pages_cover_everything_once_even_with_equal_times);

async fn stores_once_and_reads_every_column_back(store: &dyn Store) {
    let mut rich = event(1);
    rich.procid = Some("812".into());
    rich.msgid = Some("ID47".into());
    rich.set_field("userid", "alice");
    rich.set_field("port", Value::Int(22));
    rich.structured_data.push("origin@1", "ip", "192.0.2.1");
    rich.raw = Some(bytes::Bytes::from_static(b"<34>raw\0bytes"));
    rich.message = Some("nul\0inside <script>".into());
    let stats = store
        .insert(&[rich.clone(), event(2), rich.clone()])
        .await
        .unwrap();
    assert_eq!((stats.inserted, stats.duplicates), (2, 1));
    // Redelivery of the whole batch stores nothing new.
    let again = store.insert(&[rich.clone(), event(2)]).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 2));

    let listed = store.events(&EventFilter::default(), 10).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let id = listed.iter().find(|e| e.tags == ["odd"]).unwrap().id;
    let detail = store.event(id).await.unwrap().unwrap();
    let summary = &detail.summary;
    assert_eq!(
        summary.message.as_deref(),
        Some("nul\u{FFFD}inside <script>")
    );
    assert_eq!(summary.hostname.as_deref(), Some("web1"));
    assert_eq!(summary.program.as_deref(), Some("cron"));
    assert_eq!(summary.pid.as_deref(), Some("812"));
    assert_eq!(summary.logtime, at(1));
    assert_eq!(summary.received_at, at(1001));
    assert_eq!((summary.severity, summary.facility), (1, 4));
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
    assert_eq!(status.recent, 0, "the events are from 2023");
    assert_eq!(status.newest, Some(at(2)));
}

/// What the list returns for `filter`, as event numbers (from the message).
async fn numbers(store: &dyn Store, filter: &EventFilter) -> Vec<i64> {
    store
        .events(filter, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| {
            let message = e.message.as_deref().unwrap();
            message.split(' ').nth(1).unwrap().parse().unwrap()
        })
        .collect()
}

async fn filters_select_exactly_the_matching_events_newest_first(store: &dyn Store) {
    let all: Vec<Event> = (0..60).map(event).collect();
    store.insert(&all).await.unwrap();
    let expect =
        |keep: &dyn Fn(i64) -> bool| -> Vec<i64> { (0..60).rev().filter(|n| keep(*n)).collect() };
    let none = EventFilter::default;

    assert_eq!(numbers(store, &none()).await, expect(&|_| true));
    let f = EventFilter {
        host: Some("web2".into()),
        ..none()
    };
    assert_eq!(numbers(store, &f).await, expect(&|n| n % 3 == 2));
    let f = EventFilter {
        program: Some("sshd".into()),
        ..none()
    };
    assert_eq!(numbers(store, &f).await, expect(&|n| n % 2 == 0));
    let f = EventFilter {
        severity: Some(2),
        ..none()
    };
    assert_eq!(numbers(store, &f).await, expect(&|n| n % 8 <= 2));
    let f = EventFilter {
        tag: Some("odd".into()),
        ..none()
    };
    assert_eq!(numbers(store, &f).await, expect(&|n| n % 2 == 1));
    // Literal text, case-insensitive: `%` and `_` are not wildcards.
    let f = EventFilter {
        text: Some("50%_OFF".into()),
        ..none()
    };
    assert_eq!(numbers(store, &f).await, expect(&|n| n % 5 == 0));
    let f = EventFilter {
        text: Some("50%xoff".into()),
        ..none()
    };
    assert!(numbers(store, &f).await.is_empty());
    let f = EventFilter {
        from: Some(at(10)),
        to: Some(at(20)),
        ..none()
    };
    assert_eq!(numbers(store, &f).await, expect(&|n| (10..20).contains(&n)));
    // Injection attempts are values, not SQL.
    let f = EventFilter {
        host: Some("web1' OR '1'='1".into()),
        ..none()
    };
    assert!(numbers(store, &f).await.is_empty());
    // Everything at once.
    let f = EventFilter {
        host: Some("web1".into()),
        tag: Some("odd".into()),
        severity: Some(5),
        from: Some(at(5)),
        ..none()
    };
    assert_eq!(
        numbers(store, &f).await,
        expect(&|n| n % 3 == 1 && n % 2 == 1 && n % 8 <= 5 && n >= 5)
    );
}

async fn keyset_pages_cover_everything_once_even_with_equal_times(store: &dyn Store) {
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
