//! `pg_bench`: the `postgres` sink's speed next to a plain binary `COPY` of the same rows.
//!
//! ```text
//! cargo run --release --features postgres --example pg_bench                    # 200k events, batches of 10k
//! cargo run --release --features postgres --example pg_bench -- --events 50000 --batch 1000 --rounds 3
//! ```
//!
//! The events are the four loghub samples in `../shared/corpus/loghub` (8,000 lines), parsed
//! as syslog (format `auto`, year 2005, UTC) and run through BuzzSaw's vote chain (which adds
//! tags and fields such as `userid` and `source_address` to the SSH and kernel lines), cycled
//! to `--events` events; each copy's timestamp is moved by its index in microseconds so that
//! every event is distinct.
//!
//! Each measurement runs in a database of its own (`loggr_t_bench_…`, dropped afterwards) on
//! the server at `--url` (default `LOGGR_TEST_PG_URL`, else `postgresql://root@127.0.0.1:5432/postgres`),
//! one transaction per batch of `--batch` events, and counts from the first row encoded to the
//! last `COMMIT`:
//!
//! - `copy-bare`: `BinaryCopyInWriter` into a table with the same columns as the sink's
//!   staging table and no index (the ceiling);
//! - `copy-event`: `BinaryCopyInWriter` straight into loggr's `event` table (its indexes and
//!   trigger, no deduplication, no tags or extra_info);
//! - `sink`: `PostgresSink::write_batch`, the whole schema (what the issue measures);
//! - `sink-redeliver`: the same events written again to the same database (all duplicates);
//! - `copy-event-no-trgm`, `sink-no-trgm`: both again with the schema's message search index
//!   dropped, to show its share;
//! - `sink-keys-only`: the sink with every index of `event` but the primary key and the digest
//!   dropped (the trigger stays): what the idempotent write itself costs.
//!
//! It prints one line per measurement: rows/s, seconds, the ratio to `copy-bare`, and for the
//! sink runs the ratio to the plain COPY into a table with the same indexes.

#![allow(clippy::print_stdout)] // the figures on stdout are pg_bench's output

use std::path::PathBuf;
use std::pin::pin;
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context};
use clap::Parser as _;
use jiff::SignedDuration;
use loggr::core::syslog::{Format, SyslogOptions};
use loggr::core::{Bytes, Event, Filter, ParseContext, Value};
use loggr::filters::buzzsaw::VoteChain;
use loggr::sinks::postgres::tokio_postgres::binary_copy::BinaryCopyInWriter;
use loggr::sinks::postgres::tokio_postgres::types::{ToSql, Type};
use loggr::sinks::postgres::tokio_postgres::{self, Client, NoTls};
use loggr::sinks::postgres::{migrate, PostgresSink, PostgresSinkConfig};

const FILES: [&str; 4] = [
    "Linux_2k.log",
    "Mac_2k.log",
    "OpenSSH_2k.log",
    "Thunderbird_2k.log",
];

/// The sink's speed next to a plain binary COPY of the same rows.
#[derive(clap::Parser)]
#[command(about)]
struct Args {
    /// The server (a database there is used to create and drop the benchmark databases).
    #[arg(long)]
    url: Option<String>,
    /// How many events to write.
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Events per batch (one transaction each).
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// How many times to run each measurement (the best run is reported).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
}

fn load_corpus(count: usize) -> anyhow::Result<Vec<Event>> {
    let options = SyslogOptions {
        year: Some(2005),
        timezone: Some("UTC".into()),
        ..SyslogOptions::default()
    };
    let parser = Format::Auto.parser(&options)?;
    let chain = VoteChain::buzzsaw()?;
    let cx = ParseContext::now();
    let mut lines = Vec::new();
    for name in FILES {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/corpus/loghub")
            .join(name);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for line in text.lines() {
            if let Ok(mut event) = parser.parse(Bytes::copy_from_slice(line.as_bytes()), &cx) {
                chain.apply(&mut event)?;
                lines.push(event);
            }
        }
    }
    if lines.is_empty() {
        bail!("no event parsed from the corpus");
    }
    let mut events = Vec::with_capacity(count);
    for index in 0..count {
        let mut event = lines[index % lines.len()].clone();
        let at = event.timestamp.unwrap_or(event.received_at);
        event.timestamp = Some(at.checked_add(SignedDuration::from_micros(index as i64))?);
        events.push(event);
    }
    Ok(events)
}

async fn connect(url: &str) -> anyhow::Result<Client> {
    let (client, connection) = url
        .parse::<tokio_postgres::Config>()?
        .connect(NoTls)
        .await
        .with_context(|| {
            format!("connecting to {url} (start it with `bash scripts/services.sh`)")
        })?;
    tokio::spawn(connection);
    Ok(client)
}

