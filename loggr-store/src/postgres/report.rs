//! The reporter's statements over loggr's PostgreSQL schema (`event` with its `tags` and
//! `extra`, `tag`, made by the `postgres` sink's migrations) and the run log (`report_run`, created here on
//! first use with [`PG_RUN_LOG_SQL`]).
//!
//! Each query reads one time range, `start <= logtime < end`, of the events with any of some
//! tags, optionally of one program. The plans use the schema's indexes: `tag (name, event)`
//! gives the events with a tag, `event (logtime, digest)` or `event (program, logtime)` the range;
//! PostgreSQL picks the smaller side and probes the other (`tag (name, event)` with both
//! columns, `event (id)`). The Kernel and AuthFailure counts are computed in the
//! database (`GROUP BY`, one `GROUPING SETS` pass) and only the counts come back. Every value
//! is a parameter.

use std::collections::HashMap;

use jiff::Timestamp;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use crate::report::{
    sort_tag_host_counts, AnonymiseCounts, AuthCounts, ReportEvent, ReportQuery, Selection,
    TagHostCount, PG_RUN_LOG_SQL,
};
use crate::StoreError;

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

fn refs(params: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// The `WHERE` clause over `event e` of a selection and its parameters (from `$1`).
fn filter(selection: &Selection) -> (String, Params) {
    let mut sql = String::from("e.logtime >= $1 AND e.logtime < $2");
    let mut params: Params = vec![Box::new(selection.start), Box::new(selection.end)];
    if let Some(program) = &selection.program {
        params.push(Box::new(program.clone()));
        sql.push_str(&format!(" AND e.program = ${}", params.len()));
    }
    if !selection.tags.is_empty() {
        params.push(Box::new(selection.tags.clone()));
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM tag t WHERE t.event = e.id AND t.name = ANY(${}))",
            params.len()
        ));
    }
    (sql, params)
}

fn events_sql(selection: &Selection) -> (String, Params) {
    let (filter, params) = filter(selection);
    let sql = format!(
        "SELECT e.id, e.logtime, e.hostname, e.program, e.pid, e.severity, e.facility, \
         e.userid, e.message, \
         coalesce(e.tags, '{{}}') \
         FROM event e WHERE {filter} ORDER BY {} LIMIT ${}",
        selection.order_by.sql(),
        params.len() + 1
    );
    (sql, params)
}

fn tag_host_counts_sql(selection: &Selection) -> (String, Params) {
    let (filter, mut params) = filter(&selection.without_tags());
    params.push(Box::new(selection.tags.clone()));
    let sql = format!(
        "SELECT t.name, e.hostname, count(*) FROM tag t JOIN event e ON e.id = t.event \
         WHERE t.name = ANY(${}) AND {filter} GROUP BY t.name, e.hostname",
        params.len()
    );
    (sql, params)
}

fn auth_counts_sql(selection: &Selection) -> (String, Params) {
    let (filter, params) = filter(selection);
    let sql = format!(
        "SELECT GROUPING(e.userid, e.hostname, s.val), e.userid, e.hostname, s.val, count(*) \
         FROM event e \
         LEFT JOIN LATERAL (SELECT p ->> 1 AS val FROM jsonb_array_elements(e.extra) p \
                            WHERE p ->> 0 = 'source_address' LIMIT 1) s ON true \
         WHERE {filter} \
         GROUP BY GROUPING SETS ((e.userid), (e.hostname), (s.val))"
    );
    (sql, params)
}

pub(super) async fn report_events(
    client: &Client,
    selection: &Selection,
    limit: u32,
) -> Result<(Vec<ReportEvent>, u64), StoreError> {
    let (filter, params) = filter(selection);
    let total: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM event e WHERE {filter}"),
            &refs(&params),
        )
        .await?
        .try_get(0)?;
    let (sql, mut params) = events_sql(selection);
    params.push(Box::new(i64::from(limit)));
    let rows = client.query(&sql, &refs(&params)).await?;
    let mut events = rows
        .iter()
        .map(|row| {
            Ok(ReportEvent {
                id: row.try_get(0)?,
                logtime: row.try_get(1)?,
                hostname: row.try_get(2)?,
                program: row.try_get(3)?,
                pid: row.try_get(4)?,
                severity: row.try_get(5)?,
                facility: row.try_get(6)?,
                userid: row.try_get(7)?,
                message: row.try_get(8)?,
                tags: row.try_get(9)?,
                fields: std::collections::BTreeMap::new(),
            })
        })
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
    if !events.is_empty() {
        let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        let rows = client
            .query(
                "SELECT event, name, val FROM extra_info WHERE event = ANY($1) \
                 ORDER BY event, name, n",
                &[&ids],
            )
            .await?;
        let position: HashMap<i64, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        for row in rows {
            let id: i64 = row.try_get(0)?;
            if let Some(event) = position.get(&id).and_then(|&i| events.get_mut(i)) {
                event
                    .fields
                    .entry(row.try_get(1)?)
                    .or_default()
                    .push(row.try_get(2)?);
            }
        }
    }
    Ok((events, u64::try_from(total).unwrap_or_default()))
}

