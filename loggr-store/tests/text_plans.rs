//! The PostgreSQL text filter's plans: with and without the trigram index, with the word
//! runs asked of the index ([`trigram_pattern`]) or the plain pattern, and with the index or
//! the ordered scan forced, every text pages through exactly the rows of the definition
//! (`message ILIKE` the escaped text: a case-insensitive, literal substring), newest first.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (`bash scripts/services.sh`), like `contract.rs`.

#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{psql, Database};
use jiff::Timestamp;
use loggr_core::Event;
use loggr_sinks::postgres::{create_search_index, search_index, PostgresSinkConfig, SearchIndex};
use loggr_store::postgres::message_stats;
use loggr_store::postgres::query::{select_planned, trigram_pattern, MessageStats, Planning};
use loggr_store::{EventFilter, PgStore, Store};
use tokio_postgres::{Client, NoTls};

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// The messages, cycled over the events: word-edge cases, case, `%`/`_`, the runs of a
/// text present but not the text, a NUL-free non-ASCII one.
const MESSAGES: [&str; 12] = [
    "Failed password for invalid user u42 from 10.0.0.7 port 22 ssh2",
    "Failed password for INVALID User U420 from 10.0.0.8 port 22 ssh2",
    "invalid user u4 from 10.1.1.1 but u42 later",
    "invalid  user u42 (two spaces)",
    "xinvalid user u42x",
    "worker 7 finished job in 42 ms",
    "sale: 50%_off today",
    "sale: 50%xoff today",
    "sale: 50_%off today",
    "pam_unix(sshd:auth): authentication failure; user=u42",
    "caf\u{e9} au lait, user u42",
    "ab cd ef",
];

/// The texts searched for.
const TEXTS: [&str; 16] = [
    "invalid user u42",
    "password for invalid user u42 from",
    "sale: 50%_off today",
    "INVALID USER U42",
    "user u42",
    " u42 ",
    "u42",
    "50%_off",
    "50%xoff",
    "50_%",
    "pam_unix(sshd:auth)",
    "caf\u{e9} au",
    "ab cd",
    "finished job",
    "no such text",
    "%",
];

/// One stored event: `(logtime, id, hostname, message)`.
type Row = (Timestamp, i64, String, Option<String>);

