//! How an [`Event`] becomes a row (the staging table, the binary values) and comes back
//! ([`load_event`]).

use std::borrow::Cow;
use std::error::Error;

use bytes::{BufMut, BytesMut};
use loggr_core::{
    ContentId, Event, Facility, Fields, Severity, StructuredData, Tags, Text, Timestamp, Value,
};
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::Client;

use super::PgError;

/// The per-session staging table each batch is copied into (temporary: not WAL-logged, private
/// to the connection, emptied at every commit).
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
    extra_names     text[],
    extra_values    text[]
) ON COMMIT DELETE ROWS";

/// `COPY` into the staging table, in the column order of [`StageRow::values`].
pub(crate) const COPY_STAGE: &str = "COPY pg_temp.loggr_stage (digest, logtime, received_at, \
     reported, facility, severity, hostname, program, pid, msgid, userid, message, \
     structured_data, raw, tags, extra_names, extra_values) FROM STDIN (FORMAT binary)";

/// The column types of [`COPY_STAGE`].
pub(crate) const STAGE_TYPES: &[Type] = &[
    Type::BYTEA,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::BOOL,
    Type::INT2,
    Type::INT2,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::JSONB,
    Type::BYTEA,
    Type::TEXT_ARRAY,
    Type::TEXT_ARRAY,
    Type::TEXT_ARRAY,
];

/// Moves the staged batch into the tables: new events (a digest already stored is skipped),
/// then the tags and extra_info of the events this statement inserted; returns how many events
/// were new.
pub(crate) const INSERT_STAGED: &str = "WITH new AS (
    INSERT INTO event (digest, logtime, received_at, reported, facility, severity, hostname,
                       program, pid, msgid, userid, message, structured_data, raw)
    SELECT digest, logtime, received_at, reported, facility, severity, hostname, program, pid,
           msgid, userid, message, structured_data, raw
    FROM pg_temp.loggr_stage
    ON CONFLICT (digest) DO NOTHING
    RETURNING id, digest
), tags AS (
    INSERT INTO tag (event, name)
    SELECT new.id, t.name
    FROM new
    JOIN pg_temp.loggr_stage s USING (digest)
    CROSS JOIN LATERAL unnest(s.tags) AS t (name)
    WHERE s.tags IS NOT NULL
    ON CONFLICT DO NOTHING
), extra AS (
    INSERT INTO extra_info (event, name, val)
    SELECT new.id, x.name, x.val
    FROM new
    JOIN pg_temp.loggr_stage s USING (digest)
    CROSS JOIN LATERAL unnest(s.extra_names, s.extra_values) AS x (name, val)
    WHERE s.extra_names IS NOT NULL
)
SELECT count(*) FROM new";

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

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01T00:00:00Z).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A timestamp in PostgreSQL's binary form (microseconds since 2000-01-01, truncated); no range
/// check: PostgreSQL refuses what it cannot hold (years before 4713 BC) with SQLSTATE 22008.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PgTimestamp(pub(crate) Timestamp);

impl ToSql for PgTimestamp {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let micros = self.0.as_microsecond().saturating_sub(PG_EPOCH_MICROS);
        out.put_i64(micros);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::TIMESTAMPTZ | Type::TIMESTAMP)
    }

    to_sql_checked!();
}

/// Serialized JSON sent as `jsonb` (binary format version 1).
#[derive(Debug)]
pub(crate) struct Jsonb(Vec<u8>);

impl ToSql for Jsonb {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_u8(1);
        out.put_slice(&self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    to_sql_checked!();
}

/// The structured data as `jsonb`, `None` when there is none.
fn structured_data_json(sd: &StructuredData) -> Option<Jsonb> {
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
    json.ok().map(Jsonb)
}

fn push_values(value: &Value, out: &mut Vec<String>, count: &mut usize) {
    match value {
        Value::List(items) => {
            for item in items {
                push_values(item, out, count);
            }
        }
        Value::String(text) => {
            out.push(pg_text(text).into_owned());
            *count += 1;
        }
        other => {
            out.push(other.to_string());
            *count += 1;
        }
    }
}

/// One event's values for the staging table.
#[derive(Debug)]
pub(crate) struct StageRow<'a> {
    digest: &'a [u8],
    logtime: PgTimestamp,
    received_at: PgTimestamp,
    reported: bool,
    facility: i16,
    severity: i16,
    hostname: Option<Cow<'a, str>>,
    program: Option<Cow<'a, str>>,
    pid: Option<Cow<'a, str>>,
    msgid: Option<Cow<'a, str>>,
    userid: Option<Cow<'a, str>>,
    message: Option<Cow<'a, str>>,
    structured_data: Option<Jsonb>,
    raw: Option<&'a [u8]>,
    tags: Option<Vec<Cow<'a, str>>>,
    extra_names: Option<Vec<Cow<'a, str>>>,
    extra_values: Option<Vec<String>>,
}

