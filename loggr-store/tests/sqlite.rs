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

/// Turns the current database at `path` back into a version-1 one (`digest UNIQUE`), rows
/// and ids kept, as a store released with schema version 1 left it.
fn downgrade_to_v1(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "BEGIN; DROP TRIGGER event_deleted; DROP VIEW extra_info; \
         DROP INDEX event_logtime_digest_idx; DROP INDEX event_unreported_digest_idx; \
         DROP INDEX event_hostname_logtime_idx; \
         DROP INDEX event_program_logtime_idx; ALTER TABLE event RENAME TO event_v2;",
    )
    .unwrap();
    conn.execute_batch(include_str!("fixtures/sqlite_schema_v1.sql"))
        .unwrap();
    conn.execute_batch(
        "INSERT INTO event (id, digest, logtime, received_at, reported, facility, severity, \
         hostname, program, pid, msgid, userid, message, structured_data, raw) \
         SELECT id, digest, logtime, received_at, reported, facility, severity, hostname, \
         program, pid, msgid, userid, message, structured_data, raw FROM event_v2; \
         INSERT INTO extra_info (event, seq, name, val) \
         SELECT e.id, j.key, j.value ->> 0, j.value ->> 1 \
         FROM event_v2 e, json_each(e.fields) j WHERE e.fields IS NOT NULL; \
         DROP TABLE event_v2; PRAGMA user_version = 1; COMMIT;",
    )
    .unwrap();
}

/// The first column of `query`'s rows, on the database at `path`.
fn names(path: &std::path::Path, query: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut statement = conn.prepare(query).unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The event table's indexes in the current schema, by name.
const CURRENT_INDEXES: [&str; 4] = [
    "event_hostname_logtime_idx",
    "event_logtime_digest_idx",
    "event_program_logtime_idx",
    "event_unreported_digest_idx",
];

fn index_names(path: &std::path::Path) -> Vec<String> {
    names(
        path,
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'event' ORDER BY name",
    )
}

/// The id of event 4 (the one with extra info) in a listing.
fn id_of_4(listed: &[loggr_store::EventSummary]) -> i64 {
    let four = listed
        .iter()
        .find(|e| e.message.as_deref() == Some("message 4 plain"));
    four.expect("event 4 is listed").id
}

#[tokio::test]
async fn a_version_1_store_is_rebuilt_with_its_events_tags_and_deduplication() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/loggr.db");
    // Event 0 without a reported time: deduplicated on its content alone.
    let mut events: Vec<Event> = (0..20).map(event).collect();
    events[0].timestamp = None;
    // Extra info, with a repeated name whose values keep their order.
    events[4].set_field("user", "alice");
    events[4].set_field("port", 22i64);
    events[4].set_field(
        "tty",
        loggr_core::Value::List(vec!["b \"2\"".into(), "a".into()]),
    );
    let (before, fields_before) = {
        let store = open(&dir);
        store.insert(&events).await.unwrap();
        let listed = store.events(&EventFilter::default(), 100).await.unwrap();
        let fields = store.event(id_of_4(&listed)).await.unwrap().unwrap().extra;
        (listed, fields)
    };
    assert_eq!(fields_before.len(), 4, "{fields_before:?}");
    downgrade_to_v1(&path);
    assert!(
        index_names(&path).contains(&"sqlite_autoindex_event_1".to_owned()),
        "version 1 keeps digest UNIQUE: {:?}",
        index_names(&path)
    );

    let store = open(&dir);
    assert_eq!(index_names(&path), CURRENT_INDEXES, "digest UNIQUE is gone");
    let after = store.events(&EventFilter::default(), 100).await.unwrap();
    assert_eq!(after, before, "every event kept, ids too");
    let odd = EventFilter {
        tag: Some("odd".into()),
        ..EventFilter::default()
    };
    let odd = store.events(&odd, 100).await.unwrap();
    assert_eq!(odd.len(), 10, "tags still point at their events");
    let fields = store.event(id_of_4(&after)).await.unwrap().unwrap().extra;
    assert_eq!(fields, fields_before, "extra info moved with its event");
    // The same events again, the one without a reported time received later: all duplicates.
    let mut again = events.clone();
    again[0].received_at = at(5000);
    let stats = store.insert(&again).await.unwrap();
    assert_eq!((stats.inserted, stats.duplicates), (0, 20));
    let stats = store.insert(&[event(20)]).await.unwrap();
    assert_eq!((stats.inserted, stats.duplicates), (1, 0));
}

