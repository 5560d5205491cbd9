//! The fast capture path: a grok pattern's captures found with the `regex` crate's lazy DFAs
//! (`regex-automata`), without a backtracker, for patterns whose only features beyond the
//! `regex` crate are look-arounds and atomic groups (all the bundled definitions but one).
//!
//! # How
//!
//! The pattern is parsed by fancy-regex's own parser (so both paths read the same tree) and
//! turned into a small tree of [`Node`]s. Its *relaxed* form (look-arounds match the empty
//! string, atomic groups are plain groups, nothing captures) is a regex for the `regex` crate
//! that matches everything the real pattern matches, and more. The leftmost start `s` of the
//! relaxed pattern is found first (no relaxed match: no match). From `s` the path a
//! backtracker would take through the real pattern is then *constructed*, node by node:
//!
//! - an alternation, `x?`, or a loop deciding whether to go on takes the first choice whose
//!   *check* matches here: the DFA of the relaxed choice followed by the relaxed rest of the
//!   pattern (its *continuation*, cut after [`CONT_LIMIT`] bytes);
//! - a *leaf* (a capture-free, look-around-free part) takes the end of its first path, its
//!   DFA's leftmost-first end; when a look-ahead follows it and fails there, the first path
//!   that passes it, from a captures engine running `leaf()ahead`;
//! - a repetition of one character class at the end of a leaf tries its ends in priority
//!   order (longest first when greedy) and takes the first that passes the look-ahead after
//!   it, if any, and the continuation check;
//! - a look-around is checked where it stands; an atomic group takes its content's first path
//!   (constructed with no continuation: what follows has no say in it); a capture records
//!   where its node started and ended.
//!
//! Whenever a step cannot go on (a leaf does not match, a look-around fails, no end of a class
//! repetition passes, a DFA meets non-ASCII text next to a Unicode `\b`, the work budget runs
//! out), the construction gives up instead of backtracking, and fancy-regex runs from `s`.
//! Giving up is never an answer.
//!
//! # Why the answer is the backtracker's
//!
//! Suppose the construction reaches the end of the pattern with the path `Q`. `Q` is a path of
//! the real pattern: each look-around on it was checked (in every iteration of a loop, since the
//! construction walks every iteration) and each atomic group on it took its content's first
//! path. Let `P` be the real pattern's first path from `s`, and take the first decision where
//! `Q` and `P` differ (both have the same prefix up to there):
//!
//! - a choice: each choice before `Q`'s failed its check, which matches everything "that
//!   choice, then the rest" can match (relaxed, and cut short: only more), so `P` cannot take
//!   it; `Q`'s choice leads to a complete match (`Q`), so `P`, trying choices in order, takes
//!   it;
//! - a leaf: `Q` took the first of the leaf's paths (passing the look-ahead after it, if any);
//!   it completes, so `P` takes it too. A class repetition: the same, with its ends in order.
//!   (Inside an atomic group, "complete" means reaching the end of the group.)
//!
//! So `Q = P`. No real match starts before `s` (it would be a relaxed match), so `Q` is the
//! match fancy-regex returns. This rests on the `regex` crate's leftmost-first semantics being
//! a backtracker's preference order (the end of a DFA's leftmost-first match is the end of the
//! first path), which holds except for repetitions of something that can match the empty
//! string; those are refused here.
//!
//! # Limits
//!
//! Patterns with back-references, conditionals and the other backtracking-only constructs;
//! captures inside a negative look-around or a look-behind; look-behinds whose body has no
//! fixed length in bytes; repetitions holding captures or look-arounds other than `?`, `*`,
//! `+`, `{n}` and `{n,}` with `n <= 3`; repetitions of something that can match the empty
//! string; Oniguruma-only anchors (`\Z`, `^` in multi-line mode) keep the fancy-regex path
//! (with the relaxed prefilter of `expand::relax`).

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use fancy_regex::internal::{FLAG_DOTNL, FLAG_ONIGURUMA_MODE, FLAG_UNICODE};
use fancy_regex::{Assertion, Expr, LookAround};
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::pool::Pool;
use regex_automata::util::syntax;
use regex_automata::{meta, Anchored, Input};

/// How much DFA work one line may cost before the construction gives up (and fancy-regex,
/// with its own step budget, takes over). A DFA run costs 1, plus 1 per 256 bytes it may scan.
const BUDGET: usize = 4096;

/// Repetitions holding captures or look-arounds are unrolled at most this many times.
const MAX_UNROLL: usize = 3;

/// A check carries at most this many bytes of continuation (whole pieces, nearest first). A
/// shorter continuation matches more, so a failed check still proves that the full one fails;
/// a check that passes wrongly only makes the construction give up later. Small checks build
/// faster and scan less.
const CONT_LIMIT: usize = 512;