impl<'a> StageRow<'a> {
    /// The row of `event`, whose content id is `id`.
    pub(crate) fn new(id: &'a ContentId, event: &'a Event) -> Self {
        let text = |value: &'a Option<Text>| value.as_deref().map(pg_text);
        let userid = match event.fields.get(USERID) {
            Some(Value::String(userid)) => Some(pg_text(userid)),
            _ => None,
        };
        let (extra_names, extra_values) = extra_info(&event.fields, userid.is_some());
        StageRow {
            digest: &id.0,
            logtime: PgTimestamp(event.timestamp.unwrap_or(event.received_at)),
            received_at: PgTimestamp(event.received_at),
            reported: event.timestamp.is_some(),
            facility: i16::from(event.facility.code()),
            severity: i16::from(event.severity.code()),
            hostname: text(&event.hostname),
            program: text(&event.app_name),
            pid: text(&event.procid),
            msgid: text(&event.msgid),
            userid,
            message: text(&event.message),
            structured_data: structured_data_json(&event.structured_data),
            raw: event.raw.as_deref(),
            tags: (!event.tags.is_empty())
                .then(|| event.tags.iter().map(|tag| pg_text(tag)).collect()),
            extra_names,
            extra_values,
        }
    }

    /// The values in the column order of [`COPY_STAGE`] / [`STAGE_TYPES`].
    pub(crate) fn values(&self) -> [&(dyn ToSql + Sync); 17] {
        [
            &self.digest,
            &self.logtime,
            &self.received_at,
            &self.reported,
            &self.facility,
            &self.severity,
            &self.hostname,
            &self.program,
            &self.pid,
            &self.msgid,
            &self.userid,
            &self.message,
            &self.structured_data,
            &self.raw,
            &self.tags,
            &self.extra_names,
            &self.extra_values,
        ]
    }
}

type ExtraInfo<'a> = (Option<Vec<Cow<'a, str>>>, Option<Vec<String>>);

/// The fields as parallel name and value arrays (a list gives one pair per item), leaving out
/// `userid` when it goes to its column.
fn extra_info(fields: &Fields, skip_userid: bool) -> ExtraInfo<'_> {
    if fields.is_empty() || (skip_userid && fields.len() == 1) {
        return (None, None);
    }
    let mut names = Vec::with_capacity(fields.len());
    let mut values = Vec::with_capacity(fields.len());
    for (name, value) in fields.iter() {
        if skip_userid && &**name == USERID {
            continue;
        }
        let mut count = 0;
        push_values(value, &mut values, &mut count);
        let name = pg_text(name);
        names.extend(std::iter::repeat_n(name, count));
    }
    if names.is_empty() {
        return (None, None);
    }
    (Some(names), Some(values))
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
    fn timestamps_count_from_the_postgres_epoch() {
        let mut out = BytesMut::new();
        let at: Timestamp = "2000-01-01T00:00:01.5Z".parse().unwrap();
        PgTimestamp(at)
            .to_sql(&Type::TIMESTAMPTZ, &mut out)
            .unwrap();
        assert_eq!(&out[..], &1_500_000i64.to_be_bytes());
    }

    #[test]
    fn fields_become_name_value_pairs_without_the_userid_column() {
        let mut event = Event::new("m");
        event.set_field("userid", "alice");
        event.set_field("ips", Value::List(vec!["a".into(), "b\0".into()]));
        event.set_field("bytes", 42i64);
        let id = event.content_id();
        let row = StageRow::new(&id, &event);
        assert_eq!(row.userid.as_deref(), Some("alice"));
        let names: Vec<&str> = row.extra_names.iter().flatten().map(|n| &**n).collect();
        assert_eq!(names, ["bytes", "ips", "ips"]);
        assert_eq!(
            row.extra_values.unwrap(),
            ["42", "a", "b\u{FFFD}"].map(String::from)
        );
    }

    #[test]
    fn structured_data_with_nul_is_cleaned_and_empty_is_null() {
        assert!(structured_data_json(&StructuredData::default()).is_none());
        let mut sd = StructuredData::default();
        sd.push("x@1", "k", "v\0");
        let json = structured_data_json(&sd).unwrap();
        assert_eq!(
            String::from_utf8(json.0).unwrap(),
            r#"{"x@1":{"k":"v\ufffd"}}"#.replace("\\ufffd", "\u{FFFD}")
        );
    }
}
