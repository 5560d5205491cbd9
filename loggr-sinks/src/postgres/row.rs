//! How an [`Event`] becomes a row (the staging table, the binary values) and comes back
//! ([`load_event`]).

use std::borrow::Cow;

use loggr_core::{
    ContentId, Event, Facility, Severity, StructuredData, Tags, Text, Timestamp, Value,
};
use tokio_postgres::Client;

use super::copy::CopyBuf;
use super::PgError;

/// The columns of `event` the sink writes, in the order [`write_event`] writes them (`id` and
/// `logdate` are the database's).
macro_rules! event_columns {
    () => {
        "digest, logtime, received_at, reported, facility, severity, hostname, program, pid, \
         msgid, userid, message, structured_data, raw"
    };
}

/// The per-session staging table a batch is copied into when it may hold events already
/// stored (temporary: not WAL-logged, private to the connection, emptied at every commit).
/// `detailed` says whether the event has tags or extra_info rows.
pub(crate) const CREATE_STAGE: &str = "CREATE TEMPORARY TABLE IF NOT EXISTS loggr_stage (
    digest          bytea       NOT NULL,
    logtime         timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    reported        boolean     NOT NULL,
    facility        smallint    NOT NULL,
    severity        smallint    NOT NULL,
    hostname        text,
    program         text,
    pid             text,
    msgid           text,
    userid          text,
    message         text,
    structured_data jsonb,
    raw             bytea,
    detailed        boolean     NOT NULL
) ON COMMIT DELETE ROWS";

/// `COPY` into the staging table, in the column order of [`write_event`].
pub(crate) const COPY_STAGE: &str = concat!(
    "COPY pg_temp.loggr_stage (",
    event_columns!(),
    ", detailed) FROM STDIN (FORMAT binary)"
);

/// How many fields [`write_event`] writes for `event` ([`COPY_EVENT`]).
pub(crate) const EVENT_FIELDS: i16 = 14;

/// How many fields [`write_event`] writes for the staging table ([`COPY_STAGE`]).
pub(crate) const STAGE_FIELDS: i16 = EVENT_FIELDS + 1;

/// `COPY` straight into `event` (the direct path: no digest of the batch is stored yet).
pub(crate) const COPY_EVENT: &str = concat!(
    "COPY event (",
    event_columns!(),
    ") FROM STDIN (FORMAT binary)"
);

/// `COPY` of tags, for events inserted by the same transaction.
pub(crate) const COPY_TAG: &str = "COPY tag (event, name) FROM STDIN (FORMAT binary)";

/// `COPY` of extra_info rows, for events inserted by the same transaction.
pub(crate) const COPY_EXTRA: &str = "COPY extra_info (event, name, val) FROM STDIN (FORMAT binary)";

/// Moves the staged events without tags or extra_info into `event` (a digest already stored
/// is skipped); its row count is the number of new events. No join, no parameter: one plan,
/// prepared once per session, fits every batch.
pub(crate) const INSERT_PLAIN: &str = concat!(
    "INSERT INTO event (",
    event_columns!(),
    ") SELECT ",
    event_columns!(),
    " FROM pg_temp.loggr_stage WHERE NOT detailed ON CONFLICT (digest) DO NOTHING"
);

/// Moves the staged events with tags or extra_info into `event`, returning the `id` and
/// `digest` of those it inserted (their tags and extra_info are then copied in).
pub(crate) const INSERT_DETAILED: &str = concat!(
    "INSERT INTO event (",
    event_columns!(),
    ") SELECT ",
    event_columns!(),
    " FROM pg_temp.loggr_stage WHERE detailed ON CONFLICT (digest) DO NOTHING RETURNING id, digest"
);

/// The `id` of events by digest (after the direct `COPY`, for the events with details).
pub(crate) const SELECT_IDS: &str = "SELECT id, digest FROM event WHERE digest = ANY($1)";

/// Records one refused event (a digest already in quarantine is left alone).
pub(crate) const INSERT_QUARANTINE: &str = "INSERT INTO quarantine (digest, sqlstate, error, \
     event, raw) VALUES ($1, $2, $3, CAST($4::text AS json), $5) ON CONFLICT (digest) DO NOTHING";

/// The field stored in the `userid` column (when its value is text) instead of `extra_info`.
pub(crate) const USERID: &str = "userid";

/// What replaces a NUL character in text columns (PostgreSQL text cannot hold `\0`).
pub const NUL_REPLACEMENT: char = '\u{FFFD}';

