//! What only the embedded store has: a file that persists across reopening, exact counts,
//! the sink in a pipeline while another process holds the database locked, schema versions.
//! (What every backend must do is in `contract.rs`.)

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

mod common;

use common::{at, event};
use loggr_core::test_util::MemorySource;
use loggr_core::{CancellationToken, Event, Pipeline, RetryConfig, SinkOptions};
use loggr_store::{EventFilter, SqliteConfig, SqliteStore, Store, StoreSink};

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(SqliteConfig::new(dir.path().join("data/loggr.db"))).unwrap()
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

#[tokio::test]
async fn a_reopened_store_has_every_committed_event() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        store
            .insert(&(0..10).map(event).collect::<Vec<_>>())
            .await
            .unwrap();
    }
    let store = open(&dir);
    let status = store.status(Duration::from_secs(60)).await.unwrap();
    assert_eq!(status.events, 10);
    assert_eq!(status.recent, 0, "the events are from 2023");
    assert_eq!(status.newest, Some(at(9)));
    let listed = store.events(&EventFilter::default(), 100).await.unwrap();
    assert_eq!(listed.len(), 10);
    let again = store.insert(&[event(3)]).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 1));
}
