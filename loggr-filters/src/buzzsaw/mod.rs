//! BuzzSaw's voting filter stack: a [`VoteChain`] of [`VoteFilter`]s, and the bundled filters
//! [`Ssh`], [`Kernel`], [`Cosign`], [`Sleep`] and [`UserClassifier`].
//!
//! [BuzzSaw](https://www.lcfg.org/doc/buzzsaw/) stored only the log events that some filter
//! declared an interest in. Each filter of the stack looks at the event in turn and returns a
//! [`Vote`] with some tags:
//!
//! | vote | value | effect |
//! |---|---|---|
//! | [`Vote::Keep`] | 1 | the event is kept; the filter's tags are attached |
//! | [`Vote::NoInterest`] | 0 | no vote; the filter's tags are dropped |
//! | [`Vote::Neutral`] | -1 | no vote; the filter's tags are attached |
//!
//! Every filter runs, in order, and sees the `(filter, vote)` results of the filters before it.
//! A positive vote is never overturned: nothing a later filter returns can take a `Keep` back.
//! The event is kept if and only if some filter voted `Keep`; otherwise the chain returns
//! [`Verdict::Discard`], an intended drop that counts as delivered.
//!
//! # Choices
//!
//! - **A filter for another program abstains.** BuzzSaw's gated filters (SSH, Kernel, Cosign,
//!   Sleep) returned "no interest" both for a non-matching line of their own program and for
//!   any other program's line. Here they vote [`Vote::NoInterest`] only for their own program's
//!   lines, and [`Vote::Neutral`] without tags for the others: the outcome is the same (neither
//!   counts as a vote, and there are no tags to keep or drop), but a later filter reading
//!   `earlier` can tell "SSH looked at this sshd line and did not want it" from "not an sshd
//!   line". [`UserClassifier`] likewise abstains (`Neutral`, no tags) when it does not apply.
//! - **"No voting filters" means no filter that can vote `Keep`.** BuzzSaw's importer kept
//!   everything when its stack was empty, by starting its vote count at 1. A chain in which no
//!   filter can ever vote `Keep` (see [`VoteFilter::can_keep`]; an empty chain, or
//!   `["user_classifier"]` alone) would otherwise drop every event, so it keeps everything
//!   instead, and its filters see a first `earlier` entry `("default", Keep)`, the counterpart
//!   of BuzzSaw's starting count.
//! - **Tags are attached at the end**, once every filter has voted, also to a discarded event
//!   (the `parse` tool shows them). Fields (`userid`, `source_address`, …) are set by a filter
//!   directly on the event, as BuzzSaw set `userid` and `extra_info`; the bundled filters set
//!   them only when they vote `Keep`.
//! - `userid` is a field (BuzzSaw had a column): the classifier reads the `userid` field.
//! - The Cosign pattern takes any non-blank address (`\S+`), not only IPv4 as BuzzSaw did.
//!
//! # Configuration
//!
//! ```toml
//! [[filters]]
//! type = "buzzsaw"
//! filters = ["ssh", "kernel", "cosign", "sleep", "user_classifier"]   # the default
//!
//! [filters.user_classifier]
//! people_group = "people"
//! nonpersonal_file = "/usr/share/buzzsaw/data/nonpersonal.txt"
//! ```
//!
//! # Speed
//!
//! Every bundled filter compares the program name before it looks at the message, and then a
//! literal prefix before it runs a regex; a line no filter wants costs a few string comparisons
//! and no allocation (the `earlier` results live on the stack for chains of up to 16 filters).

use std::fmt;

use loggr_core::{BoxError, BuildContext, Event, Filter, FilterConfig, FilterError, Text, Verdict};
use serde::Deserialize;

mod cosign;
mod kernel;
mod sleep;
mod ssh;
mod user_classifier;

pub use cosign::Cosign;
pub use kernel::Kernel;
pub use sleep::Sleep;
pub use ssh::Ssh;
pub use user_classifier::{UserClass, UserClassifier, UserClassifierConfig};

/// A filter's vote on one event (BuzzSaw's `VOTE_KEEP`, `VOTE_NO_INTEREST`, `VOTE_NEUTRAL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Vote {
    /// Keep the event, with this filter's tags (1).
    Keep,
    /// Not interested: no vote, and this filter's tags are dropped (0).
    NoInterest,
    /// No vote, but this filter's tags are attached if the event is kept (-1).
    Neutral,
}

