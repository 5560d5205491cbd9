//! Acknowledgements: how a source learns that its events were durably taken.
//!
//! A source opens one [`AckGroup`] per upstream unit (a RELP transaction, an AMQP delivery, a
//! chunk of a file, a Redis item), takes one [`AckToken`] per event it emits from that unit,
//! and [seals](AckGroup::seal) the group. The [`AckWaiter`] it got with the group resolves to
//! the group's [`Outcome`] once every token was resolved, and the source then acknowledges
//! upstream (RELP `rsp 200`, AMQP `basic.ack`, a file offset, a Redis `LREM`) or not.
//!
//! Tokens travel with events inside an [`Envelope`](crate::Envelope). They are `#[must_use]`
//! and not `Clone`; a stage resolves a token with [`commit`](AckToken::commit) (only the sink
//! runner does, after the sink durably took the event), [`discard`](AckToken::discard) (an
//! intended drop: counts as done) or [`fail`](AckToken::fail). **Dropping a token without
//! resolving it means [`Outcome::Retry`]**: a bug or a crash can cause a resend, never a loss.
//! A group dropped before it was sealed resolves to `Retry` too.
//!
//! Fan-out [forks](AckToken::fork) a token per extra copy; a packer that merges several events
//! into one [joins](AckToken::join) their tokens, so the originals are acknowledged only when
//! the merged event is.
//!
//! Outcomes merge by the worst: `Delivered < Rejected < Retry`.
//!
//! ```
//! use loggr_core::ack::{AckGroup, Outcome};
//!
//! # futures::executor::block_on(async {
//! let (group, waiter) = AckGroup::new();
//! let first = group.token();
//! let second = group.token();
//! group.seal();
//! first.commit();
//! drop(second); // lost on the way: the upstream unit must be sent again
//! assert_eq!(waiter.await, Outcome::Retry);
//! # });
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::stream::{FuturesUnordered, StreamExt};
use futures::task::AtomicWaker;

/// What became of an event, or of a whole group of them.
///
/// Ordered from best to worst; [`merge`](Outcome::merge) keeps the worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Outcome {
    /// Every sink durably took it, or a filter dropped it on purpose.
    Delivered = 0,
    /// A sink refused it for good: sending it again would not help.
    Rejected = 1,
    /// It was not (known to be) taken: the upstream should send it again.
    Retry = 2,
}

impl Outcome {
    /// The worse of two outcomes.
    #[must_use]
    pub fn merge(self, other: Outcome) -> Outcome {
        self.max(other)
    }

    const fn from_u8(value: u8) -> Outcome {
        match value {
            0 => Outcome::Delivered,
            1 => Outcome::Rejected,
            _ => Outcome::Retry,
        }
    }
}

/// Why a stage could not deliver an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Failure {
    /// It might work later (a broker down, a timeout): maps to [`Outcome::Retry`].
    Transient,
    /// It will never work (a poison event): maps to [`Outcome::Rejected`].
    Permanent,
}

impl From<Failure> for Outcome {
    fn from(failure: Failure) -> Outcome {
        match failure {
            Failure::Transient => Outcome::Retry,
            Failure::Permanent => Outcome::Rejected,
        }
    }
}

/// The shared state of one group.
struct GroupState {
    /// Unresolved tokens, plus one for the unsealed group itself.
    pending: AtomicUsize,
    /// The worst outcome so far, as `Outcome as u8`.
    outcome: AtomicU8,
    /// Woken when `pending` reaches zero.
    waker: AtomicWaker,
    /// For joined groups: the original tokens, resolved with this group's outcome.
    joined: Mutex<Vec<AckToken>>,
}

impl GroupState {
    fn new(pending: usize) -> Arc<GroupState> {
        Arc::new(GroupState {
            pending: AtomicUsize::new(pending),
            outcome: AtomicU8::new(Outcome::Delivered as u8),
            waker: AtomicWaker::new(),
            joined: Mutex::new(Vec::new()),
        })
    }

    fn add_pending(&self) {
        self.pending.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one participant's outcome and completes the group when it was the last one.
    fn finish(&self, outcome: Outcome) {
        if outcome != Outcome::Delivered {
            self.outcome.fetch_max(outcome as u8, Ordering::AcqRel);
        }
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.complete();
        }
    }

