//! What every [`Store`] backend must do, run against each: SQLite (a temporary file) and
//! PostgreSQL (a database of the test's own on the machine's server, 127.0.0.1:5432 — start it
//! with `bash scripts/services.sh`; the PostgreSQL tests fail when it is not there).
//!
//! Idempotent inserts, every column read back, each list filter, keyset paging with ties.

#![cfg(all(feature = "sqlite", feature = "postgres"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{at, event, psql, Database};
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
    // Quotes, backslashes, control characters and non-ASCII come back as they went in.
    let awkward = "say \"hi\"\\ tab\t nl\n bell\u{7} é ✓";
    rich.set_field("awkward \"name\"", awkward);
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
    assert_eq!(
        detail.extra,
        vec![
            ("awkward \"name\"".to_owned(), awkward.to_owned()),
            ("port".to_owned(), "22".to_owned())
        ]
    );
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

// ---- The reporter's operations: the same answers from both backends. ----

both!(report_events_select_order_limit_and_carry_sorted_tags_and_fields);
both!(tag_host_counts_count_each_tag_per_host_sorted);
both!(auth_counts_count_users_hosts_and_sources_missing_last);
both!(the_run_log_reads_back_what_was_recorded);
both!(anonymise_blanks_old_events_and_their_fields_keeps_tags_once);

/// The reporter's selection of `at(from) <= logtime < at(to)`.
fn selection(from: i64, to: i64) -> loggr_store::Selection {
    loggr_store::Selection {
        start: at(from),
        end: at(to),
        program: None,
        tags: Vec::new(),
        order_by: loggr_store::OrderBy::Logtime,
    }
}

/// Events 1 to 10 of the known set; 3 and 5 tagged `auth` with users and source addresses,
/// 4 tagged `auth` with neither and without a host; 3 has a list field.
fn report_events_set() -> Vec<Event> {
    let mut events: Vec<Event> = (1..=10).map(event).collect();
    events[2].add_tag("auth");
    events[2].set_field("userid", "alice");
    events[2].set_field("source_address", "192.0.2.7");
    events[2].set_field(
        "hops",
        Value::List(vec![Value::String("b".into()), Value::String("a".into())]),
    );
    events[3].add_tag("auth");
    events[3].hostname = None;
    events[4].add_tag("auth");
    events[4].set_field("userid", "alice");
    events[4].set_field("source_address", "192.0.2.8");
    events
}

/// The event numbers of a report's events (from the message).
fn report_numbers(events: &[loggr_store::ReportEvent]) -> Vec<i64> {
    events
        .iter()
        .map(|e| {
            let message = e.message.as_deref().unwrap();
            message.split(' ').nth(1).unwrap().parse().unwrap()
        })
        .collect()
}