/// A scratch database, created and dropped by hand (`drop` below).
struct Scratch {
    admin: Client,
    name: String,
    url: String,
}

impl Scratch {
    async fn new(server: &str, label: &str) -> anyhow::Result<Scratch> {
        let admin = connect(server).await?;
        let name = format!("loggr_t_bench_{}_{label}", std::process::id());
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        let url = format!("{server} dbname={name}");
        let url = match server.split_once("://") {
            Some(_) => {
                let (base, _) = server.rsplit_once('/').context("a URL with a database")?;
                format!("{base}/{name}")
            }
            None => url,
        };
        Ok(Scratch { admin, name, url })
    }

    async fn drop(self) -> anyhow::Result<()> {
        self.admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await?;
        Ok(())
    }
}

/// The fields as parallel name and value arrays, as the sink stages them.
fn fields(event: &Event) -> (Option<Vec<&str>>, Option<Vec<String>>) {
    if event.fields.is_empty() {
        return (None, None);
    }
    let mut names = Vec::new();
    let mut values = Vec::new();
    for (name, value) in event.fields.iter() {
        let items: Vec<&Value> = match value {
            Value::List(items) => items.iter().collect(),
            one => vec![one],
        };
        for item in items {
            names.push(&**name);
            values.push(item.to_string());
        }
    }
    (Some(names), Some(values))
}

/// Plain binary COPY of the events into `table`, one transaction per batch; with `arrays`, the
/// tags and fields go along as arrays (the bare table), else they are left out (`event`).
async fn plain_copy(
    client: &Client,
    table: &str,
    events: &[Event],
    batch: usize,
    arrays: bool,
) -> anyhow::Result<()> {
    let mut columns = "digest, logtime, received_at, reported, facility, severity, hostname, \
                       program, pid, msgid, message, raw"
        .to_owned();
    let mut types = vec![
        Type::BYTEA,
        Type::TIMESTAMPTZ,
        Type::TIMESTAMPTZ,
        Type::BOOL,
        Type::INT2,
        Type::INT2,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::BYTEA,
    ];
    if arrays {
        columns.push_str(", tags, extra_names, extra_values");
        types.extend([Type::TEXT_ARRAY, Type::TEXT_ARRAY, Type::TEXT_ARRAY]);
    }
    let statement = client
        .prepare(&format!(
            "COPY {table} ({columns}) FROM STDIN (FORMAT binary)"
        ))
        .await?;
    for chunk in events.chunks(batch) {
        let sink = client.copy_in(&statement).await?;
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
        for event in chunk {
            let digest = event.content_id().0.to_vec();
            let logtime = SystemTime::from(event.timestamp.unwrap_or(event.received_at));
            let received_at = SystemTime::from(event.received_at);
            let reported = event.timestamp.is_some();
            let facility = i16::from(event.facility.code());
            let severity = i16::from(event.severity.code());
            let (hostname, program, pid, msgid, message) = (
                event.hostname.as_deref(),
                event.app_name.as_deref(),
                event.procid.as_deref(),
                event.msgid.as_deref(),
                event.message.as_deref(),
            );
            let raw = event.raw.as_deref();
            let tags: Option<Vec<&str>> =
                (!event.tags.is_empty()).then(|| event.tags.iter().map(|t| &**t).collect());
            let (names, values) = fields(event);
            let mut row: Vec<&(dyn ToSql + Sync)> = vec![
                &digest,
                &logtime,
                &received_at,
                &reported,
                &facility,
                &severity,
                &hostname,
                &program,
                &pid,
                &msgid,
                &message,
                &raw,
            ];
            if arrays {
                row.extend([
                    &tags as &(dyn ToSql + Sync),
                    &names as &(dyn ToSql + Sync),
                    &values as &(dyn ToSql + Sync),
                ]);
            }
            writer.as_mut().write(&row).await?;
        }
        writer.finish().await?;
    }
    Ok(())
}

const BARE_TABLE: &str = "CREATE TABLE bare (
    digest bytea, logtime timestamptz, received_at timestamptz, reported boolean,
    facility smallint, severity smallint, hostname text, program text, pid text, msgid text,
    userid text, message text, structured_data jsonb, raw bytea, tags text[],
    extra_names text[], extra_values text[])";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    CopyBare,
    CopyEvent,
    Sink,
    SinkRedeliver,
    CopyEventNoTrgm,
    SinkNoTrgm,
    SinkKeysOnly,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::CopyBare => "copy-bare",
            Kind::CopyEvent => "copy-event",
            Kind::Sink => "sink",
            Kind::SinkRedeliver => "sink-redeliver",
            Kind::CopyEventNoTrgm => "copy-event-no-trgm",
            Kind::SinkNoTrgm => "sink-no-trgm",
            Kind::SinkKeysOnly => "sink-keys-only",
        }
    }
}