/// Why a pattern has no fast path (for the debug log).
#[derive(Debug)]
pub(crate) struct Unsupported(pub(crate) &'static str);

/// The construction gave up on this line: run fancy-regex.
#[derive(Debug)]
struct GiveUp;

/// What the fast path made of one line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FastOutcome {
    /// The match, as the capture spans (capture `i` is the expansion's `_g{i}`).
    Matched(Vec<Option<Range<usize>>>),
    /// The pattern does not match (the relaxed pattern does not).
    NoMatch,
    /// Undecided: run fancy-regex from this offset (the relaxed pattern's leftmost start,
    /// never after the real one).
    Fallback(usize),
}

/// A node of the construction tree.
#[derive(Debug)]
enum Node {
    /// Exactly these bytes.
    Literal(Box<[u8]>),
    /// A capture-free, look-around-free part: its first path, by DFA; with a guard, its first
    /// path after which the look-ahead that follows it holds.
    Leaf { dfa: usize, guard: Option<Guard> },
    /// `class{min,max}` (greedy or lazy) with the continuation check after it (`None`: the
    /// pattern ends here, anything completes).
    ClassRepeat {
        class: usize,
        min: usize,
        max: usize,
        greedy: bool,
        check: Option<usize>,
        /// The look-ahead right after it, which an end must also pass.
        guard: Option<usize>,
    },
    /// In order.
    Concat(Vec<Node>),
    /// The first choice whose check passes (`None`: take it); the last has `None`.
    Alt(Vec<(Node, Option<usize>)>),
    /// `body*`: greedy, go on while "body, the loop, the continuation" matches; lazy, stop as
    /// soon as the continuation (`check`) matches.
    Star {
        body: Box<Node>,
        greedy: bool,
        check: Option<usize>,
    },
    /// Capture `slot` spans what `child` matched.
    Capture { slot: usize, child: Box<Node> },
    /// A look-around assertion, checked where it stands.
    Look(usize),
    /// A look-ahead holding captures: its content's first path, which sets the captures
    /// but consumes nothing.
    Ahead(Box<Node>),
}

/// The look-ahead that follows a leaf, and the engine that finds the leaf's first path
/// passing it when the leaf's first path does not.
#[derive(Debug)]
struct Guard {
    look: usize,
    /// `leaf()then` with `then` the look-ahead as a consuming pattern, for the captures
    /// engines (`None`: not expressible, give up instead).
    retry: Option<usize>,
}

/// A look-around: its body's DFA, the body's length when it looks behind, its polarity.
#[derive(Debug)]
struct Look {
    dfa: usize,
    behind: Option<usize>,
    negative: bool,
}

/// A one-character class: its DFA (for non-ASCII characters) and an ASCII table.
#[derive(Debug)]
struct Class {
    dfa: usize,
    ascii: [bool; 128],
    /// Every character matches (`.` with "dot matches newline").
    all: bool,
}

/// The rest of the pattern after a node, as relaxed regex pieces, nearest first.
#[derive(Clone, Debug, Default)]
struct Cont(Option<Rc<(String, Cont)>>);

impl Cont {
    fn then(&self, first: String) -> Cont {
        if first.is_empty() {
            self.clone()
        } else {
            Cont(Some(Rc::new((first, self.clone()))))
        }
    }

    /// Appends the nearest pieces, as long as they add at most [`CONT_LIMIT`] bytes.
    fn render(&self, out: &mut String) {
        let limit = out.len() + CONT_LIMIT;
        let mut at = self;
        while let Some(piece) = &at.0 {
            if out.len() + piece.0.len() > limit {
                break;
            }
            out.push_str(&piece.0);
            at = &piece.1;
        }
    }
}

/// A DFA, built when first needed (most checks of most patterns never run on a given
/// stream, and a pattern list compiles many patterns).
#[derive(Debug)]
struct LazyDfa {
    regex: String,
    built: OnceLock<Option<DFA>>,
}

impl LazyDfa {
    fn get(&self) -> Option<&DFA> {
        self.built
            .get_or_init(|| {
                DFA::builder()
                    .configure(DFA::config().unicode_word_boundary(true))
                    .thompson(thompson::Config::new().which_captures(WhichCaptures::None))
                    .build(&self.regex)
                    .ok()
            })
            .as_ref()
    }
}

/// A `regex-automata` captures engine (for guarded leaves), built when first needed.
#[derive(Debug)]
struct LazyMeta {
    regex: String,
    built: OnceLock<Option<meta::Regex>>,
}

impl LazyMeta {
    fn get(&self) -> Option<&meta::Regex> {
        self.built
            .get_or_init(|| meta::Regex::new(&self.regex).ok())
            .as_ref()
    }
}

type Caches = Vec<Option<Cache>>;
type CacheFn = Box<dyn Fn() -> Caches + Send + Sync + UnwindSafe + RefUnwindSafe>;

/// A grok pattern's fast path (see the [module documentation](self)).
pub(crate) struct FastPath {
    /// The relaxed pattern without a trailing `.*`: its leftmost start.
    find: meta::Regex,
    root: Node,
    dfas: Vec<LazyDfa>,
    retries: Vec<LazyMeta>,
    classes: Vec<Class>,
    looks: Vec<Look>,
    slots: usize,
    caches: Pool<Caches, CacheFn>,
}

