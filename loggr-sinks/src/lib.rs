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
//!
//! AMQP, PostgreSQL, Redis and the embedded store come with their issues.
//!
//! Call [`link`] once in a program that builds pipelines from configuration.

pub mod file;
pub mod stdout;

pub use file::{FileSink, FileSinkConfig, Fsync, LineFormat};
pub use stdout::{StdoutSink, StdoutSinkConfig};

/// Keeps this crate's plugin registrations in the final binary.
#[inline(never)]
pub fn link() {
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