/// Text as PostgreSQL can store it: NUL characters replaced by [`NUL_REPLACEMENT`].
pub(crate) fn pg_text(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// The structured data as JSON text for `jsonb`, `None` when there is none.
fn structured_data_json(sd: &StructuredData) -> Option<Vec<u8>> {
    if sd.is_empty() {
        return None;
    }
    let has_nul = sd.elements.iter().any(|element| {
        element.id.contains('\0')
            || element
                .params
                .iter()
                .any(|param| param.name.contains('\0') || param.value.contains('\0'))
    });
    let json = if has_nul {
        let mut clean = sd.clone();
        for element in &mut clean.elements {
            element.id = Text::from(pg_text(&element.id).into_owned());
            for param in &mut element.params {
                param.name = Text::from(pg_text(&param.name).into_owned());
                param.value = Text::from(pg_text(&param.value).into_owned());
            }
        }
        serde_json::to_vec(&clean)
    } else {
        serde_json::to_vec(sd)
    };
    // Serializing strings into memory cannot fail.
    json.ok()
}

/// The `userid` column's value: the `userid` field when it is text.
fn userid(event: &Event) -> Option<Cow<'_, str>> {
    match event.fields.get(USERID) {
        Some(Value::String(userid)) => Some(pg_text(userid)),
        _ => None,
    }
}

/// Whether the event has tags or extra_info rows to store.
pub(crate) fn is_detailed(event: &Event) -> bool {
    !event.tags.is_empty()
        || event
            .fields
            .iter()
            .any(|(name, value)| is_extra(name, value))
}

/// Whether a field goes to `extra_info` (everything but a text `userid`, which has its column).
fn is_extra(name: &str, value: &Value) -> bool {
    name != USERID || !matches!(value, Value::String(_))
}

/// Writes the fields of the event's row: the [`EVENT_FIELDS`] columns of `event`, and with
/// `stage`, `detailed` for the staging table. `id` is the event's content id. Returns whether
/// the event has tags or extra_info rows ([`is_detailed`]).
pub(crate) fn write_event(buf: &mut CopyBuf, id: &ContentId, event: &Event, stage: bool) -> bool {
    let text = |buf: &mut CopyBuf, value: &Option<Text>| {
        buf.text(value.as_deref().map(pg_text).as_deref());
    };
    buf.bytes(&id.0);
    buf.timestamp(event.timestamp.unwrap_or(event.received_at));
    buf.timestamp(event.received_at);
    buf.bool(event.timestamp.is_some());
    buf.i16(i16::from(event.facility.code()));
    buf.i16(i16::from(event.severity.code()));
    text(buf, &event.hostname);
    text(buf, &event.app_name);
    text(buf, &event.procid);
    text(buf, &event.msgid);
    buf.text(userid(event).as_deref());
    text(buf, &event.message);
    match structured_data_json(&event.structured_data) {
        Some(json) => buf.jsonb(&json),
        None => buf.null(),
    }
    buf.bytea(event.raw.as_deref());
    let detailed = is_detailed(event);
    if stage {
        buf.bool(detailed);
    }
    detailed
}

/// The tags of an event as stored (NUL replaced), each once.
pub(crate) fn tag_names(event: &Event) -> Vec<Cow<'_, str>> {
    let mut names: Vec<Cow<'_, str>> = event.tags.iter().map(|tag| pg_text(tag)).collect();
    // `Tags` is a set; replacing NUL can make two of them equal (and break the key).
    if event.tags.iter().any(|tag| tag.contains('\0')) {
        names.sort_unstable();
        names.dedup();
    }
    names
}

/// The extra_info rows of an event: (name, value as text), a list giving one row per item,
/// without the `userid` that has its column.
pub(crate) fn extra_rows(event: &Event) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    let mut rows = Vec::new();
    for (name, value) in event.fields.iter() {
        if is_extra(name, value) {
            push_values(pg_text(name), value, &mut rows);
        }
    }
    rows
}

fn push_values<'a>(
    name: Cow<'a, str>,
    value: &'a Value,
    out: &mut Vec<(Cow<'a, str>, Cow<'a, str>)>,
) {
    match value {
        Value::List(items) => {
            for item in items {
                push_values(name.clone(), item, out);
            }
        }
        Value::String(text) => out.push((name, pg_text(text))),
        other => out.push((name, Cow::Owned(other.to_string()))),
    }
}