impl fmt::Debug for FastPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FastPath")
            .field("root", &self.root)
            .field("dfas", &self.dfas.len())
            .finish_non_exhaustive()
    }
}

impl FastPath {
    /// The fast path of an expanded pattern (in the dialect given to fancy-regex, with
    /// "dot matches newline" and Oniguruma mode) whose captures are the groups `_g0`,
    /// `_g1`, … (`slots` of them).
    pub(crate) fn new(regex: &str, slots: usize) -> Result<FastPath, Unsupported> {
        let tree =
            Expr::parse_tree_with_flags(regex, FLAG_DOTNL | FLAG_UNICODE | FLAG_ONIGURUMA_MODE)
                .map_err(|_| Unsupported("fancy-regex cannot parse it"))?;
        if !tree.backrefs.is_empty() || tree.contains_subroutines {
            return Err(Unsupported("back-references or subroutine calls"));
        }
        let mut by_index = HashMap::new();
        for (name, indices) in &tree.named_groups {
            let slot = name
                .strip_prefix("_g")
                .and_then(|number| number.parse::<usize>().ok())
                .filter(|&slot| slot < slots);
            if let Some(slot) = slot {
                for &index in indices {
                    by_index.insert(index, slot);
                }
            }
        }
        let mut groups = HashMap::new();
        let mut next = 1;
        number_groups(&tree.expr, &mut next, &by_index, &mut groups);
        if groups.len() != by_index.len() {
            return Err(Unsupported("capture groups numbered unlike fancy-regex"));
        }
        let mut builder = Builder {
            groups,
            dfas: Vec::new(),
            memo: HashMap::new(),
            retries: Vec::new(),
            classes: Vec::new(),
            looks: Vec::new(),
        };
        let root = builder.node(&tree.expr, &Cont::default())?;
        let find_expr = strip_to_end(&tree.expr);
        let find_regex = relaxed(find_expr.as_ref().unwrap_or(&tree.expr))?;
        let find = meta::Builder::new()
            .configure(meta::Config::new().which_captures(WhichCaptures::Implicit))
            .build(&find_regex)
            .map_err(|_| Unsupported("the relaxed pattern does not compile"))?;
        let count = builder.dfas.len();
        let create: CacheFn = Box::new(move || (0..count).map(|_| None).collect());
        let mut fast = FastPath {
            find,
            root,
            dfas: builder.dfas,
            retries: builder.retries,
            classes: builder.classes,
            looks: builder.looks,
            slots,
            caches: Pool::new(create),
        };
        fast.fill_class_tables()?;
        Ok(fast)
    }

    fn fill_class_tables(&mut self) -> Result<(), Unsupported> {
        for class in &mut self.classes {
            let dfa = self.dfas[class.dfa]
                .get()
                .ok_or(Unsupported("a character class does not compile"))?;
            let mut cache = dfa.create_cache();
            for byte in 0..128u8 {
                let text = [byte];
                let input = Input::new(&text[..]).anchored(Anchored::Yes);
                class.ascii[usize::from(byte)] = matches!(
                    dfa.try_search_fwd(&mut cache, &input),
                    Ok(Some(found)) if found.offset() == 1
                );
            }
        }
        Ok(())
    }

    /// Searches `text`. `verify` is always `true` outside tests: with `false` the look-around
    /// checks are skipped (a test shows that this gives wrong answers).
    pub(crate) fn search(&self, text: &str, verify: bool) -> FastOutcome {
        let Some(found) = self.find.find(text) else {
            return FastOutcome::NoMatch;
        };
        let start = found.start();
        let mut caches = self.caches.get();
        let mut run = Run {
            text,
            caches: &mut caches,
            slots: vec![None; self.slots],
            budget: BUDGET,
            verify,
        };
        match self.walk(&self.root, &mut run, start) {
            Ok(_) => FastOutcome::Matched(run.slots),
            Err(GiveUp) => FastOutcome::Fallback(start),
        }
    }

