//! The `stdout` sink: events as JSON lines on standard output, and the `null` sink.
//!
//! # Durability
//!
//! `stdout`: `Ok` means the batch was written and flushed to standard output; whatever reads
//! the pipe is responsible from there. `null`: none, events are counted and dropped.

use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use loggr_core::{
    async_trait, BoxError, BuildContext, Event, NullSink, Sink, SinkConfig, SinkError,
};

/// Configuration of the `stdout` sink (no options).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {}

/// Writes JSON lines to standard output.
#[derive(Debug)]
pub struct StdoutSink {
    out: tokio::io::Stdout,
    buffer: Vec<u8>,
}

impl StdoutSink {
    /// A new sink.
    pub fn new() -> Self {
        StdoutSink {
            out: tokio::io::stdout(),
            buffer: Vec::new(),
        }
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        StdoutSink::new()
    }
}

#[async_trait]
impl Sink for StdoutSink {
    async fn write(&mut self, events: &[Event]) -> Result<(), SinkError> {
        self.buffer.clear();
        crate::write_json_lines(events, &mut self.buffer);
        self.out.write_all(&self.buffer).await?;
        self.out.flush().await?;
        Ok(())
    }
}

impl SinkConfig for StdoutSinkConfig {
    fn build(self, _cx: &BuildContext) -> Result<Box<dyn Sink>, BoxError> {
        Ok(Box::new(StdoutSink::new()))
    }
}

/// Configuration of the `null` sink (no options).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NullSinkConfig {}

impl SinkConfig for NullSinkConfig {
    fn build(self, _cx: &BuildContext) -> Result<Box<dyn Sink>, BoxError> {
        Ok(Box::new(NullSink::new()))
    }
}

loggr_core::register_sink!("stdout", StdoutSinkConfig);
loggr_core::register_sink!("null", NullSinkConfig);

#[inline(never)]
pub(crate) fn link() {}
