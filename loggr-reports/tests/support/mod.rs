//! Shared by the integration tests: a store of the test's own — a SQLite file in a
//! temporary directory, or a database on the machine's PostgreSQL (start it with
//! `bash scripts/services.sh`; the PostgreSQL variants fail, never skip, when it is not
//! there) — filled with the loghub lines (and `testdata/kernel_sleep.log`) through the BuzzSaw
//! stack and `Store::insert`; SQL run on it independently of the crate (psql, rusqlite); a
//! `both!` macro making a `sqlite` and a `postgres` test of one check; and a small syslog line
//! reader to compute expected report lines from the input independently.

#![allow(clippy::unwrap_used, dead_code, unreachable_pub, unused_macros)] // test helpers fail loudly by design

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use loggr_core::syslog::{Format, SyslogOptions};
use loggr_core::test_util::{CollectingSink, MemorySource};
use loggr_core::{Bytes, CancellationToken, ParseContext, Pipeline, Timestamp};
use loggr_filters::buzzsaw::BuzzsawConfig;
use loggr_sinks::postgres::PostgresSinkConfig;
use loggr_store::{PgStore, SqliteConfig, SqliteStore, Store};

/// Runs one check, `async fn check(kind: Kind)`, against each backend: makes a module named
/// after it with a `sqlite` and a `postgres` test.
macro_rules! both {
    ($check:ident) => {
        mod $check {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$check(super::support::Kind::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$check(super::support::Kind::Postgres).await;
            }
        }
    };
}

/// loghub's four files.
pub const LOGHUB: [&str; 4] = [
    "Linux_2k.log",
    "OpenSSH_2k.log",
    "Mac_2k.log",
    "Thunderbird_2k.log",
];

/// The year given to the lines (RFC 3164 stamps carry none).
pub const YEAR: i16 = 2024;

pub fn loghub(name: &str) -> PathBuf {
    let shared = std::env::var("LOGGR_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let path = shared.join("corpus/loghub").join(name);
    assert!(
        path.is_file(),
        "{} is missing (set LOGGR_SHARED_DIR)",
        path.display()
    );
    path
}

pub fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// Every input line: loghub's four files and the kernel/sleep test data, distinct (a line
/// seen twice is one message, stored once).
pub fn input_lines() -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut lines = Vec::new();
    let files: Vec<PathBuf> = LOGHUB
        .iter()
        .map(|name| loghub(name))
        .chain([testdata("kernel_sleep.log")])
        .collect();
    for file in files {
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            if !line.is_empty() && seen.insert(line.to_owned()) {
                lines.push(line.to_owned());
            }
        }
    }
    lines
}