    fn complete(&self) {
        let outcome = self.outcome();
        let joined = match self.joined.lock() {
            Ok(mut tokens) => std::mem::take(&mut *tokens),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for token in joined {
            token.resolve(outcome);
        }
        self.waker.wake();
    }

    fn outcome(&self) -> Outcome {
        Outcome::from_u8(self.outcome.load(Ordering::Acquire))
    }

    fn is_done(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }
}

/// The right (and duty) to say what became of one event.
///
/// Not `Clone`: use [`fork`](AckToken::fork) for a copy that must be resolved as well.
/// Dropping an unresolved token counts as [`Outcome::Retry`].
#[must_use = "an AckToken must be committed, discarded or failed; dropping it means Retry"]
pub struct AckToken {
    group: Option<Arc<GroupState>>,
}

impl AckToken {
    /// A token that nobody waits for, for sources that cannot acknowledge upstream (plain TCP,
    /// UDP, stdin). Resolving it does nothing, and it costs no allocation.
    pub const fn detached() -> AckToken {
        AckToken { group: None }
    }

    /// A token alone in a sealed group, with the waiter of that group: the common case of one
    /// event per upstream unit.
    pub fn single() -> (AckToken, AckWaiter) {
        let state = GroupState::new(1);
        (
            AckToken {
                group: Some(state.clone()),
            },
            AckWaiter { state },
        )
    }

    /// Whether nobody waits for this token.
    pub fn is_detached(&self) -> bool {
        self.group.is_none()
    }

    /// The event was durably taken by the sink that owns this token.
    pub fn commit(self) {
        self.resolve(Outcome::Delivered);
    }

    /// The event was dropped on purpose (for example by a filter): it counts as done.
    pub fn discard(self) {
        self.resolve(Outcome::Delivered);
    }

    /// The event could not be delivered.
    pub fn fail(self, failure: Failure) {
        self.resolve(failure.into());
    }

    /// Resolves the token with an explicit outcome.
    pub fn resolve(mut self, outcome: Outcome) {
        if let Some(group) = self.group.take() {
            group.finish(outcome);
        }
    }

    /// A second token for the same event (fan-out): the group completes only when both are
    /// resolved.
    pub fn fork(&self) -> AckToken {
        match &self.group {
            Some(group) => {
                group.add_pending();
                AckToken {
                    group: Some(group.clone()),
                }
            }
            None => AckToken::detached(),
        }
    }

    /// Merges several tokens into one: when the returned token is resolved, every original is
    /// resolved with the same outcome. Packers use this so that the lines they merged are
    /// acknowledged only when the merged event is.
    pub fn join(tokens: impl IntoIterator<Item = AckToken>) -> AckToken {
        let originals: Vec<AckToken> = tokens.into_iter().filter(|t| !t.is_detached()).collect();
        match originals.len() {
            0 => AckToken::detached(),
            1 => originals
                .into_iter()
                .next()
                .unwrap_or_else(AckToken::detached),
            _ => {
                let state = GroupState::new(1);
                match state.joined.lock() {
                    Ok(mut joined) => *joined = originals,
                    Err(poisoned) => *poisoned.into_inner() = originals,
                }
                AckToken { group: Some(state) }
            }
        }
    }
}

impl Drop for AckToken {
    fn drop(&mut self) {
        if let Some(group) = self.group.take() {
            group.finish(Outcome::Retry);
        }
    }
}

impl fmt::Debug for AckToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.group.is_some() {
            "AckToken"
        } else {
            "AckToken(detached)"
        })
    }
}

/// The tokens of one upstream unit, handed out before the group is sealed.
///
/// Dropping the group without [`seal`](AckGroup::seal)ing it resolves it as
/// [`Outcome::Retry`].
#[must_use = "an AckGroup must be sealed; dropping it means Retry"]
pub struct AckGroup {
    state: Option<Arc<GroupState>>,
}

impl AckGroup {
    /// Opens a group, with the waiter that resolves when it is complete.
    pub fn new() -> (AckGroup, AckWaiter) {
        let state = GroupState::new(1);
        (
            AckGroup {
                state: Some(state.clone()),
            },
            AckWaiter { state },
        )
    }