/// Reads a stored event back by its content id, as far as the schema keeps it: the header
/// fields, message, raw bytes, structured data, tags, and the fields (every `extra_info` value
/// comes back as text, several values of one name as a list, and `userid` from its column).
///
/// Timestamps come back truncated to microseconds, NUL characters as [`NUL_REPLACEMENT`], and
/// the structured data as `jsonb` keeps it: elements sorted by SD-ID and params by name (the
/// values of a repeated param keep their order).
///
/// # Errors
///
/// [`PgError::Query`], or [`PgError::Decode`] for a value loggr did not write.
pub async fn load_event(client: &Client, id: &ContentId) -> Result<Option<Event>, PgError> {
    let digest: &[u8] = &id.0;
    let Some(row) = client
        .query_opt(
            "SELECT id, logtime, received_at, reported, facility, severity, hostname, program,
                    pid, msgid, userid, message, structured_data::text, raw
             FROM event WHERE digest = $1",
            &[&digest],
        )
        .await?
    else {
        return Ok(None);
    };
    let decode = |what: &'static str, message: String| PgError::Decode { what, message };
    let time = |column: &str| -> Result<Timestamp, PgError> {
        let at: std::time::SystemTime = row.try_get(column)?;
        Timestamp::try_from(at).map_err(|error| decode("timestamp", error.to_string()))
    };
    let text = |column: &str| -> Result<Option<Text>, PgError> {
        Ok(row.try_get::<_, Option<String>>(column)?.map(Text::from))
    };
    let event_id: i64 = row.try_get("id")?;
    let mut event = Event::empty(time("received_at")?);
    if row.try_get::<_, bool>("reported")? {
        event.timestamp = Some(time("logtime")?);
    }
    let facility: i16 = row.try_get("facility")?;
    event.facility = u8::try_from(facility)
        .ok()
        .and_then(Facility::from_code)
        .ok_or_else(|| decode("facility", facility.to_string()))?;
    let severity: i16 = row.try_get("severity")?;
    event.severity = u8::try_from(severity)
        .ok()
        .and_then(Severity::from_code)
        .ok_or_else(|| decode("severity", severity.to_string()))?;
    event.hostname = text("hostname")?;
    event.app_name = text("program")?;
    event.procid = text("pid")?;
    event.msgid = text("msgid")?;
    event.message = text("message")?;
    if let Some(json) = row.try_get::<_, Option<String>>("structured_data")? {
        event.structured_data = serde_json::from_str(&json)
            .map_err(|error| decode("structured_data", error.to_string()))?;
    }
    event.raw = row
        .try_get::<_, Option<Vec<u8>>>("raw")?
        .map(bytes::Bytes::from);
    if let Some(userid) = text("userid")? {
        event.set_field(USERID, userid);
    }
    let tags = client
        .query("SELECT name FROM tag WHERE event = $1", &[&event_id])
        .await?;
    event.tags = tags
        .iter()
        .map(|row| row.try_get::<_, String>(0).map(Text::from))
        .collect::<Result<Tags, _>>()?;
    let extra = client
        .query(
            "SELECT name, val FROM extra_info WHERE event = $1 ORDER BY name, ctid",
            &[&event_id],
        )
        .await?;
    for row in &extra {
        let name: String = row.try_get(0)?;
        let value = Value::from(row.try_get::<_, String>(1)?);
        match event.fields.get_mut(&name) {
            Some(existing) => existing.push(value),
            None => event.set_field(name, value),
        }
    }
    Ok(Some(event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_replaced_and_clean_text_is_borrowed() {
        assert!(matches!(pg_text("plain"), Cow::Borrowed("plain")));
        assert_eq!(pg_text("a\0b\0"), "a\u{FFFD}b\u{FFFD}");
    }

    #[test]
    fn fields_become_name_value_pairs_without_the_userid_column() {
        let mut event = Event::new("m");
        event.set_field("userid", "alice");
        event.set_field("ips", Value::List(vec!["a".into(), "b\0".into()]));
        event.set_field("bytes", 42i64);
        assert_eq!(userid(&event).as_deref(), Some("alice"));
        assert!(is_detailed(&event));
        let pairs: Vec<(String, String)> = extra_rows(&event)
            .into_iter()
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        assert_eq!(
            pairs,
            [("bytes", "42"), ("ips", "a"), ("ips", "b\u{FFFD}")]
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn only_a_text_userid_alone_is_not_detailed() {
        let mut event = Event::new("m");
        assert!(!is_detailed(&event));
        event.set_field("userid", "alice");
        assert!(!is_detailed(&event), "userid goes to its column");
        event.set_field("userid", 42i64);
        assert!(is_detailed(&event), "a number userid goes to extra_info");
        let mut tagged = Event::new("m");
        tagged.add_tag("t");
        assert!(is_detailed(&tagged));
    }

    #[test]
    fn tags_equal_once_nul_is_replaced_are_stored_once() {
        let mut event = Event::new("m");
        event.add_tag("a\0");
        event.add_tag("a\u{FFFD}");
        event.add_tag("b");
        assert_eq!(tag_names(&event), ["a\u{FFFD}", "b"]);
    }

    #[test]
    fn structured_data_with_nul_is_cleaned_and_empty_is_null() {
        assert!(structured_data_json(&StructuredData::default()).is_none());
        let mut sd = StructuredData::default();
        sd.push("x@1", "k", "v\0");
        let json = structured_data_json(&sd).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"x@1":{"k":"v\ufffd"}}"#.replace("\\ufffd", "\u{FFFD}")
        );
    }
}
