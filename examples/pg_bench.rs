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
//! - `copy-bare`: binary `COPY` into a table with the same columns as the sink's rows (and
//!   the tags and fields as arrays) and no index (the ceiling); the rows are encoded as leanly
//!   as the sink does and sent in the same 256 kB chunks;
//! - `copy-event`: the same straight into loggr's `event` table (its indexes and generated
//!   `logdate`, no deduplication, no tags or extra_info);
//! - `copy-event-trigger`: the same with `logdate` kept by BuzzSaw's PL/pgSQL trigger instead;
//! - `copy-event-before`: the schema before the indexes were cut: the trigger, and indexes on
//!   `(severity, logtime)` and `userid` too;
//! - `sink`: `PostgresSink::write_batch`, the whole schema (what the issue measures);
//! - `sink-staged`: the same with `direct_copy = false` (every batch through the staging
//!   table);
//! - `sink-digest-key`: the sink with the keys of schema version 5: `UNIQUE (digest)` and an
//!   index on `logtime`, instead of `UNIQUE (logtime, digest)` (and `digest` for the events
//!   without a reported time);
//! - `sink-redeliver`: the same events written again to the same database (all duplicates);
//! - `sink-tagged`, `sink-tagged-staged`: every event with two more tags and two more fields;
//! - `sink-tagged-fk`: the same with a `tag.event` foreign key to `event (id)`, as the schema
//!   had before;
//! - `sink-search`: the sink with the message search index (`create_search_index`).
//!
//! `--kinds copy-bare,sink` runs only those; `--writers 2` has the `sink…` measurements
//! written by two sink instances at once (the sink's `writers = 2`), each on its own
//! connection.
//!
//! It prints the load average before and after, then one line per measurement: rows/s,
//! seconds, the ratio to `copy-bare`, and for the sink runs the ratio to `copy-event` (a plain
//! COPY into a table with the same indexes).

#![allow(clippy::print_stdout)] // the figures on stdout are pg_bench's output

use std::path::PathBuf;
use std::pin::pin;
use std::time::Instant;

use anyhow::{bail, Context};
use bytes::{BufMut, BytesMut};
use clap::Parser as _;
use futures::SinkExt;
use jiff::SignedDuration;
use loggr::core::syslog::{Format, SyslogOptions};
use loggr::core::{Bytes, Event, Filter, ParseContext, Timestamp, Value};
use loggr::filters::buzzsaw::VoteChain;
use loggr::sinks::postgres::tokio_postgres::{self, Client, NoTls};
use loggr::sinks::postgres::{create_search_index, migrate, PostgresSink, PostgresSinkConfig};

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
    /// The measurements to run, comma-separated (default: all).
    #[arg(long)]
    kinds: Option<String>,
    /// Sink instances writing at once in the `sink…` measurements (the sink's `writers`),
    /// each with its own connection, taking every N-th batch.
    #[arg(long, default_value_t = 1)]
    writers: usize,
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

/// The fields as parallel name and value arrays.
fn fields(event: &Event) -> (Vec<&str>, Vec<String>) {
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
    (names, values)
}

/// Binary COPY rows, encoded as leanly as the sink does (no per-value type checks), sent in
/// chunks of 256 kB.
struct Rows(BytesMut);

impl Rows {
    fn new() -> Rows {
        let mut buf = BytesMut::with_capacity(320 * 1024);
        buf.put_slice(b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0");
        Rows(buf)
    }

    fn field(&mut self, value: Option<&[u8]>) {
        match value {
            Some(bytes) => {
                self.0.put_i32(bytes.len() as i32);
                self.0.put_slice(bytes);
            }
            None => self.0.put_i32(-1),
        }
    }

    fn timestamp(&mut self, at: Timestamp) {
        self.0.put_i32(8);
        self.0.put_i64(at.as_microsecond() - 946_684_800_000_000);
    }

    fn i16(&mut self, value: i16) {
        self.0.put_i32(2);
        self.0.put_i16(value);
    }

    /// A `text[]` (NULL when empty).
    fn texts<'a>(&mut self, items: impl ExactSizeIterator<Item = &'a str>) {
        if items.len() == 0 {
            return self.field(None);
        }
        let start = self.0.len();
        self.0.put_i32(0);
        self.0.put_i32(1); // dimensions
        self.0.put_i32(0); // no NULL
        self.0.put_u32(25); // text
        self.0.put_i32(items.len() as i32);
        self.0.put_i32(1); // lower bound
        for item in items {
            self.field(Some(item.as_bytes()));
        }
        let length = (self.0.len() - start - 4) as i32;
        self.0[start..start + 4].copy_from_slice(&length.to_be_bytes());
    }
}

