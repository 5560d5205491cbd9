//! # loggr-core
//!
//! The foundation of [loggr](https://example.invalid/loggr): the [`Event`] model, the
//! acknowledgement spine ([`ack`]), the component traits ([`Source`], [`Parser`], [`Filter`],
//! [`Sink`]), the [`Pipeline`] that joins them, and the plugin [`Registry`] that builds them
//! from TOML.
//!
//! ## The promise
//!
//! loggr never loses a message it acknowledged. A source acknowledges its upstream (RELP
//! `rsp 200`, AMQP `basic.ack`, a file offset) only when every sink has durably committed every
//! event that came from that unit. The mechanism is the [`AckToken`] each event carries in its
//! [`Envelope`]: the sink runner commits it after a successful write, a filter discards it on
//! an intended drop, and **a token dropped without a verdict counts as Retry**.
//!
//! ## A pipeline in ten lines
//!
//! ```
//! use loggr_core::test_util::{CollectingSink, MemorySource};
//! use loggr_core::{CancellationToken, Event, Filter, FilterError, Pipeline, Verdict};
//!
//! struct Shout;
//! impl Filter for Shout {
//!     fn name(&self) -> &str { "shout" }
//!     fn apply(&self, event: &mut Event) -> Result<Verdict, FilterError> {
//!         event.message = Some(event.message_str().to_uppercase().into());
//!         Ok(Verdict::Keep)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (source, outcomes) = MemorySource::new(vec![Event::new("disk full")], 1);
//! let sink = CollectingSink::new();
//! Pipeline::builder()
//!     .source("memory", source)
//!     .filter(Shout)
//!     .sink("memory", sink.clone())
//!     .build()?
//!     .run(CancellationToken::new())
//!     .await?;
//! assert_eq!(sink.events()[0].message_str(), "DISK FULL");
//! assert!(outcomes.all_delivered()); // the source saw its group acknowledged
//! # Ok(()) }
//! ```
//!
//! ## Modules
//!
//! - [`event`]: the event model and its canonical JSON form.
//! - [`ack`]: groups, tokens, waiters, ordered and unordered outcome queues.
//! - [`source`], [`parser`], [`filter`], [`sink`]: the component contracts.
//! - [`codec`]: framing decoders.
//! - [`pipeline`]: the builder and the runtime (filter workers, fan-out, sink runners, shutdown).
//! - [`config`] and [`registry`]: TOML configuration and named plugins.
//! - [`metrics`]: counters and their Prometheus rendering.
//! - [`connections`]: the clients connected to each listener, for `/connections`.
//! - [`wire`]: the batch wire format of AMQP messages and spool entries.
//! - `test_util` (feature `test-util`): sources and sinks for tests.

pub mod ack;
pub mod codec;
pub mod config;
pub mod connections;
pub mod encode;
pub mod envelope;
pub mod event;
pub mod fields;
pub mod filter;
pub mod metrics;
pub mod packer;
pub mod parser;
pub mod pipeline;
pub mod registry;
pub mod sink;
pub mod source;
pub mod spool;
pub mod syslog;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
pub mod wire;

pub use ack::{AckGroup, AckToken, AckWaiter, Failure, OrderedAcks, Outcome, UnorderedAcks};
pub use config::{ConfigError, PipelineConfig, PipelineOptions};
pub use envelope::{Batch, Envelope};
pub use event::{
    ContentId, Event, Facility, Fields, SdElement, SdParam, Severity, StructuredData, Tags, Text,
    Value,
};
pub use filter::{Filter, FilterError, Verdict};
pub use metrics::{ComponentMetrics, Metrics};
pub use packer::{Packer, PackerCondition};
pub use parser::{FailurePolicy, ParseContext, ParseError, Parser};
pub use pipeline::{Pipeline, PipelineBuilder, PipelineError};
pub use registry::{
    BoxError, BuildContext, FilterConfig, PackerConfig, Registry, RegistryError, SinkConfig,
    SourceConfig,
};
pub use sink::{BatchConfig, NullSink, RetryConfig, Sink, SinkError, SinkOptions};
pub use source::{Closed, Emitter, Source, SourceContext, SourceError};

pub use async_trait::async_trait;
pub use bytes::Bytes;
pub use jiff::Timestamp;
pub use tokio_util::sync::CancellationToken;

#[doc(hidden)]
pub use inventory;