impl Vote {
    /// BuzzSaw's number for the vote: 1, 0 or -1.
    pub const fn value(self) -> i8 {
        match self {
            Vote::Keep => 1,
            Vote::NoInterest => 0,
            Vote::Neutral => -1,
        }
    }
}

impl fmt::Display for Vote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Vote::Keep => "keep",
            Vote::NoInterest => "no_interest",
            Vote::Neutral => "neutral",
        })
    }
}

/// Whether any of the earlier results is a [`Vote::Keep`] (the event is kept so far).
pub fn kept(earlier: &[(&str, Vote)]) -> bool {
    earlier.iter().any(|(_, vote)| *vote == Vote::Keep)
}

/// The tags a filter wants attached, collected while it votes.
///
/// The chain decides what happens to them from the vote: attached for `Keep` and `Neutral`,
/// dropped for `NoInterest`. Static tags cost no allocation.
#[derive(Debug, Default)]
pub struct VoteTags {
    tags: Vec<Text>,
}

impl VoteTags {
    /// Adds a static tag (no allocation for the text).
    pub fn push_static(&mut self, tag: &'static str) {
        self.tags.push(Text::from_static(tag));
    }

    /// Adds a tag.
    pub fn push(&mut self, tag: impl Into<Text>) {
        self.tags.push(tag.into());
    }

    /// How many tags were collected (by every filter so far, in a chain).
    pub fn len(&self) -> usize {
        self.tags.len()
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// The tags collected.
    pub fn iter(&self) -> impl Iterator<Item = &Text> + '_ {
        self.tags.iter()
    }

    fn truncate(&mut self, len: usize) {
        self.tags.truncate(len);
    }
}

/// One filter of a BuzzSaw stack: looks at an event and votes.
///
/// A vote filter is shaped after BuzzSaw's `check` method rather than loggr's [`Filter`]
/// because its decision is not its own: it only says how interested it is, the [`VoteChain`]
/// combines the votes (a `Keep` is never overturned; one `Keep` is enough) and decides what
/// becomes of each filter's tags. A filter sees the results of the filters before it, so it can
/// act on them, as [`UserClassifier`] does: it runs only on events already kept.
///
/// Write one to add an in-house rule to a BuzzSaw stack:
///
/// ```
/// use loggr_core::{Event, Filter, Verdict};
/// use loggr_filters::buzzsaw::{Ssh, Vote, VoteChain, VoteFilter, VoteTags};
///
/// /// Keeps `sudo` lines, tagged.
/// struct Sudo;
///
/// impl VoteFilter for Sudo {
///     fn name(&self) -> &str {
///         "sudo"
///     }
///
///     fn vote(&self, event: &mut Event, _earlier: &[(&str, Vote)], tags: &mut VoteTags) -> Vote {
///         if event.app_name.as_deref() != Some("sudo") {
///             return Vote::Neutral; // not ours: abstain
///         }
///         tags.push_static("sudo");
///         Vote::Keep
///     }
/// }
///
/// let chain = VoteChain::new(vec![Box::new(Ssh::new()), Box::new(Sudo)]);
/// let mut event = Event::new("alice : TTY=pts/0 ; COMMAND=/bin/ls");
/// event.app_name = Some("sudo".into());
/// assert_eq!(chain.apply(&mut event).unwrap(), Verdict::Keep);
/// assert!(event.has_tag("sudo"));
/// let mut other = Event::new("hello");
/// assert_eq!(chain.apply(&mut other).unwrap(), Verdict::Discard);
/// ```
pub trait VoteFilter: Send + Sync + 'static {
    /// The filter's name, as later filters see it in `earlier`.
    fn name(&self) -> &str;

    /// Looks at (and may change) one event and votes; `earlier` holds the votes of the filters
    /// before this one, in order, and `tags` collects the tags this filter wants attached.
    fn vote(&self, event: &mut Event, earlier: &[(&str, Vote)], tags: &mut VoteTags) -> Vote;

    /// Whether this filter can ever vote [`Vote::Keep`]. A chain in which no filter can keeps
    /// every event (see the module docs).
    fn can_keep(&self) -> bool {
        true
    }
}

impl fmt::Debug for dyn VoteFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VoteFilter({})", self.name())
    }
}

/// How many `earlier` results a chain keeps on the stack before it allocates.
const INLINE: usize = 16;

/// The name of the implicit first `Keep` of a chain that keeps everything.
pub const DEFAULT_VOTER: &str = "default";