/// Plain binary COPY of the events into `table`, one transaction per batch; with `arrays`, the
/// userid, structured data, tags and fields go along (the bare table), else they are left out
/// (`event`).
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
    if arrays {
        columns.push_str(", userid, structured_data, tags, extra_names, extra_values");
    }
    let statement = client
        .prepare(&format!(
            "COPY {table} ({columns}) FROM STDIN (FORMAT binary)"
        ))
        .await?;
    for chunk in events.chunks(batch) {
        let mut sink = pin!(client.copy_in::<_, Bytes>(&statement).await?);
        let mut rows = Rows::new();
        for event in chunk {
            if rows.0.len() >= 256 * 1024 {
                sink.send(rows.0.split().freeze()).await?;
            }
            rows.0.put_i16(if arrays { 17 } else { 12 });
            rows.field(Some(&event.content_id().0));
            rows.timestamp(event.timestamp.unwrap_or(event.received_at));
            rows.timestamp(event.received_at);
            rows.0.put_i32(1);
            rows.0.put_u8(u8::from(event.timestamp.is_some()));
            rows.i16(i16::from(event.facility.code()));
            rows.i16(i16::from(event.severity.code()));
            for text in [
                &event.hostname,
                &event.app_name,
                &event.procid,
                &event.msgid,
                &event.message,
            ] {
                rows.field(text.as_deref().map(str::as_bytes));
            }
            rows.field(event.raw.as_deref());
            if arrays {
                let userid = event.field("userid").and_then(Value::as_str);
                rows.field(userid.map(str::as_bytes));
                if event.structured_data.is_empty() {
                    rows.field(None);
                } else {
                    let mut json = vec![1];
                    serde_json::to_writer(&mut json, &event.structured_data)?;
                    rows.field(Some(&json));
                }
                rows.texts(event.tags.iter().map(|tag| &**tag));
                let (names, values) = fields(event);
                rows.texts(names.into_iter());
                rows.texts(values.iter().map(String::as_str));
            }
        }
        rows.0.put_i16(-1);
        sink.send(rows.0.split().freeze()).await?;
        sink.as_mut().finish().await?;
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
    CopyEventTrigger,
    CopyEventBefore,
    Sink,
    SinkStaged,
    SinkDigestKey,
    SinkRedeliver,
    SinkTagged,
    SinkTaggedStaged,
    SinkTaggedFk,
    SinkSearch,
}

const KINDS: [Kind; 12] = [
    Kind::CopyBare,
    Kind::CopyEvent,
    Kind::CopyEventTrigger,
    Kind::CopyEventBefore,
    Kind::Sink,
    Kind::SinkStaged,
    Kind::SinkDigestKey,
    Kind::SinkRedeliver,
    Kind::SinkTagged,
    Kind::SinkTaggedStaged,
    Kind::SinkTaggedFk,
    Kind::SinkSearch,
];

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::CopyBare => "copy-bare",
            Kind::CopyEvent => "copy-event",
            Kind::CopyEventTrigger => "copy-event-trigger",
            Kind::CopyEventBefore => "copy-event-before",
            Kind::Sink => "sink",
            Kind::SinkStaged => "sink-staged",
            Kind::SinkDigestKey => "sink-digest-key",
            Kind::SinkRedeliver => "sink-redeliver",
            Kind::SinkTagged => "sink-tagged",
            Kind::SinkTaggedStaged => "sink-tagged-staged",
            Kind::SinkTaggedFk => "sink-tagged-fk",
            Kind::SinkSearch => "sink-search",
        }
    }

    fn tagged(self) -> bool {
        matches!(
            self,
            Kind::SinkTagged | Kind::SinkTaggedStaged | Kind::SinkTaggedFk
        )
    }

    /// The plain COPY into a table with the same indexes, to compare with.
    fn same_table(self) -> Option<Kind> {
        match self {
            Kind::Sink
            | Kind::SinkStaged
            | Kind::SinkRedeliver
            | Kind::SinkTagged
            | Kind::SinkTaggedStaged => Some(Kind::CopyEvent),
            _ => None,
        }
    }
}