/// Runs one measurement in a fresh database; returns the seconds it took.
async fn measure(server: &str, kind: Kind, events: &[Event], batch: usize) -> anyhow::Result<f64> {
    let scratch = Scratch::new(server, kind.label().replace('-', "_").as_str()).await?;
    let result = measure_in(&scratch.url, kind, events, batch).await;
    scratch.drop().await?;
    result
}

async fn measure_in(url: &str, kind: Kind, events: &[Event], batch: usize) -> anyhow::Result<f64> {
    let client = connect(url).await?;
    match kind {
        Kind::CopyBare => client.batch_execute(BARE_TABLE).await?,
        _ => {
            migrate(&client).await?;
        }
    }
    if matches!(kind, Kind::CopyEventNoTrgm | Kind::SinkNoTrgm) {
        client
            .batch_execute(
                "DROP INDEX IF EXISTS event_message_trgm_idx; \
                 DROP INDEX IF EXISTS event_message_fts_idx",
            )
            .await?;
    }
    if kind == Kind::SinkKeysOnly {
        let indexes: Vec<String> = client
            .query(
                "SELECT indexname::text FROM pg_indexes WHERE tablename = 'event' \
                 AND indexname NOT IN ('event_pkey', 'event_digest_key')",
                &[],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        for index in indexes {
            client.batch_execute(&format!("DROP INDEX {index}")).await?;
        }
    }
    let seconds = match kind {
        Kind::CopyBare | Kind::CopyEvent | Kind::CopyEventNoTrgm => {
            let table = if kind == Kind::CopyBare {
                "bare"
            } else {
                "event"
            };
            let started = Instant::now();
            plain_copy(&client, table, events, batch, kind == Kind::CopyBare).await?;
            started.elapsed().as_secs_f64()
        }
        Kind::Sink | Kind::SinkRedeliver | Kind::SinkNoTrgm | Kind::SinkKeysOnly => {
            let mut sink = PostgresSink::new(PostgresSinkConfig::new(url))?;
            sink.connect().await?;
            if kind == Kind::SinkRedeliver {
                for chunk in events.chunks(batch) {
                    sink.write_batch(chunk).await?;
                }
            }
            let started = Instant::now();
            for chunk in events.chunks(batch) {
                sink.write_batch(chunk).await?;
            }
            started.elapsed().as_secs_f64()
        }
    };
    let table = if kind == Kind::CopyBare {
        "bare"
    } else {
        "event"
    };
    let stored: i64 = client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await?
        .get(0);
    if stored != events.len() as i64 {
        bail!(
            "{}: {stored} rows stored, {} expected",
            kind.label(),
            events.len()
        );
    }
    Ok(seconds)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = args
        .url
        .or_else(|| std::env::var("LOGGR_TEST_PG_URL").ok())
        .unwrap_or_else(|| "postgresql://root@127.0.0.1:5432/postgres".into());
    let events = load_corpus(args.events)?;
    let tagged = events.iter().filter(|e| !e.tags.is_empty()).count();
    let with_fields = events.iter().filter(|e| !e.fields.is_empty()).count();
    println!(
        "{} events ({tagged} with tags, {with_fields} with fields), batches of {}, best of {} round(s)",
        events.len(),
        args.batch,
        args.rounds
    );
    let kinds = [
        Kind::CopyBare,
        Kind::CopyEvent,
        Kind::Sink,
        Kind::SinkRedeliver,
        Kind::CopyEventNoTrgm,
        Kind::SinkNoTrgm,
        Kind::SinkKeysOnly,
    ];
    let mut best = [f64::INFINITY; 7];
    for _ in 0..args.rounds.max(1) {
        for (slot, kind) in best.iter_mut().zip(kinds) {
            let seconds = measure(&server, kind, &events, args.batch.max(1)).await?;
            *slot = slot.min(seconds);
        }
    }
    let rate = |seconds: f64| events.len() as f64 / seconds;
    let bare = rate(best[0]);
    // The plain COPY into the same table as each sink run (same indexes), where there is one.
    let same_table = |kind: Kind| match kind {
        Kind::Sink | Kind::SinkRedeliver => Some(rate(best[1])),
        Kind::SinkNoTrgm => Some(rate(best[4])),
        _ => None,
    };
    for (seconds, kind) in best.iter().zip(kinds) {
        let rows = rate(*seconds);
        let versus = same_table(kind)
            .map(|plain| {
                format!(
                    "{:>6.1}% of the plain COPY into the same table",
                    100.0 * rows / plain
                )
            })
            .unwrap_or_default();
        println!(
            "{:<19} {:>9.0} rows/s {:>7.2} s {:>6.1}% of copy-bare  {versus}",
            kind.label(),
            rows,
            seconds,
            100.0 * rows / bare,
        );
    }
    Ok(())
}