    /// A token for one event of this group.
    pub fn token(&self) -> AckToken {
        match &self.state {
            Some(state) => {
                state.add_pending();
                AckToken {
                    group: Some(state.clone()),
                }
            }
            None => AckToken::detached(),
        }
    }

    /// Says that every token was taken: the group completes when they are all resolved (at
    /// once, as `Delivered`, if no token was taken).
    pub fn seal(mut self) {
        if let Some(state) = self.state.take() {
            state.finish(Outcome::Delivered);
        }
    }
}

impl Drop for AckGroup {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            state.finish(Outcome::Retry);
        }
    }
}

impl fmt::Debug for AckGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AckGroup")
    }
}

/// Resolves to a group's [`Outcome`] once the group is sealed and all its tokens resolved.
///
/// # Cancel safety
///
/// Polling registers interest only; dropping the waiter loses nothing but the notification.
#[must_use = "futures do nothing unless polled"]
pub struct AckWaiter {
    state: Arc<GroupState>,
}

impl AckWaiter {
    /// The outcome, if the group is already complete.
    pub fn try_outcome(&self) -> Option<Outcome> {
        self.state.is_done().then(|| self.state.outcome())
    }
}

impl Future for AckWaiter {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        if let Some(outcome) = self.try_outcome() {
            return Poll::Ready(outcome);
        }
        self.state.waker.register(cx.waker());
        match self.try_outcome() {
            Some(outcome) => Poll::Ready(outcome),
            None => Poll::Pending,
        }
    }
}

impl fmt::Debug for AckWaiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckWaiter")
            .field("outcome", &self.try_outcome())
            .finish()
    }
}

/// Outstanding groups whose outcomes must be reported **in the order they were opened**
/// (RELP answers transactions in txnr order), bounded by a window.
///
/// ```
/// use loggr_core::ack::{AckToken, OrderedAcks, Outcome};
///
/// # futures::executor::block_on(async {
/// let mut acks = OrderedAcks::new(128);
/// let (first, w1) = AckToken::single();
/// let (second, w2) = AckToken::single();
/// acks.push(1, w1);
/// acks.push(2, w2);
/// second.commit();
/// first.fail(loggr_core::ack::Failure::Transient);
/// assert_eq!(acks.next().await, (1, Outcome::Retry));
/// assert_eq!(acks.next().await, (2, Outcome::Delivered));
/// # });
/// ```
pub struct OrderedAcks<K> {
    queue: VecDeque<(K, AckWaiter)>,
    window: usize,
}

impl<K> OrderedAcks<K> {
    /// An empty queue that reports [full](Self::is_full) at `window` outstanding groups.
    pub fn new(window: usize) -> Self {
        OrderedAcks {
            queue: VecDeque::with_capacity(window.min(4096)),
            window: window.max(1),
        }
    }

    /// Adds a group at the back.
    pub fn push(&mut self, key: K, waiter: AckWaiter) {
        self.queue.push_back((key, waiter));
    }

    /// How many groups are outstanding.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no group is outstanding.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether the window is full (stop reading more until an outcome was taken).
    pub fn is_full(&self) -> bool {
        self.queue.len() >= self.window
    }

    /// Polls for the oldest group's outcome.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<(K, Outcome)> {
        let Some((_, waiter)) = self.queue.front_mut() else {
            return Poll::Pending;
        };
        match Pin::new(waiter).poll(cx) {
            Poll::Ready(outcome) => match self.queue.pop_front() {
                Some((key, _)) => Poll::Ready((key, outcome)),
                None => Poll::Pending,
            },
            Poll::Pending => Poll::Pending,
        }
    }

    /// The oldest group's outcome, once it is known; pending forever while empty, so it can sit
    /// in a `select!` loop.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: a group leaves the queue only in the poll that returns it.
    pub async fn next(&mut self) -> (K, Outcome) {
        futures::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Takes every group whose outcome is already known, oldest first, stopping at the first
    /// one still pending.
    pub fn drain_ready(&mut self) -> impl Iterator<Item = (K, Outcome)> + '_ {
        std::iter::from_fn(move || {
            let outcome = self.queue.front()?.1.try_outcome()?;
            self.queue.pop_front().map(|(key, _)| (key, outcome))
        })
    }
}