/// `logdate` kept by BuzzSaw's PL/pgSQL trigger instead of the generated column.
const LOGDATE_TRIGGER: &str = "ALTER TABLE event ALTER COLUMN logdate DROP EXPRESSION;
    CREATE FUNCTION bench_logdate() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN NEW.logdate := (NEW.logtime AT TIME ZONE 'UTC')::date; RETURN NEW; END $$;
    CREATE TRIGGER event_logdate BEFORE INSERT OR UPDATE OF logtime ON event
        FOR EACH ROW EXECUTE FUNCTION bench_logdate()";

/// The indexes the schema had before they were cut to what reports and the web UI need.
const INDEXES_BEFORE: &str = "CREATE INDEX ON event (severity, logtime);
    CREATE INDEX ON event (userid) WHERE userid IS NOT NULL";

/// The keys of schema version 5: the digest alone, and a separate index on `logtime`.
const DIGEST_KEY: &str = "DROP INDEX event_logtime_digest_key, event_unreported_digest_key;
    ALTER TABLE event ADD CONSTRAINT event_digest_key UNIQUE (digest);
    CREATE INDEX event_logtime_idx ON event (logtime)";

/// The foreign key `tag` had before.
const FOREIGN_KEYS: &str =
    "ALTER TABLE tag ADD FOREIGN KEY (event) REFERENCES event (id) ON DELETE CASCADE";

/// Runs one measurement in a fresh database; returns the seconds it took.
async fn measure(
    server: &str,
    kind: Kind,
    events: &[Event],
    batch: usize,
    writers: usize,
) -> anyhow::Result<f64> {
    let scratch = Scratch::new(server, kind.label().replace('-', "_").as_str()).await?;
    let result = measure_in(&scratch.url, kind, events, batch, writers).await;
    scratch.drop().await?;
    result
}

