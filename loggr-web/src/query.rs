//! Event filters from the query string, and the parameterised SQL they become.
//!
//! Every user value reaches PostgreSQL as a bind parameter: the SQL text is assembled only
//! from constant fragments, and the placeholders' numbers. Paging is by keyset on
//! `(logtime, id)`, newest first: a page is `WHERE (logtime, id) < ($t, $id) ORDER BY logtime
//! DESC, id DESC LIMIT n + 1`, the extra row telling whether a next page exists; the cursor is
//! `<microseconds since the epoch>_<id>` of the page's last row.

use jiff::civil::Date;
use jiff::{tz::TimeZone, Timestamp};
use serde::{Deserialize, Serialize};
use tokio_postgres::types::ToSql;

/// The query string of `/events`, `/events.jsonl` and `/events.csv`, as received (all
/// optional, empty means absent).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct RawFilters {
    /// Start of the time range, inclusive: RFC 3339 or `YYYY-MM-DD` (UTC midnight).
    #[serde(default)]
    pub from: String,
    /// End of the time range, exclusive: RFC 3339, or `YYYY-MM-DD` (that day included).
    #[serde(default)]
    pub to: String,
    /// Exact host name.
    #[serde(default)]
    pub host: String,
    /// Exact program name.
    #[serde(default)]
    pub program: String,
    /// The least severe severity shown: `0`–`7` or a name (`err`, `warning`…).
    #[serde(default)]
    pub severity: String,
    /// A tag the events must have.
    #[serde(default)]
    pub tag: String,
    /// Text the message contains (case-insensitive, `%` and `_` literal).
    #[serde(default)]
    pub q: String,
    /// The keyset cursor: events strictly older than this.
    #[serde(default)]
    pub cursor: String,
}

