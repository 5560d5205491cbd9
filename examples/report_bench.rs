//! `report_bench`: the daily Kernel and AuthFailure reports over 5 M events in PostgreSQL
//! (through the same `Store` trait the SQLite store implements), with the
//! `EXPLAIN (ANALYZE, BUFFERS)` of their queries.
//!
//! ```text
//! cargo run --release --features postgres --example report_bench -- [--events 5000000] [--keep]
//! ```
//!
//! Creates the database `loggr_report_bench` on `LOGGR_PG_ADMIN_URL` (default
//! `postgresql://root@127.0.0.1:5432/postgres`'s server), applies loggr's migrations, and
//! fills it in SQL (`INSERT … SELECT generate_series`; the secondary indexes are dropped
//! first and rebuilt after, as a bulk load would): events spread evenly over 2024 on 997
//! hosts; 10% from `sshd` (2% tagged `auth_failure`, with `userid` and `source_address` and
//! `auth_method` fields; 1% `auth_success`), 10% from `kernel` (all tagged `kernel`; 0.1%
//! `segfault`, 0.02% `oom`, 0.005% `oops`, 0.002% `panic`), the rest from 48 other programs.
//! Then renders the daily Kernel and AuthFailure reports of 10 June 2024 (twice: the first
//! run reads from disk) and prints each query's plan with its timings. The database is
//! dropped at the end unless `--keep`.

#![allow(clippy::print_stdout, clippy::print_stderr)] // the figures are the output

use std::time::Instant;

use clap::Parser as _;
use loggr::sinks::postgres::{tokio_postgres::Client, PostgresSinkConfig};
use loggr_reports::loggr_store::PgStore;
use loggr_reports::query::{explain, ReportQuery};
use loggr_reports::{Period, ReportConfig, ReportKind, Reporter, ReporterConfig};

/// Time the daily Kernel and AuthFailure reports over millions of events.
#[derive(clap::Parser)]
struct Args {
    /// How many events.
    #[arg(long, default_value_t = 5_000_000)]
    events: i64,
    /// Keep the database.
    #[arg(long)]
    keep: bool,
}

const DB: &str = "loggr_report_bench";