    fn walk(&self, node: &Node, run: &mut Run<'_, '_>, at: usize) -> Result<usize, GiveUp> {
        match node {
            Node::Literal(bytes) => {
                if run.text.as_bytes()[at..].starts_with(bytes) {
                    Ok(at + bytes.len())
                } else {
                    Err(GiveUp)
                }
            }
            Node::Leaf { dfa, guard } => {
                let end = self.dfa(run, *dfa, at, false)?.ok_or(GiveUp)?;
                match guard {
                    Some(guard) if !self.look_holds(run, &self.looks[guard.look], end)? => {
                        self.retry(run, guard.retry.ok_or(GiveUp)?, at)
                    }
                    _ => Ok(end),
                }
            }
            Node::ClassRepeat {
                class,
                min,
                max,
                greedy,
                check,
                guard,
            } => {
                let ends = Ends {
                    min: *min,
                    max: *max,
                    greedy: *greedy,
                    check: *check,
                    guard: *guard,
                };
                self.class_repeat(run, &self.classes[*class], at, &ends)
            }
            Node::Concat(nodes) => {
                let mut at = at;
                for node in nodes {
                    at = self.walk(node, run, at)?;
                }
                Ok(at)
            }
            Node::Alt(choices) => {
                for (choice, check) in choices {
                    if self.feasible(run, *check, at)? {
                        return self.walk(choice, run, at);
                    }
                }
                Err(GiveUp)
            }
            Node::Star {
                body,
                greedy,
                check,
            } => {
                let mut at = at;
                loop {
                    let feasible = self.feasible(run, *check, at)?;
                    // Greedy: the check is "one more iteration"; lazy: "stop here".
                    if feasible != *greedy {
                        return Ok(at);
                    }
                    // The body cannot match empty (checked when building): this ends.
                    at = self.walk(body, run, at)?;
                }
            }
            Node::Capture { slot, child } => {
                let end = self.walk(child, run, at)?;
                run.slots[*slot] = Some(at..end);
                Ok(end)
            }
            Node::Look(look) => {
                if !run.verify || self.look_holds(run, &self.looks[*look], at)? {
                    Ok(at)
                } else {
                    Err(GiveUp)
                }
            }
            Node::Ahead(child) => {
                self.walk(child, run, at)?;
                Ok(at)
            }
        }
    }

    /// Runs DFA `dfa` anchored at `at`: the end of its first path (or, `earliest`, of any).
    fn dfa(
        &self,
        run: &mut Run<'_, '_>,
        dfa: usize,
        at: usize,
        earliest: bool,
    ) -> Result<Option<usize>, GiveUp> {
        let cost = 1 + (run.text.len() - at) / 256;
        run.budget = run.budget.checked_sub(cost).ok_or(GiveUp)?;
        let input = Input::new(run.text)
            .range(at..)
            .anchored(Anchored::Yes)
            .earliest(earliest);
        let engine = self.dfas[dfa].get().ok_or(GiveUp)?;
        let cache = run.caches[dfa].get_or_insert_with(|| engine.create_cache());
        match engine.try_search_fwd(cache, &input) {
            Ok(found) => Ok(found.map(|found| found.offset())),
            // A Unicode word boundary next to non-ASCII text, or a thrashing cache.
            Err(_) => Err(GiveUp),
        }
    }

    /// The end of a guarded leaf's first path that passes its look-ahead.
    fn retry(&self, run: &mut Run<'_, '_>, retry: usize, at: usize) -> Result<usize, GiveUp> {
        let cost = 1 + (run.text.len() - at) / 256;
        run.budget = run.budget.checked_sub(cost).ok_or(GiveUp)?;
        let engine = self.retries[retry].get().ok_or(GiveUp)?;
        let input = Input::new(run.text).range(at..).anchored(Anchored::Yes);
        let mut slots = [None; 4];
        engine.search_slots(&input, &mut slots);
        slots[2].map(|end| end.get()).ok_or(GiveUp)
    }

    /// Whether a class repetition may end at `end`.
    fn may_end(&self, run: &mut Run<'_, '_>, ends: &Ends, end: usize) -> Result<bool, GiveUp> {
        if let Some(look) = ends.guard {
            if !self.look_holds(run, &self.looks[look], end)? {
                return Ok(false);
            }
        }
        self.feasible(run, ends.check, end)
    }

    fn feasible(
        &self,
        run: &mut Run<'_, '_>,
        check: Option<usize>,
        at: usize,
    ) -> Result<bool, GiveUp> {
        match check {
            None => Ok(true),
            Some(dfa) => Ok(self.dfa(run, dfa, at, true)?.is_some()),
        }
    }

    fn look_holds(&self, run: &mut Run<'_, '_>, look: &Look, at: usize) -> Result<bool, GiveUp> {
        let start = match look.behind {
            None => Some(at),
            Some(len) => at
                .checked_sub(len)
                .filter(|&start| run.text.is_char_boundary(start)),
        };
        let found = match start {
            // Fixed length: a match from `start` ends at `at`.
            Some(start) => self.dfa(run, look.dfa, start, true)?.is_some(),
            None => false,
        };
        Ok(found != look.negative)
    }

    /// The end of the character at `at` if `class` matches it.
    fn class_char(
        &self,
        run: &mut Run<'_, '_>,
        class: &Class,
        at: usize,
    ) -> Result<Option<usize>, GiveUp> {
        let Some(&byte) = run.text.as_bytes().get(at) else {
            return Ok(None);
        };
        if byte < 0x80 {
            return Ok(class.ascii[usize::from(byte)].then_some(at + 1));
        }
        if class.all {
            let len = run.text[at..].chars().next().map_or(1, char::len_utf8);
            return Ok(Some(at + len));
        }
        self.dfa(run, class.dfa, at, false)
    }

