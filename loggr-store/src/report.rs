//! The value types of the reporter's operations on a [`Store`](crate::Store): which events a
//! report reads ([`Selection`], [`OrderBy`]), what comes back ([`ReportEvent`],
//! [`TagHostCount`], [`AuthCounts`]), and what an anonymisation changed
//! ([`AnonymiseCounts`]).
//!
//! Every backend returns the same values for the same stored events: the lists of
//! [`Store::tag_host_counts`](crate::Store::tag_host_counts) and
//! [`Store::auth_counts`](crate::Store::auth_counts) are sorted here (by key), whatever order
//! the database produced them in, and text sorts in byte order (PostgreSQL's `COLLATE "C"`
//! columns, SQLite's `BINARY`), with missing values last.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Deserialize;

/// The run log's table in PostgreSQL, created by the store on first use (the SQLite store has
/// it in its schema): one row per (report, period), the last time it ran.
pub const PG_RUN_LOG_SQL: &str = "\
CREATE TABLE IF NOT EXISTS report_run (
    name     text COLLATE \"C\" NOT NULL,
    period   text COLLATE \"C\" NOT NULL CHECK (period IN ('hourly', 'daily', 'weekly', 'monthly')),
    last_run timestamptz NOT NULL,
    CONSTRAINT report_run_pkey PRIMARY KEY (name, period)
)";

/// The periods the run log accepts (its `period` column's check).
pub const RUN_PERIODS: [&str; 4] = ["hourly", "daily", "weekly", "monthly"];

/// The column a report's events are ordered by (then by time, then by id).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderBy {
    /// The time of the event.
    #[default]
    Logtime,
    /// The host (events without one last).
    Hostname,
    /// The program (events without one last).
    Program,
    /// The severity (most severe first: 0 is emergency).
    Severity,
    /// The facility.
    Facility,
    /// The storage order.
    Id,
}

impl OrderBy {
    /// The `ORDER BY` list over `event e`, the same in PostgreSQL and SQLite (text columns
    /// sort in byte order, missing values last, in both).
    pub const fn sql(self) -> &'static str {
        match self {
            OrderBy::Logtime => "e.logtime, e.id",
            OrderBy::Hostname => "e.hostname NULLS LAST, e.logtime, e.id",
            OrderBy::Program => "e.program NULLS LAST, e.logtime, e.id",
            OrderBy::Severity => "e.severity, e.logtime, e.id",
            OrderBy::Facility => "e.facility, e.logtime, e.id",
            OrderBy::Id => "e.id",
        }
    }

    /// The name, as the configuration spells it (`logtime`, `hostname`…).
    pub const fn name(self) -> &'static str {
        match self {
            OrderBy::Logtime => "logtime",
            OrderBy::Hostname => "hostname",
            OrderBy::Program => "program",
            OrderBy::Severity => "severity",
            OrderBy::Facility => "facility",
            OrderBy::Id => "id",
        }
    }
}

/// Which events a report reads: `start <= logtime < end`, optionally of one program, with
/// any of some tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The first instant (inclusive).
    pub start: Timestamp,
    /// The end (exclusive).
    pub end: Timestamp,
    /// Only this program, when set.
    pub program: Option<String>,
    /// Events with any of these tags (none: every event of the range).
    pub tags: Vec<String>,
    /// The order of the events.
    pub order_by: OrderBy,
}

impl Selection {
    /// The same selection without its tags (every event of the range and program).
    pub fn without_tags(&self) -> Selection {
        Selection {
            tags: Vec::new(),
            ..self.clone()
        }
    }
}

/// One event of a report, with its tags and fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportEvent {
    /// The row id.
    pub id: i64,
    /// The time.
    pub logtime: Timestamp,
    /// The host.
    pub hostname: Option<String>,
    /// The program.
    pub program: Option<String>,
    /// The process id.
    pub pid: Option<String>,
    /// The severity code (0 emergency … 7 debug).
    pub severity: i16,
    /// The facility code.
    pub facility: i16,
    /// The `userid` column.
    pub userid: Option<String>,
    /// The message.
    pub message: Option<String>,
    /// The tags, sorted (byte order).
    pub tags: Vec<String>,
    /// The extra_info fields, each with its values in storage order.
    pub fields: BTreeMap<String, Vec<String>>,
}

/// How many events of a selection have a tag, on one host.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TagHostCount {
    /// The tag.
    pub tag: String,
    /// The host (`None`: the events had none).
    pub host: Option<String>,
    /// The events.
    pub count: i64,
}

/// Event counts of a selection by user, by target host and by source address, each sorted
/// by value (missing last).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthCounts {
    /// By `userid` (`None`: no user).
    pub users: Vec<(Option<String>, i64)>,
    /// By `hostname`.
    pub targets: Vec<(Option<String>, i64)>,
    /// By the `source_address` field (its first value).
    pub sources: Vec<(Option<String>, i64)>,
}

impl AuthCounts {
    /// Sorts each list by value, missing values last: the order every backend returns.
    pub fn sort(&mut self) {
        for list in [&mut self.users, &mut self.targets, &mut self.sources] {
            sort_missing_last(list);
        }
    }
}

/// Sorts `(value, count)` pairs by value in byte order, `None` last.
pub(crate) fn sort_missing_last(list: &mut [(Option<String>, i64)]) {
    list.sort_by(|(a, _), (b, _)| match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
}

/// Sorts tag/host counts by tag, then host (missing last): the order every backend returns.
pub fn sort_tag_host_counts(list: &mut [TagHostCount]) {
    list.sort_by(|a, b| {
        a.tag.cmp(&b.tag).then_with(|| match (&a.host, &b.host) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        })
    });
}

/// What an anonymisation changed (or, in a dry run, would change).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnonymiseCounts {
    /// Events whose `raw`, `message` and `userid` were blanked.
    pub events: u64,
    /// `extra_info` rows deleted.
    pub extra_info: u64,
}

/// A query of the reports, for `PgStore::explain_report` (feature `postgres`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportQuery {
    /// [`Store::report_events`](crate::Store::report_events)' selection of events (without
    /// the fields' look-up).
    Events,
    /// [`Store::tag_host_counts`](crate::Store::tag_host_counts).
    TagHostCounts,
    /// [`Store::auth_counts`](crate::Store::auth_counts).
    AuthCounts,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_values_sort_last() {
        let mut list = vec![
            (None, 1),
            (Some("b".to_owned()), 2),
            (Some("B".to_owned()), 3),
        ];
        sort_missing_last(&mut list);
        assert_eq!(
            list,
            [
                (Some("B".to_owned()), 3),
                (Some("b".to_owned()), 2),
                (None, 1)
            ]
        );
    }
}
