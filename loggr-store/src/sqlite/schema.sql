-- loggr's embedded store (SQLite), schema version 4: the logical schema of the PostgreSQL
-- store (loggr-sinks/src/postgres/migrations) in SQLite's types. PostgreSQL's `logdate` (the
-- UTC day of `logtime`) is computed when read: `date(logtime / 1000000, 'unixepoch')` (schema
-- version 2 had it as a generated column, which SQLite computes on every insert, and whose
-- function call made each multi-row insert keep a statement journal of every page it
-- touched).
--
-- Times are INTEGER microseconds since the Unix epoch, UTC: compact, exact, and ordered by the
-- indexes without any conversion. Every statement is idempotent (IF NOT EXISTS), and the whole
-- script runs in one transaction.

-- One row per stored message; `digest` is the content id (SHA-256, 32 bytes): the same
-- message received twice is stored once (the two unique indexes below). loggr's inserting connection
-- skips this table's CHECK constraints (its values are typed); they guard every other
-- writer.
CREATE TABLE IF NOT EXISTS event (
    id              INTEGER PRIMARY KEY,
    digest          BLOB    NOT NULL CHECK (length(digest) = 32),
    -- The time the sender reported, or `received_at` when it reported none.
    logtime         INTEGER NOT NULL,
    received_at     INTEGER NOT NULL,
    reported        INTEGER NOT NULL DEFAULT 1,
    facility        INTEGER NOT NULL CHECK (facility BETWEEN 0 AND 23),
    severity        INTEGER NOT NULL CHECK (severity BETWEEN 0 AND 7),
    hostname        TEXT,
    program         TEXT,
    pid             TEXT,
    msgid           TEXT,
    userid          TEXT,
    message         TEXT,
    -- RFC 5424 structured data as JSON text, NULL when none.
    structured_data TEXT,
    raw             BLOB,
    -- The extra info (read it through the `extra_info` view below).
    fields          TEXT
);
-- The same message is stored once. The content id covers the reported time, so for events
-- with one (`reported`, nearly all) `(logtime, digest)` is unique exactly when `digest` is;
-- an event without one gets `received_at` as its `logtime`, which a redelivery changes, so
-- those few are kept unique on `digest` alone by a partial index. (The content id also
-- covers whether a time was reported: the two kinds never share a digest.)
-- `event_logtime_digest_idx` is also the time index: any time range, newest first with
-- keyset paging (`ORDER BY logtime DESC, id DESC`: ties of one microsecond sorted by id).
-- Unlike a random SHA-256 alone, its keys are inserted near the end, as the other
-- time-ordered indexes are: a batch dirties a few of its pages, not one page per event.
-- Schema version 1 had `digest UNIQUE` (every commit rewrote hundreds of random pages into
-- the WAL, a third of the insert speed); versions 2 and 3 a unique `(reported time or 0,
-- digest)` beside a separate `(logtime, id)` index: one B-tree more to update per event.
CREATE UNIQUE INDEX IF NOT EXISTS event_logtime_digest_idx ON event (logtime, digest);
CREATE UNIQUE INDEX IF NOT EXISTS event_unreported_digest_idx ON event (digest)
    WHERE NOT reported;
-- One host's or one program's events in a time range (web UI, reports).
CREATE INDEX IF NOT EXISTS event_hostname_logtime_idx ON event (hostname, logtime);
CREATE INDEX IF NOT EXISTS event_program_logtime_idx ON event (program, logtime);

-- Labels attached by filters. (event, name): an event's tags; (name, event): a tag's events.
CREATE TABLE IF NOT EXISTS tag (
    event INTEGER NOT NULL,
    name  TEXT    NOT NULL,
    PRIMARY KEY (event, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tag_name_event_idx ON tag (name, event);

-- Named values attached by parsers and filters (extra info), stored packed in the event's own
-- row: `event.fields` is a JSON array of [name, value] text pairs in storage order, NULL when
-- none. Most events carry several values (the sources' connection fields, grok's captures),
-- and as B-tree rows of their own they cost as much to insert as the event itself.
-- `extra_info` is the logical table (PostgreSQL's, one row per value) for reading; `seq`
-- numbers an event's values in storage order.
CREATE VIEW IF NOT EXISTS extra_info (event, seq, name, val) AS
    SELECT e.id, j.key, j.value ->> 0, j.value ->> 1
    FROM event AS e, json_each(e.fields) AS j
    WHERE e.fields IS NOT NULL;
-- Writing through the view appends a value to its event's `fields` (`seq` is its position).
CREATE TRIGGER IF NOT EXISTS extra_info_insert INSTEAD OF INSERT ON extra_info BEGIN
    UPDATE event
    SET fields = json_insert(coalesce(fields, '[]'), '$[#]', json_array(new.name, new.val))
    WHERE id = new.event;
END;

-- Deleting events deletes their tags.
CREATE TRIGGER IF NOT EXISTS event_deleted AFTER DELETE ON event BEGIN
    DELETE FROM tag WHERE event = old.id;
END;

-- Imported files (BuzzSaw's `log`): the SHA-256 of the decompressed content.
CREATE TABLE IF NOT EXISTS log (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    digest      BLOB    NOT NULL UNIQUE CHECK (length(digest) = 32),
    imported_at INTEGER NOT NULL
);

-- Files being imported right now, one row per file (a lock), by importer.
CREATE TABLE IF NOT EXISTS current_processing (
    id        INTEGER PRIMARY KEY,
    name      TEXT    NOT NULL,
    digest    BLOB    NOT NULL UNIQUE CHECK (length(digest) = 32),
    starttime INTEGER NOT NULL,
    owner     TEXT    NOT NULL DEFAULT ''
);

-- The reporter's run log: one row per (report, period), the last time it ran.
CREATE TABLE IF NOT EXISTS report_run (
    name     TEXT    NOT NULL,
    period   TEXT    NOT NULL CHECK (period IN ('hourly', 'daily', 'weekly', 'monthly')),
    last_run INTEGER NOT NULL,
    PRIMARY KEY (name, period)
) WITHOUT ROWID;
