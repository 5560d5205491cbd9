//! The vote semantics of BuzzSaw's stack: KEEP / NO_INTEREST / NEUTRAL interplay, a positive vote
//! never overturned, every filter running and seeing the earlier results, the tags of a
//! NO_INTEREST filter dropped, and a chain without voting filters keeping everything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;

use loggr_core::{Event, Filter, Verdict};
use loggr_filters::buzzsaw::{kept, Vote, VoteChain, VoteFilter, VoteTags, DEFAULT_VOTER};

/// A filter that always casts the same vote with the same tags, and records what it saw.
struct Scripted {
    name: String,
    vote: Vote,
    tags: Vec<&'static str>,
    can_keep: bool,
    seen: Mutex<Vec<Vec<(String, Vote)>>>,
}

impl Scripted {
    fn new(name: &str, vote: Vote, tags: &[&'static str]) -> Self {
        Scripted {
            name: name.to_owned(),
            vote,
            tags: tags.to_vec(),
            can_keep: true,
            seen: Mutex::new(Vec::new()),
        }
    }

    fn passive(mut self) -> Self {
        self.can_keep = false;
        self
    }
}

impl VoteFilter for &'static Scripted {
    fn name(&self) -> &str {
        &self.name
    }

    fn vote(&self, _event: &mut Event, earlier: &[(&str, Vote)], tags: &mut VoteTags) -> Vote {
        self.seen.lock().unwrap().push(
            earlier
                .iter()
                .map(|(name, vote)| ((*name).to_owned(), *vote))
                .collect(),
        );
        for tag in &self.tags {
            tags.push_static(tag);
        }
        self.vote
    }

    fn can_keep(&self) -> bool {
        self.can_keep
    }
}

fn leak(filter: Scripted) -> &'static Scripted {
    Box::leak(Box::new(filter))
}

