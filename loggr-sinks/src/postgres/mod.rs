//! The `postgres` sink and loggr's PostgreSQL schema (feature `postgres`).
//!
//! # The schema
//!
//! loggr owns its tables; [`migrate`] creates them and applies later changes (numbered
//! migrations recorded in `loggr_schema_migrations`, for `loggr_ctl init-db` to call). They follow
//! BuzzSaw's model, with pyloggr's syslog fields added:
//!
//! | table | one row per | key |
//! | --- | --- | --- |
//! | `event` | stored message, with its tags and fields | `id` (identity); `(logtime, digest)` unique |
//! | `tag` | (tag, event): the index of `event.tags` | `(name, event)` |
//! | `extra_info` (a view over `event.extra`) | (event, field, value) | |
//! | `log` | imported file (BuzzSaw) | `digest` unique (SHA-256 of the content) |
//! | `current_processing` | file being imported (a lock) | `digest` unique, `starttime`, `owner` |
//! | `quarantine` | refused event | `digest` unique |
//!
//! How an [`Event`](loggr_core::Event) maps onto `event`:
//!
//! - `digest` (`bytea`, 32 raw bytes): the [content id](loggr_core::Event::content_id), a
//!   SHA-256 of severity, facility, app_name, hostname, procid, msgid, message, structured
//!   data and reported time. Raw bytes
//!   rather than hex: half the size in the table and in its unique indexes. `encode(digest,
//!   'hex')` gives the `id` of the canonical JSON form. The same event is stored once: the
//!   key is `(logtime, digest)` (the digest covers the reported time, so one digest has one
//!   `logtime`), and `digest` alone for the events without a reported time.
//! - `logtime`: the reported `timestamp`, or `received_at` when the sender gave none
//!   (`reported` says which); `logdate` is its UTC day, kept by the database (a generated
//!   column); `received_at` as is. Timestamps are stored to the microsecond (PostgreSQL's
//!   precision).
//! - `facility`, `severity`: the numeric codes. `hostname`; `program` is `app_name`; `pid` is
//!   `procid` (text); `msgid`; `message`. `hostname`, `program` and the names of tags and
//!   fields compare byte-wise (`COLLATE "C"`).
//! - `structured_data` (`jsonb`, NULL when empty): `{"SD-ID": {"param": "value"}}`, a repeated
//!   param as an array, as in the canonical JSON form. `jsonb` (containment queries, GIN
//!   indexes) sorts keys: element and param order is not kept, the order of a param's values
//!   is.
//! - `raw` (`bytea`): the received bytes, exactly (any encoding, NUL bytes included).
//! - Fields: BuzzSaw's `userid` column holds the `userid` field when it is text; **every other
//!   field is an `extra_info` row** (name, value as text; a list gives one row per item). The
//!   rows are stored packed in the event's own row, `extra` (`jsonb`, NULL when none: an array
//!   of `[name, value]` pairs in the event's order), and read through the `extra_info (event,
//!   name, val, n)` view, as BuzzSaw's reports and filters look them up (`name =
//!   'source_address' AND val = …`); an `INSERT` into the view appends to `extra`. As rows of
//!   a table (before schema version 5) they cost PostgreSQL two tuples and two index
//!   insertions per stored event of BuzzSaw's stack. Numbers and booleans come back as text,
//!   and an empty list is not stored.
//! - Tags: the event's `tags` (`text[]`, sorted, NULL when none), which lists and reports
//!   show and check (`name = ANY(tags)`), and one `tag (name, event)` row each, the index
//!   that finds the events with a tag. Whoever writes `event.tags` writes the same `tag` rows
//!   in the same transaction (the sink does).
//!
//! **NUL characters**: PostgreSQL text and `jsonb` cannot hold `\0`, so every text value
//! (columns, structured data, tags, extra_info) is stored with NUL replaced by U+FFFD
//! ([`NUL_REPLACEMENT`]). The digest is computed on the original event, and `raw` keeps the
//! original bytes. Text is always valid UTF-8 (an [`Event`](loggr_core::Event) holds no other);
//! bytes that were not UTF-8 are only in `raw`.
//!
//! # Indexes
//!
//! Every index costs each stored row an insertion and its WAL, so there are only those the
//! reports (events in a time range with some tags, of a program, grouped by host) and the web
//! UI (time range, host, program, severity, tags, one event) need:
//!
//! | index | serves |
//! | --- | --- |
//! | `event (id)`, the key | opening one event; a tag's events |
//! | `event (logtime, digest)`, unique | idempotency (`ON CONFLICT DO NOTHING`, the direct `COPY`'s check); a time range, newest first, keyset paging (`WHERE logtime < $last ORDER BY logtime DESC LIMIT n`); reports grouped by host |
//! | `event (digest) WHERE NOT reported`, unique | idempotency of the events without a reported time (their `logtime` is when they were received, which a redelivery changes) |
//! | `event (hostname, logtime)` | one host's events in a time range |
//! | `event (program, logtime)` | one program's events in a time range |
//! | `event (severity, logtime)` | the web UI's severity filter (migration 3) |
//! | `tag (name, event)`, the key | the events with a tag; deleting events (`name = ANY(tags)`) |
//!
//! Severity, facility and the other columns are filtered within the rows those give. The
//! time index is a B-tree: a BRIN index would be cheaper to maintain, but cannot give the
//! newest-first order paging needs. Fields are not searched by value (no index on
//! `extra`).
//!
//! Until schema version 6 the key was `UNIQUE (digest)`, with a separate `event (logtime)`
//! index. A SHA-256 key puts each insertion on a random leaf of its index: once the index
//! outgrows the cache, each stored event reads and dirties a page of it, and writes that
//! page's full image into the WAL after every checkpoint. Keyed by time first, insertions land
//! near the right edge, and the time index and the key are one index.
//!
//! Tags and fields used to be rows of their own tables (`tag` with keys `(event, name)` and
//! `(name, event)`, `extra_info` with an index on `(event, name)`): each stored event of
//! BuzzSaw's stack (about four tags, two fields) cost six more tuples and ten more index
//! insertions, half of PostgreSQL's work in a file import. Migration 5 moved them into the
//! event's row and kept `tag (name, event)` only.
//!
//! **Message search** is not part of the migrations: [`create_search_index`] (for the web
//! UI; `loggr_ctl init-db --search-index` calls it) adds a `pg_trgm` GIN index on `message` (`LIKE`, `ILIKE`, `~`,
//! similarity) when the extension can be installed, else a GIN index on
//! `to_tsvector('simple', coalesce(message, ''))`; [`search_index`] says which is there. It is
//! the most expensive index by far (see [Speed](#speed)), and what the web UI's text search
//! needs on a big store: `loggr-store` asks the trigram index for the text's words when it is
//! there (a rare text over a day at 5 M events, 20 concurrent users: 70 ms p50), and reads
//! every event of the asked range without it (1.6 s). The full-text index serves no `ILIKE`.
//!
//! **No foreign key** from `tag.event` to `event (id)`: the check costs every tag row a
//! locking look-up of its event, which halved the rows per second of tagged batches. The sink
//! only writes them in the transaction that inserted their event; deleting events (`DELETE
//! FROM event WHERE logdate < …`, or `TRUNCATE event`) deletes their tags through a
//! statement-level trigger, as `ON DELETE CASCADE` did.
//!
//! # How a batch is written
//!
//! Repeats of one event within the batch are dropped first (the first is kept). Then one
//! transaction, by one of two paths:
//!
//! - **Direct** (while the previous batch held no event stored before, and `direct_copy` is
//!   on): the events are `COPY`ed in binary format straight into `event`, which PostgreSQL
//!   inserts in bulk; when some have tags, the batch's `id`s are drawn from `event.id`'s
//!   sequence first (`nextval` over `generate_series`, one round trip) and copied in with the
//!   events, so that their `tag` rows are `COPY`ed in next without looking the events up
//!   again; `COMMIT`. When an event of the batch is stored already
//!   (or being stored by another session, which then commits), a unique key of `event`
//!   fails the `COPY` (SQLSTATE 23505): the transaction rolls back and the batch takes the
//!   staging path. So does a batch with an event PostgreSQL refuses, or that lost a deadlock
//!   against another writer of the same events.
//! - **Staging**: the batch is `COPY`ed into `loggr_stage`, a temporary table of the session
//!   (not WAL-logged, emptied at commit), and moved over by `INSERT INTO event … SELECT … FROM
//!   loggr_stage … ON CONFLICT DO NOTHING RETURNING id, tags`, whose `tag` rows the
//!   same statement inserts (`unnest(tags)`); `COMMIT`. The statement joins nothing over the
//!   batch, so no plan can turn into a nested loop, and it is prepared once per session.
//!
//! After a batch with events stored before, the sink stages the following batches until one
//! holds none: redeliveries come in runs, and a refused direct `COPY` wastes its work (and
//! leaves its rows dead, for autovacuum).
//!
//! A redelivered event (a retry after a lost `COMMIT` reply, a RELP resend, an AMQP
//! redelivery, a file imported twice) therefore never creates a second row; the first stored
//! copy, with its tags and fields, stays. Rows are encoded directly in PostgreSQL's binary
//! `COPY` format and handed to the connection in 256 kB chunks.
//!
//! # Errors and the quarantine
//!
//! When PostgreSQL refuses the data (SQLSTATE class 22, 23 or 54: a timestamp out of its
//! range, a value too big for an index entry, a constraint), the sink splits the batch in
//! halves, each in its own transaction, down to the refused events. Each of those is written to
//! `quarantine` with its canonical JSON, its raw bytes, the SQLSTATE and the message; the rest
//! commits, and the write succeeds. With `quarantine = false` the write fails with a permanent
//! [`SinkError`](loggr_core::SinkError) instead, and the runner rejects the culprits.
//!
//! Every other failure (the connection broke, `pg_terminate_backend`, a timeout, a missing
//! table, too many connections…) is a transient error: the runner retries the batch with
//! backoff, and the sink reconnects on the next write.
//!
//! # Speed
//!
//! The indexes are what costs: a `COPY` into a table without any index is about five times
//! faster than one into `event`. Measured by `cargo run --release --features postgres
//! --example pg_bench` (200,000 loghub events, 6.5% of them with tags and fields, batches of
//! 10,000, PostgreSQL 15 on the same 2-core machine, load average about 4 from other builds):
//!
//! | `pg_bench` run | rows/s |
//! | --- | ---: |
//! | `copy-bare`: binary `COPY` into a table without index (the ceiling) | 182,000 |
//! | `copy-event`: the same into `event` and its five indexes | 37,700 |
//! | `copy-event-trigger`: with `logdate` kept by BuzzSaw's trigger | 34,000 |
//! | `copy-event-before`: the trigger and seven indexes, as before | 29,700 |
//! | `copy-event-brin`: a BRIN index on `logtime` | 39,600 |
//! | `sink` (85% of `copy-event`, 17.5% of `copy-bare`) | 31,800 |
//! | `sink-staged`: `direct_copy = false` | 24,900 |
//! | `sink-redeliver`: every event stored already | 63,100 |
//! | `sink-tagged`: every event with 2 more tags and 2 more fields | 16,400 |
//! | `sink-tagged-fk`: the same with foreign keys on `tag` and `extra_info` | 7,750 |
//! | `sink-search`: with the message search index | 6,400 |
//!
//! The table above predates schema version 5: tags and fields were rows of their own tables
//! then, and cost about as much per row as events (a tagged batch stored half as many events
//! per second). Kept in the event's row (with one `tag` row each, one index), on another day
//! with two writers, alternating runs of the code before and after: `sink-tagged` 58,400 and
//! 68,600 rows/s before, 82,800 and 77,000 after (+12 to +42%); `sink` (6.5% of the events
//! tagged) 109,300 and 104,300 before, 116,000 and 113,300 after (`copy-bare` 542,000 to
//! 636,000). The sink leaves `synchronous_commit` alone (on by default).
//!
//! Schema version 6 (the time-ordered key, one index fewer), alternating `pg_bench --kinds
//! sink` and `--kinds sink-digest-key` (the keys of version 5) with two writers, 500,000
//! events, three runs each, on a machine with 9% of its CPU stolen by neighbours: the sink
//! stored 94,400, 84,400 and 85,000 rows/s against 77,800, 61,500 and 70,800, and PostgreSQL's
//! processes used 8.7, 9.0 and 9.5 CPU-seconds against 10.5, 11.9 and 11.8 (about 20% less
//! per event). With 200,000 events, best of three: 106,200 against 90,400 rows/s (`copy-bare`
//! 439,000: 24.2% against 20.6%). Server
//! settings likely to matter, not measured here: a large `max_wal_size` (fewer checkpoints,
//! fewer full-page images) and `wal_compression`.
//!
//! Batches of thousands of events amortise the per-transaction work (one `COMMIT`, a few
//! round trips).
//!
//! The sink takes concurrent writers: `writers = 2` in its configuration runs two instances,
//! each with its own connection, so that one's `COMMIT` and the client's encoding overlap the
//! other's `COPY`, and PostgreSQL works on two cores. Batches are then stored out of order
//! (ids and arrival order no longer match exactly); an event two writers store at once is
//! still stored once (the second direct `COPY` waits for the first and, once it commits, is
//! refused and staged). The importer's bundled configuration uses 2.
//!
//! # Durability
//!
//! `Ok` means PostgreSQL answered the batch's `COMMIT` (as durable as the server's
//! `synchronous_commit`; by default the WAL is on disk): each event is in `event` (stored now
//! or before) or in `quarantine`.

mod config;
mod copy;
mod error;
mod row;
mod schema;
mod sink;

pub use config::PostgresSinkConfig;
pub use error::{is_data_error, PgError};
pub use row::{load_event, NUL_REPLACEMENT};
pub use schema::{
    check_schema, create_search_index, migrate, schema_version, search_index, Migrated, Migration,
    SearchIndex, MIGRATIONS, SCHEMA_VERSION,
};
pub use sink::{PostgresSink, WriteStats};

/// The PostgreSQL client crate, at the version [`migrate`] and [`load_event`] take.
pub use tokio_postgres;

use loggr_core::{BoxError, BuildContext, Sink, SinkConfig};

impl SinkConfig for PostgresSinkConfig {
    fn build(self, _cx: &BuildContext) -> Result<Box<dyn Sink>, BoxError> {
        Ok(Box::new(PostgresSink::new(self)?))
    }
}

loggr_core::register_sink!("postgres", PostgresSinkConfig);

#[inline(never)]
pub(crate) fn link() {}
