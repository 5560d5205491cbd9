//! The reports' queries over loggr's schema (`event`, `tag`, `extra_info`, made by the
//! `postgres` sink's migrations), and the run log (`report_run`, created here).
//!
//! Each query reads one time range, `start <= logtime < end`, of the events with any of some
//! tags, optionally of one program. The plans use the schema's indexes: `tag (name, event)`
//! gives the events with a tag, `event (logtime)` or `event (program, logtime)` the range;
//! PostgreSQL picks the smaller side and probes the other (`tag (event, name)` is the
//! primary key, `event (id)` too). Kernel and AuthFailure count in the database
//! (`GROUP BY`, `GROUPING SETS`) and send back only the counts.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Serialize;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use crate::config::OrderBy;
use crate::schedule::Period;
use crate::ReportError;

/// The run log: one row per (report, period), the last time it ran.
pub const RUN_LOG_SQL: &str = "\
CREATE TABLE IF NOT EXISTS report_run (
    name     text COLLATE \"C\" NOT NULL,
    period   text COLLATE \"C\" NOT NULL CHECK (period IN ('hourly', 'daily', 'weekly', 'monthly')),
    last_run timestamptz NOT NULL,
    CONSTRAINT report_run_pkey PRIMARY KEY (name, period)
)";

/// Which events a report reads.
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
    /// The `WHERE` clause over `event e` and its parameters (from `$1`).
    fn filter(&self) -> (String, Params) {
        let mut sql = String::from("e.logtime >= $1 AND e.logtime < $2");
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> =
            vec![Box::new(self.start), Box::new(self.end)];
        if let Some(program) = &self.program {
            params.push(Box::new(program.clone()));
            sql.push_str(&format!(" AND e.program = ${}", params.len()));
        }
        if !self.tags.is_empty() {
            params.push(Box::new(self.tags.clone()));
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM tag t WHERE t.event = e.id AND t.name = ANY(${}))",
                params.len()
            ));
        }
        (sql, params)
    }
}

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

fn refs(params: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

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
    client: &Client,
    selection: &Selection,
    tz: &TimeZone,
    limit: u32,
) -> Result<(Vec<EventRow>, u64), ReportError> {
    let (filter, params) = selection.filter();
    let count_sql = format!("SELECT count(*) FROM event e WHERE {filter}");
    let total: i64 = client
        .query_one(&count_sql, &refs(&params))
        .await
        .map_err(|e| ReportError::db("count the events", e))?
        .get(0);
    let (sql, mut params) = events_sql(selection);
    params.push(Box::new(i64::from(limit)));
    let rows = client
        .query(&sql, &refs(&params))
        .await
        .map_err(|e| ReportError::db("select the events", e))?;
    let text = |value: Option<String>| value.unwrap_or_default();
    let mut events: Vec<EventRow> = rows
        .iter()
        .map(|row| {
            let logtime: Timestamp = row.get(1);
            EventRow {
                id: row.get(0),
                logtime: logtime.to_string(),
                localtime: local_time(logtime, tz),
                hostname: text(row.get(2)),
                program: text(row.get(3)),
                pid: text(row.get(4)),
                severity: row.get(5),
                facility: row.get(6),
                userid: text(row.get(7)),
                message: text(row.get(8)),
                tags: row.get(9),
                fields: BTreeMap::new(),
            }
        })
        .collect();
    if !events.is_empty() {
        let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        let rows = client
            .query(
                "SELECT event, name, val FROM extra_info WHERE event = ANY($1) ORDER BY event, name",
                &[&ids],
            )
            .await
            .map_err(|e| ReportError::db("select the events' fields", e))?;
        let position: std::collections::HashMap<i64, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        for row in rows {
            let id: i64 = row.get(0);
            if let Some(event) = position.get(&id).and_then(|&i| events.get_mut(i)) {
                event.fields.entry(row.get(1)).or_default().push(row.get(2));
            }
        }
    }
    Ok((events, u64::try_from(total).unwrap_or_default()))
}

/// `(tag, host, events)` for each tag of the selection and host that has it (host `None`
/// when the events had none).
///
/// # Errors
///
/// [`ReportError::Database`].
pub async fn tag_host_counts(
    client: &Client,
    selection: &Selection,
) -> Result<Vec<(String, Option<String>, i64)>, ReportError> {
    let (sql, params) = tag_host_counts_sql(selection);
    let rows = client
        .query(&sql, &refs(&params))
        .await
        .map_err(|e| ReportError::db("count events by tag and host", e))?;
    Ok(rows
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect())
}

fn tag_host_counts_sql(selection: &Selection) -> (String, Params) {
    let (filter, mut params) = selection.without_tags().filter();
    params.push(Box::new(selection.tags.clone()));
    let sql = format!(
        "SELECT t.name, e.hostname, count(*) FROM tag t JOIN event e ON e.id = t.event \
         WHERE t.name = ANY(${}) AND {filter} GROUP BY t.name, e.hostname",
        params.len()
    );
    (sql, params)
}