fn chain(filters: &[&'static Scripted]) -> VoteChain {
    VoteChain::new(
        filters
            .iter()
            .map(|f| Box::new(*f) as Box<dyn VoteFilter>)
            .collect(),
    )
}

fn run(chain: &VoteChain) -> (Verdict, Vec<String>) {
    let mut event = Event::new("a line");
    let verdict = chain.apply(&mut event).unwrap();
    (verdict, event.tags.iter().map(|t| t.to_string()).collect())
}

#[test]
fn one_keep_keeps_the_event_with_its_tags() {
    let keep = leak(Scripted::new("a", Vote::Keep, &["a1", "a2"]));
    assert_eq!(
        run(&chain(&[keep])),
        (Verdict::Keep, vec!["a1".into(), "a2".into()])
    );
}

#[test]
fn no_keep_discards_the_event() {
    let no = leak(Scripted::new("a", Vote::NoInterest, &["a"]));
    let neutral = leak(Scripted::new("b", Vote::Neutral, &[]));
    assert_eq!(run(&chain(&[no, neutral])).0, Verdict::Discard);
}

#[test]
fn no_interest_drops_only_that_filters_tags() {
    let keep = leak(Scripted::new("a", Vote::Keep, &["kept_by_a", "shared"]));
    let no = leak(Scripted::new(
        "b",
        Vote::NoInterest,
        &["dropped_b", "shared"],
    ));
    let neutral = leak(Scripted::new("c", Vote::Neutral, &["neutral_c"]));
    let (verdict, tags) = run(&chain(&[keep, no, neutral]));
    assert_eq!(verdict, Verdict::Keep);
    // `shared` stays: filter a asked for it too.
    assert_eq!(tags, ["kept_by_a", "neutral_c", "shared"]);
}

#[test]
fn neutral_tags_are_kept_without_a_vote() {
    let neutral = leak(Scripted::new("n", Vote::Neutral, &["n"]));
    let keep = leak(Scripted::new("k", Vote::Keep, &["k"]));
    assert_eq!(
        run(&chain(&[neutral, keep])),
        (Verdict::Keep, vec!["k".into(), "n".into()])
    );
    // Neutral alone is no vote: the event is dropped (its tags are still shown on it).
    let keep_can = leak(Scripted::new("k2", Vote::NoInterest, &["gone"]));
    let neutral = leak(Scripted::new("n2", Vote::Neutral, &["n"]));
    assert_eq!(
        run(&chain(&[keep_can, neutral])),
        (Verdict::Discard, vec!["n".into()])
    );
}

#[test]
fn a_keep_is_never_overturned() {
    let keep = leak(Scripted::new("first", Vote::Keep, &["first"]));
    let no = leak(Scripted::new("second", Vote::NoInterest, &[]));
    let neutral = leak(Scripted::new("third", Vote::Neutral, &[]));
    let no_again = leak(Scripted::new("fourth", Vote::NoInterest, &["x"]));
    let (verdict, tags) = run(&chain(&[keep, no, neutral, no_again]));
    assert_eq!(verdict, Verdict::Keep);
    assert_eq!(tags, ["first"]);
}

#[test]
fn every_filter_runs_in_order_and_sees_the_earlier_results() {
    let a = leak(Scripted::new("a", Vote::Keep, &[]));
    let b = leak(Scripted::new("b", Vote::NoInterest, &[]));
    let c = leak(Scripted::new("c", Vote::Neutral, &[]));
    let d = leak(Scripted::new("d", Vote::Keep, &[]));
    run(&chain(&[a, b, c, d]));
    let seen = |f: &Scripted| f.seen.lock().unwrap().clone();
    assert_eq!(seen(a), vec![vec![]]);
    assert_eq!(seen(b), vec![vec![("a".to_owned(), Vote::Keep)]]);
    assert_eq!(
        seen(d),
        vec![vec![
            ("a".to_owned(), Vote::Keep),
            ("b".to_owned(), Vote::NoInterest),
            ("c".to_owned(), Vote::Neutral),
        ]]
    );
}

#[test]
fn long_chains_spill_off_the_stack_and_keep_every_result() {
    let filters: Vec<&'static Scripted> = (0..40)
        .map(|i| {
            let vote = if i == 7 { Vote::Keep } else { Vote::NoInterest };
            leak(Scripted::new(&format!("f{i}"), vote, &[]))
        })
        .collect();
    assert_eq!(run(&chain(&filters)).0, Verdict::Keep);
    let last = filters.last().unwrap().seen.lock().unwrap().clone();
    assert_eq!(last[0].len(), 39);
    assert_eq!(last[0][7], ("f7".to_owned(), Vote::Keep));
    assert_eq!(last[0][38].0, "f38");
}

#[test]
fn with_no_voting_filters_everything_is_kept() {
    let empty = VoteChain::new(Vec::new());
    assert!(empty.keeps_all());
    assert_eq!(run(&empty).0, Verdict::Keep);
    // Only filters that can never vote KEEP: still everything is kept, and they see the
    // implicit default KEEP first (BuzzSaw's starting count).
    let passive = leak(Scripted::new("p", Vote::NoInterest, &["p"]).passive());
    let chain = chain(&[passive]);
    assert!(chain.keeps_all());
    assert_eq!(run(&chain), (Verdict::Keep, vec![]));
    assert_eq!(
        passive.seen.lock().unwrap()[0],
        vec![(DEFAULT_VOTER.to_owned(), Vote::Keep)]
    );
}

#[test]
fn a_chain_with_a_voting_filter_does_not_keep_all() {
    let voter = leak(Scripted::new("v", Vote::NoInterest, &[]));
    let passive = leak(Scripted::new("p", Vote::Neutral, &[]).passive());
    let chain = chain(&[voter, passive]);
    assert!(!chain.keeps_all());
    assert_eq!(run(&chain).0, Verdict::Discard);
}

#[test]
fn kept_reads_the_earlier_results() {
    assert!(!kept(&[]));
    assert!(!kept(&[("a", Vote::Neutral), ("b", Vote::NoInterest)]));
    assert!(kept(&[("a", Vote::NoInterest), ("b", Vote::Keep)]));
    assert_eq!(
        (
            Vote::Keep.value(),
            Vote::NoInterest.value(),
            Vote::Neutral.value()
        ),
        (1, 0, -1)
    );
}

#[test]
fn keep_uninteresting_passes_unvoted_events_on_with_the_same_tags() {
    let uninterested: &'static Scripted = Box::leak(Box::new(Scripted::new(
        "meh",
        Vote::NoInterest,
        &["dropped-tag"],
    )));
    let neutral: &'static Scripted = Box::leak(Box::new(Scripted::new(
        "tagger",
        Vote::Neutral,
        &["kept-tag"],
    )));
    let selecting = VoteChain::new(vec![Box::new(uninterested), Box::new(neutral)]);
    let tagging =
        VoteChain::new(vec![Box::new(uninterested), Box::new(neutral)]).keep_uninteresting(true);

    let mut selected = Event::new("nothing to see");
    assert_eq!(selecting.apply(&mut selected).unwrap(), Verdict::Discard);
    let mut tagged = Event::new("nothing to see");
    assert_eq!(tagging.apply(&mut tagged).unwrap(), Verdict::Keep);
    // Same votes, same tags: only the verdict differs.
    assert_eq!(tagged.tags, selected.tags);
    assert!(tagged.has_tag("kept-tag") && !tagged.has_tag("dropped-tag"));
}