async fn measure_in(
    url: &str,
    kind: Kind,
    events: &[Event],
    batch: usize,
    writers: usize,
) -> anyhow::Result<f64> {
    let client = connect(url).await?;
    match kind {
        Kind::CopyBare => client.batch_execute(BARE_TABLE).await?,
        _ => {
            migrate(&client).await?;
        }
    }
    match kind {
        Kind::CopyEventTrigger => client.batch_execute(LOGDATE_TRIGGER).await?,
        Kind::CopyEventBefore => {
            client.batch_execute(LOGDATE_TRIGGER).await?;
            client.batch_execute(INDEXES_BEFORE).await?;
        }
        Kind::SinkDigestKey => client.batch_execute(DIGEST_KEY).await?,
        Kind::SinkTaggedFk => client.batch_execute(FOREIGN_KEYS).await?,
        Kind::SinkSearch => {
            create_search_index(&client).await?;
        }
        _ => {}
    }
    let seconds = match kind {
        Kind::CopyBare | Kind::CopyEvent | Kind::CopyEventTrigger | Kind::CopyEventBefore => {
            let table = if kind == Kind::CopyBare {
                "bare"
            } else {
                "event"
            };
            let started = Instant::now();
            plain_copy(&client, table, events, batch, kind == Kind::CopyBare).await?;
            started.elapsed().as_secs_f64()
        }
        _ => {
            let config = PostgresSinkConfig {
                direct_copy: !matches!(kind, Kind::SinkStaged | Kind::SinkTaggedStaged),
                ..PostgresSinkConfig::new(url)
            };
            let mut sinks = Vec::with_capacity(writers);
            for _ in 0..writers.max(1) {
                let mut sink = PostgresSink::new(config.clone())?;
                sink.connect().await?;
                sinks.push(sink);
            }
            if kind == Kind::SinkRedeliver {
                for chunk in events.chunks(batch) {
                    sinks[0].write_batch(chunk).await?;
                }
            }
            let count = sinks.len();
            let started = Instant::now();
            // Writer `w` writes batches w, w + count, w + 2 × count…
            futures::future::try_join_all(sinks.iter_mut().enumerate().map(
                |(w, sink)| async move {
                    for chunk in events.chunks(batch).skip(w).step_by(count) {
                        sink.write_batch(chunk).await?;
                    }
                    Ok::<_, loggr::core::SinkError>(())
                },
            ))
            .await?;
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
    if kind.tagged() {
        let tags: i64 = client
            .query_one("SELECT count(*) FROM tag", &[])
            .await?
            .get(0);
        let expected: usize = events.iter().map(|event| event.tags.len()).sum();
        if tags != expected as i64 {
            bail!("{}: {tags} tags stored, {expected} expected", kind.label());
        }
    }
    Ok(seconds)
}

/// The events with two more tags and two more fields each (the `sink-tagged*` runs).
fn tag_everything(events: &[Event]) -> Vec<Event> {
    events
        .iter()
        .enumerate()
        .map(|(index, event)| {
            let mut event = event.clone();
            event.add_tag("bench");
            event.add_tag("stored");
            event.set_field("seq", index as i64);
            event.set_field(
                "source_address",
                format!("10.0.{}.{}", index / 250 % 250, index % 250),
            );
            event
        })
        .collect()
}

/// The load averages (1, 5, 15 minutes), where the system says.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = args
        .url
        .or_else(|| std::env::var("LOGGR_TEST_PG_URL").ok())
        .unwrap_or_else(|| "postgresql://root@127.0.0.1:5432/postgres".into());
    let kinds: Vec<Kind> = match &args.kinds {
        None => KINDS.to_vec(),
        Some(list) => list
            .split(',')
            .map(|label| {
                KINDS
                    .into_iter()
                    .find(|kind| kind.label() == label.trim())
                    .with_context(|| format!("unknown measurement {label:?}"))
            })
            .collect::<anyhow::Result<_>>()?,
    };
    let events = load_corpus(args.events)?;
    let tagged_events = tag_everything(&events);
    let tagged = events.iter().filter(|e| !e.tags.is_empty()).count();
    let with_fields = events.iter().filter(|e| !e.fields.is_empty()).count();
    println!(
        "{} events ({tagged} with tags, {with_fields} with fields; all of them in sink-tagged*), \
         batches of {}, {} sink writer(s), best of {} round(s)",
        events.len(),
        args.batch,
        args.writers.max(1),
        args.rounds
    );
    println!("load average before: {}", load_average());
    let mut best = vec![f64::INFINITY; kinds.len()];
    for _ in 0..args.rounds.max(1) {
        for (slot, kind) in best.iter_mut().zip(&kinds) {
            let input = if kind.tagged() {
                &tagged_events
            } else {
                &events
            };
            let seconds = measure(&server, *kind, input, args.batch.max(1), args.writers).await?;
            *slot = slot.min(seconds);
        }
    }
    println!("load average after:  {}", load_average());
    let rate = |seconds: f64| events.len() as f64 / seconds;
    let rate_of = |wanted: Kind| {
        kinds
            .iter()
            .position(|kind| *kind == wanted)
            .map(|index| rate(best[index]))
    };
    let bare = rate_of(Kind::CopyBare);
    for (seconds, kind) in best.iter().zip(&kinds) {
        let rows = rate(*seconds);
        let versus_bare = bare
            .map(|bare| format!("{:>6.1}% of copy-bare", 100.0 * rows / bare))
            .unwrap_or_default();
        let versus = kind
            .same_table()
            .and_then(rate_of)
            .map(|plain| format!("  {:>6.1}% of copy-event", 100.0 * rows / plain))
            .unwrap_or_default();
        println!(
            "{:<19} {:>9.0} rows/s {:>7.2} s {versus_bare}{versus}",
            kind.label(),
            rows,
            seconds,
        );
    }
    Ok(())
}
