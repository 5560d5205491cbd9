#![allow(missing_docs)] // criterion_group! generates undocumented items
//! The embedded store's insert speed without the network in front of it: batches of 5,000
//! events shaped like the zero-config daemon's under `loggen` (a 137-byte message, host,
//! program, pid, the three connection fields every network source adds, no tags), each
//! batch new (nothing deduplicated), through [`Store::insert`] as the `sqlite` sink calls it:
//! group commit on the inserting thread, with `synchronous = "full"` (the WAL synced before
//! `insert` returns) and `"normal"`. The database grows across iterations, as a real one does.
//!
//! `cargo bench --bench sqlite_store` (events/s; `bash scripts/bench-embedded.sh` measures
//! the whole daemon, RELP included, against a file sink)

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use loggr::core::{Event, Facility, Severity};
use loggr::store::{SqliteConfig, SqliteStore, Store, Synchronous};

const BATCH: usize = 5_000;

/// Batch after batch of distinct events (`next` numbers them).
fn batch(next: &AtomicI64) -> Vec<Event> {
    let first = next.fetch_add(BATCH as i64, Ordering::Relaxed);
    (first..first + BATCH as i64)
        .map(|n| {
            let mut event =
                Event::new(format!("loggen run=1795306543 seq={n} {}", "x".repeat(110)));
            let micros = 1_795_306_543_000_000 + n;
            event.timestamp = Some(jiff::Timestamp::from_microsecond(micros).expect("in range"));
            event.received_at = event.timestamp.expect("just set");
            event.hostname = Some("loggen-host".into());
            event.app_name = Some("loggen".into());
            event.procid = Some("4242".into());
            event.facility = Facility::from_code(16).expect("local0");
            event.severity = Severity::from_code(6).expect("info");
            event.set_field("syslog_client_host", "127.0.0.1");
            event.set_field("syslog_protocol", "relp");
            event.set_field("syslog_server_port", "2514");
            event
        })
        .collect()
}

fn insert(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let mut group = c.benchmark_group("sqlite_insert");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    for (name, synchronous) in [("full", Synchronous::Full), ("normal", Synchronous::Normal)] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = SqliteConfig::new(dir.path().join("loggr.db"));
        config.synchronous = synchronous;
        let store = SqliteStore::open(config).expect("the store opens");
        let next = AtomicI64::new(0);
        group.bench_function(name, |b| {
            b.iter_batched(
                || batch(&next),
                |events| {
                    let stats = runtime.block_on(store.insert(&events)).expect("stored");
                    assert_eq!(stats.inserted, BATCH as u64);
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, insert);
criterion_main!(benches);