async fn report_events_select_order_limit_and_carry_sorted_tags_and_fields(store: &dyn Store) {
    use loggr_store::{OrderBy, Selection};
    store.insert(&report_events_set()).await.unwrap();

    let (events, total) = store.report_events(&selection(1, 11), 100).await.unwrap();
    assert_eq!(total, 10);
    assert_eq!(report_numbers(&events), (1..=10).collect::<Vec<_>>());
    // The range is start inclusive, end exclusive.
    let (events, total) = store.report_events(&selection(2, 8), 100).await.unwrap();
    assert_eq!((report_numbers(&events), total), ((2..8).collect(), 6));
    // A program, and a limit: the total still counts them all.
    let cron = Selection {
        program: Some("cron".into()),
        ..selection(2, 11)
    };
    let (events, total) = store.report_events(&cron, 2).await.unwrap();
    assert_eq!((report_numbers(&events), total), (vec![3, 5], 4));
    // Any of the tags; by host (byte order), missing last, then by time.
    let tagged = Selection {
        tags: vec!["auth".into(), "odd".into()],
        order_by: OrderBy::Hostname,
        ..selection(1, 11)
    };
    let (events, total) = store.report_events(&tagged, 100).await.unwrap();
    assert_eq!(total, 6);
    assert_eq!(report_numbers(&events), [3, 9, 1, 7, 5, 4]);
    // Every column, the tags sorted, the fields with their values in storage order.
    let three = &events[0];
    assert_eq!(three.logtime, at(3));
    assert_eq!(three.hostname.as_deref(), Some("web0"));
    assert_eq!(three.program.as_deref(), Some("cron"));
    assert_eq!((three.severity, three.facility), (3, 4));
    assert_eq!(three.userid.as_deref(), Some("alice"));
    assert_eq!(three.tags, ["auth", "odd"]);
    let fields: Vec<(&str, Vec<&str>)> = three
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        fields,
        [
            ("hops", vec!["b", "a"]),
            ("source_address", vec!["192.0.2.7"])
        ]
    );
    assert_eq!(events[5].hostname, None);
    assert!(events[5].fields.is_empty() && events[5].userid.is_none());
    // Other orders.
    for (order_by, expected) in [
        (OrderBy::Severity, vec![8, 1, 9, 2, 10, 3, 4, 5, 6, 7]),
        (OrderBy::Program, vec![1, 3, 5, 7, 9, 2, 4, 6, 8, 10]),
        (OrderBy::Id, (1..=10).collect()),
    ] {
        let by = Selection {
            order_by,
            ..selection(1, 11)
        };
        let (events, _) = store.report_events(&by, 100).await.unwrap();
        assert_eq!(report_numbers(&events), expected, "{order_by:?}");
    }
    // Values are parameters.
    let injected = Selection {
        program: Some("cron' OR '1'='1".into()),
        tags: vec!["odd') OR ('1'='1".into()],
        ..selection(1, 11)
    };
    assert_eq!(store.report_events(&injected, 100).await.unwrap().1, 0);
}

async fn tag_host_counts_count_each_tag_per_host_sorted(store: &dyn Store) {
    use loggr_store::{Selection, TagHostCount};
    store.insert(&report_events_set()).await.unwrap();
    let count = |tag: &str, host: Option<&str>, count: i64| TagHostCount {
        tag: tag.into(),
        host: host.map(Into::into),
        count,
    };
    let tagged = Selection {
        tags: vec!["odd".into(), "auth".into(), "none".into()],
        ..selection(1, 11)
    };
    assert_eq!(
        store.tag_host_counts(&tagged).await.unwrap(),
        [
            count("auth", Some("web0"), 1),
            count("auth", Some("web2"), 1),
            count("auth", None, 1),
            count("odd", Some("web0"), 2),
            count("odd", Some("web1"), 2),
            count("odd", Some("web2"), 1),
        ]
    );
    // The range and the program apply.
    let narrow = Selection {
        program: Some("cron".into()),
        ..Selection {
            tags: vec!["odd".into(), "auth".into()],
            ..selection(4, 8)
        }
    };
    assert_eq!(
        store.tag_host_counts(&narrow).await.unwrap(),
        [
            count("auth", Some("web2"), 1),
            count("odd", Some("web1"), 1),
            count("odd", Some("web2"), 1),
        ]
    );
    assert!(store
        .tag_host_counts(&selection(1, 11))
        .await
        .unwrap()
        .is_empty());
}

async fn auth_counts_count_users_hosts_and_sources_missing_last(store: &dyn Store) {
    use loggr_store::{AuthCounts, Selection};
    store.insert(&report_events_set()).await.unwrap();
    let some = |s: &str, n: i64| (Some(s.to_owned()), n);
    let auth = Selection {
        tags: vec!["auth".into()],
        ..selection(1, 11)
    };
    assert_eq!(
        store.auth_counts(&auth).await.unwrap(),
        AuthCounts {
            users: vec![some("alice", 2), (None, 1)],
            targets: vec![some("web0", 1), some("web2", 1), (None, 1)],
            sources: vec![some("192.0.2.7", 1), some("192.0.2.8", 1), (None, 1)],
        }
    );
    let none = Selection {
        tags: vec!["auth".into()],
        ..selection(6, 11)
    };
    assert_eq!(
        store.auth_counts(&none).await.unwrap(),
        AuthCounts::default()
    );
}