impl<K> fmt::Debug for OrderedAcks<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrderedAcks")
            .field("len", &self.len())
            .field("window", &self.window)
            .finish()
    }
}

struct Keyed<K> {
    key: Option<K>,
    waiter: AckWaiter,
}

impl<K: Unpin> Future for Keyed<K> {
    type Output = (K, Outcome);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<(K, Outcome)> {
        let outcome = std::task::ready!(Pin::new(&mut self.waiter).poll(cx));
        match self.key.take() {
            Some(key) => Poll::Ready((key, outcome)),
            None => Poll::Pending,
        }
    }
}

/// Outstanding groups whose outcomes are reported **as they come** (AMQP acknowledges each
/// delivery tag on its own), bounded by a window.
pub struct UnorderedAcks<K> {
    pending: FuturesUnordered<Keyed<K>>,
    window: usize,
}

impl<K: Unpin> UnorderedAcks<K> {
    /// An empty set that reports [full](Self::is_full) at `window` outstanding groups.
    pub fn new(window: usize) -> Self {
        UnorderedAcks {
            pending: FuturesUnordered::new(),
            window: window.max(1),
        }
    }

    /// Adds a group.
    pub fn push(&mut self, key: K, waiter: AckWaiter) {
        self.pending.push(Keyed {
            key: Some(key),
            waiter,
        });
    }

    /// How many groups are outstanding.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no group is outstanding.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether the window is full.
    pub fn is_full(&self) -> bool {
        self.pending.len() >= self.window
    }

    /// The next group to complete; pending forever while empty.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe.
    pub async fn next(&mut self) -> (K, Outcome) {
        futures::future::poll_fn(|cx| match self.pending.poll_next_unpin(cx) {
            Poll::Ready(Some(done)) => Poll::Ready(done),
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        })
        .await
    }
}