/// Turns the current database at `path` back into a version-3 one, as a store released
/// with schema version 3 left it: a unique `(reported time or 0, digest)` index and a
/// `(logtime, id)` one.
fn downgrade_to_v3(path: &std::path::Path) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch(
            "DROP INDEX event_logtime_digest_idx; DROP INDEX event_unreported_digest_idx; \
             CREATE UNIQUE INDEX event_dedup_idx \
             ON event ((CASE WHEN reported THEN logtime ELSE 0 END), digest); \
             CREATE INDEX event_logtime_idx ON event (logtime, id); \
             PRAGMA user_version = 3;",
        )
        .unwrap();
}

/// Turns the current database at `path` back into a version-2 one, as a store released
/// with schema version 2 left it: version 3's indexes, and `logdate` a generated column.
fn downgrade_to_v2(path: &std::path::Path) {
    downgrade_to_v3(path);
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch(
            "ALTER TABLE event ADD COLUMN logdate TEXT \
             GENERATED ALWAYS AS (date(logtime / 1000000, 'unixepoch')) VIRTUAL; \
             PRAGMA user_version = 2;",
        )
        .unwrap();
}

/// The `event` table's columns, generated ones included.
fn event_columns(path: &std::path::Path) -> Vec<String> {
    names(path, "SELECT name FROM pragma_table_xinfo('event')")
}

#[tokio::test]
async fn a_version_2_store_loses_its_generated_logdate_and_keeps_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/loggr.db");
    let events: Vec<Event> = (0..20).map(event).collect();
    let (before, detail_before) = {
        let store = open(&dir);
        store.insert(&events).await.unwrap();
        let listed = store.events(&EventFilter::default(), 100).await.unwrap();
        let detail = store.event(id_of_4(&listed)).await.unwrap().unwrap();
        (listed, detail)
    };
    assert!(!event_columns(&path).contains(&"logdate".to_owned()));
    downgrade_to_v2(&path);
    assert!(event_columns(&path).contains(&"logdate".to_owned()));

    let store = open(&dir);
    let columns = event_columns(&path);
    assert!(!columns.contains(&"logdate".to_owned()), "{columns:?}");
    assert!(columns.contains(&"fields".to_owned()), "{columns:?}");
    assert_eq!(index_names(&path), CURRENT_INDEXES);
    let after = store.events(&EventFilter::default(), 100).await.unwrap();
    assert_eq!(after, before, "every event kept, ids too");
    let detail = store.event(id_of_4(&after)).await.unwrap().unwrap();
    assert_eq!(detail, detail_before);
    assert_eq!(detail.logdate, "2023-11-14", "computed when read");
    let stats = store.insert(&events).await.unwrap();
    assert_eq!((stats.inserted, stats.duplicates), (0, 20));
    let stats = store.insert(&[event(20)]).await.unwrap();
    assert_eq!((stats.inserted, stats.duplicates), (1, 0));
}

#[tokio::test]
async fn a_version_3_store_gets_one_time_ordered_unique_index_and_keeps_deduplicating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/loggr.db");
    // Events 0 and 1 without a reported time: deduplicated on their content alone.
    let mut events: Vec<Event> = (0..20).map(event).collect();
    events[0].timestamp = None;
    events[1].timestamp = None;
    let before = {
        let store = open(&dir);
        store.insert(&events).await.unwrap();
        store.events(&EventFilter::default(), 100).await.unwrap()
    };
    downgrade_to_v3(&path);
    assert!(index_names(&path).contains(&"event_logtime_idx".to_owned()));

    let store = open(&dir);
    assert_eq!(index_names(&path), CURRENT_INDEXES);
    let after = store.events(&EventFilter::default(), 100).await.unwrap();
    assert_eq!(after, before, "every event kept, ids too");
    // Everything again, the events without a reported time received later (another
    // `logtime`): all duplicates.
    let mut again = events.clone();
    again[0].received_at = at(5000);
    again[1].received_at = at(6000);
    let stats = store.insert(&again).await.unwrap();
    assert_eq!((stats.inserted, stats.duplicates), (0, 20));
    // A new event without a reported time, received at the same time as a stored one with
    // a reported time: not a duplicate.
    let mut new = event(20);
    new.timestamp = None;
    new.received_at = at(3);
    let stats = store.insert(&[new, event(21)]).await.unwrap();
    assert_eq!((stats.inserted, stats.duplicates), (2, 0));
    assert_eq!(
        store
            .events(&EventFilter::default(), 100)
            .await
            .unwrap()
            .len(),
        22
    );
}

