//! The values exchanged with a [`Store`](crate::Store): what a query asks for and what it gets
//! back, independent of the backend.

use jiff::Timestamp;
use serde::Serialize;

/// Which events a list query selects (every criterion optional, all of them must hold).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// `logtime >= from`.
    pub from: Option<Timestamp>,
    /// `logtime < to`.
    pub to: Option<Timestamp>,
    /// The host name, exactly.
    pub host: Option<String>,
    /// The program (syslog app name), exactly.
    pub program: Option<String>,
    /// The least severe severity included: `severity <= this` (0 emerg … 7 debug).
    pub severity: Option<i16>,
    /// A tag the event has.
    pub tag: Option<String>,
    /// Text the message contains, case-insensitively (ASCII), taken literally: `%` and `_`
    /// are not wildcards.
    pub text: Option<String>,
    /// Keyset paging: only events strictly older than this `(logtime, id)`, the last row of
    /// the previous page.
    pub cursor: Option<(Timestamp, i64)>,
}

/// The `LIKE`/`ILIKE` pattern matching `text` literally anywhere: `%`, `_` and `\\` escaped
/// with `\\` (the default escape character of PostgreSQL, given explicitly to SQLite).
///
/// ```
/// assert_eq!(loggr_store::model::contains_pattern("50%_off"), r"%50\%\_off%");
/// ```
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    push_literal(&mut pattern, text);
    pattern.push('%');
    pattern
}

/// Appends `text` to a `LIKE` pattern as literal characters: `%`, `_` and `\\` escaped with
/// `\\`.
pub(crate) fn push_literal(pattern: &mut String, text: &str) {
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
}

/// One row of an event list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventSummary {
    /// The store's id.
    pub id: i64,
    /// The reported time, or the reception time when none was reported.
    pub logtime: Timestamp,
    /// When loggr received it.
    pub received_at: Timestamp,
    /// The host name.
    pub hostname: Option<String>,
    /// The program (syslog app name).
    pub program: Option<String>,
    /// The process id.
    pub pid: Option<String>,
    /// The syslog facility code.
    pub facility: i16,
    /// The syslog severity code.
    pub severity: i16,
    /// The message.
    pub message: Option<String>,
    /// The tags, sorted.
    pub tags: Vec<String>,
}

/// Everything stored about one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventDetail {
    /// The list columns.
    #[serde(flatten)]
    pub summary: EventSummary,
    /// The content id (SHA-256, 32 bytes).
    pub digest: Vec<u8>,
    /// The UTC day of `logtime`, `YYYY-MM-DD`.
    pub logdate: String,
    /// Whether the sender reported a time.
    pub reported: bool,
    /// The RFC 5424 MSGID.
    pub msgid: Option<String>,
    /// The `userid` field, when it was text.
    pub userid: Option<String>,
    /// RFC 5424 structured data as JSON (`{"SD-ID": {"param": "value"}}`).
    pub structured_data: Option<serde_json::Value>,
    /// The bytes as received, when the source kept them.
    pub raw: Option<Vec<u8>>,
    /// The extra info, `(name, value)` sorted by name then value.
    pub extra: Vec<(String, String)>,
}

/// The store's figures for a status page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StoreStatus {
    /// Events stored (an estimate on large PostgreSQL tables).
    pub events: i64,
    /// Events whose `logtime` falls in the window asked for.
    pub recent: i64,
    /// The newest `logtime`.
    pub newest: Option<Timestamp>,
}

/// What one [`Store::insert`](crate::Store::insert) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InsertStats {
    /// Events newly stored.
    pub inserted: u64,
    /// Events already stored (redelivered), or repeated within the batch.
    pub duplicates: u64,
}