/// A BuzzSaw stack as one loggr [`Filter`]: runs every vote filter in order, attaches the tags
/// the votes allow, and keeps the event iff some filter voted [`Vote::Keep`]
/// ([`Verdict::Discard`] otherwise, an intended drop).
#[derive(Debug)]
pub struct VoteChain {
    name: String,
    filters: Vec<Box<dyn VoteFilter>>,
    keep_all: bool,
    keep_uninteresting: bool,
}

impl VoteChain {
    /// A chain named `buzzsaw` of these filters, in order.
    pub fn new(filters: Vec<Box<dyn VoteFilter>>) -> Self {
        VoteChain::named("buzzsaw", filters)
    }

    /// A chain with a name of its own (for logs and failure fields).
    pub fn named(name: impl Into<String>, filters: Vec<Box<dyn VoteFilter>>) -> Self {
        let keep_all = !filters.iter().any(|filter| filter.can_keep());
        VoteChain {
            name: name.into(),
            filters,
            keep_all,
            keep_uninteresting: false,
        }
    }

    /// With `true`, the chain only tags: events nobody voted to keep go on too (a parser
    /// stage that must store everything, as pyloggr's did, uses the votes' tags and fields
    /// without BuzzSaw's selection).
    #[must_use]
    pub fn keep_uninteresting(mut self, keep: bool) -> Self {
        self.keep_uninteresting = keep;
        self
    }

    /// BuzzSaw's stack with its defaults: SSH, Kernel, Cosign, Sleep and a UserClassifier
    /// reading `/etc/passwd` and `/etc/group`.
    ///
    /// # Errors
    ///
    /// When the account files cannot be read.
    pub fn buzzsaw() -> Result<Self, BuzzsawError> {
        BuzzsawConfig::default().chain("buzzsaw")
    }

    /// Whether the chain keeps every event (no filter of it can vote `Keep`).
    pub fn keeps_all(&self) -> bool {
        self.keep_all
    }

    /// The filters' names, in order.
    pub fn filter_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.filters.iter().map(|filter| filter.name())
    }

    /// Runs the vote over one event, attaches the tags, and returns whether it is kept.
    pub fn decide(&self, event: &mut Event) -> bool {
        let mut results = Results::new(self.filters.len() + usize::from(self.keep_all));
        let mut kept = self.keep_all;
        if self.keep_all {
            results.push((DEFAULT_VOTER, Vote::Keep));
        }
        let mut tags = VoteTags::default();
        for filter in &self.filters {
            let mark = tags.len();
            let vote = filter.vote(event, results.as_slice(), &mut tags);
            match vote {
                Vote::Keep => kept = true,
                Vote::NoInterest => tags.truncate(mark),
                Vote::Neutral => {}
            }
            results.push((filter.name(), vote));
        }
        for tag in tags.tags {
            event.tags.insert(tag);
        }
        kept
    }
}

/// The `(filter, vote)` results so far: on the stack for short chains.
struct Results<'a> {
    inline: [(&'a str, Vote); INLINE],
    len: usize,
    spilled: Vec<(&'a str, Vote)>,
}

impl<'a> Results<'a> {
    fn new(count: usize) -> Self {
        Results {
            inline: [("", Vote::Neutral); INLINE],
            len: 0,
            spilled: if count > INLINE {
                Vec::with_capacity(count)
            } else {
                Vec::new()
            },
        }
    }

    fn push(&mut self, entry: (&'a str, Vote)) {
        if self.spilled.capacity() == 0 {
            if let Some(slot) = self.inline.get_mut(self.len) {
                *slot = entry;
                self.len += 1;
                return;
            }
            self.spilled.extend_from_slice(&self.inline);
        }
        self.spilled.push(entry);
    }

    fn as_slice(&self) -> &[(&'a str, Vote)] {
        if self.spilled.capacity() == 0 {
            self.inline.get(..self.len).unwrap_or_default()
        } else {
            &self.spilled
        }
    }
}

impl Filter for VoteChain {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply(&self, event: &mut Event) -> Result<Verdict, FilterError> {
        Ok(if self.decide(event) || self.keep_uninteresting {
            Verdict::Keep
        } else {
            Verdict::Discard
        })
    }
}

/// A BuzzSaw stack could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuzzsawError {
    /// A regular expression of the configuration does not compile (the message shows the
    /// pattern with a caret under the bad part).
    #[error("bad pattern in `{field}`")]
    Pattern {
        /// The configuration field.
        field: &'static str,
        /// The compile error.
        #[source]
        source: regex::Error,
    },
    /// A file could not be read.
    #[error("cannot read `{field}` file {path}")]
    Read {
        /// The configuration field naming the file.
        field: &'static str,
        /// The path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A filter is listed twice.
    #[error("filter `{0}` is listed twice in `filters`")]
    Duplicate(BundledFilter),
}

/// A filter bundled with loggr, by its configuration name.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BundledFilter {
    /// [`Ssh`].
    Ssh,
    /// [`Kernel`].
    Kernel,
    /// [`Cosign`].
    Cosign,
    /// [`Sleep`].
    Sleep,
    /// [`UserClassifier`].
    UserClassifier,
}

impl fmt::Display for BundledFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BundledFilter::Ssh => "ssh",
            BundledFilter::Kernel => "kernel",
            BundledFilter::Cosign => "cosign",
            BundledFilter::Sleep => "sleep",
            BundledFilter::UserClassifier => "user_classifier",
        })
    }
}

