//! [`Envelope`]: an event together with its acknowledgement token, the unit that moves between
//! pipeline stages.

use crate::ack::AckToken;
use crate::event::Event;

/// An event on its way through the pipeline, with the token that reports its fate upstream.
#[derive(Debug)]
pub struct Envelope {
    /// The event.
    pub event: Event,
    /// Its acknowledgement token.
    pub ack: AckToken,
}

impl Envelope {
    /// Puts an event and its token together.
    pub fn new(event: Event, ack: AckToken) -> Self {
        Envelope { event, ack }
    }

    /// An event nobody waits for (sources without acknowledgements).
    pub fn detached(event: Event) -> Self {
        Envelope {
            event,
            ack: AckToken::detached(),
        }
    }
}

/// What the pipeline's channels carry: several envelopes at once, so the per-event cost of a
/// channel hop is amortised.
pub type Batch = Vec<Envelope>;
