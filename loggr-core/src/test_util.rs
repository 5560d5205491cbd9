//! Helpers for testing pipelines and components (feature `test-util`): a memory source that
//! records the outcome of each of its groups, a collecting sink, and a sink the test controls
//! batch by batch.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot};

use crate::ack::{AckGroup, Outcome};
use crate::envelope::Envelope;
use crate::event::Event;
use crate::sink::{Sink, SinkError};
use crate::source::{Source, SourceContext, SourceError};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The outcomes a [`MemorySource`] saw, one per group, in group order.
#[derive(Clone, Debug, Default)]
pub struct Outcomes(Arc<Mutex<Vec<Option<Outcome>>>>);

impl Outcomes {
    /// The outcome of each group (`None`: not known when the source returned).
    pub fn get(&self) -> Vec<Option<Outcome>> {
        lock(&self.0).clone()
    }

    /// Whether every group was delivered.
    pub fn all_delivered(&self) -> bool {
        let outcomes = self.get();
        !outcomes.is_empty() && outcomes.iter().all(|o| *o == Some(Outcome::Delivered))
    }
}

/// Emits a list of events in groups of `group_size`, one group per batch, then waits for every
/// group's outcome (until the pipeline aborts) and records them.
#[derive(Debug)]
pub struct MemorySource {
    events: Vec<Event>,
    group_size: usize,
    outcomes: Outcomes,
}

impl MemorySource {
    /// The source and the handle its outcomes appear in.
    pub fn new(events: Vec<Event>, group_size: usize) -> (MemorySource, Outcomes) {
        let outcomes = Outcomes::default();
        (
            MemorySource {
                events,
                group_size: group_size.max(1),
                outcomes: outcomes.clone(),
            },
            outcomes,
        )
    }
}

#[async_trait::async_trait]
impl Source for MemorySource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let MemorySource {
            events,
            group_size,
            outcomes,
        } = *self;
        let mut waiters = Vec::new();
        let mut events = events.into_iter().peekable();
        while events.peek().is_some() {
            let (group, waiter) = AckGroup::new();
            let batch: Vec<Envelope> = events
                .by_ref()
                .take(group_size)
                .map(|e| Envelope::new(e, group.token()))
                .collect();
            group.seal();
            waiters.push(waiter);
            tokio::select! {
                sent = cx.emitter().send(batch) => if sent.is_err() { break },
                () = cx.shutdown().cancelled() => break,
            }
        }
        let mut results = Vec::with_capacity(waiters.len());
        for waiter in waiters {
            let outcome = tokio::select! {
                outcome = waiter => Some(outcome),
                () = cx.abort().cancelled() => None,
            };
            results.push(outcome);
        }
        *lock(&outcomes.0) = results;
        Ok(())
    }
}

/// Keeps every event it is given; clones share the same list.
///
/// # Durability
///
/// Memory only.
#[derive(Clone, Debug, Default)]
pub struct CollectingSink {
    events: Arc<Mutex<Vec<Event>>>,
}

impl CollectingSink {
    /// An empty sink.
    pub fn new() -> Self {
        CollectingSink::default()
    }

    /// A copy of what was written so far.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.events).clone()
    }

    /// How many events were written.
    pub fn len(&self) -> usize {
        lock(&self.events).len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait::async_trait]
impl Sink for CollectingSink {
    async fn write(&mut self, events: &[Event]) -> Result<(), SinkError> {
        lock(&self.events).extend_from_slice(events);
        Ok(())
    }
}

/// One write waiting for the test's verdict.
#[derive(Debug)]
pub struct PendingWrite {
    /// The batch.
    pub events: Vec<Event>,
    reply: oneshot::Sender<Result<(), SinkError>>,
}

impl PendingWrite {
    /// Lets the write succeed.
    pub fn succeed(self) {
        let _ = self.reply.send(Ok(()));
    }

    /// Makes the write fail.
    pub fn fail(self, error: SinkError) {
        let _ = self.reply.send(Err(error));
    }
}

/// A sink whose every write waits for the test to [`succeed`](PendingWrite::succeed) or
/// [`fail`](PendingWrite::fail) it. Writes not answered never finish (a stalled sink).
#[derive(Debug)]
pub struct ControlledSink {
    writes: mpsc::UnboundedSender<PendingWrite>,
}

/// The test's side of a [`ControlledSink`].
#[derive(Debug)]
pub struct SinkController {
    writes: mpsc::UnboundedReceiver<PendingWrite>,
}

impl ControlledSink {
    /// The sink and its controller.
    pub fn new() -> (ControlledSink, SinkController) {
        let (writes, receiver) = mpsc::unbounded_channel();
        (
            ControlledSink { writes },
            SinkController { writes: receiver },
        )
    }
}

impl SinkController {
    /// The next write the sink received (`None` once the sink is gone).
    pub async fn next_write(&mut self) -> Option<PendingWrite> {
        self.writes.recv().await
    }
}

#[async_trait::async_trait]
impl Sink for ControlledSink {
    async fn write(&mut self, events: &[Event]) -> Result<(), SinkError> {
        let (reply, verdict) = oneshot::channel();
        self.writes
            .send(PendingWrite {
                events: events.to_vec(),
                reply,
            })
            .map_err(|_| SinkError::transient("the test's controller is gone"))?;
        verdict
            .await
            .unwrap_or_else(|_| Err(SinkError::transient("the test dropped the write")))
    }
}

/// Numbered events `prefix 0`, `prefix 1`, … for tests.
pub fn numbered_events(prefix: &str, count: usize) -> Vec<Event> {
    (0..count)
        .map(|i| Event::new(format!("{prefix} {i}")))
        .collect()
}