fn default_filters() -> Vec<BundledFilter> {
    vec![
        BundledFilter::Ssh,
        BundledFilter::Kernel,
        BundledFilter::Cosign,
        BundledFilter::Sleep,
        BundledFilter::UserClassifier,
    ]
}

/// Configuration of the `buzzsaw` filter: BuzzSaw's voting stack. An event goes on iff one of
/// the filters votes to keep it; the others are dropped on purpose.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuzzsawConfig {
    /// The vote filters, in order: any of `ssh`, `kernel`, `cosign`, `sleep`,
    /// `user_classifier` (default: all five, in that order). An empty list keeps every event.
    #[serde(default = "default_filters")]
    pub filters: Vec<BundledFilter>,
    /// Settings of the `user_classifier` filter (`[filters.user_classifier]` under a
    /// `[[filters]]` table).
    #[serde(default)]
    pub user_classifier: UserClassifierConfig,
    /// Keep the events no filter voted for instead of dropping them (default `false`): the
    /// chain then only attaches tags and fields.
    #[serde(default)]
    pub keep_uninteresting: bool,
}

impl Default for BuzzsawConfig {
    fn default() -> Self {
        BuzzsawConfig {
            filters: default_filters(),
            user_classifier: UserClassifierConfig::default(),
            keep_uninteresting: false,
        }
    }
}

impl BuzzsawConfig {
    /// Builds the chain.
    ///
    /// # Errors
    ///
    /// A filter listed twice, a bad pattern, an unreadable file.
    pub fn chain(self, name: &str) -> Result<VoteChain, BuzzsawError> {
        let mut filters: Vec<Box<dyn VoteFilter>> = Vec::with_capacity(self.filters.len());
        for (index, filter) in self.filters.iter().enumerate() {
            if self
                .filters
                .get(..index)
                .unwrap_or_default()
                .contains(filter)
            {
                return Err(BuzzsawError::Duplicate(*filter));
            }
            filters.push(match filter {
                BundledFilter::Ssh => Box::new(Ssh::new()),
                BundledFilter::Kernel => Box::new(Kernel::new()),
                BundledFilter::Cosign => Box::new(Cosign::new()),
                BundledFilter::Sleep => Box::new(Sleep),
                BundledFilter::UserClassifier => {
                    Box::new(UserClassifier::new(&self.user_classifier)?)
                }
            });
        }
        Ok(VoteChain::named(name, filters).keep_uninteresting(self.keep_uninteresting))
    }
}

impl FilterConfig for BuzzsawConfig {
    fn build(self, cx: &BuildContext) -> Result<Box<dyn Filter>, BoxError> {
        Ok(Box::new(self.chain(&cx.name)?))
    }
}

/// Compiles one of the bundled patterns (tested, so a failure is a bug caught by the tests).
fn bundled(pattern: &str) -> regex::Regex {
    match regex::Regex::new(pattern) {
        Ok(regex) => regex,
        // The bundled patterns are constants covered by the unit tests; this arm cannot run.
        Err(error) => panic!("bundled pattern {pattern:?} does not compile: {error}"),
    }
}

/// Whether the event comes from `program`.
fn program_is(event: &Event, program: &str) -> bool {
    event.app_name.as_deref() == Some(program)
}

loggr_core::register_filter!("buzzsaw", BuzzsawConfig);

/// Keeps this file's registration in the final binary.
pub(crate) fn link() {}
