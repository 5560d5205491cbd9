//! The [`Source`] trait: where events come from, and the context a source runs in.

use std::fmt;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::envelope::{Batch, Envelope};
use crate::metrics::ComponentMetrics;

/// A source failed for good (a listener could not bind, a file could not be opened).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// An I/O failure.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// Anything else, with its cause.
    #[error("{message}")]
    Other {
        /// What went wrong.
        message: String,
        /// The cause.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl SourceError {
    /// An error with a message.
    pub fn other(message: impl Into<String>) -> Self {
        SourceError::Other {
            message: message.into(),
            source: None,
        }
    }
}

/// The pipeline downstream of a source has shut down; the batch is handed back (its tokens
/// still unresolved: dropping them means Retry).
#[derive(Debug, thiserror::Error)]
#[error("the pipeline is closed")]
pub struct Closed(pub Batch);

/// Where a source puts its events. Cheap to clone: give one to each connection task.
#[derive(Clone)]
pub struct Emitter {
    sender: mpsc::Sender<Batch>,
    metrics: Arc<ComponentMetrics>,
}

impl Emitter {
    pub(crate) fn new(sender: mpsc::Sender<Batch>, metrics: Arc<ComponentMetrics>) -> Self {
        Emitter { sender, metrics }
    }

    /// Hands a batch on, waiting while the pipeline is full (backpressure).
    ///
    /// # Errors
    ///
    /// [`Closed`] with the batch when the pipeline no longer takes events.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: if the future is dropped the batch was not sent (and is dropped: its tokens
    /// resolve as Retry).
    pub async fn send(&self, batch: Batch) -> Result<(), Closed> {
        if batch.is_empty() {
            return Ok(());
        }
        let count = batch.len() as u64;
        self.sender
            .send(batch)
            .await
            .map_err(|error| Closed(error.0))?;
        ComponentMetrics::add(&self.metrics.received, count);
        Ok(())
    }

    /// Hands one envelope on (prefer [`send`](Self::send) with batches on hot paths).
    ///
    /// # Errors
    ///
    /// [`Closed`] when the pipeline no longer takes events.
    pub async fn send_one(&self, envelope: Envelope) -> Result<(), Closed> {
        self.send(vec![envelope]).await
    }

    /// The source's counters.
    pub fn metrics(&self) -> &Arc<ComponentMetrics> {
        &self.metrics
    }
}

impl fmt::Debug for Emitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter")
            .field("capacity", &self.sender.capacity())
            .finish()
    }
}

/// What a running source gets from the pipeline.
#[derive(Clone, Debug)]
pub struct SourceContext {
    name: Arc<str>,
    emitter: Emitter,
    shutdown: CancellationToken,
    abort: CancellationToken,
}

impl SourceContext {
    /// A context; the pipeline makes these (public for tests of sources).
    pub fn new(
        name: impl Into<Arc<str>>,
        emitter: Emitter,
        shutdown: CancellationToken,
        abort: CancellationToken,
    ) -> Self {
        SourceContext {
            name: name.into(),
            emitter,
            shutdown,
            abort,
        }
    }

    /// The source's configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where to put events.
    pub fn emitter(&self) -> &Emitter {
        &self.emitter
    }

    /// Cancelled when the source must stop reading new input. It should then wait for the
    /// outcomes of what it already emitted (and acknowledge them upstream) and return.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Cancelled when the grace period after shutdown is over: stop waiting for outcomes and
    /// return at once (unacknowledged input will be resent by the upstream).
    pub fn abort(&self) -> &CancellationToken {
        &self.abort
    }
}

/// Produces events: listens on a socket, reads a file, consumes a queue.
///
/// A source reads input, frames and parses it, opens an [`AckGroup`](crate::AckGroup) per
/// upstream unit, and [emits](Emitter::send) envelopes. It acknowledges an upstream unit when
/// the group's waiter resolves to [`Outcome::Delivered`](crate::Outcome::Delivered) (and
/// negatively otherwise); sources that cannot acknowledge use
/// [`AckToken::detached`](crate::AckToken::detached) and document their loss window.
///
/// `run` returns when the input is exhausted, or after [`SourceContext::shutdown`] fired and the
/// outstanding acknowledgements were handled (or [`SourceContext::abort`] fired).
///
/// ```
/// use loggr_core::{async_trait, AckToken, Envelope, Event, Source, SourceContext, SourceError};
///
/// /// Emits a fixed list of lines, without acknowledgements.
/// struct Lines(Vec<&'static str>);
///
/// #[async_trait]
/// impl Source for Lines {
///     async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
///         let batch = self.0.iter().map(|line| Envelope::detached(Event::new(*line))).collect();
///         cx.emitter().send(batch).await.map_err(|_| SourceError::other("pipeline closed"))
///     }
/// }
/// ```
///
/// # Errors
///
/// A [`SourceError`] when the source cannot go on at all; the pipeline then shuts down.
#[async_trait::async_trait]
pub trait Source: Send + 'static {
    /// Runs the source to completion.
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError>;
}
