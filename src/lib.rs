//! # loggr
//!
//! Collect, parse, filter and store logs **without ever losing a message**.
//!
//! This facade is the one crate a program depends on. It re-exports the workspace's crates:
//!
//! - [`core`] (`loggr-core`): the [`Event`], acknowledgements, the `Source`/`Parser`/`Filter`/
//!   `Sink` traits, the [`Pipeline`] and the plugin registry. Its main items are also
//!   re-exported at the top level.
//! - [`sources`] (`loggr-sources`): stdin, and the network and file sources.
//! - [`filters`] (`loggr-filters`): grok, BuzzSaw's vote chain, the rules language, packers.
//! - [`sinks`] (`loggr-sinks`): JSON-lines file, stdout, and the broker and database sinks.
//! - [`relp`] (`loggr-relp`): the RELP protocol.
//! - [`store`] (`loggr-store`, feature `sqlite`, on by default): the [`Store`](store::Store)
//!   trait over stored events and the embedded SQLite store.
//!
//! Heavy plugins sit behind cargo features: `amqp`, `postgres`, `redis`, `tls`, `files`
//! (file import) and `harvest` (upload directories).
//!
//! ```no_run
//! use loggr::sinks::{FileSink, FileSinkConfig};
//! use loggr::sources::{StdinConfig, StdinSource};
//! use loggr::{CancellationToken, Pipeline};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sink = FileSink::new(FileSinkConfig::new("events.jsonl"));
//! Pipeline::builder()
//!     .source("stdin", StdinSource::new(StdinConfig::default()))
//!     .sink("archive", sink)
//!     .build()?
//!     .run(CancellationToken::new())
//!     .await?;
//! # Ok(()) }
//! ```

pub mod daemon;
pub mod http;

/// AMQP plumbing (feature `amqp`): topology declaration (`loggr ctl`), connections, and the
/// `lapin` client loggr was built with.
#[cfg(feature = "amqp")]
pub use loggr_amqp as amqp;
pub use loggr_core as core;
pub use loggr_filters as filters;
pub use loggr_relp as relp;
pub use loggr_sinks as sinks;
pub use loggr_sources as sources;
#[cfg(feature = "sqlite")]
pub use loggr_store as store;

pub use loggr_core::{
    ack, async_trait, AckGroup, AckToken, BuildContext, CancellationToken, ConfigError, Envelope,
    Event, Facility, Filter, FilterConfig, FilterError, Outcome, Pipeline, PipelineBuilder,
    PipelineConfig, PipelineError, Registry, Severity, Sink, SinkConfig, SinkError, Source,
    SourceConfig, SourceContext, SourceError, Verdict,
};

/// The plugin registry with every bundled source, filter and sink (and those of any other
/// crate the program links).
///
/// It first calls each bundled crate's `link()`, so that the linker keeps their registrations
/// even when the program names none of their types in code.
///
/// # Errors
///
/// When two plugins of one kind share a name.
pub fn registry() -> Result<Registry, loggr_core::RegistryError> {
    loggr_sources::link();
    loggr_filters::link();
    loggr_sinks::link();
    #[cfg(feature = "sqlite")]
    loggr_store::link();
    Registry::from_inventory()
}