    fn class_repeat(
        &self,
        run: &mut Run<'_, '_>,
        class: &Class,
        at: usize,
        ends: &Ends,
    ) -> Result<usize, GiveUp> {
        let (min, max) = (ends.min, ends.max);
        let mut end = at;
        for _ in 0..min {
            end = self.class_char(run, class, end)?.ok_or(GiveUp)?;
        }
        let shortest = end;
        if ends.greedy {
            if class.all && max == usize::MAX {
                end = run.text.len();
            } else {
                let mut count = min;
                while count < max {
                    match self.class_char(run, class, end)? {
                        Some(next) => end = next,
                        None => break,
                    }
                    count += 1;
                }
            }
            // Longest first, one character back at a time.
            loop {
                if self.may_end(run, ends, end)? {
                    return Ok(end);
                }
                if end == shortest {
                    return Err(GiveUp);
                }
                end -= 1;
                while !run.text.is_char_boundary(end) {
                    end -= 1;
                }
            }
        } else {
            let mut count = min;
            loop {
                if self.may_end(run, ends, end)? {
                    return Ok(end);
                }
                if count == max {
                    return Err(GiveUp);
                }
                end = self.class_char(run, class, end)?.ok_or(GiveUp)?;
                count += 1;
            }
        }
    }
}

/// The possible ends of a class repetition.
struct Ends {
    min: usize,
    max: usize,
    greedy: bool,
    check: Option<usize>,
    guard: Option<usize>,
}

/// The state of one construction.
struct Run<'t, 'c> {
    text: &'t str,
    caches: &'c mut Caches,
    slots: Vec<Option<Range<usize>>>,
    budget: usize,
    verify: bool,
}

/// Numbers the capture groups as fancy-regex does (opening parenthesis order) and maps the
/// grok ones (by the address of their content) to their slot.
fn number_groups(
    expr: &Expr,
    next: &mut usize,
    by_index: &HashMap<usize, usize>,
    groups: &mut HashMap<*const Expr, usize>,
) {
    if let Expr::Group(inner) = expr {
        if let Some(&slot) = by_index.get(next) {
            groups.insert(Arc::as_ptr(inner), slot);
        }
        *next += 1;
    }
    for child in expr.children_iter() {
        number_groups(child, next, by_index, groups);
    }
}

struct Builder {
    groups: HashMap<*const Expr, usize>,
    dfas: Vec<LazyDfa>,
    memo: HashMap<String, usize>,
    retries: Vec<LazyMeta>,
    classes: Vec<Class>,
    looks: Vec<Look>,
}

impl Builder {
    fn node(&mut self, expr: &Expr, cont: &Cont) -> Result<Node, Unsupported> {
        if self.is_plain(expr) {
            let mut flat = Vec::new();
            flatten(expr, &mut flat);
            return self.plain_run(&flat, cont, None);
        }
        match expr {
            Expr::Concat(children) => self.sequence(children, cont),
            Expr::Alt(choices) => {
                let mut nodes = Vec::with_capacity(choices.len());
                for (index, choice) in choices.iter().enumerate() {
                    let check = if index + 1 < choices.len() {
                        self.check(relaxed(choice)?, cont)?
                    } else {
                        None
                    };
                    nodes.push((self.node(choice, cont)?, check));
                }
                Ok(Node::Alt(nodes))
            }
            Expr::Group(inner) => {
                let child = self.node(inner, cont)?;
                Ok(match self.groups.get(&Arc::as_ptr(inner)) {
                    Some(&slot) => Node::Capture {
                        slot,
                        child: Box::new(child),
                    },
                    None => child,
                })
            }
            Expr::LookAround(body, LookAround::LookAhead) if !self.is_plain(body) => {
                // Its content's first path: what follows the look-ahead has no say in it.
                Ok(Node::Ahead(Box::new(self.node(body, &Cont::default())?)))
            }
            Expr::LookAround(body, kind) => self.look(body, *kind),
            Expr::AtomicGroup(inner) if self.is_plain(inner) => {
                // Its first path, which is all an atomic group may take.
                // (No guard: an atomic group cannot give back for a look-ahead.)
                Ok(Node::Leaf {
                    dfa: self.dfa(relaxed(inner)?)?,
                    guard: None,
                })
            }
            // The first path of the content, whatever follows: constructed with no
            // continuation (it gives up rather than backtrack, like everything here).
            Expr::AtomicGroup(inner) => self.node(inner, &Cont::default()),
            Expr::Repeat {
                child,
                lo,
                hi,
                greedy,
            } => self.repeat(child, *lo, *hi, *greedy, cont),
            _ => Err(Unsupported("a construct the regex crate does not have")),
        }
    }

    /// A concatenation whose parts are not all plain.
    fn sequence(&mut self, children: &[Expr], cont: &Cont) -> Result<Node, Unsupported> {
        let mut conts = vec![cont.clone(); children.len()];
        for index in (0..children.len().saturating_sub(1)).rev() {
            conts[index] = conts[index + 1].then(relaxed(&children[index + 1])?);
        }
        let mut nodes = Vec::new();
        let mut index = 0;
        while index < children.len() {
            if self.is_plain(&children[index]) {
                let start = index;
                while index < children.len() && self.is_plain(&children[index]) {
                    index += 1;
                }
                let mut flat = Vec::new();
                for child in &children[start..index] {
                    flatten(child, &mut flat);
                }
                nodes.push(self.plain_run(&flat, &conts[index - 1], children.get(index))?);
            } else {
                nodes.push(self.node(&children[index], &conts[index])?);
                index += 1;
            }
        }
        Ok(match nodes.len() {
            1 => nodes.remove(0),
            _ => Node::Concat(nodes),
        })
    }

