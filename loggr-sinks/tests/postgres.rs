#![allow(clippy::unwrap_used)]
//! The `postgres` sink against a real PostgreSQL: schema migrations, the generated logdate,
//! the message search index, faithful storage (direct COPY and staging paths), idempotent
//! redelivery, concurrent writers of the same events, deleting events with their tags, NUL
//! bytes and raw bytes, quarantine of refused events, reconnection after the backend is
//! killed, and the sink built from TOML.
//!
//! Every test creates its own database `loggr_t_<random>` and drops it at the end (even on
//! failure). The server is `LOGGR_TEST_PG_URL` (default `postgresql://root@127.0.0.1:5432/postgres`);
//! when it is unreachable the tests fail, saying how to start it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use loggr_core::test_util::{numbered_events, MemorySource};
use loggr_core::{
    BuildContext, CancellationToken, Event, Facility, Metrics, Pipeline, Registry, Severity, Sink,
    SinkOptions, Timestamp, Value,
};
use loggr_sinks::postgres::tokio_postgres::{Client, NoTls};
use loggr_sinks::postgres::{
    create_search_index, load_event, migrate, schema_version, search_index, PostgresSink,
    PostgresSinkConfig, SearchIndex, MIGRATIONS, SCHEMA_VERSION,
};

const DEFAULT_URL: &str = "postgresql://root@127.0.0.1:5432/postgres";