/// Event counts by user, by target host and by source address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthCounts {
    /// By `userid` (`None`: no user).
    pub users: Vec<(Option<String>, i64)>,
    /// By `hostname`.
    pub targets: Vec<(Option<String>, i64)>,
    /// By the `source_address` field.
    pub sources: Vec<(Option<String>, i64)>,
}

/// The AuthFailure counts of a selection, in one pass (`GROUPING SETS`).
///
/// # Errors
///
/// [`ReportError::Database`].
pub async fn auth_counts(
    client: &Client,
    selection: &Selection,
) -> Result<AuthCounts, ReportError> {
    let (sql, params) = auth_counts_sql(selection);
    let rows = client
        .query(&sql, &refs(&params))
        .await
        .map_err(|e| ReportError::db("count authentication failures", e))?;
    let mut counts = AuthCounts::default();
    for row in rows {
        let grouping: i32 = row.get(0);
        let count: i64 = row.get(4);
        // GROUPING's bits, most significant first: userid, hostname, val; 1 = not grouped.
        match grouping {
            0b011 => counts.users.push((row.get(1), count)),
            0b101 => counts.targets.push((row.get(2), count)),
            0b110 => counts.sources.push((row.get(3), count)),
            _ => {}
        }
    }
    Ok(counts)
}

fn auth_counts_sql(selection: &Selection) -> (String, Params) {
    let (filter, params) = selection.filter();
    let sql = format!(
        "SELECT GROUPING(e.userid, e.hostname, s.val), e.userid, e.hostname, s.val, count(*) \
         FROM event e \
         LEFT JOIN LATERAL (SELECT x.val FROM extra_info x \
                            WHERE x.event = e.id AND x.name = 'source_address' LIMIT 1) s ON true \
         WHERE {filter} \
         GROUP BY GROUPING SETS ((e.userid), (e.hostname), (s.val))"
    );
    (sql, params)
}

/// A query of the reports, for [`explain`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportQuery {
    /// [`events`]' selection of events (without the fields' look-up).
    Events,
    /// The Kernel report's [`tag_host_counts`].
    TagHostCounts,
    /// The AuthFailure report's [`auth_counts`].
    AuthCounts,
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of a report query, exactly as the report runs it: the plan
/// and its timings, one line each (for benchmarks and for checking that the indexes are
/// used).
///
/// # Errors
///
/// [`ReportError::Database`].
pub async fn explain(
    client: &Client,
    query: ReportQuery,
    selection: &Selection,
) -> Result<Vec<String>, ReportError> {
    let (sql, mut params) = match query {
        ReportQuery::Events => events_sql(selection),
        ReportQuery::TagHostCounts => tag_host_counts_sql(selection),
        ReportQuery::AuthCounts => auth_counts_sql(selection),
    };
    if query == ReportQuery::Events {
        params.push(Box::new(i64::MAX));
    }
    let rows = client
        .query(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"), &refs(&params))
        .await
        .map_err(|e| ReportError::db("explain a report query", e))?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

fn events_sql(selection: &Selection) -> (String, Params) {
    let (filter, params) = selection.filter();
    let sql = format!(
        "SELECT e.id, e.logtime, e.hostname, e.program, e.pid, e.severity, e.facility, \
         e.userid, e.message, \
         ARRAY(SELECT t2.name FROM tag t2 WHERE t2.event = e.id ORDER BY t2.name) \
         FROM event e WHERE {filter} ORDER BY {} LIMIT ${}",
        selection.order_by.sql(),
        params.len() + 1
    );
    (sql, params)
}

impl Selection {
    fn without_tags(&self) -> Selection {
        Selection {
            tags: Vec::new(),
            ..self.clone()
        }
    }
}

/// Creates the run log table when missing.
///
/// # Errors
///
/// [`ReportError::Database`].
pub async fn ensure_run_log(client: &Client) -> Result<(), ReportError> {
    client
        .batch_execute(RUN_LOG_SQL)
        .await
        .map_err(|e| ReportError::db("create the run log table report_run", e))
}

/// The last run of a report, if any.
///
/// # Errors
///
/// [`ReportError::Database`].
pub async fn last_run(
    client: &Client,
    name: &str,
    period: Period,
) -> Result<Option<Timestamp>, ReportError> {
    let row = client
        .query_opt(
            "SELECT last_run FROM report_run WHERE name = $1 AND period = $2",
            &[&name, &period.name()],
        )
        .await
        .map_err(|e| ReportError::db("read the run log", e))?;
    Ok(row.map(|row| row.get(0)))
}

/// Records a run.
///
/// # Errors
///
/// [`ReportError::Database`].
pub async fn record_run(
    client: &Client,
    name: &str,
    period: Period,
    at: Timestamp,
) -> Result<(), ReportError> {
    client
        .execute(
            "INSERT INTO report_run (name, period, last_run) VALUES ($1, $2, $3) \
             ON CONFLICT (name, period) DO UPDATE SET last_run = EXCLUDED.last_run",
            &[&name, &period.name(), &at],
        )
        .await
        .map_err(|e| ReportError::db("record the run", e))?;
    Ok(())
}