    /// Plain parts in a row, followed by `cont` (which starts with `after`): one leaf (or
    /// literal), and a class repetition split off the end, where its end meets the rest of
    /// the pattern. When `after` is a look-ahead, the last of them is guarded by it.
    fn plain_run(
        &mut self,
        parts: &[&Expr],
        cont: &Cont,
        after: Option<&Expr>,
    ) -> Result<Node, Unsupported> {
        let ahead = match after {
            Some(Expr::LookAround(
                body,
                kind @ (LookAround::LookAhead | LookAround::LookAheadNeg),
            )) if self.is_plain(body) => Some((&**body, *kind)),
            _ => None,
        };
        let mut nodes = Vec::new();
        let (body, last) = match parts.split_last() {
            Some((last, body)) if class_repeat(last).is_some() => (body, Some(*last)),
            _ => (parts, None),
        };
        if !body.is_empty() {
            let mut literal = Vec::new();
            let all_literal = body.iter().all(|part| match part {
                Expr::Literal { val, casei: false } => {
                    literal.extend_from_slice(val.as_bytes());
                    true
                }
                Expr::Empty => true,
                _ => false,
            });
            if all_literal {
                if !literal.is_empty() {
                    nodes.push(Node::Literal(literal.into()));
                }
            } else {
                let mut regex = String::new();
                for part in body {
                    regex.push_str(&relaxed(part)?);
                }
                let guard = match ahead {
                    Some((look, kind)) if last.is_none() => Some(self.guard(&regex, look, kind)?),
                    _ => None,
                };
                nodes.push(Node::Leaf {
                    dfa: self.dfa(regex)?,
                    guard,
                });
            }
        }
        if let Some((child, lo, hi, greedy)) = last.and_then(class_repeat) {
            let class = self.class(child)?;
            let check = self.check(String::new(), cont)?;
            let guard = match ahead {
                Some((look, kind)) => match self.look(look, kind)? {
                    Node::Look(look) => Some(look),
                    _ => None,
                },
                None => None,
            };
            nodes.push(Node::ClassRepeat {
                class,
                min: lo,
                max: hi,
                greedy,
                check,
                guard,
            });
        }
        Ok(match nodes.len() {
            1 => nodes.remove(0),
            _ => Node::Concat(nodes),
        })
    }

    fn repeat(
        &mut self,
        child: &Expr,
        lo: usize,
        hi: usize,
        greedy: bool,
        cont: &Cont,
    ) -> Result<Node, Unsupported> {
        if min_len(child) == 0 {
            return Err(Unsupported(
                "a repetition of something that can match empty",
            ));
        }
        let child_regex = relaxed(child)?;
        if (lo, hi) == (0, 1) {
            let empty = Node::Concat(Vec::new());
            return Ok(if greedy {
                let check = self.check(child_regex, cont)?;
                Node::Alt(vec![(self.node(child, cont)?, check), (empty, None)])
            } else {
                let check = self.check(String::new(), cont)?;
                Node::Alt(vec![(empty, check), (self.node(child, cont)?, None)])
            });
        }
        if lo > MAX_UNROLL || (hi != lo && hi != usize::MAX) {
            return Err(Unsupported(
                "a counted repetition holding captures or look-arounds",
            ));
        }
        // `x{n,}` is n copies and a star, `x{n}` n copies.
        let mut tail = cont.clone();
        let mut nodes = Vec::new();
        if hi == usize::MAX {
            let star = format!("(?:{child_regex})*{}", if greedy { "" } else { "?" });
            let body = self.node(child, &cont.then(star.clone()))?;
            let check = if greedy {
                self.check(format!("{child_regex}{star}"), cont)?
            } else {
                self.check(String::new(), cont)?
            };
            nodes.push(Node::Star {
                body: Box::new(body),
                greedy,
                check,
            });
            tail = tail.then(star);
        }
        for _ in 0..lo {
            nodes.push(self.node(child, &tail)?);
            tail = tail.then(child_regex.clone());
        }
        nodes.reverse();
        Ok(match nodes.len() {
            1 => nodes.remove(0),
            _ => Node::Concat(nodes),
        })
    }