fn server_url() -> String {
    std::env::var("LOGGR_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// `url` with its database replaced by `dbname` (URL or key=value form).
fn with_dbname(url: &str, dbname: &str) -> String {
    if let Some(rest) = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
    {
        let (before_query, query) = match rest.split_once('?') {
            Some((before, query)) => (before, Some(query)),
            None => (rest, None),
        };
        let authority = before_query.split('/').next().unwrap_or(before_query);
        match query {
            Some(query) => format!("postgresql://{authority}/{dbname}?{query}"),
            None => format!("postgresql://{authority}/{dbname}"),
        }
    } else {
        format!("{url} dbname={dbname}")
    }
}

async fn connect(url: &str) -> Client {
    let attempt = async {
        let (client, connection) = url
            .parse::<loggr_sinks::postgres::tokio_postgres::Config>()?
            .connect(NoTls)
            .await?;
        tokio::spawn(connection);
        Ok::<_, loggr_sinks::postgres::tokio_postgres::Error>(client)
    };
    match tokio::time::timeout(Duration::from_secs(10), attempt).await {
        Ok(Ok(client)) => client,
        Ok(Err(error)) => panic!(
            "PostgreSQL is not reachable at {url}: {error:?}. Start it with `bash scripts/services.sh` \
             (or point LOGGR_TEST_PG_URL at a server where this user may create databases)"
        ),
        Err(_) => panic!(
            "PostgreSQL at {url} did not answer within 10 s. Start it with `bash scripts/services.sh`"
        ),
    }
}

/// A database of its own for one test, dropped when the test ends (also on panic).
struct TestDb {
    name: String,
    url: String,
    admin: Client,
}

impl TestDb {
    async fn new() -> TestDb {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "loggr_t_{}_{}_{}",
            std::process::id(),
            nanos,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let admin = connect(&server_url()).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let url = with_dbname(&server_url(), &name);
        TestDb { name, url, admin }
    }

    /// A database with the loggr schema.
    async fn migrated() -> (TestDb, Client) {
        let db = TestDb::new().await;
        let client = db.client().await;
        migrate(&client).await.unwrap();
        (db, client)
    }

    async fn client(&self) -> Client {
        connect(&self.url).await
    }

    fn sink(&self) -> PostgresSink {
        PostgresSink::new(PostgresSinkConfig::new(&self.url)).unwrap()
    }

    /// A sink that always goes through the staging table.
    fn staging_sink(&self) -> PostgresSink {
        let config = PostgresSinkConfig {
            direct_copy: false,
            ..PostgresSinkConfig::new(&self.url)
        };
        PostgresSink::new(config).unwrap()
    }

    /// Kills the sessions of the sinks (application name `loggr`) on this database, as an
    /// operator or a server restart would; returns how many.
    async fn terminate_sink_sessions(&self) -> i64 {
        self.admin
            .query_one(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000))
                 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'loggr'",
                &[&self.name],
            )
            .await
            .unwrap()
            .get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let url = server_url();
        let name = self.name.clone();
        // A runtime of its own on a thread of its own: Drop cannot await.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let admin = connect(&url).await;
                let _ = admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}

/// The event as `jsonb` gives its structured data back: elements and param names sorted (the
/// values of a repeated param keep their order).
fn sd_sorted(mut event: Event) -> Event {
    let elements = &mut event.structured_data.elements;
    elements.sort_by(|a, b| a.id.cmp(&b.id));
    for element in elements {
        element.params.sort_by(|a, b| a.name.cmp(&b.name));
    }
    event
}

async fn count(client: &Client, query: &str) -> i64 {
    client.query_one(query, &[]).await.unwrap().get(0)
}

/// An event with every part set, at microsecond precision (what PostgreSQL keeps).
fn full_event(n: usize) -> Event {
    let mut event = Event::empty("2026-11-21T10:00:00.123456Z".parse().unwrap());
    event.timestamp = Some("2026-11-21T09:59:59.5Z".parse().unwrap());
    event.facility = Facility::Auth;
    event.severity = Severity::Warning;
    event.hostname = Some("web1".into());
    event.app_name = Some("sshd".into());
    event.procid = Some("812".into());
    event.msgid = Some("LOGIN".into());
    event.message = Some(format!("Accepted publickey for alice from 10.0.0.{n}").into());
    event.structured_data.push("origin@32473", "ip", "10.0.0.1");
    event.structured_data.push("origin@32473", "ip", "10.0.0.2");
    event.structured_data.push("meta", "software", "x");
    event.add_tag("auth_success");
    event.add_tag("ssh");
    event.set_field("userid", "alice");
    event.set_field("source_address", format!("10.0.0.{n}"));
    event.set_field(
        "auth_methods",
        Value::List(vec!["publickey".into(), "password".into()]),
    );
    event.raw = Some(Bytes::from(format!(
        "<36>1 2026-11-21T09:59:59.5Z web1 sshd 812 LOGIN - Accepted {n}"
    )));
    event
}

#[tokio::test]
async fn migration_5_moves_stored_tags_and_extra_info_into_their_events() {
    let db = TestDb::new().await;
    let client = db.client().await;
    // A store of schema version 4, as an earlier loggr left it (its scripts are idempotent:
    // `migrate` runs them again before the fifth).
    for migration in &MIGRATIONS[..4] {
        client.batch_execute(migration.sql).await.unwrap();
    }
    client
        .batch_execute(
            "INSERT INTO event (digest, logtime, received_at, facility, severity, message)
             SELECT sha256(i::text::bytea), now(), now(), 1, 5, 'm' || i
             FROM generate_series(1, 3) i;
             INSERT INTO tag (event, name) VALUES (1, 'b'), (1, 'a'), (2, 'c');
             INSERT INTO extra_info (event, name, val)
             VALUES (1, 'port', '22'), (1, 'ip', '10.0.0.1'), (1, 'port', '23'), (3, 'x', 'y');",
        )
        .await
        .unwrap();
    let migrated = migrate(&client).await.unwrap();
    assert_eq!(migrated.version, SCHEMA_VERSION);
    let rows = client
        .query("SELECT id, tags, extra::text FROM event ORDER BY id", &[])
        .await
        .unwrap();
    let events: Vec<(i64, Option<Vec<String>>, Option<String>)> = rows
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let tags = |names: &[&str]| Some(names.iter().map(|n| n.to_string()).collect::<Vec<_>>());
    assert_eq!(
        events,
        [
            (
                1,
                tags(&["a", "b"]),
                Some(r#"[["port", "22"], ["ip", "10.0.0.1"], ["port", "23"]]"#.to_owned())
            ),
            (2, tags(&["c"]), None),
            (3, None, Some(r#"[["x", "y"]]"#.to_owned())),
        ]
    );
    // The logical tables read as before; `tag` keeps its rows under its new key.
    let fields = client
        .query(
            "SELECT event, name::text, val FROM extra_info ORDER BY event, n",
            &[],
        )
        .await
        .unwrap();
    let fields: Vec<(i64, String, String)> = fields
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let field = |event: i64, name: &str, val: &str| (event, name.to_owned(), val.to_owned());
    assert_eq!(
        fields,
        [
            field(1, "port", "22"),
            field(1, "ip", "10.0.0.1"),
            field(1, "port", "23"),
            field(3, "x", "y"),
        ]
    );
    assert_eq!(count(&client, "SELECT count(*) FROM tag").await, 3);
    // Deleting an event deletes its tags; an insert into the view lands in the event's row.
    client
        .batch_execute(
            "DELETE FROM event WHERE id = 1;
             INSERT INTO extra_info (event, name, val) VALUES (2, 'k', 'v')",
        )
        .await
        .unwrap();
    assert_eq!(count(&client, "SELECT count(*) FROM tag").await, 1);
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM extra_info WHERE event = 2 AND val = 'v'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn migrating_twice_is_a_no_op_and_creates_the_tables() {
    let db = TestDb::new().await;
    let client = db.client().await;
    assert_eq!(schema_version(&client).await.unwrap(), None);
    let first = migrate(&client).await.unwrap();
    let every: Vec<u32> = (1..=SCHEMA_VERSION).collect();
    assert_eq!(first.applied, every);
    assert_eq!(first.version, SCHEMA_VERSION);
    let objects = "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'public'";
    let before = count(&client, objects).await;
    let ledger = "SELECT count(*) FROM loggr_schema_migrations";
    let second = migrate(&client).await.unwrap();
    assert!(second.applied.is_empty(), "{second:?}");
    assert_eq!(second.version, SCHEMA_VERSION);
    assert_eq!(count(&client, objects).await, before);
    assert_eq!(count(&client, ledger).await, i64::from(SCHEMA_VERSION));
    // Migration 2: the importer that holds a file lock.
    let owner = "SELECT count(*) FROM information_schema.columns
                 WHERE table_name = 'current_processing' AND column_name = 'owner'";
    assert_eq!(count(&client, owner).await, 1);

    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    for table in [
        "current_processing",
        "event",
        "extra_info",
        "log",
        "loggr_schema_migrations",
        "quarantine",
        "tag",
    ] {
        assert!(
            tables.contains(&table.to_owned()),
            "{table} missing: {tables:?}"
        );
    }
    assert_eq!(event_indexes(&client).await, EVENT_INDEXES);
    assert_eq!(search_index(&client).await.unwrap(), None);
    // Identifiers compare byte-wise, whatever the database's collation.
    let c_collated = count(
        &client,
        "SELECT count(*) FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation
         WHERE c.collname = 'C' AND (a.attrelid::regclass::text, a.attname::text) IN
             (('event', 'hostname'), ('event', 'program'), ('event', 'tags'), ('tag', 'name'),
              ('extra_info', 'name'))",
    )
    .await;
    assert_eq!(c_collated, 5);
    // No foreign keys (deletes cascade through the event_deleted trigger).
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
        )
        .await,
        0
    );
    // Concurrent migrators serialise on the advisory lock: both succeed, nothing is applied twice.
    let other = db.client().await;
    let (a, b) = tokio::join!(migrate(&client), migrate(&other));
    assert!(a.unwrap().applied.is_empty() && b.unwrap().applied.is_empty());
}

#[tokio::test]
async fn concurrent_first_migrations_apply_each_migration_once() {
    let db = TestDb::new().await;
    let (one, two) = (db.client().await, db.client().await);
    let (a, b) = tokio::join!(migrate(&one), migrate(&two));
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut applied = [a.applied, b.applied].concat();
    applied.sort_unstable();
    let every: Vec<u32> = (1..=SCHEMA_VERSION).collect();
    assert_eq!(applied, every, "exactly one of them applied each migration");
}

/// The indexes of `event` in the current schema, by name: only what reports and the web UI
/// need (no userid or message search index).
const EVENT_INDEXES: [&str; 6] = [
    "event_hostname_logtime_idx",
    "event_logtime_digest_key",
    "event_pkey",
    "event_program_logtime_idx",
    "event_severity_logtime_idx",
    "event_unreported_digest_key",
];

/// The indexes of `event`, sorted by name.
async fn event_indexes(client: &Client) -> Vec<String> {
    client
        .query(
            "SELECT indexname::text FROM pg_indexes WHERE tablename = 'event' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Events without a reported time (their `logtime` is when they were received).
fn unreported_events(range: std::ops::Range<usize>, received: &str) -> Vec<Event> {
    range
        .map(|n| {
            let mut event = full_event(n);
            event.timestamp = None;
            event.received_at = received.parse().unwrap();
            event
        })
        .collect()
}

#[tokio::test]
async fn migration_6_replaces_the_digest_key_by_a_time_ordered_key_and_keeps_deduplicating() {
    let db = TestDb::new().await;
    let client = db.client().await;
    // A store of schema version 5, as an earlier loggr left it: its scripts applied and
    // recorded.
    client
        .batch_execute(
            "CREATE TABLE loggr_schema_migrations (version integer PRIMARY KEY,
                 name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .unwrap();
    for migration in &MIGRATIONS[..5] {
        client.batch_execute(migration.sql).await.unwrap();
        client
            .execute(
                "INSERT INTO loggr_schema_migrations (version, name) VALUES ($1, $2)",
                &[&(migration.version as i32), &migration.name],
            )
            .await
            .unwrap();
    }
    assert!(event_indexes(&client)
        .await
        .contains(&"event_digest_key".to_owned()));
    // Events with and without a reported time.
    let reported: Vec<Event> = (0..3).map(full_event).collect();
    let unreported = unreported_events(3..5, "2026-11-21T10:00:00Z");
    for event in reported.iter().chain(&unreported) {
        let digest = event.content_id().0.to_vec();
        let logtime = std::time::SystemTime::from(event.timestamp.unwrap_or(event.received_at));
        let received = std::time::SystemTime::from(event.received_at);
        client
            .execute(
                "INSERT INTO event (digest, logtime, received_at, reported, facility, severity, message)
                 VALUES ($1, $2, $3, $4, 4, 6, $5)",
                &[&digest, &logtime, &received, &event.timestamp.is_some(), &event.message.as_deref()],
            )
            .await
            .unwrap();
    }
    assert_eq!(migrate(&client).await.unwrap().applied, [6]);
    assert_eq!(event_indexes(&client).await, EVENT_INDEXES);
    // Redelivered later (a new `received_at`), by the direct COPY and by the staging table:
    // every stored event is a duplicate, whichever key it meets.
    let mut again = reported.clone();
    again.extend(unreported_events(3..5, "2026-11-21T11:30:00Z"));
    for event in &mut again {
        event.received_at = "2026-11-21T11:30:00Z".parse().unwrap();
    }
    let direct = db.sink().write_batch(&again).await.unwrap();
    assert_eq!((direct.inserted, direct.duplicates), (0, 5), "{direct:?}");
    assert!(direct.direct_refused, "{direct:?}");
    let staged = db.staging_sink().write_batch(&again).await.unwrap();
    assert_eq!((staged.inserted, staged.duplicates), (0, 5), "{staged:?}");
    assert_eq!(count(&client, "SELECT count(*) FROM event").await, 5);
}

/// Events without a reported time are keyed by their digest alone: a redelivery received
/// later is a duplicate, and a new event received at the very time another was reported
/// is not.
#[tokio::test]
async fn events_without_a_reported_time_are_stored_once_whenever_they_are_received() {
    let (db, client) = TestDb::migrated().await;
    let first = unreported_events(0..20, "2026-11-21T10:00:00Z");
    let stored = db.sink().write_batch(&first).await.unwrap();
    assert_eq!((stored.inserted, stored.direct), (20, true), "{stored:?}");
    let later = unreported_events(0..20, "2026-11-21T12:00:00Z");
    // A fresh sink tries the direct COPY, which the key refuses; then the staging table.
    let direct = db.sink().write_batch(&later).await.unwrap();
    assert_eq!((direct.inserted, direct.duplicates), (0, 20), "{direct:?}");
    assert!(direct.direct_refused, "{direct:?}");
    let staged = db.staging_sink().write_batch(&later[5..]).await.unwrap();
    assert_eq!((staged.inserted, staged.duplicates), (0, 15), "{staged:?}");
    assert_eq!(count(&client, "SELECT count(*) FROM event").await, 20);
    // Found again from the later copy: by its digest, not by when it was received.
    let back = load_event(&client, &later[7]).await.unwrap().unwrap();
    assert_eq!(back.received_at, first[7].received_at);
    assert_eq!(back.message, first[7].message);

    // Same `logtime`, different events: one reported at 10:00, one received then.
    let mut reported = full_event(7);
    reported.timestamp = Some(first[7].received_at);
    let written = db.sink().write_batch(&[reported.clone()]).await.unwrap();
    assert_eq!(written.inserted, 1, "{written:?}");
    assert_eq!(count(&client, "SELECT count(*) FROM event").await, 21);
    let back = load_event(&client, &reported).await.unwrap().unwrap();
    assert_eq!(back.timestamp, reported.timestamp);
}

#[tokio::test]
async fn logdate_is_the_utc_day_of_logtime_kept_by_the_database() {
    let (db, client) = TestDb::migrated().await;
    let mut late = Event::new("late in the evening, New York time");
    late.timestamp = Some("2026-11-21T23:30:00-05:00".parse().unwrap());
    let mut unreported = Event::empty("2026-03-01T00:00:01Z".parse().unwrap());
    unreported.message = Some("no timestamp from the sender".into());
    db.sink()
        .write(&[late.clone(), unreported.clone()])
        .await
        .unwrap();
    let day = |digest: Vec<u8>| {
        let client = &client;
        async move {
            let row = client
                .query_one(
                    "SELECT logdate::text, reported FROM event WHERE digest = $1",
                    &[&digest],
                )
                .await
                .unwrap();
            (row.get::<_, String>(0), row.get::<_, bool>(1))
        }
    };
    let late_digest = late.content_id().0.to_vec();
    assert_eq!(day(late_digest.clone()).await, ("2026-11-22".into(), true));
    assert_eq!(
        day(unreported.content_id().0.to_vec()).await,
        ("2026-03-01".into(), false),
        "without a reported time, logtime is received_at"
    );
    client
        .execute(
            "UPDATE event SET logtime = '2027-01-05T12:00:00Z' WHERE digest = $1",
            &[&late_digest],
        )
        .await
        .unwrap();
    assert_eq!(day(late_digest.clone()).await.0, "2027-01-05");
    // Nobody else sets it.
    let error = client
        .execute(
            "UPDATE event SET logdate = '2000-01-01' WHERE digest = $1",
            &[&late_digest],
        )
        .await
        .unwrap_err();
    assert_eq!(error.code().unwrap().code(), "428C9", "{error}");
}

#[tokio::test]
async fn a_stored_batch_reads_back_equal() {
    a_stored_batch_reads_back_equal_through(true).await;
}

#[tokio::test]
async fn a_stored_batch_reads_back_equal_through_the_staging_table() {
    a_stored_batch_reads_back_equal_through(false).await;
}

async fn a_stored_batch_reads_back_equal_through(direct: bool) {
    let (db, client) = TestDb::migrated().await;
    let mut events: Vec<Event> = (0..20).map(full_event).collect();
    // Events without tags or fields go along (another statement of the staging path).
    for n in 0..5 {
        let mut plain = Event::empty("2026-11-21T10:00:00.5Z".parse().unwrap());
        plain.message = Some(format!("plain {n}").into());
        plain.hostname = Some("web2".into());
        events.push(plain);
    }
    let mut sink = if direct { db.sink() } else { db.staging_sink() };
    let stats = sink.write_batch(&events).await.unwrap();
    assert_eq!((stats.inserted, stats.duplicates), (25, 0));
    assert_eq!((stats.direct, stats.direct_refused), (direct, false));
    for event in &events {
        let back = load_event(&client, event).await.unwrap().unwrap();
        assert_eq!(back, sd_sorted(event.clone()));
    }
    // The columns themselves, as reports and the web UI query them.
    let row = client
        .query_one(
            "SELECT hostname, program, pid, msgid, userid, facility, severity,
                    structured_data->'origin@32473'->'ip'->>1, encode(digest, 'hex')
             FROM event WHERE digest = $1",
            &[&events[3].content_id().0.to_vec()],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "web1");
    assert_eq!(row.get::<_, String>(1), "sshd");
    assert_eq!(row.get::<_, String>(2), "812");
    assert_eq!(row.get::<_, String>(3), "LOGIN");
    assert_eq!(row.get::<_, String>(4), "alice");
    assert_eq!(row.get::<_, i16>(5), 4);
    assert_eq!(row.get::<_, i16>(6), 4);
    assert_eq!(row.get::<_, String>(7), "10.0.0.2");
    assert_eq!(row.get::<_, String>(8), events[3].content_id().to_hex());
    assert_eq!(count(&client, "SELECT count(*) FROM tag").await, 40);
    // The `tag` rows are exactly the events' own tags (which `load_event` read above).
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM (SELECT id, unnest(tags) FROM event
                                   EXCEPT SELECT event, name FROM tag) missing"
        )
        .await,
        0
    );
    assert_eq!(count(&client, "SELECT count(*) FROM extra_info").await, 60);
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM extra_info WHERE name = 'source_address' AND val = '10.0.0.7'"
        )
        .await,
        1
    );
    // Typed field values are stored as text.
    let mut typed = Event::new("typed");
    typed.set_field("bytes", 42i64);
    sink.write(std::slice::from_ref(&typed)).await.unwrap();
    let back = load_event(&client, &typed).await.unwrap().unwrap();
    assert_eq!(back.field("bytes"), Some(&Value::from("42")));
}

#[tokio::test]
async fn writing_the_same_batch_twice_stores_each_event_once() {
    let (db, client) = TestDb::migrated().await;
    let events: Vec<Event> = (0..50).map(full_event).collect();
    let mut sink = db.sink();
    let first = sink.write_batch(&events).await.unwrap();
    assert_eq!(first.inserted, 50);
    assert!(first.direct, "{first:?}");
    let counts = || async {
        (
            count(&client, "SELECT count(*) FROM event").await,
            count(&client, "SELECT count(*) FROM tag").await,
            count(&client, "SELECT count(*) FROM extra_info").await,
        )
    };
    let before = counts().await;
    assert_eq!(before, (50, 100, 150));
    // A redelivery, even by another connection, and a partial overlap.
    let second = db.sink().write_batch(&events).await.unwrap();
    assert_eq!((second.inserted, second.duplicates), (0, 50));
    assert!(second.direct_refused && !second.direct, "{second:?}");
    let overlap: Vec<Event> = (40..60).map(full_event).collect();
    let third = sink.write_batch(&overlap).await.unwrap();
    assert_eq!((third.inserted, third.duplicates), (10, 10));
    assert!(third.direct_refused, "{third:?}");
    assert_eq!(counts().await, (60, 120, 180));
    // After a batch with stored events the sink stages the next one directly (no doomed
    // COPY), and goes back to the direct COPY once a batch had none stored.
    let fourth = sink
        .write_batch(&(60..70).map(full_event).collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(!fourth.direct && !fourth.direct_refused, "{fourth:?}");
    assert_eq!(fourth.inserted, 10);
    let fifth = sink
        .write_batch(&(70..80).map(full_event).collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(fifth.direct, "{fifth:?}");
    assert_eq!(counts().await, (80, 160, 240));
}

/// Two writers at once with overlapping batches (two shippers fed the same redelivered events,
/// one in the opposite order: their COPYs wait on each other, or deadlock): each event is
/// stored once, with its tags and fields once.
#[tokio::test]
async fn concurrent_writers_of_the_same_events_store_each_once() {
    let (db, client) = TestDb::migrated().await;
    let events: Vec<Event> = (0..3000).map(full_event).collect();
    let mut forward = events[..2000].to_vec();
    let mut backward: Vec<Event> = events[1000..].iter().rev().cloned().collect();
    // Writes like the runner: a transient error (a deadlock the staging path lost) is retried.
    async fn write_all(mut sink: PostgresSink, batch: Vec<Event>) -> (u64, bool) {
        let mut refused = false;
        for attempt in 0.. {
            match sink.write_batch(&batch).await {
                Ok(stats) => return (stats.inserted, refused || stats.direct_refused),
                Err(error) if error.is_transient() && attempt < 5 => {
                    refused = true;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("{error}"),
            }
        }
        unreachable!()
    }
    for round in 0..2 {
        let (a, b) = tokio::join!(
            write_all(db.sink(), std::mem::take(&mut forward)),
            write_all(db.sink(), std::mem::take(&mut backward)),
        );
        if round == 0 {
            assert_eq!(a.0 + b.0, 3000, "{a:?} {b:?}");
            assert!(
                a.1 || b.1,
                "one of them met the other's events: {a:?} {b:?}"
            );
            // Again, everything a redelivery.
            forward = events[..2000].to_vec();
            backward = events[1000..].iter().rev().cloned().collect();
        } else {
            assert_eq!(a.0 + b.0, 0, "{a:?} {b:?}");
        }
        assert_eq!(count(&client, "SELECT count(*) FROM event").await, 3000);
        assert_eq!(count(&client, "SELECT count(*) FROM tag").await, 6000);
        assert_eq!(
            count(&client, "SELECT count(*) FROM extra_info").await,
            9000
        );
    }
}

#[tokio::test]
async fn deleting_events_deletes_their_tags_and_extra_info() {
    let (db, client) = TestDb::migrated().await;
    let events: Vec<Event> = (0..10).map(full_event).collect();
    db.sink().write(&events).await.unwrap();
    let deleted = client
        .execute(
            "DELETE FROM event WHERE message LIKE '%10.0.0.1' OR message LIKE '%10.0.0.2'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    assert_eq!(count(&client, "SELECT count(*) FROM tag").await, 16);
    assert_eq!(count(&client, "SELECT count(*) FROM extra_info").await, 24);
    let orphans = "SELECT (SELECT count(*) FROM tag WHERE event NOT IN (SELECT id FROM event))
                        + (SELECT count(*) FROM extra_info WHERE event NOT IN (SELECT id FROM event))";
    assert_eq!(count(&client, orphans).await, 0);
    // The remaining events are whole; a deleted one can be stored again, with its details.
    let back = load_event(&client, &events[5]).await.unwrap();
    assert_eq!(back, Some(sd_sorted(events[5].clone())));
    let stats = db.sink().write_batch(&events).await.unwrap();
    assert_eq!((stats.inserted, stats.duplicates), (2, 8));
    assert_eq!(count(&client, "SELECT count(*) FROM tag").await, 20);
    client.batch_execute("TRUNCATE event").await.unwrap();
    assert_eq!(
        count(
            &client,
            "SELECT (SELECT count(*) FROM tag) + (SELECT count(*) FROM extra_info)"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn the_search_index_is_created_on_demand_once_and_repaired() {
    let (db, client) = TestDb::migrated().await;
    db.sink()
        .write(&(0..10).map(full_event).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(search_index(&client).await.unwrap(), None);
    let kind = create_search_index(&client).await.unwrap();
    // pg_trgm ships with the PostgreSQL packages of the test machines.
    assert_eq!(kind, SearchIndex::Trigram);
    assert_eq!(search_index(&client).await.unwrap(), Some(kind));
    let indexes = "SELECT count(*) FROM pg_indexes WHERE tablename = 'event'";
    let with_search = count(&client, indexes).await;
    assert_eq!(create_search_index(&client).await.unwrap(), kind);
    assert_eq!(count(&client, indexes).await, with_search, "created once");
    // The index serves message search.
    client
        .batch_execute("SET enable_seqscan = off")
        .await
        .unwrap();
    let plan: String = client
        .query(
            "EXPLAIN SELECT id FROM event WHERE message ILIKE '%publickey for alice%'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(plan.contains(kind.name()), "{plan}");
    // A failed CREATE INDEX CONCURRENTLY leaves an invalid index of that name behind (here:
    // a unique index on duplicate values); the next call replaces it.
    client
        .batch_execute(&format!("DROP INDEX {}", kind.name()))
        .await
        .unwrap();
    let failed = client
        .batch_execute(&format!(
            "CREATE UNIQUE INDEX CONCURRENTLY {} ON event (hostname)",
            kind.name()
        ))
        .await;
    assert!(failed.is_err());
    assert_eq!(search_index(&client).await.unwrap(), None, "left invalid");
    assert_eq!(create_search_index(&client).await.unwrap(), kind);
    assert_eq!(search_index(&client).await.unwrap(), Some(kind));
    // Writes go on with the index.
    let stats = db
        .sink()
        .write_batch(&(10..20).map(full_event).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(stats.inserted, 10);
}

#[tokio::test]
async fn duplicates_within_one_batch_are_stored_once() {
    let (db, client) = TestDb::migrated().await;
    let first = full_event(1);
    let mut again = first.clone();
    again.received_at = "2026-11-21T10:00:05Z".parse().unwrap();
    again.tags.clear();
    again.add_tag("resent");
    let other = full_event(2);
    let stats = db
        .sink()
        .write_batch(&[first.clone(), again, other, first.clone()])
        .await
        .unwrap();
    assert_eq!((stats.inserted, stats.duplicates), (2, 2));
    assert_eq!(count(&client, "SELECT count(*) FROM event").await, 2);
    let back = load_event(&client, &first).await.unwrap().unwrap();
    assert_eq!(
        back,
        sd_sorted(first),
        "the first copy in the batch is the one stored"
    );
}

#[tokio::test]
async fn nul_characters_and_non_utf8_raw_bytes_are_stored_safely() {
    let (db, client) = TestDb::migrated().await;
    let mut event = Event::new("before\0after");
    event.hostname = Some("host\0name".into());
    event.structured_data.push("sd\0id", "pa\0ram", "va\0lue");
    event.add_tag("ta\0g");
    // The same tag once NUL is replaced: stored once.
    event.add_tag("ta\u{FFFD}g");
    event.set_field("fi\0eld", "va\0l");
    event.set_field("userid", "bo\0b");
    event.raw = Some(Bytes::from_static(b"\xff\xfe raw \x00 bytes \xc3\x28"));
    let mut sink = db.sink();
    sink.write(std::slice::from_ref(&event)).await.unwrap();
    let back = load_event(&client, &event).await.unwrap().unwrap();
    assert_eq!(back.raw, event.raw, "raw bytes are kept exactly");
    let fffd = |text: &str| text.replace('\0', "\u{FFFD}");
    assert_eq!(back.message_str(), fffd("before\0after"));
    assert_eq!(back.hostname.as_deref(), Some(&*fffd("host\0name")));
    assert!(back.has_tag(&fffd("ta\0g")));
    assert_eq!(
        back.field(&fffd("fi\0eld")).and_then(Value::as_str),
        Some(&*fffd("va\0l"))
    );
    assert_eq!(
        back.field("userid").and_then(Value::as_str),
        Some(&*fffd("bo\0b"))
    );
    let element = back.structured_data.get(&fffd("sd\0id")).unwrap();
    assert_eq!(
        element.values(&fffd("pa\0ram")).next().map(|v| &**v),
        Some(&*fffd("va\0lue"))
    );
    // Redelivery still deduplicates: the digest is the original event's.
    let stats = sink.write_batch(&[event]).await.unwrap();
    assert_eq!(stats.duplicates, 1);
    assert_eq!(count(&client, "SELECT count(*) FROM event").await, 1);
    assert_eq!(count(&client, "SELECT count(*) FROM quarantine").await, 0);
}

/// An event PostgreSQL refuses: a reported time before 4713 BC (SQLSTATE 22008).
fn poison() -> Event {
    let mut event = Event::new("sent from the distant past");
    event.timestamp = Some(Timestamp::MIN);
    event.raw = Some(Bytes::from_static(b"<13>Jan  1 00:00:00 \xff poison"));
    event.add_tag("doomed");
    event
}

#[tokio::test]
async fn a_refused_event_goes_to_quarantine_and_the_rest_of_the_batch_commits() {
    let (db, client) = TestDb::migrated().await;
    let mut events: Vec<Event> = (0..10).map(full_event).collect();
    let poison = poison();
    events.insert(4, poison.clone());
    let mut sink = db.sink();
    let stats = sink.write_batch(&events).await.unwrap();
    assert_eq!((stats.inserted, stats.quarantined), (10, 1), "{stats:?}");
    assert!(
        stats.direct_refused,
        "the direct COPY failed first: {stats:?}"
    );
    assert!(stats.transactions > 2, "the batch was split: {stats:?}");
    assert_eq!(count(&client, "SELECT count(*) FROM event").await, 10);
    assert_eq!(count(&client, "SELECT count(*) FROM tag").await, 20);
    let row = client
        .query_one(
            "SELECT sqlstate, error, event::text, raw FROM quarantine WHERE digest = $1",
            &[&poison.content_id().0.to_vec()],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "22008");
    let error: String = row.get(1);
    assert!(error.contains("out of range"), "{error}");
    let stored: Event = serde_json::from_str(row.get::<_, &str>(2)).unwrap();
    assert_eq!(stored, poison, "the canonical JSON keeps the whole event");
    assert_eq!(
        row.get::<_, Vec<u8>>(3),
        poison.raw.as_deref().unwrap().to_vec()
    );
    // Redelivered: nothing new anywhere.
    let again = sink.write_batch(&events).await.unwrap();
    assert_eq!(again.inserted, 0);
    assert_eq!(count(&client, "SELECT count(*) FROM quarantine").await, 1);
    assert_eq!(count(&client, "SELECT count(*) FROM event").await, 10);
}

#[tokio::test]
async fn without_quarantine_a_refused_event_is_a_permanent_error() {
    let (db, client) = TestDb::migrated().await;
    let config = PostgresSinkConfig {
        quarantine: false,
        ..PostgresSinkConfig::new(&db.url)
    };
    let mut sink = PostgresSink::new(config).unwrap();
    let error = sink
        .write(&[full_event(1), poison()])
        .await
        .expect_err("the poison is refused");
    assert!(!error.is_transient(), "{error}");
    assert!(error.to_string().contains("22008"), "{error}");
    assert_eq!(count(&client, "SELECT count(*) FROM event").await, 0);
    // The session is still usable.
    sink.write(&[full_event(1)]).await.unwrap();
    assert_eq!(count(&client, "SELECT count(*) FROM event").await, 1);
}

#[tokio::test]
async fn a_killed_connection_is_a_transient_error_and_the_next_write_reconnects() {
    let (db, client) = TestDb::migrated().await;
    let first: Vec<Event> = (0..30).map(full_event).collect();
    let second: Vec<Event> = (30..60).map(full_event).collect();
    let mut sink = db.sink();
    sink.write(&first).await.unwrap();
    assert_eq!(db.terminate_sink_sessions().await, 1);
    let error = sink.write(&second).await.expect_err("the session is gone");
    assert!(error.is_transient(), "{error}");
    // What the runner does: write the same batch again.
    let stats = sink.write_batch(&second).await.unwrap();
    assert_eq!(stats.inserted, 30);
    let stats = sink.write_batch(&first).await.unwrap();
    assert_eq!((stats.inserted, stats.duplicates), (0, 30));
    assert_eq!(count(&client, "SELECT count(*) FROM event").await, 60);
    assert_eq!(
        count(&client, "SELECT count(DISTINCT digest) FROM event").await,
        60
    );
}

#[tokio::test]
async fn a_missing_schema_is_transient_until_it_is_created() {
    let db = TestDb::new().await;
    let mut sink = db.sink();
    let error = sink.write(&[full_event(1)]).await.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("loggr_ctl init-db"), "{error}");
    migrate(&db.client().await).await.unwrap();
    sink.write(&[full_event(1)]).await.unwrap();
    // `migrate = true` creates it on connect.
    let fresh = TestDb::new().await;
    let config = PostgresSinkConfig {
        migrate: true,
        ..PostgresSinkConfig::new(&fresh.url)
    };
    PostgresSink::new(config)
        .unwrap()
        .write(&[full_event(1)])
        .await
        .unwrap();
    let client = fresh.client().await;
    assert_eq!(count(&client, "SELECT count(*) FROM event").await, 1);
}

#[tokio::test]
async fn an_unreachable_server_is_a_transient_error() {
    // Port 9 (discard) is closed on the test machine: the connection is refused.
    let config = PostgresSinkConfig {
        connect_timeout: Duration::from_secs(2),
        ..PostgresSinkConfig::new("postgresql://root@127.0.0.1:9/none")
    };
    let error = PostgresSink::new(config)
        .unwrap()
        .write(&[Event::new("x")])
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error}");
    // The cause is in the message, not only "error connecting to server".
    assert!(error.to_string().contains("refused"), "{error}");
}

#[tokio::test]
async fn the_sink_built_from_toml_through_the_registry_stores_a_pipeline_s_events() {
    let (db, client) = TestDb::migrated().await;
    loggr_sinks::link();
    let registry = Registry::from_inventory().unwrap();
    let plugin = registry.sink("postgres").expect("postgres is registered");
    let table: toml::Table = toml::from_str(&format!(
        "url = {:?}\nstatement_timeout = \"30s\"\napplication_name = \"loggr-test\"",
        db.url
    ))
    .unwrap();
    let cx = BuildContext {
        name: "db".into(),
        metrics: Metrics::new(),
    };
    let sink = plugin.build("db", table, &cx).unwrap();
    let (source, outcomes) = MemorySource::new(numbered_events("pipeline event", 500), 50);
    Pipeline::builder()
        .source("memory", source)
        .boxed_sink("db", sink, SinkOptions::default())
        .build()
        .unwrap()
        .run(CancellationToken::new())
        .await
        .unwrap();
    assert!(outcomes.all_delivered(), "{:?}", outcomes.get());
    assert_eq!(count(&client, "SELECT count(*) FROM event").await, 500);

    let bad: toml::Table = toml::from_str("url = \"host=x\"\nstatment_timeout = \"1s\"").unwrap();
    let error = plugin.build("db", bad, &cx).err().unwrap().to_string();
    assert!(error.contains("statment_timeout"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_writers_store_each_event_once_with_its_own_tags_and_extra_info() {
    let (db, client) = TestDb::migrated().await;
    let make = |i: usize| {
        let mut event = Event::new(format!("writer test {i}"));
        event.add_tag(format!("n{i}"));
        event.add_tag("shared");
        event.set_field("number", Value::String(i.to_string().into()));
        event
    };
    // Events 0..1500 twice (the second copy in other batches, so that a writer's direct COPY
    // meets a digest another writer stored), then 1500..3000 once.
    let events: Vec<Event> = (0..1500)
        .chain(0..1500)
        .chain(1500..3000)
        .map(make)
        .collect();
    let (source, outcomes) = MemorySource::new(events, 40);
    let config = PostgresSinkConfig::new(&db.url);
    let writers: Vec<Box<dyn Sink>> = (0..3)
        .map(|_| Box::new(PostgresSink::new(config.clone()).unwrap()) as Box<dyn Sink>)
        .collect();
    let options = SinkOptions {
        batch: loggr_core::BatchConfig {
            max_events: 100,
            ..loggr_core::BatchConfig::default()
        },
        writers: 3,
        ..SinkOptions::default()
    };
    Pipeline::builder()
        .source("memory", source)
        .sink_writers("db", writers, options)
        .build()
        .unwrap()
        .run(CancellationToken::new())
        .await
        .unwrap();
    assert!(outcomes.all_delivered(), "{:?}", outcomes.get());
    assert_eq!(count(&client, "SELECT count(*) FROM event").await, 3000);
    assert_eq!(
        count(&client, "SELECT count(DISTINCT id) FROM event").await,
        3000
    );
    // Each event's own tag and value point at it (the ids drawn before the COPY are the rows').
    let own_tag = "SELECT count(*) FROM tag t JOIN event e ON e.id = t.event \
                   WHERE t.name = 'n' || split_part(e.message, ' ', 3)";
    assert_eq!(count(&client, own_tag).await, 3000);
    assert_eq!(count(&client, "SELECT count(*) FROM tag").await, 6000);
    let own_value = "SELECT count(*) FROM extra_info x JOIN event e ON e.id = x.event \
                     WHERE x.name = 'number' AND x.val = split_part(e.message, ' ', 3)";
    assert_eq!(count(&client, own_value).await, 3000);
    assert_eq!(
        count(&client, "SELECT count(*) FROM extra_info").await,
        3000
    );
}

#[tokio::test]
async fn a_role_that_may_not_draw_ids_stores_tagged_events_through_the_staging_table() {
    use loggr_sinks::postgres::tokio_postgres::config::Host;
    const ROLE: &str = "loggr_t_insert_only";
    let (db, client) = TestDb::migrated().await;
    // INSERT and SELECT on loggr's tables, nothing on the sequence of `event.id`.
    client
        .batch_execute(&format!(
            "DO $$ BEGIN CREATE ROLE {ROLE} LOGIN; \
             EXCEPTION WHEN duplicate_object THEN NULL; END $$; \
             GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {ROLE};"
        ))
        .await
        .unwrap();
    let config: loggr_sinks::postgres::tokio_postgres::Config = db.url.parse().unwrap();
    let host = match &config.get_hosts()[0] {
        Host::Tcp(host) => host.clone(),
        Host::Unix(path) => path.display().to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let url = format!("host={host} port={port} user={ROLE} dbname={}", db.name);
    let mut sink = PostgresSink::new(PostgresSinkConfig {
        migrate: false,
        ..PostgresSinkConfig::new(url)
    })
    .unwrap();
    let events: Vec<Event> = (0..50)
        .map(|i| {
            let mut event = Event::new(format!("insert only {i}"));
            event.add_tag("limited");
            event
        })
        .collect();
    let stats = sink.write_batch(&events).await.unwrap();
    assert_eq!(stats.inserted, 50);
    assert!(!stats.direct, "the direct path needs the sequence");
    assert_eq!(count(&client, "SELECT count(*) FROM event").await, 50);
    let tagged =
        "SELECT count(*) FROM tag t JOIN event e ON e.id = t.event WHERE t.name = 'limited'";
    assert_eq!(count(&client, tagged).await, 50);
    client
        .batch_execute(&format!(
            "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {ROLE}"
        ))
        .await
        .unwrap();
}
