//! How an [`Event`] becomes a row (the staging table, the binary values) and comes back
//! ([`load_event`]).

use loggr_core::{ContentId, Event, Facility, Severity, Tags, Text, Timestamp, Value};
use tokio_postgres::Client;

use super::copy::CopyBuf;
use super::PgError;
pub use crate::row::NUL_REPLACEMENT;
pub(crate) use crate::row::{extra_rows, is_detailed, store_text as pg_text, tag_names};
use crate::row::{structured_data_json, userid, USERID};

/// The columns of `event` the sink writes, in the order [`write_event`] writes them
/// (`logdate` is the database's; `id` too, but in [`COPY_EVENT_WITH_ID`], which puts the ids
/// drawn beforehand first).
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

/// The direct path's `COPY` when some events have tags or extra_info: their ids are drawn
/// beforehand ([`RESERVE_IDS`]), so that their details can be copied without looking the
/// events up again.
pub(crate) const COPY_EVENT_WITH_ID: &str = concat!(
    "COPY event (id, ",
    event_columns!(),
    ") FROM STDIN (FORMAT binary)"
);

/// The oid of `event.id`'s sequence, and whether this session may draw from it (a role with
/// only `INSERT` on the tables may not: its batches with details are then staged), looked up
/// once per session.
pub(crate) const ID_SEQUENCE: &str =
    "SELECT pg_get_serial_sequence('event', 'id')::regclass::oid, \
     has_sequence_privilege(pg_get_serial_sequence('event', 'id'), 'USAGE, UPDATE')";

/// `$2` ids drawn from the sequence `$1` (an oid), in increasing order.
pub(crate) const RESERVE_IDS: &str =
    "SELECT nextval($1::regclass) FROM generate_series(1, $2::integer)";

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

/// Records one refused event (a digest already in quarantine is left alone).
pub(crate) const INSERT_QUARANTINE: &str = "INSERT INTO quarantine (digest, sqlstate, error, \
     event, raw) VALUES ($1, $2, $3, CAST($4::text AS json), $5) ON CONFLICT (digest) DO NOTHING";

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