    /// The guard of a leaf (`leaf`, relaxed) by the look-ahead `(?=body)` or `(?!body)`.
    fn guard(&mut self, leaf: &str, body: &Expr, kind: LookAround) -> Result<Guard, Unsupported> {
        let look = match self.look(body, kind)? {
            Node::Look(look) => look,
            _ => return Err(Unsupported("a look-ahead")),
        };
        // The look-ahead as something to match after the leaf; an empty group marks where
        // the leaf ended. A negative one only for a single character class: "another
        // character, or the end".
        let then = match kind {
            LookAround::LookAhead => Some(relaxed(body)?),
            _ if matches!(body, Expr::Any { newline: true, .. }) => Some("\\z".to_owned()),
            _ => negated(body).map(|class| format!("(?:{class}|\\z)")),
        };
        let retry = then.map(|then| {
            self.retries.push(LazyMeta {
                regex: format!("(?:{leaf})(){then}"),
                built: OnceLock::new(),
            });
            self.retries.len() - 1
        });
        Ok(Guard { look, retry })
    }

    fn look(&mut self, body: &Expr, kind: LookAround) -> Result<Node, Unsupported> {
        if !self.is_plain(body) {
            return Err(Unsupported(
                "a look-around holding captures or look-arounds",
            ));
        }
        let regex = relaxed(body)?;
        let behind = match kind {
            LookAround::LookAhead | LookAround::LookAheadNeg => None,
            LookAround::LookBehind | LookAround::LookBehindNeg => {
                let hir = syntax::parse(&regex)
                    .map_err(|_| Unsupported("a look-behind the regex crate cannot parse"))?;
                let properties = hir.properties();
                match (properties.minimum_len(), properties.maximum_len()) {
                    (Some(min), Some(max)) if min == max => Some(min),
                    _ => return Err(Unsupported("a look-behind of varying length")),
                }
            }
        };
        let dfa = self.dfa(regex)?;
        self.looks.push(Look {
            dfa,
            behind,
            negative: matches!(kind, LookAround::LookAheadNeg | LookAround::LookBehindNeg),
        });
        Ok(Node::Look(self.looks.len() - 1))
    }

    fn class(&mut self, child: &Expr) -> Result<usize, Unsupported> {
        let dfa = self.dfa(relaxed(child)?)?;
        self.classes.push(Class {
            dfa,
            ascii: [false; 128],
            all: matches!(child, Expr::Any { newline: true, .. }),
        });
        Ok(self.classes.len() - 1)
    }

    /// A check: the DFA of `first` then the continuation (`None`: it matches the empty
    /// string, so it passes everywhere).
    fn check(&mut self, mut first: String, cont: &Cont) -> Result<Option<usize>, Unsupported> {
        cont.render(&mut first);
        if first.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.dfa(first)?))
    }

    fn dfa(&mut self, regex: String) -> Result<usize, Unsupported> {
        if let Some(&id) = self.memo.get(&regex) {
            return Ok(id);
        }
        self.dfas.push(LazyDfa {
            regex: regex.clone(),
            built: OnceLock::new(),
        });
        self.memo.insert(regex, self.dfas.len() - 1);
        Ok(self.dfas.len() - 1)
    }

    /// Whether `expr` has no grok capture, no look-around and no atomic group that can
    /// backtrack differently from a plain group: the `regex` crate matches it as is.
    fn is_plain(&self, expr: &Expr) -> bool {
        match expr {
            Expr::Group(inner) => {
                !self.groups.contains_key(&Arc::as_ptr(inner)) && self.is_plain(inner)
            }
            Expr::LookAround(..) => false,
            Expr::AtomicGroup(inner) => single_path(inner) && self.is_plain(inner),
            _ => expr.children_iter().all(|child| self.is_plain(child)),
        }
    }
}

/// The characters a single-character `expr` does not match, as a class (`None`: not a
/// single-character class, or one this does not know how to negate).
fn negated(expr: &Expr) -> Option<String> {
    let (class, casei) = match expr {
        Expr::Delegate { inner, casei } if inner.starts_with('[') || inner.starts_with('\\') => {
            (format!("[^{inner}]"), *casei)
        }
        Expr::Literal { val, casei } if val.chars().count() == 1 => {
            let c = val.chars().next()?;
            (format!("[^\\x{{{:x}}}]", u32::from(c)), *casei)
        }
        Expr::Any {
            newline: false,
            crlf: false,
        } => ("\\n".to_owned(), false),
        _ => return None,
    };
    Some(if casei {
        format!("(?i:{class})")
    } else {
        class
    })
}

/// The parts of a plain expression in a row (nested concatenations opened).
fn flatten<'e>(expr: &'e Expr, out: &mut Vec<&'e Expr>) {
    match expr {
        Expr::Concat(children) => {
            for child in children {
                flatten(child, out);
            }
        }
        other => out.push(other),
    }
}

/// `(child, lo, hi, greedy)` when `expr` repeats a single-character class.
fn class_repeat(expr: &Expr) -> Option<(&Expr, usize, usize, bool)> {
    match expr {
        Expr::Repeat {
            child,
            lo,
            hi,
            greedy,
        } => match &**child {
            Expr::Delegate { .. } | Expr::Any { crlf: false, .. } => {
                Some((&**child, *lo, *hi, *greedy))
            }
            Expr::Literal { val, .. } if val.chars().count() == 1 => {
                Some((&**child, *lo, *hi, *greedy))
            }
            _ => None,
        },
        _ => None,
    }
}