#[tokio::test]
async fn extra_info_reads_and_appends_like_a_table_through_sql() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut with_fields = event(1);
    with_fields.set_field("user", "alice");
    store.insert(&[with_fields, event(2)]).await.unwrap();
    let listed = store.events(&EventFilter::default(), 10).await.unwrap();
    let (two, one) = (listed[0].id, listed[1].id);
    let conn = rusqlite::Connection::open(dir.path().join("data/loggr.db")).unwrap();
    conn.execute_batch(&format!(
        "INSERT INTO extra_info (event, seq, name, val) VALUES ({one}, 1, 'port', '22'), \
         ({two}, 0, 'tty', 'pts/0')"
    ))
    .unwrap();
    let rows: Vec<(i64, i64, String, String)> = conn
        .prepare("SELECT event, seq, name, val FROM extra_info ORDER BY event, seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected = [
        (one, 0, "user", "alice"),
        (one, 1, "port", "22"),
        (two, 0, "tty", "pts/0"),
    ]
    .map(|(e, s, n, v)| (e, s, n.to_owned(), v.to_owned()));
    assert_eq!(rows, expected);
    let detail = store.event(two).await.unwrap().unwrap();
    assert_eq!(detail.extra, [("tty".to_owned(), "pts/0".to_owned())]);
}

fn page_size(path: &std::path::Path) -> u32 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_database_gets_16_kib_pages_and_an_existing_one_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("data/loggr.db");
    drop(open(&dir));
    assert_eq!(page_size(&fresh), 16_384);

    // A database another tool created with SQLite's default pages still opens and works.
    let existing = dir.path().join("old.db");
    rusqlite::Connection::open(&existing)
        .unwrap()
        .execute_batch("PRAGMA page_size = 4096; CREATE TABLE unrelated (x INTEGER);")
        .unwrap();
    let store = SqliteStore::open(SqliteConfig::new(&existing)).unwrap();
    let stored = store
        .insert(&(0..5).map(event).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(stored.inserted, 5);
    drop(store);
    assert_eq!(page_size(&existing), 4096);
}

