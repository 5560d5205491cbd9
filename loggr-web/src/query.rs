//! Event filters from the query string, validated into the store's
//! [`EventFilter`](loggr_store::EventFilter) (each backend turns it into parameterised SQL:
//! `loggr_store::postgres::query`, `loggr_store::sqlite`).
//!
//! Paging is by keyset on `(logtime, id)`, newest first: a page asks for `n + 1` events older
//! than the cursor, the extra row telling whether a next page exists; the cursor is
//! `<microseconds since the epoch>_<id>` of the page's last row.

use jiff::civil::Date;
use jiff::{tz::TimeZone, Timestamp};
use serde::{Deserialize, Serialize};

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

/// Validated filters: the store's query.
pub type Filters = loggr_store::EventFilter;

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
            text: non_empty(&raw.q),
            cursor,
        })
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
        assert_eq!(
            f.text.as_deref(),
            Some("50%_off\\"),
            "literal: the store escapes it"
        );
        assert_eq!(f.host.as_deref(), Some("x' OR 1=1 --"));
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
