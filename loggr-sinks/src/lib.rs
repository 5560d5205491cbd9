//! # loggr-sinks
//!
//! Where loggr's events end up. Each sink documents under `# Durability` what its `Ok` means,
//! since that is when the sources acknowledge upstream.
//!
//! | type | what | durability |
//! | --- | --- | --- |
//! | `file` | JSON lines (or rsyslog's file format) appended to a file | `fsync = "always"` (default): data synced to disk before `Ok` |
//! | `stdout` | JSON lines on standard output | written and flushed to the pipe |
//! | `null` | counts and forgets | none |
//! | `fallback` | a primary sink, and a secondary one while the primary fails | the primary's or else the secondary's |
//! | `redis_spool` (feature `redis`) | batches appended to a Redis list | Redis replied (and its persistence settings) |
//! | `amqp` (feature `amqp`) | batches of events published to a RabbitMQ exchange, many per message | every message confirmed by the broker, none returned |
//! | `postgres` (feature `postgres`) | BuzzSaw/pyloggr tables, binary `COPY`, idempotent on the content id, bad events quarantined | the batch's `COMMIT` returned |
//!
//! AMQP, PostgreSQL, Redis and the embedded store come with their issues.
//!
//! Call [`link`] once in a program that builds pipelines from configuration.

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod fallback;
pub mod file;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis_spool;
pub mod row;
pub mod stdout;

pub use file::{FileSink, FileSinkConfig, Fsync, LineFormat};
pub use stdout::{StdoutSink, StdoutSinkConfig};

/// Keeps this crate's plugin registrations in the final binary.
#[inline(never)]
pub fn link() {
    #[cfg(feature = "amqp")]
    amqp::link();
    fallback::link();
    #[cfg(feature = "postgres")]
    postgres::link();
    #[cfg(feature = "redis")]
    redis_spool::link();
    file::link();
    stdout::link();
}

/// Appends the canonical JSON form of each event, one per line, to `out`.
pub fn write_json_lines(events: &[loggr_core::Event], out: &mut Vec<u8>) {
    for event in events {
        loggr_core::encode::json(out, event);
        out.push(b'\n');
    }
}
