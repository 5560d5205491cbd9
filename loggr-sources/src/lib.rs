//! # loggr-sources
//!
//! Where loggr's events come from. Each source is one file: its `…Config` (the TOML table,
//! documented field by field) and the runtime source, registered by name at the end.
//!
//! | type | what | acknowledgements |
//! | --- | --- | --- |
//! | `stdin` | newline-delimited lines on standard input | waits for every line's outcome before exiting, and fails if any was not delivered |
//! | `tcp` | syslog over TCP, LF or octet-counted framing detected per frame | none in the protocol: see the loss window in [`tcp`] |
//! | `relp` | syslog over RELP (rsyslog's `omrelp`) | `rsp 200` only after every sink committed, `500` otherwise |
//! | `udp`, `unix_datagram` | one message per datagram | none: best effort, counted |
//! | `redis_spool` (feature `redis`) | replays the Redis spool | an entry is removed only after all its events committed |
//! | `amqp` (feature `amqp`) | consumes a RabbitMQ queue, batches or single events per message | `basic.ack` after every sink committed the delivery's events, `nack` (requeue) on Retry, `reject` (dead-letter) on Reject |
//! | `files` (feature `files`) | log files under directory trees, plain or gzip/bzip2/zstd/xz, each content once | a file is recorded in the ledger only after all its events were committed; otherwise the next run imports it again |
//! | `harvest` (feature `harvest`) | files uploaded into spool directories, one event per line | a file is deleted only after all its lines were committed; kept and read again otherwise |
//!
//! Call [`link`] once in a program that builds pipelines from configuration, so the linker
//! keeps this crate's registrations (see `loggr_core::registry`).

#[cfg(feature = "amqp")]
pub mod amqp;
#[cfg(feature = "files")]
pub mod files;
pub mod framing;
#[cfg(feature = "harvest")]
pub mod harvest;
pub mod ingest;
mod listener;
#[cfg(feature = "redis")]
pub mod redis_spool;
pub mod relp;
pub mod stdin;
pub mod tcp;
#[cfg(feature = "tls")]
pub mod tls;
pub mod udp;

pub use ingest::{FrameParser, InputFormat, Origin};
pub use relp::{RelpConfig, RelpSource};
pub use stdin::{StdinConfig, StdinSource};
pub use tcp::{TcpConfig, TcpSource};
pub use udp::{UdpConfig, UdpSource};

/// Keeps this crate's plugin registrations in the final binary. Call it once before reading
/// configuration; it does nothing else.
#[inline(never)]
pub fn link() {
    #[cfg(feature = "amqp")]
    amqp::link();
    relp::link();
    stdin::link();
    tcp::link();
    udp::link();
    #[cfg(feature = "redis")]
    redis_spool::link();
    #[cfg(feature = "files")]
    files::link();
    #[cfg(feature = "harvest")]
    harvest::link();
}