/// Whether `expr` has at most one way to match from any position (so an atomic group around
/// it changes nothing): no alternation, no repetition of varying count.
fn single_path(expr: &Expr) -> bool {
    match expr {
        Expr::Empty
        | Expr::Any { .. }
        | Expr::Literal { .. }
        | Expr::Delegate { .. }
        | Expr::Assertion(_) => true,
        Expr::Concat(children) => children.iter().all(single_path),
        Expr::Repeat { child, lo, hi, .. } => lo == hi && single_path(child),
        Expr::Group(inner) => single_path(inner),
        Expr::AtomicGroup(inner) => single_path(inner),
        _ => false,
    }
}

/// The fewest characters `expr` can match (look-arounds and assertions match none).
fn min_len(expr: &Expr) -> usize {
    match expr {
        Expr::Any { .. } | Expr::Delegate { .. } | Expr::GeneralNewline { .. } => 1,
        Expr::Literal { val, .. } => val.chars().count(),
        Expr::LiteralBytes { bytes } => bytes.len(),
        Expr::Concat(children) => children.iter().map(min_len).sum(),
        Expr::Alt(choices) => choices.iter().map(min_len).min().unwrap_or(0),
        Expr::Group(inner) => min_len(inner),
        Expr::AtomicGroup(inner) => min_len(inner),
        Expr::Repeat { child, lo, .. } => min_len(child).saturating_mul(*lo),
        _ => 0,
    }
}

/// `expr` without a trailing greedy `.*` that matches newlines (a start of `expr` is a start
/// of what remains, and the other way round); `None` when there is none.
fn strip_to_end(expr: &Expr) -> Option<Expr> {
    match expr {
        Expr::Repeat {
            child,
            lo: 0,
            hi: usize::MAX,
            greedy: true,
        } if matches!(**child, Expr::Any { newline: true, .. }) => Some(Expr::Empty),
        Expr::Group(inner) => strip_to_end(inner).map(|inner| Expr::Group(Arc::new(inner))),
        Expr::Concat(children) => {
            let (last, rest) = children.split_last()?;
            let last = strip_to_end(last)?;
            let mut children = rest.to_vec();
            children.push(last);
            Some(Expr::Concat(children))
        }
        _ => None,
    }
}

/// `expr` in the `regex` crate's syntax, relaxed: look-arounds match the empty string, atomic
/// groups are plain groups, no group captures.
fn relaxed(expr: &Expr) -> Result<String, Unsupported> {
    let mut out = String::new();
    emit(expr, &mut out)?;
    Ok(out)
}

fn emit(expr: &Expr, out: &mut String) -> Result<(), Unsupported> {
    match expr {
        Expr::Empty | Expr::LookAround(..) => {}
        // Atoms, or (a literal) a concatenation: never an operand of a quantifier unwrapped.
        Expr::Any { crlf: false, .. } | Expr::Literal { .. } | Expr::Delegate { .. } => {
            expr.to_str(out, 0);
        }
        Expr::Assertion(assertion) => match assertion {
            Assertion::StartText
            | Assertion::EndText
            | Assertion::EndLine { crlf: false }
            | Assertion::WordBoundary
            | Assertion::NotWordBoundary
            | Assertion::LeftWordBoundary
            | Assertion::RightWordBoundary
            | Assertion::LeftWordHalfBoundary
            | Assertion::RightWordHalfBoundary => expr.to_str(out, 0),
            _ => return Err(Unsupported("an Oniguruma-only anchor")),
        },
        // A concatenation needs no group: quantifiers and alternations wrap their operands.
        Expr::Concat(children) => {
            for child in children {
                emit(child, out)?;
            }
        }
        Expr::Alt(choices) => {
            out.push_str("(?:");
            for (index, choice) in choices.iter().enumerate() {
                if index > 0 {
                    out.push('|');
                }
                emit(choice, out)?;
            }
            out.push(')');
        }
        Expr::Group(inner) => emit(inner, out)?,
        Expr::AtomicGroup(inner) => emit(inner, out)?,
        Expr::Repeat {
            child,
            lo,
            hi,
            greedy,
        } => {
            if *hi > 1 && min_len(child) == 0 {
                return Err(Unsupported(
                    "a repetition of something that can match empty",
                ));
            }
            out.push_str("(?:");
            emit(child, out)?;
            out.push(')');
            match (*lo, *hi) {
                (0, usize::MAX) => out.push('*'),
                (1, usize::MAX) => out.push('+'),
                (lo, usize::MAX) => out.push_str(&format!("{{{lo},}}")),
                (lo, hi) if lo == hi => out.push_str(&format!("{{{lo}}}")),
                (lo, hi) => out.push_str(&format!("{{{lo},{hi}}}")),
            }
            if !greedy {
                out.push('?');
            }
        }
        _ => return Err(Unsupported("a construct the regex crate does not have")),
    }
    Ok(())
}