async fn the_run_log_reads_back_what_was_recorded(store: &dyn Store) {
    assert_eq!(store.last_run("Kernel", "daily").await.unwrap(), None);
    let first = at(5)
        .checked_add(jiff::SignedDuration::from_micros(123))
        .unwrap();
    store.record_run("Kernel", "daily", first).await.unwrap();
    assert_eq!(
        store.last_run("Kernel", "daily").await.unwrap(),
        Some(first),
        "to the microsecond"
    );
    assert_eq!(store.last_run("Kernel", "weekly").await.unwrap(), None);
    assert_eq!(store.last_run("kernel", "daily").await.unwrap(), None);
    store.record_run("Kernel", "daily", at(90)).await.unwrap();
    store.record_run("Kernel", "weekly", at(7)).await.unwrap();
    assert_eq!(
        store.last_run("Kernel", "daily").await.unwrap(),
        Some(at(90))
    );
    assert_eq!(
        store.last_run("Kernel", "weekly").await.unwrap(),
        Some(at(7))
    );
    assert!(
        store.record_run("Kernel", "yearly", at(1)).await.is_err(),
        "not a period"
    );
}

async fn anonymise_blanks_old_events_and_their_fields_keeps_tags_once(store: &dyn Store) {
    use loggr_store::AnonymiseCounts;
    let mut events = report_events_set();
    for e in &mut events {
        e.raw = Some(bytes::Bytes::from_static(b"raw"));
    }
    // Event 2 is old and already blank: nothing to anonymise, but its field goes.
    events[1].raw = None;
    events[1].message = Some("".into());
    events[1].set_field("port", Value::Int(22));
    store.insert(&events).await.unwrap();
    // Before event 4: events 1, 2, 3; event 3 has three extra_info rows, event 2 one.
    let expected = AnonymiseCounts {
        events: 2,
        extra_info: 4,
    };
    assert_eq!(store.anonymise(at(4), true).await.unwrap(), expected);
    assert_eq!(
        store.anonymise(at(4), true).await.unwrap(),
        expected,
        "a dry run changes nothing"
    );
    assert_eq!(store.anonymise(at(4), false).await.unwrap(), expected);

    let all = store.events(&EventFilter::default(), 100).await.unwrap();
    assert_eq!(all.len(), 10);
    for summary in &all {
        let detail = store.event(summary.id).await.unwrap().unwrap();
        if summary.logtime < at(4) {
            assert_eq!(summary.message.as_deref(), Some(""));
            assert_eq!((detail.raw, detail.userid), (None, None));
            assert!(detail.extra.is_empty(), "{:?}", detail.extra);
        } else {
            assert!(summary.message.as_deref().unwrap().starts_with("message "));
            assert_eq!(detail.raw.as_deref(), Some(&b"raw"[..]));
        }
    }
    // Tags, hosts and times stay; the newer event 5 keeps its user and field.
    let three = all.iter().find(|e| e.logtime == at(3)).unwrap();
    assert_eq!(three.tags, ["auth", "odd"]);
    assert_eq!(three.hostname.as_deref(), Some("web0"));
    let five = all.iter().find(|e| e.logtime == at(5)).unwrap();
    let five = store.event(five.id).await.unwrap().unwrap();
    assert_eq!(five.userid.as_deref(), Some("alice"));
    assert_eq!(
        five.extra,
        [("source_address".to_owned(), "192.0.2.8".to_owned())]
    );
    // Again: nothing left.
    assert_eq!(
        store.anonymise(at(4), false).await.unwrap(),
        AnonymiseCounts::default()
    );
}
