-- loggr schema, version 1: BuzzSaw's event/tag/extra_info/log/current_processing, pyloggr's
-- syslog header fields and structured data, and the quarantine.
--
-- Every statement is idempotent (IF NOT EXISTS / OR REPLACE), so a half-applied migration can
-- be run again; `migrate()` runs it in one transaction anyway.

-- One row per stored message. `digest` is loggr's content id (`Event::content_id()`, SHA-256,
-- 32 raw bytes): the same message received twice is stored once.
CREATE TABLE IF NOT EXISTS event (
    id              bigint GENERATED ALWAYS AS IDENTITY (CACHE 1000) PRIMARY KEY,
    digest          bytea       NOT NULL CONSTRAINT event_digest_length CHECK (octet_length(digest) = 32),
    -- The time the sender reported, or `received_at` when it reported none.
    logtime         timestamptz NOT NULL,
    -- The UTC day of `logtime`, kept by the `event_logdate` trigger.
    logdate         date        NOT NULL,
    received_at     timestamptz NOT NULL,
    -- Whether the sender reported a time (`Event::timestamp` is not none).
    reported        boolean     NOT NULL DEFAULT true,
    facility        smallint    NOT NULL CONSTRAINT event_facility_range CHECK (facility BETWEEN 0 AND 23),
    severity        smallint    NOT NULL CONSTRAINT event_severity_range CHECK (severity BETWEEN 0 AND 7),
    hostname        text,
    -- pyloggr's app_name (RFC 3164 TAG).
    program         text,
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

CREATE OR REPLACE FUNCTION loggr_event_logdate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.logdate := (NEW.logtime AT TIME ZONE 'UTC')::date;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS event_logdate ON event;
CREATE TRIGGER event_logdate BEFORE INSERT OR UPDATE OF logtime ON event
    FOR EACH ROW EXECUTE FUNCTION loggr_event_logdate();

-- Time range queries (reports, web UI), alone or with one more criterion.
CREATE INDEX IF NOT EXISTS event_logtime_idx ON event (logtime);
CREATE INDEX IF NOT EXISTS event_hostname_logtime_idx ON event (hostname, logtime);
CREATE INDEX IF NOT EXISTS event_program_logtime_idx ON event (program, logtime);
CREATE INDEX IF NOT EXISTS event_severity_logtime_idx ON event (severity, logtime);
CREATE INDEX IF NOT EXISTS event_userid_idx ON event (userid) WHERE userid IS NOT NULL;

-- Labels attached by filters (BuzzSaw's tag).
CREATE TABLE IF NOT EXISTS tag (
    event bigint NOT NULL REFERENCES event (id) ON DELETE CASCADE,
    name  text   NOT NULL,
    CONSTRAINT tag_event_name_key PRIMARY KEY (event, name)
);
CREATE INDEX IF NOT EXISTS tag_name_event_idx ON tag (name, event);

-- Named values attached by parsers and filters (BuzzSaw's extra_info, pyloggr's custom
-- fields): one row per value (a list field gives one row per item), values as text.
CREATE TABLE IF NOT EXISTS extra_info (
    event bigint NOT NULL REFERENCES event (id) ON DELETE CASCADE,
    name  text   NOT NULL,
    val   text   NOT NULL
);
CREATE INDEX IF NOT EXISTS extra_info_event_idx ON extra_info (event, name);
-- A hash index has no size limit on the value (a B-tree entry must stay under ~2.7 kB).
CREATE INDEX IF NOT EXISTS extra_info_val_idx ON extra_info USING hash (val);

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

-- Message search: trigram (LIKE/ILIKE/regex/similarity) when pg_trgm can be installed, else
-- full-text search on to_tsvector('simple', message).
DO $$
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN undefined_file OR insufficient_privilege OR feature_not_supported THEN
        RAISE NOTICE 'pg_trgm is not available (%); message search uses full-text search', SQLERRM;
    END;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX IF NOT EXISTS event_message_trgm_idx ON event USING gin (message gin_trgm_ops)';
    ELSE
        EXECUTE 'CREATE INDEX IF NOT EXISTS event_message_fts_idx ON event USING gin (to_tsvector(''simple'', coalesce(message, '''')))';
    END IF;
END
$$;
