//! A known set of events the store tests share.

#![allow(dead_code, clippy::unwrap_used)]

use std::process::Command;

use jiff::Timestamp;
use loggr_core::{Event, Facility, Severity};

/// 2023-11-14T22:13:20Z plus `seconds`.
pub(crate) fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + seconds).unwrap()
}

/// Event `n` of a known set: message `message {n} …` (`50%_off` when n % 5 == 0), host
/// `web{n%3}`, program `sshd` for even n else `cron`, severity `n % 8`, tag `odd` on odd n,
/// logtime `at(n)`.
pub(crate) fn event(n: i64) -> Event {
    let mut event = Event::new(format!(
        "message {n} {}",
        if n % 5 == 0 { "50%_off" } else { "plain" }
    ));
    event.timestamp = Some(at(n));
    event.received_at = at(n + 1000);
    event.hostname = Some(format!("web{}", n % 3).into());
    event.app_name = Some(if n % 2 == 0 { "sshd" } else { "cron" }.into());
    event.severity = Severity::from_code((n % 8) as u8).unwrap();
    event.facility = Facility::from_code(4).unwrap();
    if n % 2 == 1 {
        event.add_tag("odd");
    }
    event
}

/// Runs `sql` with `psql` on the machine's PostgreSQL (127.0.0.1:5432, database `postgres`);
/// fails loudly when psql or the server is missing.
pub(crate) fn psql(sql: &str) {
    let output = Command::new("psql")
        .args(["-X", "-q", "-h", "127.0.0.1", "-d", "postgres", "-c", sql])
        .output()
        .unwrap_or_else(|e| panic!("psql is missing ({e}): run `bash scripts/services.sh`"));
    assert!(
        output.status.success(),
        "{sql}: {} (is PostgreSQL running? `bash scripts/services.sh`)",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A database of the test's own (its name), dropped at the end.
pub(crate) struct Database(pub(crate) String);

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-X", "-q", "-h", "127.0.0.1", "-d", "postgres", "-c"])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0))
            .status();
    }
}