/// Events `range` of the known set (`common::event`).
fn events(range: std::ops::Range<i64>) -> Vec<Event> {
    range.map(event).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_waiting_together_are_answered_each_and_one_that_fails_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir));
    // A batch holding this message cannot be stored.
    store
        .with_writer(|conn| {
            conn.execute_batch(
                "CREATE TRIGGER poison BEFORE INSERT ON event WHEN new.message = 'poison' \
                 BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
            )?;
            Ok(())
        })
        .unwrap();
    // Hold the writer, so that the batches below wait for it together.
    let (held, is_held) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = {
        let store = store.clone();
        std::thread::spawn(move || {
            store.with_writer(|_| {
                held.send(()).unwrap();
                released.recv().unwrap();
                Ok(())
            })
        })
    };
    is_held.recv().unwrap();
    let insert = |batch: Vec<Event>| {
        let store = store.clone();
        tokio::spawn(async move { store.insert(&batch).await })
    };
    // The inserting thread takes this one and waits for the writer with it…
    let first = insert(events(0..10));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // …while these three queue, to be inserted in one transaction.
    let mut poisoned = events(10..20);
    poisoned[3].message = Some("poison".into());
    let poisoned = insert(poisoned);
    let good = insert(events(20..30));
    let again = insert(events(0..10).into_iter().chain(events(30..35)).collect());
    tokio::time::sleep(Duration::from_millis(100)).await;
    release.send(()).unwrap();
    holder.join().unwrap().unwrap();

    let stats = |inserted, duplicates| loggr_store::InsertStats {
        inserted,
        duplicates,
    };
    assert_eq!(first.await.unwrap().unwrap(), stats(10, 0));
    let error = poisoned.await.unwrap().unwrap_err();
    assert!(error.to_string().contains("poisoned"), "{error}");
    assert_eq!(good.await.unwrap().unwrap(), stats(10, 0));
    assert_eq!(again.await.unwrap().unwrap(), stats(5, 10));
    assert_eq!(store.status(Duration::ZERO).await.unwrap().events, 25);
    let listed = store.events(&EventFilter::default(), 100).await.unwrap();
    assert!(
        listed.iter().all(|e| {
            let n: i64 = e.message.as_deref().unwrap()["message ".len()..]
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            !(10..20).contains(&n)
        }),
        "nothing of the failed batch is stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_store_every_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir));
    // Eight tasks, task t inserting events 250 t to 250 t + 400 in batches of 50: the last
    // 150 of each are the next task's first. Every event stored once, every repeat counted.
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut total = loggr_store::InsertStats::default();
                for start in (task * 250..task * 250 + 400).step_by(50) {
                    let stats = store.insert(&events(start..start + 50)).await.unwrap();
                    total.inserted += stats.inserted;
                    total.duplicates += stats.duplicates;
                }
                total
            })
        })
        .collect();
    let mut inserted = 0;
    let mut duplicates = 0;
    for task in tasks {
        let stats = task.await.unwrap();
        inserted += stats.inserted;
        duplicates += stats.duplicates;
    }
    assert_eq!(inserted, 7 * 250 + 400);
    assert_eq!(duplicates, 7 * 150);
    assert_eq!(
        store.status(Duration::ZERO).await.unwrap().events,
        7 * 250 + 400
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_full_durability_an_insert_whose_wal_cannot_be_synced_is_not_reported_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    assert_eq!(
        store.insert(&events(0..5)).await.unwrap().inserted,
        5,
        "synced"
    );
    // SQLite keeps writing to its open descriptor of the unlinked file; the store's sync
    // opens the file by name to fsync it, and cannot.
    std::fs::remove_file(dir.path().join("data/loggr.db-wal")).unwrap();
    let error = store.insert(&events(5..10)).await.unwrap_err();
    assert!(error.to_string().contains("loggr.db-wal"), "{error}");

    // Without the promise of surviving a power loss, there is nothing to sync.
    let dir = tempfile::tempdir().unwrap();
    let mut config = SqliteConfig::new(dir.path().join("data/loggr.db"));
    config.synchronous = loggr_store::Synchronous::Normal;
    let store = SqliteStore::open(config).unwrap();
    std::fs::remove_file(dir.path().join("data/loggr.db-wal")).unwrap();
    assert_eq!(store.insert(&events(0..5)).await.unwrap().inserted, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_runs_of_untagged_events_are_stored_once_each_and_tags_reach_their_own_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    // Event n carries tag `t{n}` when n % 37 == 0 and no tag otherwise: runs of 36 untagged
    // events, and a run of 150 at the end (more than one statement's worth).
    let batch = |range: std::ops::Range<i64>| -> Vec<Event> {
        range
            .map(|n| {
                let mut event = event(n);
                event.tags.clear();
                if n % 37 == 0 && n < 300 {
                    event.add_tag(format!("t{n}"));
                }
                event
            })
            .collect()
    };
    // Events 100..200 twice in the first batch, so that repeats meet inside one statement
    // and across statements.
    let first: Vec<Event> = batch(0..300).into_iter().chain(batch(100..200)).collect();
    let stats = store.insert(&first).await.unwrap();
    assert_eq!((stats.inserted, stats.duplicates), (300, 100));
    let second = store.insert(&batch(250..450)).await.unwrap();
    assert_eq!((second.inserted, second.duplicates), (150, 50));
    assert_eq!(store.status(Duration::ZERO).await.unwrap().events, 450);

    let conn = rusqlite::Connection::open(dir.path().join("data/loggr.db")).unwrap();
    let tagged: Vec<(String, String)> = conn
        .prepare(
            "SELECT e.message, t.name FROM tag t JOIN event e ON e.id = t.event ORDER BY e.logtime",
        )
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected: Vec<i64> = (0..300).filter(|n| n % 37 == 0).collect();
    assert_eq!(tagged.len(), expected.len(), "{tagged:?}");
    for ((message, tag), n) in tagged.iter().zip(expected) {
        assert_eq!(tag, &format!("t{n}"));
        assert!(
            message.starts_with(&format!("message {n} ")),
            "{message} has {tag}"
        );
    }
    // Every stored event is one of 0..450, once.
    let distinct: i64 = conn
        .query_row("SELECT count(DISTINCT message) FROM event", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(distinct, 450);
}