impl<K> fmt::Debug for UnorderedAcks<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnorderedAcks")
            .field("len", &self.pending.len())
            .field("window", &self.window)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    const ALL: [Outcome; 3] = [Outcome::Delivered, Outcome::Rejected, Outcome::Retry];

    fn resolve_as(token: AckToken, outcome: Outcome) {
        token.resolve(outcome);
    }

    #[test]
    fn merge_keeps_the_worst_for_every_pair() {
        for a in ALL {
            for b in ALL {
                let expected = if a == Outcome::Retry || b == Outcome::Retry {
                    Outcome::Retry
                } else if a == Outcome::Rejected || b == Outcome::Rejected {
                    Outcome::Rejected
                } else {
                    Outcome::Delivered
                };
                assert_eq!(a.merge(b), expected, "{a:?} + {b:?}");
                // The group does the same merge, whatever the order of resolution.
                let (group, waiter) = AckGroup::new();
                let first = group.token();
                let second = group.token();
                group.seal();
                resolve_as(second, b);
                assert_eq!(waiter.try_outcome(), None, "one token is still out");
                resolve_as(first, a);
                assert_eq!(block_on(waiter), expected, "{a:?} + {b:?} in a group");
            }
        }
    }

    #[test]
    fn three_way_merge_in_a_group() {
        for a in ALL {
            for b in ALL {
                for c in ALL {
                    let (group, waiter) = AckGroup::new();
                    let tokens = [group.token(), group.token(), group.token()];
                    group.seal();
                    for (token, outcome) in tokens.into_iter().zip([a, b, c]) {
                        token.resolve(outcome);
                    }
                    assert_eq!(block_on(waiter), a.merge(b).merge(c));
                }
            }
        }
    }

    #[test]
    fn failures_map_to_outcomes_and_discard_counts_as_done() {
        let (token, waiter) = AckToken::single();
        token.fail(Failure::Permanent);
        assert_eq!(block_on(waiter), Outcome::Rejected);
        let (token, waiter) = AckToken::single();
        token.fail(Failure::Transient);
        assert_eq!(block_on(waiter), Outcome::Retry);
        let (token, waiter) = AckToken::single();
        token.discard();
        assert_eq!(block_on(waiter), Outcome::Delivered);
    }

    #[test]
    fn a_dropped_token_is_a_retry() {
        let (token, waiter) = AckToken::single();
        drop(token);
        assert_eq!(block_on(waiter), Outcome::Retry);
    }

    #[test]
    fn an_unsealed_group_is_a_retry() {
        let (group, waiter) = AckGroup::new();
        let token = group.token();
        token.commit();
        assert_eq!(waiter.try_outcome(), None, "the group is still open");
        drop(group);
        assert_eq!(block_on(waiter), Outcome::Retry);
    }

    #[test]
    fn a_sealed_empty_group_is_delivered_and_sealing_waits_for_tokens() {
        let (group, waiter) = AckGroup::new();
        group.seal();
        assert_eq!(block_on(waiter), Outcome::Delivered);

        let (group, waiter) = AckGroup::new();
        let token = group.token();
        group.seal();
        assert_eq!(waiter.try_outcome(), None);
        token.commit();
        assert_eq!(waiter.try_outcome(), Some(Outcome::Delivered));
    }

    #[test]
    fn fork_needs_both_copies() {
        let (token, waiter) = AckToken::single();
        let copy = token.fork();
        token.commit();
        assert_eq!(waiter.try_outcome(), None);
        copy.fail(Failure::Transient);
        assert_eq!(block_on(waiter), Outcome::Retry);
    }

    #[test]
    fn join_resolves_all_originals_only_when_the_merged_token_is() {
        for outcome in ALL {
            let (tokens, waiters): (Vec<_>, Vec<_>) = (0..3).map(|_| AckToken::single()).unzip();
            let merged = AckToken::join(tokens);
            for waiter in &waiters {
                assert_eq!(
                    waiter.try_outcome(),
                    None,
                    "nothing resolved before the merge"
                );
            }
            merged.resolve(outcome);
            for waiter in waiters {
                assert_eq!(block_on(waiter), outcome);
            }
        }
        // A dropped merged token is a Retry for every original.
        let (tokens, waiters): (Vec<_>, Vec<_>) = (0..2).map(|_| AckToken::single()).unzip();
        drop(AckToken::join(tokens));
        for waiter in waiters {
            assert_eq!(block_on(waiter), Outcome::Retry);
        }
    }

    #[test]
    fn detached_tokens_are_free_and_inert() {
        let token = AckToken::detached();
        assert!(token.is_detached());
        assert!(token.fork().is_detached());
        token.commit();
        assert!(AckToken::join([AckToken::detached(), AckToken::detached()]).is_detached());
    }

    #[test]
    fn ordered_acks_wait_for_the_head() {
        let mut acks = OrderedAcks::new(2);
        let (a, wa) = AckToken::single();
        let (b, wb) = AckToken::single();
        acks.push("a", wa);
        acks.push("b", wb);
        assert!(acks.is_full());
        b.commit();
        assert_eq!(acks.drain_ready().count(), 0, "b is done but a is not");
        a.commit();
        let ready: Vec<_> = acks.drain_ready().collect();
        assert_eq!(
            ready,
            vec![("a", Outcome::Delivered), ("b", Outcome::Delivered)]
        );
        assert!(acks.is_empty());
    }

    #[test]
    fn unordered_acks_report_as_they_come() {
        let mut acks = UnorderedAcks::new(8);
        let (a, wa) = AckToken::single();
        let (b, wb) = AckToken::single();
        acks.push(1u64, wa);
        acks.push(2u64, wb);
        b.commit();
        assert_eq!(block_on(acks.next()), (2, Outcome::Delivered));
        drop(a);
        assert_eq!(block_on(acks.next()), (1, Outcome::Retry));
    }

    #[test]
    fn tokens_resolve_across_threads() {
        let (group, waiter) = AckGroup::new();
        let tokens: Vec<AckToken> = (0..1000).map(|_| group.token()).collect();
        group.seal();
        let handles: Vec<_> = tokens
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                std::thread::spawn(move || {
                    if i == 777 {
                        t.fail(Failure::Permanent)
                    } else {
                        t.commit()
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(block_on(waiter), Outcome::Rejected);
    }
}
