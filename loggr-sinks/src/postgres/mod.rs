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
//! | `event` | stored message | `id` (identity), `digest` unique |
//! | `tag` | (event, tag) | `(event, name)` |
//! | `extra_info` | (event, field, value) | index `(event, name)`, hash index on `val` |
//! | `log` | imported file (BuzzSaw) | `digest` unique (SHA-256 of the content) |
//! | `current_processing` | file being imported (a lock) | `digest` unique, `starttime` |
//! | `quarantine` | refused event | `digest` unique |
//!
//! How an [`Event`](loggr_core::Event) maps onto `event`:
//!
//! - `digest` (`bytea`, 32 raw bytes): the [content id](loggr_core::Event::content_id), a
//!   SHA-256 of severity, facility, app_name, hostname, message and reported time. Raw bytes
//!   rather than hex: half the size in the table and in its unique index. `encode(digest,
//!   'hex')` gives the `id` of the canonical JSON form.
//! - `logtime`: the reported `timestamp`, or `received_at` when the sender gave none
//!   (`reported` says which); `logdate` is its UTC day, set by the `event_logdate` trigger;
//!   `received_at` as is. Timestamps are stored to the microsecond (PostgreSQL's precision).
//! - `facility`, `severity`: the numeric codes. `hostname`; `program` is `app_name`; `pid` is
//!   `procid` (text); `msgid`; `message`.
//! - `structured_data` (`jsonb`, NULL when empty): `{"SD-ID": {"param": "value"}}`, a repeated
//!   param as an array, as in the canonical JSON form. `jsonb` (containment queries, GIN
//!   indexes) sorts keys: element and param order is not kept, the order of a param's values
//!   is.
//! - `raw` (`bytea`): the received bytes, exactly (any encoding, NUL bytes included).
//! - Fields: BuzzSaw's `userid` column holds the `userid` field when it is text; **every other
//!   field is an `extra_info` row** (name, value as text; a list gives one row per item). Rows
//!   rather than a `jsonb` column because that is how BuzzSaw's reports and filters look them
//!   up (`name = 'source_address' AND val = …`). The price: numbers and booleans come back as
//!   text, and an empty list is not stored.
//! - Tags: one `tag` row each.
//!
//! **NUL characters**: PostgreSQL text and `jsonb` cannot hold `\0`, so every text value
//! (columns, structured data, tags, extra_info) is stored with NUL replaced by U+FFFD
//! ([`NUL_REPLACEMENT`]). The digest is computed on the original event, and `raw` keeps the
//! original bytes. Text is always valid UTF-8 (an [`Event`](loggr_core::Event) holds no other);
//! bytes that were not UTF-8 are only in `raw`.
//!
//! Indexes serve the reports (events in a time range with some tags, of a program, grouped by
//! host: `tag (name, event)`, `event (program, logtime)`, `event (hostname, logtime)`) and the
//! web UI (time range `event (logtime)`, host, program, `event (severity, logtime)`, tags,
//! `event (userid)`, and message search: a `pg_trgm` GIN index on `message` for `LIKE`,
//! `ILIKE`, `~` and similarity when the extension can be installed, else a GIN index on
//! `to_tsvector('simple', coalesce(message, ''))`).
//!
//! # How a batch is written
//!
//! One transaction per batch:
//!
//! 1. The batch is `COPY`ed in binary format (`BinaryCopyInWriter`) into `loggr_stage`, a
//!    temporary table of the session (not WAL-logged, emptied at commit). Repeats of one event
//!    within the batch are dropped before (the first is kept).
//! 2. One statement moves it over: `INSERT INTO event … SELECT … FROM loggr_stage ON CONFLICT
//!    (digest) DO NOTHING RETURNING id, digest`, and, for the rows it returned (the new
//!    events), their tags and extra_info.
//! 3. `COMMIT`.
//!
//! A redelivered event (a retry after a lost `COMMIT` reply, a RELP resend, an AMQP
//! redelivery, a file imported twice) therefore never creates a second row; the first stored
//! copy, with its tags and fields, stays.
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
//! The write costs little beyond the indexes: with the whole schema the sink stores about
//! 85–95% of the rows per second of a plain binary `COPY` straight into `event` (measured by
//! `cargo run --release --features postgres --example pg_bench`). The indexes are what cost:
//! the trigram index on `message` takes about two thirds of the time, and a `COPY` into a
//! table without any index is many times faster. Batches of thousands of events amortise the
//! per-transaction work (one `COMMIT`, two statements).
//!
//! # Durability
//!
//! `Ok` means PostgreSQL answered the batch's `COMMIT` (as durable as the server's
//! `synchronous_commit`; by default the WAL is on disk): each event is in `event` (stored now
//! or before) or in `quarantine`.

mod config;
mod error;
mod row;
mod schema;
mod sink;

pub use config::PostgresSinkConfig;
pub use error::{is_data_error, PgError};
pub use row::{load_event, NUL_REPLACEMENT};
pub use schema::{
    check_schema, migrate, schema_version, Migrated, Migration, MIGRATIONS, SCHEMA_VERSION,
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