pub(super) async fn tag_host_counts(
    client: &Client,
    selection: &Selection,
) -> Result<Vec<TagHostCount>, StoreError> {
    if selection.tags.is_empty() {
        return Ok(Vec::new());
    }
    let (sql, params) = tag_host_counts_sql(selection);
    let mut counts = client
        .query(&sql, &refs(&params))
        .await?
        .iter()
        .map(|row| {
            Ok(TagHostCount {
                tag: row.try_get(0)?,
                host: row.try_get(1)?,
                count: row.try_get(2)?,
            })
        })
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
    sort_tag_host_counts(&mut counts);
    Ok(counts)
}

pub(super) async fn auth_counts(
    client: &Client,
    selection: &Selection,
) -> Result<AuthCounts, StoreError> {
    let (sql, params) = auth_counts_sql(selection);
    let rows = client.query(&sql, &refs(&params)).await?;
    let mut counts = AuthCounts::default();
    for row in rows {
        let grouping: i32 = row.try_get(0)?;
        let count: i64 = row.try_get(4)?;
        // GROUPING's bits, most significant first: userid, hostname, val; 1 = not grouped.
        match grouping {
            0b011 => counts.users.push((row.try_get(1)?, count)),
            0b101 => counts.targets.push((row.try_get(2)?, count)),
            0b110 => counts.sources.push((row.try_get(3)?, count)),
            _ => {}
        }
    }
    counts.sort();
    Ok(counts)
}

/// Whether an error says the run log table is missing.
fn no_run_log(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::UNDEFINED_TABLE)
}

async fn create_run_log(client: &Client) -> Result<(), StoreError> {
    client.batch_execute(PG_RUN_LOG_SQL).await?;
    tracing::info!("Created the report run log table report_run");
    Ok(())
}

const SELECT_RUN: &str = "SELECT last_run FROM report_run WHERE name = $1 AND period = $2";
const UPSERT_RUN: &str = "INSERT INTO report_run (name, period, last_run) VALUES ($1, $2, $3) \
     ON CONFLICT (name, period) DO UPDATE SET last_run = EXCLUDED.last_run";

pub(super) async fn last_run(
    client: &Client,
    name: &str,
    period: &str,
) -> Result<Option<Timestamp>, StoreError> {
    let row = match client.query_opt(SELECT_RUN, &[&name, &period]).await {
        Err(error) if no_run_log(&error) => {
            create_run_log(client).await?;
            client.query_opt(SELECT_RUN, &[&name, &period]).await?
        }
        result => result?,
    };
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

pub(super) async fn record_run(
    client: &Client,
    name: &str,
    period: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    match client.execute(UPSERT_RUN, &[&name, &period, &at]).await {
        Err(error) if no_run_log(&error) => {
            create_run_log(client).await?;
            client.execute(UPSERT_RUN, &[&name, &period, &at]).await?;
        }
        result => {
            result?;
        }
    }
    Ok(())
}

/// An event that still holds personal data (besides its fields).
const WITH_DATA: &str =
    "(raw IS NOT NULL OR userid IS NOT NULL OR (message IS NOT NULL AND message <> ''))";

pub(super) async fn anonymise(
    client: &Client,
    before: Timestamp,
    dryrun: bool,
) -> Result<AnonymiseCounts, StoreError> {
    // One statement (the client is shared, so no BEGIN … COMMIT across calls): the events'
    // update and the fields' deletion commit together or not at all.
    // The fields are counted as values (`extra_info` rows), as they were stored before they
    // moved into `event.extra`. One update per event: a statement may change a row once.
    let sql = if dryrun {
        format!(
            "SELECT (SELECT count(*) FROM event WHERE logtime < $1 AND {WITH_DATA}), \
             (SELECT coalesce(sum(jsonb_array_length(extra)), 0) FROM event \
              WHERE logtime < $1 AND extra IS NOT NULL)"
        )
    } else {
        format!(
            "WITH old AS MATERIALIZED \
                 (SELECT id, coalesce(jsonb_array_length(extra), 0) AS fields, \
                         {WITH_DATA} AS with_data \
                  FROM event WHERE logtime < $1 AND (extra IS NOT NULL OR {WITH_DATA})), \
                  cleared AS (UPDATE event e SET raw = NULL, message = '', userid = NULL, \
                                                 extra = NULL \
                              FROM old WHERE e.id = old.id RETURNING old.fields, old.with_data) \
             SELECT count(*) FILTER (WHERE with_data), coalesce(sum(fields), 0) FROM cleared"
        )
    };
    let row = client.query_one(&sql, &[&before]).await?;
    let events: i64 = row.try_get(0)?;
    let extra_info: i64 = row.try_get(1)?;
    let counts = AnonymiseCounts {
        events: u64::try_from(events).unwrap_or_default(),
        extra_info: u64::try_from(extra_info).unwrap_or_default(),
    };
    if !dryrun {
        tracing::info!(%before, events, extra_info, "Anonymised old events");
    }
    Ok(counts)
}

pub(super) async fn explain(
    client: &Client,
    query: ReportQuery,
    selection: &Selection,
) -> Result<Vec<String>, StoreError> {
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
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?)
}