impl RawFilters {
    /// The query string that repeats these filters (without the cursor), for links.
    pub fn query_string(&self, cursor: Option<&str>) -> String {
        let mut pairs: Vec<(&str, &str)> = [
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
            ("host", self.host.as_str()),
            ("program", self.program.as_str()),
            ("severity", self.severity.as_str()),
            ("tag", self.tag.as_str()),
            ("q", self.q.as_str()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        if let Some(cursor) = cursor {
            pairs.push(("cursor", cursor));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

/// A filter value that cannot be used; the message names the parameter, never echoes it.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid parameter `{param}`: {expected}")]
pub struct BadFilter {
    /// The parameter.
    pub param: &'static str,
    /// What it should look like.
    pub expected: &'static str,
}

/// Validated filters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filters {
    /// `logtime >= from`.
    pub from: Option<Timestamp>,
    /// `logtime < to`.
    pub to: Option<Timestamp>,
    /// `hostname = host`.
    pub host: Option<String>,
    /// `program = program`.
    pub program: Option<String>,
    /// `severity <= severity`.
    pub severity: Option<i16>,
    /// The event has this tag.
    pub tag: Option<String>,
    /// `message ILIKE '%q%'`, with `q`'s `\`, `%`, `_` escaped.
    pub text: Option<String>,
    /// `(logtime, id) < cursor`.
    pub cursor: Option<(Timestamp, i64)>,
}

const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// The name of a syslog severity.
pub fn severity_name(severity: i16) -> &'static str {
    usize::try_from(severity)
        .ok()
        .and_then(|i| SEVERITIES.get(i))
        .copied()
        .unwrap_or("?")
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

fn parse_time(value: &str, param: &'static str, end: bool) -> Result<Timestamp, BadFilter> {
    let bad = BadFilter {
        param,
        expected: "an RFC 3339 time or a YYYY-MM-DD date",
    };
    if let Ok(t) = value.parse::<Timestamp>() {
        return Ok(t);
    }
    let date: Date = value.parse().map_err(|_| bad.clone())?;
    let date = if end {
        date.tomorrow().map_err(|_| bad.clone())?
    } else {
        date
    };
    date.to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|_| bad)
}

/// Escapes `\`, `%` and `_` for a `LIKE` pattern (default escape character `\`).
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Encodes a keyset cursor.
pub fn encode_cursor(logtime: Timestamp, id: i64) -> String {
    format!("{}_{}", logtime.as_microsecond(), id)
}

fn parse_cursor(value: &str) -> Result<(Timestamp, i64), BadFilter> {
    let bad = BadFilter {
        param: "cursor",
        expected: "a cursor from a `next` link",
    };
    let (micros, id) = value.split_once('_').ok_or_else(|| bad.clone())?;
    let micros: i64 = micros.parse().map_err(|_| bad.clone())?;
    let id: i64 = id.parse().map_err(|_| bad.clone())?;
    let t = Timestamp::from_microsecond(micros).map_err(|_| bad)?;
    Ok((t, id))
}

impl TryFrom<&RawFilters> for Filters {
    type Error = BadFilter;

    fn try_from(raw: &RawFilters) -> Result<Filters, BadFilter> {
        // PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database.
        for (param, value) in [
            ("from", &raw.from),
            ("to", &raw.to),
            ("host", &raw.host),
            ("program", &raw.program),
            ("severity", &raw.severity),
            ("tag", &raw.tag),
            ("q", &raw.q),
            ("cursor", &raw.cursor),
        ] {
            if value.contains('\0') {
                return Err(BadFilter {
                    param,
                    expected: "text without NUL characters",
                });
            }
        }
        let from = non_empty(&raw.from)
            .map(|v| parse_time(&v, "from", false))
            .transpose()?;
        let to = non_empty(&raw.to)
            .map(|v| parse_time(&v, "to", true))
            .transpose()?;
        let severity = non_empty(&raw.severity)
            .map(|v| {
                let lower = v.to_ascii_lowercase();
                SEVERITIES
                    .iter()
                    .position(|s| *s == lower)
                    .and_then(|i| i16::try_from(i).ok())
                    .or_else(|| lower.parse::<i16>().ok().filter(|n| (0..=7).contains(n)))
                    .ok_or(BadFilter {
                        param: "severity",
                        expected: "0 to 7 or a syslog severity name",
                    })
            })
            .transpose()?;
        let cursor = non_empty(&raw.cursor)
            .map(|v| parse_cursor(&v))
            .transpose()?;
        Ok(Filters {
            from,
            to,
            host: non_empty(&raw.host),
            program: non_empty(&raw.program),
            severity,
            tag: non_empty(&raw.tag),
            text: non_empty(&raw.q).map(|q| format!("%{}%", escape_like(&q))),
            cursor,
        })
    }
}

/// A SQL statement and its bind parameters.
pub struct Statement {
    /// The SQL text: constant fragments and `$n` placeholders only.
    pub sql: String,
    /// The values of the placeholders, in order.
    pub params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Statement {
    /// The parameters as `tokio_postgres` takes them.
    pub fn param_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// The columns of an event list row, over `e`: the event's own columns (`EVENT_COLUMNS`)
/// and its tags.
pub const LIST_COLUMNS: &str = "e.id, e.logtime, e.received_at, e.hostname, e.program, e.pid, \
     e.facility, e.severity, e.message, \
     ARRAY(SELECT t.name FROM tag t WHERE t.event = e.id ORDER BY t.name) AS tags";

/// The `event` columns a list row shows (the inner selects of a severity filter return them).
const EVENT_COLUMNS: &str = "e.id, e.logtime, e.received_at, e.hostname, e.program, e.pid, \
     e.facility, e.severity, e.message";

/// The order of every list: newest first, the id breaking ties (the keyset).
const NEWEST_FIRST: &str = "ORDER BY e.logtime DESC, e.id DESC";

/// A tag with fewer events than this is found through the `tag (name, event)` index (its
/// events looked up one by one, then filtered and sorted); a more common one is checked per
/// event of the ordered scan. The crossover: looking up `n` tagged events costs about what
/// scanning `page × total / n` events to find a page does (at 5 M events and pages of 50,
/// a few thousand).
pub const RARE_TAG_EVENTS: i64 = 2000;

/// The least severe severity a filter is split into per-severity branches for: `warning`.
/// Less severe thresholds (`notice`, `info`) match most of a syslog store's events, so that
/// the ordered scan finds a page at once, while the branches would cost one index range each
/// (`severity <= 6` over a month at 5 M events: 13 ms p50 with the scan, 40 ms with seven
/// branches, under 20 concurrent users).
pub const BRANCHED_SEVERITIES: i16 = 4;

/// Bind parameters and the `WHERE` clauses that use them.
#[derive(Default)]
struct Builder {
    clauses: Vec<String>,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Builder {
    /// Binds `value`; returns its placeholder.
    fn bind(&mut self, value: Box<dyn ToSql + Sync + Send>) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }

    /// Adds `clause`, its `$?` replaced by `value`'s placeholder.
    fn push(&mut self, clause: &str, value: Box<dyn ToSql + Sync + Send>) {
        let placeholder = self.bind(value);
        self.clauses.push(clause.replace("$?", &placeholder));
    }

    /// One ordered, limited select of the event columns: the common clauses and `extra`.
    fn branch(&self, extra: &[String], limit: &str) -> String {
        let all: Vec<&str> = self
            .clauses
            .iter()
            .chain(extra)
            .map(String::as_str)
            .collect();
        let where_ = if all.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", all.join(" AND "))
        };
        format!("SELECT {EVENT_COLUMNS} FROM event e{where_} {NEWEST_FIRST} LIMIT {limit}")
    }
}

impl Filters {
    /// The statement selecting `limit` events matching these filters, newest first.
    ///
    /// # Plans
    ///
    /// Every filter narrows one keyset-ordered scan (the `logtime`, `(hostname, logtime)` or
    /// `(program, logtime)` index read backwards) that stops after `limit` matches. That scan
    /// is slow when the matches are rare among the events it reads, so two filters are
    /// written to let PostgreSQL go straight to them:
    ///
    /// - severity: `severity <= n` with `n` at most [`BRANCHED_SEVERITIES`] becomes one branch
    ///   per severity `s` in `0..=n`, each `severity = s … ORDER BY logtime DESC, id DESC
    ///   LIMIT limit` (an ordered range of the `(severity, logtime)` index of schema
    ///   migration 3, or any other ordered scan), merged by an outer `ORDER BY … LIMIT`.
    ///   `severity <= 5` and `<= 6` stay a filter of the scan; `severity <= 7` is every
    ///   event: no clause.
    /// - tag: the statement first reads at most [`RARE_TAG_EVENTS`] of the tag's events from
    ///   the `tag (name, event)` index (the CTE `tagged`). Fewer: the tag is rare, and its
    ///   events are looked up by id, filtered, and sorted. As many: the tag is common, and
    ///   the ordered scans check each event's tag (an `EXISTS … OFFSET 0`, which PostgreSQL
    ///   keeps as a per-row check: as a semi-join the planner misjudged correlated filters,
    ///   such as `program = sshd` and `tag = auth_failure`, as rare and read the whole range).
    ///   Each alternative is a `UNION ALL` branch gated by a one-time filter on the count,
    ///   so only one runs.
    pub fn select(&self, limit: i64) -> Statement {
        self.select_with(limit, RARE_TAG_EVENTS)
    }

    /// [`Filters::select`] with another threshold between a rare and a common tag (for tests
    /// and tuning: the results are the same, only the plan changes).
    pub fn select_with(&self, limit: i64, rare_tag_events: i64) -> Statement {
        let mut b = Builder::default();
        if let Some(t) = self.from {
            b.push("e.logtime >= $?", Box::new(t));
        }
        if let Some(t) = self.to {
            b.push("e.logtime < $?", Box::new(t));
        }
        if let Some(h) = &self.host {
            b.push("e.hostname = $?", Box::new(h.clone()));
        }
        if let Some(p) = &self.program {
            b.push("e.program = $?", Box::new(p.clone()));
        }
        if let Some(text) = &self.text {
            b.push("e.message ILIKE $?", Box::new(text.clone()));
        }
        if let Some((t, id)) = self.cursor {
            let t = b.bind(Box::new(t));
            let id = b.bind(Box::new(id));
            // `logtime <=` bounds any `logtime` index range with the cursor (the row
            // comparison alone is an index condition only on an index of `(logtime, id)`).
            b.clauses.push(format!(
                "e.logtime <= {t} AND (e.logtime, e.id) < ({t}, {id})"
            ));
        }
        let severity = match self.severity {
            Some(s) if s > BRANCHED_SEVERITIES && s < 7 => {
                b.push("e.severity <= $?", Box::new(s));
                None
            }
            Some(s) if s <= BRANCHED_SEVERITIES => Some(s),
            _ => None,
        };
        let limit = b.bind(Box::new(limit));
        // The ordered branches: one per severity, or one.
        let ordered = |b: &mut Builder, extra: Vec<String>| -> Vec<String> {
            match severity {
                None => vec![b.branch(&extra, &limit)],
                Some(least) => (0..=least)
                    .map(|s| {
                        let mut clauses = extra.clone();
                        clauses.push(format!("e.severity = {}", b.bind(Box::new(s))));
                        b.branch(&clauses, &limit)
                    })
                    .collect(),
            }
        };
        let (with, branches) = match &self.tag {
            None => (String::new(), ordered(&mut b, Vec::new())),
            Some(tag) => {
                let tag = b.bind(Box::new(tag.clone()));
                let rare = b.bind(Box::new(rare_tag_events));
                let with = format!(
                    "WITH tagged AS MATERIALIZED \
                     (SELECT t.event FROM tag t WHERE t.name = {tag} LIMIT {rare}), \
                     tag_count AS MATERIALIZED (SELECT count(*) AS n FROM tagged) "
                );
                let mut rare_clauses = vec![
                    format!("(SELECT n FROM tag_count) < {rare}"),
                    "e.id IN (SELECT tagged.event FROM tagged)".to_owned(),
                ];
                if let Some(least) = severity {
                    rare_clauses.push(format!("e.severity <= {}", b.bind(Box::new(least))));
                }
                let mut branches = vec![b.branch(&rare_clauses, &limit)];
                branches.extend(ordered(
                    &mut b,
                    vec![
                        format!("(SELECT n FROM tag_count) >= {rare}"),
                        format!(
                            "EXISTS (SELECT 1 FROM tag t WHERE t.event = e.id \
                             AND t.name = {tag} OFFSET 0)"
                        ),
                    ],
                ));
                (with, branches)
            }
        };
        let sql = if let [only] = branches.as_slice() {
            format!("{with}SELECT {LIST_COLUMNS} FROM ({only}) e {NEWEST_FIRST}")
        } else {
            let union: Vec<String> = branches.iter().map(|b| format!("({b})")).collect();
            format!(
                "{with}SELECT {LIST_COLUMNS} FROM ({}) e {NEWEST_FIRST} LIMIT {limit}",
                union.join(" UNION ALL ")
            )
        };
        Statement {
            sql,
            params: b.params,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_builds() {
        let raw = RawFilters {
            from: "2026-11-20".into(),
            to: "2026-11-20".into(),
            severity: "Warning".into(),
            q: "50%_off\\".into(),
            host: "x' OR 1=1 --".into(),
            ..RawFilters::default()
        };
        let f = Filters::try_from(&raw).unwrap();
        assert_eq!(f.from.unwrap().to_string(), "2026-11-20T00:00:00Z");
        assert_eq!(f.to.unwrap().to_string(), "2026-11-21T00:00:00Z");
        assert_eq!(f.severity, Some(4));
        assert_eq!(f.text.as_deref(), Some("%50\\%\\_off\\\\%"));
        let st = f.select(51);
        assert!(!st.sql.contains("OR 1=1"));
        // from, to, host, q, the limit, then severities 0 to 4, one per branch.
        assert_eq!(st.params.len(), 10);
        assert_eq!(st.sql.matches(" UNION ALL ").count(), 4, "{}", st.sql);
        assert!(
            st.sql.contains("AND e.severity = $10 ORDER BY"),
            "{}",
            st.sql
        );
        assert!(st.sql.ends_with("LIMIT $5"), "{}", st.sql);
        let all = Filters {
            severity: Some(7),
            ..f.clone()
        };
        let st = all.select(51);
        assert!(
            !st.sql.contains("UNION") && !st.sql.contains("e.severity ="),
            "{}",
            st.sql
        );
        assert_eq!(st.params.len(), 5);
        let notice = Filters {
            severity: Some(5),
            ..f
        };
        let st = notice.select(51);
        assert!(
            !st.sql.contains("UNION") && st.sql.contains("AND e.severity <= $5 ORDER BY"),
            "{}",
            st.sql
        );
        assert_eq!(st.params.len(), 6);
    }

    #[test]
    fn rejects_bad_values() {
        for (raw, param) in [
            (
                RawFilters {
                    from: "yesterday".into(),
                    ..Default::default()
                },
                "from",
            ),
            (
                RawFilters {
                    severity: "8".into(),
                    ..Default::default()
                },
                "severity",
            ),
            (
                RawFilters {
                    cursor: "1;DROP".into(),
                    ..Default::default()
                },
                "cursor",
            ),
        ] {
            assert_eq!(Filters::try_from(&raw).unwrap_err().param, param);
        }
        let t = Timestamp::from_microsecond(1_700_000_000_123_456).unwrap();
        assert_eq!(parse_cursor(&encode_cursor(t, 42)).unwrap(), (t, 42));
    }
}
