//! How an [`Event`] becomes a row (the staging table, the binary values) and comes back
//! ([`load_event`]).

use std::borrow::Cow;

use loggr_core::{ContentId, Event, Facility, Severity, Tags, Text, Timestamp, Value};
use tokio_postgres::Client;

use super::copy::CopyBuf;
use super::PgError;
pub use crate::row::NUL_REPLACEMENT;
use crate::row::{extra_json, structured_data_json, userid, USERID};
pub(crate) use crate::row::{store_text as pg_text, tag_names};

/// The columns of `event` the sink writes, in the order [`write_event`] writes them
/// (`logdate` is the database's; `id` too, but in [`COPY_EVENT_WITH_ID`], which puts the ids
/// drawn beforehand first).
macro_rules! event_columns {
    () => {
        "digest, logtime, received_at, reported, facility, severity, hostname, program, pid, \
         msgid, userid, message, structured_data, raw, tags, extra"
    };
}

/// The per-session staging table a batch is copied into when it may hold events already
/// stored (temporary: not WAL-logged, private to the connection, emptied at every commit).
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
    tags            text[],
    extra           jsonb
) ON COMMIT DELETE ROWS";

/// `COPY` into the staging table, in the column order of [`write_event`].
pub(crate) const COPY_STAGE: &str = concat!(
    "COPY pg_temp.loggr_stage (",
    event_columns!(),
    ") FROM STDIN (FORMAT binary)"
);

/// How many fields [`write_event`] writes ([`COPY_EVENT`], [`COPY_STAGE`]).
pub(crate) const EVENT_FIELDS: i16 = 16;

/// `COPY` straight into `event` (the direct path: no digest of the batch is stored yet).
pub(crate) const COPY_EVENT: &str = concat!(
    "COPY event (",
    event_columns!(),
    ") FROM STDIN (FORMAT binary)"
);

/// The direct path's `COPY` when some events have tags: their ids are drawn beforehand
/// ([`RESERVE_IDS`]), so that their `tag` rows can be copied without looking the events up
/// again.
pub(crate) const COPY_EVENT_WITH_ID: &str = concat!(
    "COPY event (id, ",
    event_columns!(),
    ") FROM STDIN (FORMAT binary)"
);

/// The oid of `event.id`'s sequence, and whether this session may draw from it (a role with
/// only `INSERT` on the tables may not: its batches with tags are then staged), looked up
/// once per session.
pub(crate) const ID_SEQUENCE: &str =
    "SELECT pg_get_serial_sequence('event', 'id')::regclass::oid, \
     has_sequence_privilege(pg_get_serial_sequence('event', 'id'), 'USAGE, UPDATE')";

/// `$2` ids drawn from the sequence `$1` (an oid), in increasing order.
pub(crate) const RESERVE_IDS: &str =
    "SELECT nextval($1::regclass) FROM generate_series(1, $2::integer)";

/// `COPY` of tags, for events inserted by the same transaction.
pub(crate) const COPY_TAG: &str = "COPY tag (event, name) FROM STDIN (FORMAT binary)";

/// Moves the staged events into `event` (a digest already stored is skipped) and adds the
/// `tag` rows of those it inserted; returns how many it inserted. No join over the batch, no
/// parameter: one plan, prepared once per session, fits every batch.
pub(crate) const INSERT_STAGED: &str = concat!(
    "WITH new AS (INSERT INTO event (",
    event_columns!(),
    ") SELECT ",
    event_columns!(),
    " FROM pg_temp.loggr_stage ON CONFLICT DO NOTHING RETURNING id, tags), \
     tagged AS (INSERT INTO tag (event, name) \
                SELECT new.id, t.name FROM new CROSS JOIN LATERAL unnest(new.tags) AS t (name)) \
     SELECT count(*) FROM new"
);

/// Records one refused event (a digest already in quarantine is left alone).
pub(crate) const INSERT_QUARANTINE: &str = "INSERT INTO quarantine (digest, sqlstate, error, \
     event, raw) VALUES ($1, $2, $3, CAST($4::text AS json), $5) ON CONFLICT (digest) DO NOTHING";

/// Writes the [`EVENT_FIELDS`] fields of the event's row; `id` is its content id. Returns
/// the tag names it wrote (empty when none), which the direct path's `tag` rows repeat.
pub(crate) fn write_event<'a>(
    buf: &mut CopyBuf,
    id: &ContentId,
    event: &'a Event,
) -> Vec<Cow<'a, str>> {
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
    let tags = tag_names(event);
    buf.text_array(tags.iter().map(|tag| tag.as_ref()));
    buf.jsonb_with(|out| extra_json(event, out));
    tags
}

/// Reads back the stored copy of `event`: the row with its content id, as far as the schema
/// keeps it: the header fields, message, raw bytes, structured data, tags, and the fields
/// (every `extra_info` value comes back as text, several values of one name as a list, and
/// `userid` from its column).
///
/// The row is found by the key the sink deduplicates on: `(logtime, digest)` when the event
/// has a reported time, its `digest` among the events without one otherwise. So any copy of
/// the event finds it, whenever it was received.
///
/// Timestamps come back truncated to microseconds, NUL characters as [`NUL_REPLACEMENT`], and
/// the structured data as `jsonb` keeps it: elements sorted by SD-ID and params by name (the
/// values of a repeated param keep their order).
///
/// # Errors
///
/// [`PgError::Query`], or [`PgError::Decode`] for a value loggr did not write.
pub async fn load_event(client: &Client, event: &Event) -> Result<Option<Event>, PgError> {
    const COLUMNS: &str = "SELECT logtime, received_at, reported, facility, severity, hostname, \
         program, pid, msgid, userid, message, structured_data::text, raw, tags, extra::text \
         FROM event";
    let id = event.content_id();
    let digest: &[u8] = &id.0;
    let row = match event.timestamp {
        Some(at) => {
            // The microseconds the row holds (as `write_event` truncates them), exactly.
            let logtime = std::time::SystemTime::from(
                Timestamp::from_microsecond(at.as_microsecond()).map_err(|error| {
                    PgError::Decode {
                        what: "timestamp",
                        message: error.to_string(),
                    }
                })?,
            );
            client
                .query_opt(
                    &format!("{COLUMNS} WHERE logtime = $1 AND digest = $2"),
                    &[&logtime, &digest],
                )
                .await?
        }
        None => {
            client
                .query_opt(
                    &format!("{COLUMNS} WHERE digest = $1 AND NOT reported"),
                    &[&digest],
                )
                .await?
        }
    };
    let Some(row) = row else {
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
    let tags: Option<Vec<String>> = row.try_get("tags")?;
    event.tags = tags.into_iter().flatten().map(Text::from).collect::<Tags>();
    if let Some(json) = row.try_get::<_, Option<String>>("extra")? {
        let pairs: Vec<(String, String)> =
            serde_json::from_str(&json).map_err(|error| decode("extra", error.to_string()))?;
        for (name, value) in pairs {
            let value = Value::from(value);
            match event.fields.get_mut(&name) {
                Some(existing) => existing.push(value),
                None => event.set_field(name, value),
            }
        }
    }
    Ok(Some(event))
}
