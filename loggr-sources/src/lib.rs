//! # loggr-sources
//!
//! Where loggr's events come from. Each source is one file: its `…Config` (the TOML table,
//! documented field by field) and the runtime source, registered by name at the end.
//!
//! | type | what | acknowledgements |
//! | --- | --- | --- |
//! | `stdin` | newline-delimited lines on standard input | waits for every line's outcome before exiting, and fails if any was not delivered |
//!
//! Network sources (TCP, RELP, UDP), file import, AMQP and Redis come with their issues.
//!
//! Call [`link`] once in a program that builds pipelines from configuration, so the linker
//! keeps this crate's registrations (see `loggr_core::registry`).

pub mod framing;
pub mod stdin;

pub use stdin::{InputFormat, StdinConfig, StdinSource};

/// Keeps this crate's plugin registrations in the final binary. Call it once before reading
/// configuration; it does nothing else.
#[inline(never)]
pub fn link() {
    stdin::link();
}
