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

/// The columns of an event list row.
pub const LIST_COLUMNS: &str = "e.id, e.logtime, e.received_at, e.hostname, e.program, e.pid, \
     e.facility, e.severity, e.message, \
     ARRAY(SELECT t.name FROM tag t WHERE t.event = e.id ORDER BY t.name) AS tags";

impl Filters {
    /// The statement selecting `limit` events matching these filters, newest first.
    pub fn select(&self, limit: i64) -> Statement {
        let mut clauses: Vec<String> = Vec::new();
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut push = |clause: &str, value: Box<dyn ToSql + Sync + Send>| {
            params.push(value);
            clauses.push(clause.replace("$?", &format!("${}", params.len())));
        };
        if let Some(t) = self.from {
            push("e.logtime >= $?", Box::new(t));
        }
        if let Some(t) = self.to {
            push("e.logtime < $?", Box::new(t));
        }
        if let Some(h) = &self.host {
            push("e.hostname = $?", Box::new(h.clone()));
        }
        if let Some(p) = &self.program {
            push("e.program = $?", Box::new(p.clone()));
        }
        if let Some(s) = self.severity {
            push("e.severity <= $?", Box::new(s));
        }
        if let Some(tag) = &self.tag {
            push(
                "EXISTS (SELECT 1 FROM tag t WHERE t.event = e.id AND t.name = $?)",
                Box::new(tag.clone()),
            );
        }
        if let Some(text) = &self.text {
            push("e.message ILIKE $?", Box::new(text.clone()));
        }
        if let Some((t, id)) = self.cursor {
            params.push(Box::new(t));
            params.push(Box::new(id));
            clauses.push(format!(
                "(e.logtime, e.id) < (${}, ${})",
                params.len() - 1,
                params.len()
            ));
        }
        params.push(Box::new(limit));
        let where_ = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {LIST_COLUMNS} FROM event e {where_} \
             ORDER BY e.logtime DESC, e.id DESC LIMIT ${}",
            params.len()
        );
        Statement { sql, params }
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
        assert_eq!(st.params.len(), 6);
        assert!(st.sql.ends_with("LIMIT $6"), "{}", st.sql);
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
