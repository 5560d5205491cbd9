//! Shared by the integration tests: a database of the test's own on the machine's
//! PostgreSQL (start it with `bash scripts/services.sh`), filled with the loghub lines (and
//! `testdata/kernel_sleep.log`) through the BuzzSaw stack and the `postgres` sink, and a
//! small syslog line reader to compute expected report lines from the input independently.

#![allow(clippy::unwrap_used, dead_code, unreachable_pub)] // test helpers fail loudly by design

use std::path::{Path, PathBuf};
use std::process::Command;

use loggr_core::syslog::{Format, SyslogOptions};
use loggr_core::test_util::MemorySource;
use loggr_core::{Bytes, CancellationToken, ParseContext, Pipeline, Timestamp};
use loggr_filters::buzzsaw::BuzzsawConfig;
use loggr_sinks::postgres::{PostgresSink, PostgresSinkConfig};

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

/// A database of the test's own, dropped at the end.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub fn new(tag: &str) -> TestDb {
        let name = format!("loggr_reports_{tag}_{}", std::process::id());
        admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        admin(&format!("CREATE DATABASE {name}"));
        TestDb { name }
    }

    pub fn url(&self) -> String {
        format!("postgresql://root@127.0.0.1:5432/{}", self.name)
    }

    /// The rows of a query, `|`-separated, through psql (independent of the crate's code).
    pub fn psql(&self, sql: &str) -> Vec<String> {
        let output = Command::new("psql")
            .args(["-X", "-A", "-t", &self.url(), "-c", sql])
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

    pub fn count(&self, sql: &str) -> u64 {
        let rows = self.psql(sql);
        rows[0].trim().parse().unwrap()
    }

    /// Parses the lines (year 2024, UTC), runs them through the BuzzSaw stack (keeping every
    /// event, as the importer with `keep_uninteresting`) into the database.
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
        let mut config = PostgresSinkConfig::new(self.url());
        config.migrate = true;
        let (source, outcomes) = MemorySource::new(events, 1000);
        Pipeline::builder()
            .source("memory", source)
            .filter(chain)
            .sink("db", PostgresSink::new(config).unwrap())
            .build()
            .unwrap()
            .run(CancellationToken::new())
            .await
            .unwrap();
        assert!(outcomes.all_delivered(), "{:?}", outcomes.get());
        assert_eq!(
            self.count("SELECT count(*) FROM event"),
            lines.len() as u64,
            "one row per distinct line"
        );
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-X", "-q", "-h", "127.0.0.1", "-d", "postgres", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .status();
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