fn admin(sql: &str) {
    let output = Command::new("psql")
        .args(["-X", "-q", "-h", "127.0.0.1", "-d", "postgres", "-c", sql])
        .output()
        .unwrap_or_else(|e| panic!("psql is missing ({e}): run `bash scripts/services.sh`"));
    assert!(
        output.status.success(),
        "{sql}: {} (is PostgreSQL running? run `bash scripts/services.sh`)",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A store backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The embedded store, a file in a temporary directory.
    Sqlite,
    /// A database of the test's own on 127.0.0.1:5432.
    Postgres,
}

/// A store of the test's own (a temporary SQLite file, or a PostgreSQL database dropped at
/// the end), with loggr's schema, opened as the reporter opens it ([`loggr_reports::open_store`]).
pub struct TestDb {
    pub kind: Kind,
    /// The PostgreSQL database's name, or the SQLite file's path.
    pub name: String,
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(kind: Kind, tag: &str) -> TestDb {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("loggr.db");
                // The daemon creates the store; the reporter only opens it.
                drop(SqliteStore::open(SqliteConfig::new(&path)).unwrap());
                let name = path.display().to_string();
                TestDb {
                    kind,
                    store: loggr_reports::open_store(&name).unwrap(),
                    name,
                    _dir: Some(dir),
                }
            }
            Kind::Postgres => {
                let name = format!("loggr_reports_{tag}_{}", std::process::id());
                admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
                admin(&format!("CREATE DATABASE {name}"));
                let url = format!("postgresql://root@127.0.0.1:5432/{name}");
                // The operator's schema, made by the `postgres` sink's migrations.
                let admin_store = PgStore::new(PostgresSinkConfig::new(url.clone())).unwrap();
                let client = admin_store.client().await.unwrap();
                loggr_sinks::postgres::migrate(&client).await.unwrap();
                TestDb {
                    kind,
                    store: loggr_reports::open_store(&url).unwrap(),
                    name,
                    _dir: None,
                }
            }
        }
    }

    /// The reporter's `database` setting for this store.
    pub fn database(&self) -> String {
        match self.kind {
            Kind::Sqlite => self.name.clone(),
            Kind::Postgres => format!("postgresql://root@127.0.0.1:5432/{}", self.name),
        }
    }

    /// The store, as the reporter opened it.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// `pg` or `sqlite`, for the few statements whose SQL differs.
    pub fn pick<'a>(&self, pg: &'a str, sqlite: &'a str) -> &'a str {
        match self.kind {
            Kind::Sqlite => sqlite,
            Kind::Postgres => pg,
        }
    }

    /// An instant (RFC 3339) as an SQL literal comparable with the time columns.
    pub fn at(&self, instant: &str) -> String {
        let instant: Timestamp = instant.parse().unwrap();
        match self.kind {
            Kind::Sqlite => instant.as_microsecond().to_string(),
            Kind::Postgres => format!("'{instant}'::timestamptz"),
        }
    }

    /// An expression giving a time column as `YYYY-MM-DD HH:MM:SS` in UTC.
    pub fn utc_text(&self, column: &str) -> String {
        match self.kind {
            Kind::Sqlite => format!("datetime({column} / 1000000, 'unixepoch')"),
            Kind::Postgres => {
                format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')")
            }
        }
    }

    /// The rows of a statement, `|`-separated, independently of the crate's code (psql;
    /// rusqlite on its own connection). NULL is an empty string, bytes `\x` and hex.
    pub fn psql(&self, sql: &str) -> Vec<String> {
        match self.kind {
            Kind::Postgres => {
                let output = Command::new("psql")
                    .args(["-X", "-A", "-t", &self.database(), "-c", sql])
                    .output()
                    .unwrap();
                assert!(
                    output.status.success(),
                    "{sql}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                String::from_utf8(output.stdout)
                    .unwrap()
                    .lines()
                    .map(str::to_owned)
                    .collect()
            }
            Kind::Sqlite => {
                use rusqlite::types::ValueRef;
                let conn = rusqlite::Connection::open(&self.name).unwrap();
                conn.busy_timeout(std::time::Duration::from_secs(10))
                    .unwrap();
                let mut statement = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                let columns = statement.column_count();
                let mut rows = statement.query([]).unwrap();
                let mut lines = Vec::new();
                while let Some(row) = rows.next().unwrap() {
                    let cells: Vec<String> = (0..columns)
                        .map(|i| match row.get_ref(i).unwrap() {
                            ValueRef::Null => String::new(),
                            ValueRef::Integer(n) => n.to_string(),
                            ValueRef::Real(x) => x.to_string(),
                            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                            ValueRef::Blob(b) => {
                                let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                                format!("\\x{hex}")
                            }
                        })
                        .collect();
                    lines.push(cells.join("|"));
                }
                lines
            }
        }
    }

    pub fn count(&self, sql: &str) -> u64 {
        let rows = self.psql(sql);
        rows[0].trim().parse().unwrap()
    }

    /// Parses the lines (year 2024, UTC), runs them through the BuzzSaw stack (keeping every
    /// event, as the importer with `keep_uninteresting`) and stores them with
    /// [`Store::insert`], in batches of 1000.
    pub async fn fill(&self, lines: &[String]) {
        let options = SyslogOptions {
            year: Some(YEAR),
            timezone: Some("UTC".into()),
            ..SyslogOptions::default()
        };
        let parser = Format::Auto.parser(&options).unwrap();
        let cx = ParseContext {
            received_at: "2024-12-31T00:00:00Z".parse::<Timestamp>().unwrap(),
            peer: None,
        };
        let events: Vec<_> = lines
            .iter()
            .map(|line| {
                parser
                    .parse(Bytes::from(line.clone().into_bytes()), &cx)
                    .unwrap()
            })
            .collect();
        let chain = BuzzsawConfig {
            keep_uninteresting: true,
            ..BuzzsawConfig::default()
        }
        .chain("buzzsaw")
        .unwrap();
        let sink = CollectingSink::new();
        let (source, outcomes) = MemorySource::new(events, 1000);
        Pipeline::builder()
            .source("memory", source)
            .filter(chain)
            .sink("memory", sink.clone())
            .build()
            .unwrap()
            .run(CancellationToken::new())
            .await
            .unwrap();
        assert!(outcomes.all_delivered(), "{:?}", outcomes.get());
        let filtered = sink.events();
        for batch in filtered.chunks(1000) {
            self.store().insert(batch).await.unwrap();
        }
        assert_eq!(
            self.count("SELECT count(*) FROM event"),
            lines.len() as u64,
            "one row per distinct line"
        );
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.kind == Kind::Postgres {
            let _ = Command::new("psql")
                .args(["-X", "-q", "-h", "127.0.0.1", "-d", "postgres", "-c"])
                .arg(format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .status();
        }
    }
}

/// An RFC 3164 file line: `Mon DD HH:MM:SS host program[pid]: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The time, in UTC, year 2024.
    pub time: Timestamp,
    pub host: String,
    pub program: String,
    pub pid: String,
    pub message: String,
}

/// Reads a line of that form (None for others, e.g. Thunderbird's).
pub fn read_line(line: &str) -> Option<Line> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| line.starts_with(m))? + 1;
    let rest = line.get(3..)?.trim_start();
    let (day, rest) = rest.split_once(' ')?;
    let (clock, rest) = rest.split_once(' ')?;
    let (host, rest) = rest.split_once(' ')?;
    let (tag, message) = rest.split_once(": ")?;
    let (program, pid) = match tag.split_once('[') {
        Some((program, pid)) => (program, pid.trim_end_matches(']')),
        None => (tag, ""),
    };
    let time = format!("{YEAR}-{month:02}-{:02}T{clock}Z", day.parse::<u32>().ok()?)
        .parse()
        .ok()?;
    Some(Line {
        time,
        host: host.to_owned(),
        program: program.to_owned(),
        pid: pid.to_owned(),
        message: message.to_owned(),
    })
}