/// Every stored event, newest first.
async fn stored(client: &Client) -> Vec<Row> {
    client
        .query(
            "SELECT logtime, id, hostname, message FROM event ORDER BY logtime DESC, id DESC",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

/// Pages of 4 through `filter` with `planning`; the ids in order.
async fn page_through(client: &Client, filter: &EventFilter, planning: Planning<'_>) -> Vec<i64> {
    let mut filter = filter.clone();
    let mut seen = Vec::new();
    loop {
        let statement = select_planned(&filter, 4, planning);
        let rows = client
            .query(statement.sql.as_str(), &statement.param_refs())
            .await
            .unwrap_or_else(|e| panic!("{e:?}\n{}", statement.sql));
        let Some(last) = rows.last() else { break };
        filter.cursor = Some((last.get("logtime"), last.get("id")));
        seen.extend(rows.iter().map(|r| r.get::<_, i64>("id")));
        assert!(seen.len() < 1000, "paging does not end");
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_text_plan_pages_exactly_like_the_definition() {
    let name = format!("loggr_store_text_plans_{}", std::process::id());
    psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    psql(&format!("CREATE DATABASE {name}"));
    let _keep = Database(name.clone());
    let url = format!("postgresql://root@127.0.0.1:5432/{name}");
    let mut config = PostgresSinkConfig::new(url.clone());
    config.migrate = true;
    let store = PgStore::new(config).unwrap();
    // Three events per second (the cursor breaks ties by id), one without a message.
    let events: Vec<Event> = (0..150i64)
        .map(|n| {
            let mut e = Event::new(format!("{} #{n}", MESSAGES[n as usize % MESSAGES.len()]));
            if n == 77 {
                e.message = None;
            }
            e.timestamp = Some(Timestamp::from_second(1_793_491_200 + n / 3).unwrap());
            e.hostname = Some(if n / 12 % 2 == 0 { "a" } else { "b" }.into());
            e
        })
        .collect();
    store.insert(&events).await.unwrap();
    let client = connect(&url).await;
    // Forced plans: only bitmap scans (the trigram index, or a `logtime` range), or only
    // the ordered scan.
    let bitmap = connect(&url).await;
    bitmap
        .batch_execute("SET enable_indexscan = off; SET enable_seqscan = off")
        .await
        .unwrap();
    let ordered = connect(&url).await;
    ordered
        .batch_execute("SET enable_bitmapscan = off; SET enable_seqscan = off")
        .await
        .unwrap();
    let rows = stored(&client).await;
    assert_eq!(rows.len(), 150);
    // Message statistics: none; PostgreSQL's; every message (so that the words of most
    // texts in a fifth of them or more, such as `user` and `from`, are left out).
    let none = MessageStats::default();
    client.batch_execute("ANALYZE event").await.unwrap();
    let analysed = message_stats(&client).await.unwrap();
    assert!(!analysed.histogram.is_empty());
    let all = MessageStats {
        histogram: rows
            .iter()
            .filter_map(|(_, _, _, message)| message.as_deref())
            .map(str::to_ascii_lowercase)
            .collect(),
        histogram_share: 1.0,
        ..MessageStats::default()
    };
    assert_eq!(
        trigram_pattern("password for invalid user u42 from", &all).as_deref(),
        Some("%password%for%")
    );
    let from = rows[100].0;

    let mut indexed = false;
    for round in ["without the index", "with the index"] {
        if indexed {
            assert_eq!(
                create_search_index(&client).await.unwrap(),
                SearchIndex::Trigram
            );
        }
        assert_eq!(
            search_index(&client).await.unwrap().is_some(),
            indexed,
            "{round}"
        );
        for text in TEXTS {
            for (from, host) in [(None, None), (Some(from), Some("a"))] {
                let filter = EventFilter {
                    text: Some(text.into()),
                    from,
                    host: host.map(str::to_owned),
                    ..EventFilter::default()
                };
                // The definition, spelled out: a case-insensitive literal substring.
                let needle = text.to_lowercase();
                let expected: Vec<i64> = rows
                    .iter()
                    .filter(|(logtime, _, hostname, message)| {
                        message
                            .as_deref()
                            .is_some_and(|m| m.to_lowercase().contains(&needle))
                            && from.is_none_or(|from| *logtime >= from)
                            && host.is_none_or(|host| hostname == host)
                    })
                    .map(|(_, id, _, _)| *id)
                    .collect();
                let definition: Vec<i64> = client
                    .query(
                        "SELECT id FROM event WHERE message ILIKE $1 \
                         AND ($2::timestamptz IS NULL OR logtime >= $2) \
                         AND ($3::text IS NULL OR hostname = $3) \
                         ORDER BY logtime DESC, id DESC",
                        &[&loggr_store::model::contains_pattern(text), &from, &host],
                    )
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                assert_eq!(
                    definition, expected,
                    "{text:?}, from {from:?}, host {host:?}"
                );
                assert!(
                    !expected.is_empty() || text == "no such text",
                    "{text:?}, from {from:?}, host {host:?}"
                );
                for (trigram_index, messages) in [
                    (false, &none),
                    (true, &none),
                    (true, &analysed),
                    (true, &all),
                ] {
                    let planning = Planning {
                        trigram_index,
                        messages,
                        ..Planning::default()
                    };
                    for (plan, connection) in [
                        ("chosen", &client),
                        ("bitmap", &bitmap),
                        ("ordered", &ordered),
                    ] {
                        assert_eq!(
                            page_through(connection, &filter, planning).await,
                            definition,
                            "{round}, {text:?} ({:?}), trigram_index {trigram_index}, \
                             {plan} plan, from {from:?}, host {host:?}",
                            trigram_pattern(text, messages)
                        );
                    }
                }
            }
        }
        indexed = true;
    }
    // The store finds the index and plans for it.
    let filter = EventFilter {
        text: Some("invalid user u42".into()),
        ..EventFilter::default()
    };
    let listed: Vec<i64> = store
        .events(&filter, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        listed,
        page_through(&client, &filter, Planning::default()).await
    );
    assert_eq!(listed.len(), 39, "three messages of twelve");
    // The forced plans are the ones meant: the index's candidates, the ordered scan.
    let statement = select_planned(
        &filter,
        4,
        Planning {
            trigram_index: true,
            ..Planning::default()
        },
    );
    for (connection, index) in [
        (&bitmap, "Bitmap Index Scan on event_message_trgm_idx"),
        (
            &ordered,
            "Index Scan Backward using event_logtime_digest_key",
        ),
    ] {
        let plan: Vec<String> = connection
            .query(
                format!("EXPLAIN {}", statement.sql).as_str(),
                &statement.param_refs(),
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains(index), "{plan}");
        assert!(plan.contains("%invalid%user%u42%"), "{plan}");
    }
}
