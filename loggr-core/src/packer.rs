//! Packers: merging several events into one (multi-line messages such as stack traces), and
//! the stage that runs a packer between a source and the filters.
//!
//! A packer holds events back until it knows whether the next ones belong with them, then
//! emits either the originals or one merged event. A merged event carries the
//! [joined](crate::AckToken::join) tokens of its originals, so each original's upstream unit
//! (a RELP transaction) is acknowledged only when the merged event is committed.
//!
//! Packers work per source (the stage sits before the shared queue), keep the order of what
//! they release per key, and are flushed at shutdown: nothing they hold is lost.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::ack::AckToken;
use crate::envelope::{Batch, Envelope};
use crate::event::{Event, Text};

/// Merges related events. Implementations are plain state machines; the stage drives them
/// with the clock.
pub trait Packer: Send + 'static {
    /// Takes one envelope; returns what can be released now, in order.
    fn push(&mut self, envelope: Envelope, now: Instant) -> Vec<Envelope>;

    /// Releases whatever is due at `now` (windows that closed, groups that aged).
    fn release_due(&mut self, now: Instant) -> Vec<Envelope>;

    /// When the next group falls due, if any is held.
    fn next_due(&self) -> Option<Instant>;

    /// Releases everything held (shutdown or end of input).
    fn release_all(&mut self) -> Vec<Envelope>;
}

/// Which events a packer applies to; the others pass straight through.
pub type PackerCondition = Box<dyn Fn(&Event) -> bool + Send + Sync>;

/// Merges events into one: the first one's header, messages joined with `\n`, the most severe
/// severity, structured data, tags and fields unioned, tokens joined.
///
/// ```
/// use loggr_core::{packer::merge, Envelope, Event, Severity};
///
/// let mut first = Event::new("java.lang.NullPointerException");
/// first.severity = Severity::Error;
/// let mut second = Event::new("\tat Foo.bar(Foo.java:42)");
/// second.severity = Severity::Critical;
/// let merged = merge(vec![Envelope::detached(first), Envelope::detached(second)]).unwrap();
/// assert_eq!(merged.event.message_str(), "java.lang.NullPointerException\n\tat Foo.bar(Foo.java:42)");
/// assert_eq!(merged.event.severity, Severity::Critical);
/// ```
pub fn merge(group: Vec<Envelope>) -> Option<Envelope> {
    if group.len() <= 1 {
        return group.into_iter().next();
    }
    let mut tokens = Vec::with_capacity(group.len());
    let mut events = Vec::with_capacity(group.len());
    for envelope in group {
        tokens.push(envelope.ack);
        events.push(envelope.event);
    }
    let mut events = events.into_iter();
    let mut merged = events.next()?;
    let mut message = merged.message_str().to_owned();
    for event in events {
        message.push('\n');
        message.push_str(event.message_str());
        merged.severity = merged.severity.min(event.severity);
        merged.structured_data.union(&event.structured_data);
        merged.tags.extend(event.tags);
        for (name, value) in event.fields {
            if !merged.fields.contains_key(&name) {
                merged.fields.insert(name, value);
            }
        }
    }
    merged.message = Some(Text::from(message));
    merged.raw = None;
    merged.add_tag("_merged");
    Some(Envelope::new(merged, AckToken::join(tokens)))
}

/// Runs a packer on a source's batches: `input` from the source, `output` to the pipeline.
pub(crate) async fn run_packer_stage(
    mut packer: Box<dyn Packer>,
    condition: Option<PackerCondition>,
    mut input: mpsc::Receiver<Batch>,
    output: mpsc::Sender<Batch>,
) {
    loop {
        let due = packer.next_due();
        let received = tokio::select! {
            batch = input.recv() => batch,
            () = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                let released = packer.release_due(Instant::now());
                if !released.is_empty() && output.send(released).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let Some(batch) = received else { break };
        let now = Instant::now();
        let mut released = Vec::with_capacity(batch.len());
        for envelope in batch {
            match &condition {
                Some(applies) if !applies(&envelope.event) => released.push(envelope),
                _ => released.extend(packer.push(envelope, now)),
            }
        }
        released.extend(packer.release_due(now));
        if !released.is_empty() && output.send(released).await.is_err() {
            return;
        }
    }
    let rest = packer.release_all();
    if !rest.is_empty() {
        let _ = output.send(rest).await;
    }
}

/// A window that closes `window` after the last event added, or `max_age` after the first.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// How long to wait for a next event.
    pub window: Duration,
    /// The longest a group may be held.
    pub max_age: Duration,
}

impl Window {
    /// When a group opened at `first` and last extended at `last` falls due.
    pub fn due(&self, first: Instant, last: Instant) -> Instant {
        (last + self.window).min(first + self.max_age)
    }
}
