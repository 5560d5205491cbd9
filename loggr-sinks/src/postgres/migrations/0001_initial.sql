-- loggr schema, version 1: BuzzSaw's event/tag/extra_info/log/current_processing, pyloggr's
-- syslog header fields and structured data, and the quarantine.
--
-- Every statement is idempotent (IF NOT EXISTS / OR REPLACE), so a half-applied migration can
-- be run again; `migrate()` runs it in one transaction anyway.

-- One row per stored message. `digest` is loggr's content id (`Event::content_id()`, SHA-256,
-- 32 raw bytes): the same message received twice is stored once.
--
-- Every index costs each stored row an insertion (and its WAL), so `event` has only those the
-- reports and the web UI need:
--   event_pkey                  tag/extra_info rows point at `id`; the web UI opens one event.
--   event_digest_key            idempotency: `ON CONFLICT (digest) DO NOTHING`, redelivery.
--   event_logtime_idx           any time range, newest first, keyset paging
--                               (`WHERE logtime < $last ORDER BY logtime DESC LIMIT n`; a BRIN
--                               index cannot give that order); reports grouped by host in a range.
--   event_hostname_logtime_idx  one host's events in a time range (web UI host filter).
--   event_program_logtime_idx   one program's events in a time range (reports, web UI).
-- Severity, facility, userid and the other columns are filtered within the rows these give;
-- the message search index is not created here: see `create_search_index()` (it costs
-- several times the ingest work of all the others together).
CREATE TABLE IF NOT EXISTS event (
    id              bigint GENERATED ALWAYS AS IDENTITY (CACHE 1000) PRIMARY KEY,
    digest          bytea       NOT NULL CONSTRAINT event_digest_length CHECK (octet_length(digest) = 32),
    -- The time the sender reported, or `received_at` when it reported none.
    logtime         timestamptz NOT NULL,
    -- The UTC day of `logtime`, kept by the database (a generated column: it cannot be set,
    -- and follows every change of `logtime`). BuzzSaw kept it with a trigger: a row trigger
    -- costs twice the generated column's work per row and keeps `COPY` from inserting in bulk
    -- (a `COPY` into `event` was 15% slower with it).
    logdate         date        NOT NULL GENERATED ALWAYS AS ((logtime AT TIME ZONE 'UTC')::date) STORED,
    received_at     timestamptz NOT NULL,
    -- Whether the sender reported a time (`Event::timestamp` is not none).
    reported        boolean     NOT NULL DEFAULT true,
    facility        smallint    NOT NULL CONSTRAINT event_facility_range CHECK (facility BETWEEN 0 AND 23),
    severity        smallint    NOT NULL CONSTRAINT event_severity_range CHECK (severity BETWEEN 0 AND 7),
    -- Host and program names, tag and field names are identifiers: they compare byte-wise
    -- (COLLATE "C"), which keeps their index insertions cheap whatever the database's
    -- collation (a linguistic one, such as ICU's en-US, made the whole `event` insert 20-30%
    -- slower) and sorts them in code point order.
    hostname        text COLLATE "C",
    -- pyloggr's app_name (RFC 3164 TAG).
    program         text COLLATE "C",
    -- pyloggr's procid (text: RFC 5424 allows any printable ASCII).
    pid             text,
    msgid           text,
    -- The `userid` field, when it is text (BuzzSaw's column; not repeated in extra_info).
    userid          text,
    message         text,
    -- RFC 5424 structured data as {"SD-ID": {"param": "value" | ["v1", "v2"]}}, NULL when none.
    structured_data jsonb,
    -- The bytes as received, when the source kept them.
    raw             bytea,
    CONSTRAINT event_digest_key UNIQUE (digest)
);

CREATE INDEX IF NOT EXISTS event_logtime_idx ON event (logtime);
CREATE INDEX IF NOT EXISTS event_hostname_logtime_idx ON event (hostname, logtime);
CREATE INDEX IF NOT EXISTS event_program_logtime_idx ON event (program, logtime);

-- Labels attached by filters (BuzzSaw's tag). Key (event, name): an event's tags, and what
-- deleting an event removes; (name, event): the events with a tag (reports, web UI).
--
-- `event` is not a foreign key: the check costs every tag and extra_info row a locking
-- look-up of its event (with it, the sink stored half as many tagged events per second). Only
-- the sink inserts here, in the transaction that inserted the event; the `event_deleted`
-- trigger below does what `ON DELETE CASCADE` did.
CREATE TABLE IF NOT EXISTS tag (
    event bigint NOT NULL,
    name  text   COLLATE "C" NOT NULL,
    CONSTRAINT tag_event_name_key PRIMARY KEY (event, name)
);
CREATE INDEX IF NOT EXISTS tag_name_event_idx ON tag (name, event);

-- Named values attached by parsers and filters (BuzzSaw's extra_info, pyloggr's custom
-- fields): one row per value (a list field gives one row per item), values as text. `event`:
-- as in `tag`. Index (event, name): an event's fields, and deleting. No index on `val`: the
-- reports and the web UI do not search fields by value, and a hash index on `val` cost a
-- third of the insert work of extra_info; searching by value needs
-- `CREATE INDEX CONCURRENTLY extra_info_val_idx ON extra_info USING hash (val)` (hash: no size
-- limit on the value, where a B-tree entry must stay under ~2.7 kB).
CREATE TABLE IF NOT EXISTS extra_info (
    event bigint NOT NULL,
    name  text   COLLATE "C" NOT NULL,
    val   text   NOT NULL
);
CREATE INDEX IF NOT EXISTS extra_info_event_idx ON extra_info (event, name);

-- Deleting events (retention, an operator's DELETE) deletes their tags and extra_info, set-wise:
-- one statement-level trigger with the deleted rows as a transition table.
CREATE OR REPLACE FUNCTION loggr_event_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM tag WHERE event IN (SELECT id FROM loggr_deleted);
    DELETE FROM extra_info WHERE event IN (SELECT id FROM loggr_deleted);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS event_deleted ON event;
CREATE TRIGGER event_deleted AFTER DELETE ON event
    REFERENCING OLD TABLE AS loggr_deleted
    FOR EACH STATEMENT EXECUTE FUNCTION loggr_event_deleted();

-- `TRUNCATE event` empties them too.
CREATE OR REPLACE FUNCTION loggr_event_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE tag, extra_info;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS event_truncated ON event;
CREATE TRIGGER event_truncated AFTER TRUNCATE ON event
    FOR EACH STATEMENT EXECUTE FUNCTION loggr_event_truncated();

-- Files imported (BuzzSaw's log): `digest` is the SHA-256 of the file's content.
CREATE TABLE IF NOT EXISTS log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text        NOT NULL,
    digest      bytea       NOT NULL CONSTRAINT log_digest_length CHECK (octet_length(digest) = 32),
    imported_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT log_digest_key UNIQUE (digest)
);

-- Files being imported right now, one row per file (BuzzSaw's per-file lock).
CREATE TABLE IF NOT EXISTS current_processing (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name      text        NOT NULL,
    digest    bytea       NOT NULL CONSTRAINT current_processing_digest_length CHECK (octet_length(digest) = 32),
    starttime timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT current_processing_digest_key UNIQUE (digest)
);

-- Events PostgreSQL refused for good, kept with the reason so that nothing is lost.
CREATE TABLE IF NOT EXISTS quarantine (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest         bytea       NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    -- The SQLSTATE of the refusal, when PostgreSQL gave one.
    sqlstate       text,
    error          text        NOT NULL,
    -- The event's canonical JSON form (`json`, not `jsonb`: it keeps `\u0000` escapes).
    event          json        NOT NULL,
    raw            bytea,
    CONSTRAINT quarantine_digest_key UNIQUE (digest)
);
