//! The `stdin` source: newline-delimited messages on standard input.
//!
//! Lines are parsed with the configured parser; a line that fails to parse is kept (tagged
//! `_parse_failure`) unless `on_parse_error = "drop"`. Standard input cannot be acknowledged,
//! but the source does the next best thing: at end of input it waits for the outcome of every
//! line it read and returns an error (so the program exits non-zero) if any was not delivered.

use std::sync::Arc;

use futures::StreamExt;
use serde::Deserialize;
use tokio::io::AsyncRead;
use tokio_util::codec::FramedRead;

use loggr_core::ack::{AckGroup, Outcome, UnorderedAcks};
use loggr_core::codec::LineDecoder;
use loggr_core::syslog::{Format, SyslogOptions};

use crate::ingest::{FrameParser, InputFormat};

use crate::framing::Recoverable;
use loggr_core::metrics::ComponentMetrics;
use loggr_core::parser::RawParser;
use loggr_core::{
    async_trait, BoxError, BuildContext, Envelope, FailurePolicy, ParseContext, Parser, Source,
    SourceConfig, SourceContext, SourceError,
};

/// Configuration of the `stdin` source.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StdinConfig {
    /// Longest accepted line, in bytes; longer lines are skipped, counted and logged.
    pub max_line_bytes: usize,
    /// Lines handed on together (at most).
    pub batch_size: usize,
    /// Batches whose outcome may be outstanding at once.
    pub window: usize,
    /// What to do with a line that does not parse: `keep` (tagged) or `drop`.
    pub on_parse_error: FailurePolicy,
    /// The message format: `auto` (default), `rfc5424`, `rfc3164`, `rfc3339` (file lines),
    /// `json`, or `raw` (the whole line is the message).
    pub format: InputFormat,
    /// Parser options: `year` and `timezone` for year-less or offset-less timestamps,
    /// `trusted_properties`, `max_fraction_digits`.
    pub syslog: SyslogOptions,
}

impl Default for StdinConfig {
    fn default() -> Self {
        StdinConfig {
            max_line_bytes: 64 * 1024,
            batch_size: 512,
            window: 64,
            on_parse_error: FailurePolicy::Keep,
            format: InputFormat::Syslog(Format::Auto),
            syslog: SyslogOptions::default(),
        }
    }
}

/// Reads lines from standard input (or any reader, for tests).
pub struct StdinSource {
    config: StdinConfig,
    parser: Arc<dyn Parser>,
    reader: Option<Box<dyn AsyncRead + Send + Unpin>>,
}

impl StdinSource {
    /// A source reading standard input, every line becoming an event's message.
    pub fn new(config: StdinConfig) -> Self {
        StdinSource {
            config,
            parser: Arc::new(RawParser),
            reader: None,
        }
    }

    /// Uses this parser for each line.
    #[must_use]
    pub fn with_parser(mut self, parser: Arc<dyn Parser>) -> Self {
        self.parser = parser;
        self
    }

    /// Reads from this reader instead of standard input.
    #[must_use]
    pub fn with_reader(mut self, reader: impl AsyncRead + Send + Unpin + 'static) -> Self {
        self.reader = Some(Box::new(reader));
        self
    }
}

#[async_trait]
impl Source for StdinSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let StdinSource {
            config,
            parser,
            reader,
        } = *self;
        let reader = reader.unwrap_or_else(|| Box::new(tokio::io::stdin()));
        let metrics = cx.emitter().metrics().clone();
        let frames = FrameParser::new(parser, config.on_parse_error, metrics.clone());
        let lines = FramedRead::new(reader, Recoverable(LineDecoder::new(config.max_line_bytes)));
        let mut chunks = lines.ready_chunks(config.batch_size.max(1));
        let mut acks = UnorderedAcks::new(config.window);
        let mut undelivered = 0u64;
        let mut record = |outcome: Outcome, count: usize| {
            if outcome != Outcome::Delivered {
                undelivered += count as u64;
            }
        };
        loop {
            if acks.is_full() {
                let (count, outcome) = acks.next().await;
                record(outcome, count);
                continue;
            }
            let chunk = tokio::select! {
                chunk = chunks.next() => chunk,
                () = cx.shutdown().cancelled() => None,
                (count, outcome) = acks.next() => { record(outcome, count); continue; }
            };
            let Some(chunk) = chunk else { break };
            let parse_cx = ParseContext::now();
            let (group, waiter) = AckGroup::new();
            let mut batch = Vec::with_capacity(chunk.len());
            for frame in chunk {
                match frame.and_then(|frame| frame) {
                    Ok(line) => {
                        if let Some(event) = frames.parse(line, &parse_cx, None) {
                            batch.push(Envelope::new(event, group.token()));
                        }
                    }
                    Err(error) if error.can_continue() => {
                        ComponentMetrics::add(&metrics.parse_failures, 1);
                        tracing::warn!(source = cx.name(), %error, "Skipped an input line");
                    }
                    Err(error) => {
                        return Err(SourceError::other(format!("reading stdin: {error}")))
                    }
                }
            }
            group.seal();
            let count = batch.len();
            acks.push(count, waiter);
            if cx.emitter().send(batch).await.is_err() {
                break;
            }
        }
        while !acks.is_empty() {
            tokio::select! {
                (count, outcome) = acks.next() => record(outcome, count),
                () = cx.abort().cancelled() => {
                    undelivered += acks.len() as u64;
                    break;
                }
            }
        }
        if undelivered > 0 {
            return Err(SourceError::other(format!(
                "{undelivered} input lines were not delivered"
            )));
        }
        Ok(())
    }
}

impl SourceConfig for StdinConfig {
    fn build(self, _cx: &BuildContext) -> Result<Box<dyn Source>, BoxError> {
        let parser = self.format.parser(&self.syslog)?;
        Ok(Box::new(StdinSource::new(self).with_parser(parser)))
    }
}

loggr_core::register_source!("stdin", StdinConfig);

#[inline(never)]
pub(crate) fn link() {}