async fn fill(client: &Client, events: i64) -> anyhow::Result<()> {
    let step = |sql: &'static str, what: &'static str| async move {
        let started = Instant::now();
        client.batch_execute(sql).await?;
        eprintln!("{what}: {:.1} s", started.elapsed().as_secs_f64());
        anyhow::Ok(())
    };
    step(
        "DROP INDEX IF EXISTS event_logtime_digest_key, event_unreported_digest_key, \
                              event_hostname_logtime_idx, event_program_logtime_idx; \
         ALTER TABLE tag DROP CONSTRAINT IF EXISTS tag_name_event_key",
        "drop the indexes",
    )
    .await?;
    let started = Instant::now();
    client
        .execute(
            "INSERT INTO event (digest, logtime, received_at, facility, severity, hostname, program, pid, userid, message, tags, extra) \
             SELECT sha256(int8send(g)), ts, ts, 4, 6, 'host' || (g % 997), \
                    CASE g % 10 WHEN 0 THEN 'sshd' WHEN 1 THEN 'kernel' ELSE 'app' || (g % 48) END, \
                    (g % 32768)::text, \
                    CASE WHEN g % 100 IN (0, 10, 20) THEN 'user' || (g / 100 % 500) END, \
                    CASE WHEN g % 100 IN (0, 10) THEN 'Failed password for user' || (g / 100 % 500) || ' from 10.' || (g % 251) || '.' || (g / 7 % 251) || '.1 port 22 ssh2' \
                         WHEN g % 10 = 1 AND g % 1000 = 1 THEN 'app[' || g || ']: segfault at 0 ip 0 sp 0 error 4' \
                         ELSE 'synthetic event ' || g END, \
                    NULLIF(array_remove(ARRAY[ \
                      CASE WHEN g % 100 IN (0, 10, 20) THEN 'auth' END, \
                      CASE WHEN g % 100 IN (0, 10) THEN 'auth_failure' END, \
                      CASE WHEN g % 100 = 20 THEN 'auth_success' END, \
                      CASE WHEN g % 10 = 1 THEN 'kernel' END, \
                      CASE WHEN g % 5000 = 11 THEN 'oom' END, \
                      CASE WHEN g % 20000 = 21 THEN 'oops' END, \
                      CASE WHEN g % 50000 = 31 THEN 'panic' END, \
                      CASE WHEN g % 1000 = 1 THEN 'segfault' END, \
                      CASE WHEN g % 100 IN (0, 10, 20) THEN 'ssh' END], NULL), '{}'), \
                    CASE WHEN g % 100 IN (0, 10, 20) THEN jsonb_build_array( \
                      jsonb_build_array('source_address', '10.' || (g % 251) || '.' || (g / 7 % 251) || '.1'), \
                      jsonb_build_array('auth_method', 'password')) END \
             FROM generate_series(1, $1::int8) g, \
                  LATERAL (SELECT timestamptz '2024-01-01 00:00:00+00' + g * (interval '366 days' / $1::int8) AS ts) t",
            &[&events],
        )
        .await?;
    eprintln!(
        "insert {events} events: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Each event's tags and fields are written with it, as the sink does; then the `tag` rows.
    step(
        "INSERT INTO tag (event, name) SELECT id, unnest(tags) FROM event WHERE tags IS NOT NULL",
        "insert the tags",
    )
    .await?;
    step(
        "CREATE UNIQUE INDEX event_logtime_digest_key ON event (logtime, digest); \
         CREATE UNIQUE INDEX event_unreported_digest_key ON event (digest) WHERE NOT reported; \
         ALTER TABLE tag ADD CONSTRAINT tag_name_event_key PRIMARY KEY (name, event); \
         CREATE INDEX event_hostname_logtime_idx ON event (hostname, logtime); \
         CREATE INDEX event_program_logtime_idx ON event (program, logtime)",
        "rebuild the indexes",
    )
    .await?;
    step("VACUUM ANALYZE event, tag", "vacuum analyze").await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let admin_url = std::env::var("LOGGR_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgresql://root@127.0.0.1:5432/postgres".into());
    // A store that never touches the schema by itself (`migrate` false), for its connection.
    let connect = |url: &str| PgStore::new(PostgresSinkConfig::new(url));
    let admin = connect(&admin_url)?.client().await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        .await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {DB}"))
        .await?;
    let url = format!(
        "{}/{DB}",
        admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base)
    );
    let store = connect(&url)?;
    let client = store.client().await?;
    loggr::sinks::postgres::migrate(&client).await?;
    fill(&client, args.events).await?;

    let config = ReporterConfig::from_toml(&format!(
        "database = \"{url}\"\ntimezone = \"UTC\"\n[accounts]\npasswd_file = \"\"\nknown = [\"user1\"]\n"
    ))?;
    let reporter = Reporter::new(config)?;
    let now = "2024-06-11T06:00:00Z".parse()?;
    for (name, kind, query) in [
        ("Kernel", ReportKind::Kernel, ReportQuery::TagHostCounts),
        (
            "AuthFailure",
            ReportKind::AuthFailure,
            ReportQuery::AuthCounts,
        ),
    ] {
        let report = ReportConfig::new(name, kind);
        for run in ["first", "second"] {
            let started = Instant::now();
            let rendered = reporter.render(&store, Period::Daily, &report, now).await?;
            println!(
                "{name} daily report ({run} run): {:.1} ms, {} lines",
                started.elapsed().as_secs_f64() * 1000.0,
                rendered.body.lines().count()
            );
        }
        let selection = reporter.selection(Period::Daily, &report, now)?;
        println!("EXPLAIN (ANALYZE, BUFFERS) of the {name} query:");
        for line in explain(&store, query, &selection).await? {
            println!("    {line}");
        }
    }
    let sizes = client
        .query_one(
            "SELECT (SELECT count(*) FROM event), (SELECT count(*) FROM tag), (SELECT count(*) FROM extra_info), \
                    pg_size_pretty(pg_total_relation_size('event'))",
            &[],
        )
        .await?;
    println!(
        "{} events, {} tags, {} extra_info rows; event table and indexes {}",
        sizes.get::<_, i64>(0),
        sizes.get::<_, i64>(1),
        sizes.get::<_, i64>(2),
        sizes.get::<_, String>(3)
    );
    drop(client);
    if !args.keep {
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
            .await?;
    }
    Ok(())
}
