//! The reports' reads and the run log, over any [`Store`]: the embedded SQLite store or
//! loggr's PostgreSQL schema. The statements themselves live with each backend in
//! `loggr-store` ([`Store::report_events`], [`Store::tag_host_counts`],
//! [`Store::auth_counts`], [`Store::last_run`], [`Store::record_run`]); here their results
//! become what the templates see.
//!
//! Each query reads one time range, `start <= logtime < end`, of the events with any of some
//! tags, optionally of one program ([`Selection`]). Kernel and AuthFailure count in the
//! database (`GROUP BY`; PostgreSQL's one `GROUPING SETS` pass) and send back only the
//! counts.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use loggr_store::{PgStore, Store};
use serde::Serialize;

pub use loggr_store::report::PG_RUN_LOG_SQL as RUN_LOG_SQL;
pub use loggr_store::{AuthCounts, ReportQuery, Selection, TagHostCount};

use crate::schedule::Period;
use crate::ReportError;

/// One event as a template sees it (`events`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct EventRow {
    /// The row id.
    pub id: i64,
    /// The time, RFC 3339 in UTC.
    pub logtime: String,
    /// The time in the report's zone, `YYYY-MM-DD HH:MM:SS`.
    pub localtime: String,
    /// The host (`""` when none).
    pub hostname: String,
    /// The program (`""` when none).
    pub program: String,
    /// The process id (`""` when none).
    pub pid: String,
    /// The severity code (0 emergency … 7 debug).
    pub severity: i16,
    /// The facility code.
    pub facility: i16,
    /// The `userid` column (`""` when none).
    pub userid: String,
    /// The message (`""` when none).
    pub message: String,
    /// The tags, sorted.
    pub tags: Vec<String>,
    /// The extra_info fields, each with its values in storage order.
    pub fields: BTreeMap<String, Vec<String>>,
}

/// `YYYY-MM-DD HH:MM:SS` of an instant in a zone.
pub fn local_time(instant: Timestamp, tz: &TimeZone) -> String {
    instant
        .to_zoned(tz.clone())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The events of a selection, at most `limit`, with their tags and fields; and how many
/// there are in all.
///
/// # Errors
///
/// [`ReportError::Database`].
pub async fn events(
    store: &dyn Store,
    selection: &Selection,
    tz: &TimeZone,
    limit: u32,
) -> Result<(Vec<EventRow>, u64), ReportError> {
    let (events, total) = store
        .report_events(selection, limit)
        .await
        .map_err(|e| ReportError::db("select the events", e))?;
    let rows = events
        .into_iter()
        .map(|event| EventRow {
            id: event.id,
            logtime: event.logtime.to_string(),
            localtime: local_time(event.logtime, tz),
            hostname: event.hostname.unwrap_or_default(),
            program: event.program.unwrap_or_default(),
            pid: event.pid.unwrap_or_default(),
            severity: event.severity,
            facility: event.facility,
            userid: event.userid.unwrap_or_default(),
            message: event.message.unwrap_or_default(),
            tags: event.tags,
            fields: event.fields,
        })
        .collect();
    Ok((rows, total))
}

/// For each tag of the selection and host that has it, how many events (host `None` when
/// the events had none).
///
/// # Errors
///
/// [`ReportError::Database`].
pub async fn tag_host_counts(
    store: &dyn Store,
    selection: &Selection,
) -> Result<Vec<TagHostCount>, ReportError> {
    store
        .tag_host_counts(selection)
        .await
        .map_err(|e| ReportError::db("count events by tag and host", e))
}

/// The AuthFailure counts of a selection.
///
/// # Errors
///
/// [`ReportError::Database`].
pub async fn auth_counts(
    store: &dyn Store,
    selection: &Selection,
) -> Result<AuthCounts, ReportError> {
    store
        .auth_counts(selection)
        .await
        .map_err(|e| ReportError::db("count authentication failures", e))
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of a report query, exactly as the report runs it: the plan
/// and its timings, one line each (for benchmarks and for checking that the indexes are
/// used). PostgreSQL only.
///
/// # Errors
///
/// [`ReportError::Database`].
pub async fn explain(
    store: &PgStore,
    query: ReportQuery,
    selection: &Selection,
) -> Result<Vec<String>, ReportError> {
    store
        .explain_report(query, selection)
        .await
        .map_err(|e| ReportError::db("explain a report query", e))
}

/// The last run of a report, if any (PostgreSQL: the run log table is created when missing).
///
/// # Errors
///
/// [`ReportError::Database`].
pub async fn last_run(
    store: &dyn Store,
    name: &str,
    period: Period,
) -> Result<Option<Timestamp>, ReportError> {
    store
        .last_run(name, period.name())
        .await
        .map_err(|e| ReportError::db("read the run log", e))
}

/// Records a run.
///
/// # Errors
///
/// [`ReportError::Database`].
pub async fn record_run(
    store: &dyn Store,
    name: &str,
    period: Period,
    at: Timestamp,
) -> Result<(), ReportError> {
    store
        .record_run(name, period.name(), at)
        .await
        .map_err(|e| ReportError::db("record the run", e))
}
