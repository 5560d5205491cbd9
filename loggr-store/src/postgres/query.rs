//! The PostgreSQL statement listing events (the web frontend's query page and exports):
//! constant SQL fragments and `$n` placeholders only — every value a user typed is a
//! parameter — shaped so that each filter can use an index in newest-first order (see
//! [`select`]).

use tokio_postgres::types::ToSql;

use crate::model::{contains_pattern, push_literal, EventFilter};

/// A SQL statement and its bind parameters.
pub struct Statement {
    /// The SQL text: constant fragments and `$n` placeholders only.
    pub sql: String,
    /// The values of the placeholders, in order.
    pub params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Statement {
    /// The parameters as `tokio_postgres` takes them.
    pub fn param_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// The columns of an event list row, over `e`: the event's own columns (`EVENT_COLUMNS`)
/// and its tags.
pub const LIST_COLUMNS: &str = "e.id, e.logtime, e.received_at, e.hostname, e.program, e.pid, \
     e.facility, e.severity, e.message, coalesce(e.tags, '{}') AS tags";

/// The `event` columns a list row shows (the inner selects of a severity filter return them).
const EVENT_COLUMNS: &str = "e.id, e.logtime, e.received_at, e.hostname, e.program, e.pid, \
     e.facility, e.severity, e.message, e.tags";

/// The order of every list: newest first, the id breaking ties (the keyset).
const NEWEST_FIRST: &str = "ORDER BY e.logtime DESC, e.id DESC";

/// A tag with fewer events than this is found through the `tag (name, event)` index (its
/// events looked up one by one, then filtered and sorted); a more common one is checked per
/// event of the ordered scan. The crossover: looking up `n` tagged events costs about what
/// scanning `page × total / n` events to find a page does (at 5 M events and pages of 50,
/// a few thousand).
pub const RARE_TAG_EVENTS: i64 = 2000;

/// The least severe severity a filter is split into per-severity branches for: `warning`.
/// Less severe thresholds (`notice`, `info`) match most of a syslog store's events, so that
/// the ordered scan finds a page at once, while the branches would cost one index range each
/// (`severity <= 6` over a month at 5 M events: 13 ms p50 with the scan, 40 ms with seven
/// branches, under 20 concurrent users).
pub const BRANCHED_SEVERITIES: i16 = 4;

/// What the statement may count on besides the migrations' indexes, and the thresholds
/// between its plans: [`select_planned`] changes how the statement is written by them, never
/// which rows it returns.
#[derive(Clone, Copy, Debug)]
pub struct Planning<'a> {
    /// A tag with fewer events than this is rare (see [`RARE_TAG_EVENTS`]).
    pub rare_tag_events: i64,
    /// Whether `event` has the `pg_trgm` GIN index on `message` (`loggr-sinks`'
    /// `create_search_index`, `SearchIndex::Trigram`): text is then also asked for as
    /// [`trigram_pattern`], which that index serves cheaply (see [`select`]).
    pub trigram_index: bool,
    /// What the messages look like: [`trigram_pattern`] leaves the words most of them
    /// contain out.
    pub messages: &'a MessageStats,
}

/// No statistics: every word counts as rare.
static NO_MESSAGE_STATS: MessageStats = MessageStats {
    common: Vec::new(),
    histogram: Vec::new(),
    histogram_share: 0.0,
};

impl Default for Planning<'static> {
    /// [`RARE_TAG_EVENTS`], no trigram index, no message statistics.
    fn default() -> Self {
        Planning {
            rare_tag_events: RARE_TAG_EVENTS,
            trigram_index: false,
            messages: &NO_MESSAGE_STATS,
        }
    }
}

/// A word in a larger share of the messages than this is common: [`trigram_pattern`] does
/// not ask the trigram index for it. Checking a candidate against a word's posting list
/// costs an index page per candidate, up to the whole list (at 5 M events, `job 1234abc`
/// over a day: 30 ms with `job`, in 98% of the messages, 5.3 ms without).
pub const COMMON_WORD_SHARE: f64 = 0.2;

/// What the values of `event.message` look like, from PostgreSQL's statistics (`pg_stats`,
/// kept by `ANALYZE`): enough to tell a word in most messages from a rarer one, as the
/// planner estimates `ILIKE` with them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MessageStats {
    /// The most common messages, ASCII-lowercased, and the share of the messages each is.
    pub common: Vec<(String, f64)>,
    /// The histogram's messages, ASCII-lowercased: a sample of the other messages.
    pub histogram: Vec<String>,
    /// The share of the messages the histogram stands for (neither common nor NULL).
    pub histogram_share: f64,
}

impl MessageStats {
    /// The estimated share of the messages that contain `word` (ASCII case-insensitively).
    ///
    /// ```
    /// use loggr_store::postgres::query::MessageStats;
    /// let stats = MessageStats {
    ///     common: vec![("session closed".into(), 0.5)],
    ///     histogram: vec!["worker 1 finished".into(), "worker 2 failed".into()],
    ///     histogram_share: 0.4,
    /// };
    /// assert_eq!(stats.share("Worker"), 0.4);
    /// assert_eq!(stats.share("sess"), 0.5);
    /// assert_eq!(stats.share("finished"), 0.2);
    /// ```
    pub fn share(&self, word: &str) -> f64 {
        let word = word.to_ascii_lowercase();
        let common: f64 = self
            .common
            .iter()
            .filter(|(message, _)| message.contains(&word))
            .map(|(_, share)| share)
            .sum();
        let sampled = self
            .histogram
            .iter()
            .filter(|message| message.contains(&word))
            .count();
        let histogram = if self.histogram.is_empty() {
            0.0
        } else {
            self.histogram_share * sampled as f64 / self.histogram.len() as f64
        };
        common + histogram
    }
}

/// The `ILIKE` pattern that asks the trigram index for `text` cheaply: `text` with each
/// separator (a run of characters other than ASCII letters and digits) next to a word of
/// three or more letters and digits turned into a `%`, so that `pg_trgm` looks up that
/// word's inner trigrams only (`invalid user u42` gives `%invalid%user%u42%`). A separator
/// next to a shorter word stays, as a literal, apart from a long neighbour (`user u4`
/// gives `%user% u4%`): such a word has no inner trigram, and its blank-padded ones are
/// what makes it selective. A long word in more than [`COMMON_WORD_SHARE`] of the messages
/// (by `messages`) is left out too, unless every long word is. `None` when no word is three
/// characters long, or the pattern would be the text's own ([`contains_pattern`]).
///
/// Every message containing `text` matches it (the pieces are disjoint parts of `text`,
/// in order), so it only narrows the candidates; the exact `ILIKE` still decides. It is
/// cheaper because `pg_trgm` pads a word next to a literal space or punctuation mark with
/// blanks and looks the padded trigrams up too (`"er "`, `"  i"`): in a log store such
/// word-edge trigrams are in most messages (`worker `, ` in `), and their posting lists
/// cost more than the rest of the search (at 5 M events, `invalid user u42`: 1,123 index
/// pages against 213 for its words).
///
/// ```
/// use loggr_store::postgres::query::{trigram_pattern, MessageStats};
/// let none = MessageStats::default();
/// assert_eq!(trigram_pattern("Invalid user u42", &none).as_deref(), Some("%Invalid%user%u42%"));
/// assert_eq!(trigram_pattern(" u42 ", &none).as_deref(), Some("%u42%"));
/// assert_eq!(trigram_pattern("user u4", &none).as_deref(), Some("%user% u4%"));
/// assert_eq!(trigram_pattern("50%_off", &none).as_deref(), Some(r"%50\%\_%off%"));
/// assert_eq!(trigram_pattern("finished", &none), None);
/// assert_eq!(trigram_pattern("a b", &none), None);
/// // `job` is in most messages.
/// let jobs = MessageStats {
///     histogram: vec!["worker 1 finished job 99".into(), "job 2 failed".into()],
///     histogram_share: 1.0,
///     ..MessageStats::default()
/// };
/// assert_eq!(trigram_pattern("job 1234abc", &jobs).as_deref(), Some("%1234abc%"));
/// assert_eq!(trigram_pattern("job: a1", &jobs).as_deref(), Some("%job%: a1%"));
/// assert_eq!(trigram_pattern("finished job", &jobs).as_deref(), Some("%finished%job%"));
/// ```
pub fn trigram_pattern(text: &str, messages: &MessageStats) -> Option<String> {
    // Alternating words and separators: `(slice, is a word)`.
    let mut tokens: Vec<(&str, bool)> = Vec::new();
    let mut start = 0;
    let mut class = None;
    for (i, c) in text.char_indices() {
        let word = c.is_ascii_alphanumeric();
        if class.is_some_and(|last| last != word) {
            tokens.push((&text[start..i], !word));
            start = i;
        }
        class = Some(word);
    }
    if let Some(word) = class {
        tokens.push((&text[start..], word));
    }
    let long = |token: &str, word: bool| word && token.len() >= 3;
    if !tokens.iter().any(|(token, word)| long(token, *word)) {
        return None;
    }
    // Which long words are common; none when all are.
    let mut common: Vec<bool> = tokens
        .iter()
        .map(|(token, word)| long(token, *word) && messages.share(token) > COMMON_WORD_SHARE)
        .collect();
    if tokens
        .iter()
        .zip(&common)
        .all(|((token, word), common)| !long(token, *word) || *common)
    {
        common.fill(false);
    }
    // Whether token `i` is a short word (never a common one).
    let short = |i: Option<usize>| {
        i.and_then(|i| tokens.get(i))
            .is_some_and(|(token, word)| *word && token.len() < 3)
    };
    let mut pattern = Pattern::default();
    for (i, (token, word)) in tokens.iter().enumerate() {
        let (before, after) = (i.checked_sub(1), Some(i + 1));
        if *word {
            if common[i] {
                pattern.wildcard();
            } else {
                pattern.literal(token);
            }
        } else if short(before) || short(after) {
            if !short(before) {
                pattern.wildcard();
            }
            pattern.literal(token);
            if !short(after) {
                pattern.wildcard();
            }
        } else {
            pattern.wildcard();
        }
    }
    pattern.wildcard();
    (pattern.text != contains_pattern(text)).then_some(pattern.text)
}

/// A `LIKE` pattern being written: `%` wildcards and literal text.
struct Pattern {
    text: String,
    /// Whether `text` ends with a wildcard (another one would be redundant).
    wild: bool,
}

impl Default for Pattern {
    fn default() -> Self {
        Pattern {
            text: String::from("%"),
            wild: true,
        }
    }
}

impl Pattern {
    fn wildcard(&mut self) {
        if !self.wild {
            self.text.push('%');
            self.wild = true;
        }
    }

    fn literal(&mut self, text: &str) {
        push_literal(&mut self.text, text);
        self.wild = false;
    }
}

/// Bind parameters and the `WHERE` clauses that use them.
#[derive(Default)]
struct Builder {
    clauses: Vec<String>,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Builder {
    /// Binds `value`; returns its placeholder.
    fn bind(&mut self, value: Box<dyn ToSql + Sync + Send>) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }

    /// Adds `clause`, its `$?` replaced by `value`'s placeholder.
    fn push(&mut self, clause: &str, value: Box<dyn ToSql + Sync + Send>) {
        let placeholder = self.bind(value);
        self.clauses.push(clause.replace("$?", &placeholder));
    }

    /// One ordered, limited select of the event columns: the common clauses and `extra`.
    fn branch(&self, extra: &[String], limit: &str) -> String {
        let all: Vec<&str> = self
            .clauses
            .iter()
            .chain(extra)
            .map(String::as_str)
            .collect();
        let where_ = if all.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", all.join(" AND "))
        };
        format!("SELECT {EVENT_COLUMNS} FROM event e{where_} {NEWEST_FIRST} LIMIT {limit}")
    }
}

/// The statement selecting `limit` events matching `filter`, newest first.
///
/// # Plans
///
/// Every filter narrows one keyset-ordered scan (the `(logtime, digest)`, `(hostname, logtime)` or
/// `(program, logtime)` index read backwards) that stops after `limit` matches. That scan
/// is slow when the matches are rare among the events it reads, so two filters are
/// written to let PostgreSQL go straight to them:
///
/// - severity: `severity <= n` with `n` at most [`BRANCHED_SEVERITIES`] becomes one branch
///   per severity `s` in `0..=n`, each `severity = s … ORDER BY logtime DESC, id DESC
///   LIMIT limit` (an ordered range of the `(severity, logtime)` index of schema
///   migration 3, or any other ordered scan), merged by an outer `ORDER BY … LIMIT`.
///   `severity <= 5` and `<= 6` stay a filter of the scan; `severity <= 7` is every
///   event: no clause.
/// - text: with the trigram index ([`Planning::trigram_index`]), `text` becomes two
///   clauses: `message ILIKE` its [`trigram_pattern`] (its words, less the common ones),
///   which the index serves (or the ordered scan checks), and the exact `ILIKE` of
///   [`contains_pattern`] as a `CASE`,
///   which PostgreSQL cannot take to the index (it would look up the costly word-edge
///   trigrams again) and estimates as a neutral one half (not the pattern's selectivity a
///   second time, which would make a common text look rare). PostgreSQL then chooses by
///   the pattern's estimate: a common text over a long range reads the ordered scan, which
///   finds a page at once; a rare one reads the index's candidates (intersected with the
///   `logtime` range when it is narrow) and sorts them. `invalid user u42` over a day at
///   5 M events, 20 concurrent users (`scripts/bench-web.sh`): 70 ms p50, 143 ms p99; 252
///   and 468 ms with the plain `ILIKE`, whose index scan read the word-edge trigrams (3.7
///   against 10.5 ms alone). Without the index the plain `ILIKE` filters the ordered scan:
///   extra clauses would only cost.
/// - tag: the statement first reads at most [`RARE_TAG_EVENTS`] of the tag's events from
///   the `tag (name, event)` index (the CTE `tagged`). Fewer: the tag is rare, and its
///   events are looked up by id, filtered, and sorted. As many: the tag is common, and
///   the ordered scans check each event's own tags (`tag = ANY(e.tags)`, a per-row check:
///   as a semi-join with `tag` the planner misjudged correlated filters, such as
///   `program = sshd` and `tag = auth_failure`, as rare and read the whole range).
///   Each alternative is a `UNION ALL` branch gated by a one-time filter on the count,
///   so only one runs.
pub fn select(filter: &EventFilter, limit: i64) -> Statement {
    select_planned(filter, limit, Planning::default())
}

/// [`select`] with another threshold between a rare and a common tag (for tests and tuning:
/// the results are the same, only the plan changes).
pub fn select_with(filter: &EventFilter, limit: i64, rare_tag_events: i64) -> Statement {
    select_planned(
        filter,
        limit,
        Planning {
            rare_tag_events,
            ..Planning::default()
        },
    )
}

/// [`select`] written for `planning`: what the schema offers and the thresholds between
/// plans (the results are the same, only the plan changes).
pub fn select_planned(filter: &EventFilter, limit: i64, planning: Planning<'_>) -> Statement {
    let rare_tag_events = planning.rare_tag_events;
    let mut b = Builder::default();
    if let Some(t) = filter.from {
        b.push("e.logtime >= $?", Box::new(t));
    }
    if let Some(t) = filter.to {
        b.push("e.logtime < $?", Box::new(t));
    }
    if let Some(h) = &filter.host {
        b.push("e.hostname = $?", Box::new(h.clone()));
    }
    if let Some(p) = &filter.program {
        b.push("e.program = $?", Box::new(p.clone()));
    }
    if let Some(text) = &filter.text {
        let candidates = planning
            .trigram_index
            .then(|| trigram_pattern(text, planning.messages))
            .flatten();
        match candidates {
            Some(candidates) => {
                b.push("e.message ILIKE $?", Box::new(candidates));
                b.push(
                    "CASE WHEN e.message ILIKE $? THEN true ELSE false END",
                    Box::new(contains_pattern(text)),
                );
            }
            None => b.push("e.message ILIKE $?", Box::new(contains_pattern(text))),
        }
    }
    if let Some((t, id)) = filter.cursor {
        let t = b.bind(Box::new(t));
        let id = b.bind(Box::new(id));
        // `logtime <=` bounds any `logtime` index range with the cursor (the row
        // comparison alone is an index condition only on an index of `(logtime, id)`).
        b.clauses.push(format!(
            "e.logtime <= {t} AND (e.logtime, e.id) < ({t}, {id})"
        ));
    }
    let severity = match filter.severity {
        Some(s) if s > BRANCHED_SEVERITIES && s < 7 => {
            b.push("e.severity <= $?", Box::new(s));
            None
        }
        Some(s) if s <= BRANCHED_SEVERITIES => Some(s),
        _ => None,
    };
    let limit = b.bind(Box::new(limit));
    // The ordered branches: one per severity, or one.
    let ordered = |b: &mut Builder, extra: Vec<String>| -> Vec<String> {
        match severity {
            None => vec![b.branch(&extra, &limit)],
            Some(least) => (0..=least)
                .map(|s| {
                    let mut clauses = extra.clone();
                    clauses.push(format!("e.severity = {}", b.bind(Box::new(s))));
                    b.branch(&clauses, &limit)
                })
                .collect(),
        }
    };
    let (with, branches) = match &filter.tag {
        None => (String::new(), ordered(&mut b, Vec::new())),
        Some(tag) => {
            let tag = b.bind(Box::new(tag.clone()));
            let rare = b.bind(Box::new(rare_tag_events));
            let with = format!(
                "WITH tagged AS MATERIALIZED \
                 (SELECT t.event FROM tag t WHERE t.name = {tag} LIMIT {rare}), \
                 tag_count AS MATERIALIZED (SELECT count(*) AS n FROM tagged) "
            );
            let mut rare_clauses = vec![
                format!("(SELECT n FROM tag_count) < {rare}"),
                "e.id IN (SELECT tagged.event FROM tagged)".to_owned(),
            ];
            if let Some(least) = severity {
                rare_clauses.push(format!("e.severity <= {}", b.bind(Box::new(least))));
            }
            let mut branches = vec![b.branch(&rare_clauses, &limit)];
            branches.extend(ordered(
                &mut b,
                vec![
                    format!("(SELECT n FROM tag_count) >= {rare}"),
                    format!("{tag} = ANY(e.tags)"),
                ],
            ));
            (with, branches)
        }
    };
    let sql = if let [only] = branches.as_slice() {
        format!("{with}SELECT {LIST_COLUMNS} FROM ({only}) e {NEWEST_FIRST}")
    } else {
        let union: Vec<String> = branches.iter().map(|b| format!("({b})")).collect();
        format!(
            "{with}SELECT {LIST_COLUMNS} FROM ({}) e {NEWEST_FIRST} LIMIT {limit}",
            union.join(" UNION ALL ")
        )
    };
    Statement {
        sql,
        params: b.params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> EventFilter {
        EventFilter {
            from: Some(jiff::Timestamp::UNIX_EPOCH),
            to: Some(jiff::Timestamp::UNIX_EPOCH),
            severity: Some(4),
            text: Some("50%_off".into()),
            host: Some("x' OR 1=1 --".into()),
            ..EventFilter::default()
        }
    }

    #[test]
    fn every_value_is_a_parameter_and_low_severities_are_branches() {
        let f = filter();
        let st = select(&f, 51);
        assert!(!st.sql.contains("OR 1=1"));
        // from, to, host, q, the limit, then severities 0 to 4, one per branch.
        assert_eq!(st.params.len(), 10);
        assert_eq!(st.sql.matches(" UNION ALL ").count(), 4, "{}", st.sql);
        assert!(
            st.sql.contains("AND e.severity = $10 ORDER BY"),
            "{}",
            st.sql
        );
        assert!(st.sql.ends_with("LIMIT $5"), "{}", st.sql);
    }

    #[test]
    fn debug_is_every_event_and_notice_a_plain_filter() {
        let all = EventFilter {
            severity: Some(7),
            ..filter()
        };
        let st = select(&all, 51);
        assert!(
            !st.sql.contains("UNION") && !st.sql.contains("e.severity ="),
            "{}",
            st.sql
        );
        assert_eq!(st.params.len(), 5);
        let notice = EventFilter {
            severity: Some(5),
            ..filter()
        };
        let st = select(&notice, 51);
        assert!(
            !st.sql.contains("UNION") && st.sql.contains("AND e.severity <= $5 ORDER BY"),
            "{}",
            st.sql
        );
        assert_eq!(st.params.len(), 6);
    }

    #[test]
    fn text_asks_the_trigram_index_for_its_runs_and_filters_exactly() {
        let f = EventFilter {
            text: Some("Invalid user u42".into()),
            ..EventFilter::default()
        };
        let plain = select(&f, 51);
        assert!(
            plain.sql.contains("e.message ILIKE $1 ORDER BY"),
            "{}",
            plain.sql
        );
        assert!(!plain.sql.contains("CASE"), "{}", plain.sql);
        let trigram = Planning {
            trigram_index: true,
            ..Planning::default()
        };
        let st = select_planned(&f, 51, trigram);
        assert!(
            st.sql.contains(
                "WHERE e.message ILIKE $1 AND CASE WHEN e.message ILIKE $2 THEN true ELSE false END"
            ),
            "{}",
            st.sql
        );
        assert_eq!(st.params.len(), 3);
        assert_eq!(
            format!("{:?} {:?}", st.params[0], st.params[1]),
            r#""%Invalid%user%u42%" "%Invalid user u42%""#
        );
        // One word: its own pattern is the index's best question.
        let word = EventFilter {
            text: Some("finished".into()),
            ..EventFilter::default()
        };
        let st = select_planned(&word, 51, trigram);
        assert!(!st.sql.contains("CASE"), "{}", st.sql);
        assert_eq!(st.params.len(), 2);
    }

    fn pattern(text: &str) -> Option<String> {
        trigram_pattern(text, &MessageStats::default())
    }

    #[test]
    fn a_trigram_pattern_matches_whatever_contains_the_text() {
        assert_eq!(pattern(""), None);
        assert_eq!(pattern("%_\\"), None);
        assert_eq!(pattern("ab cd ef"), None);
        assert_eq!(pattern("ab cde").as_deref(), Some("%ab %cde%"));
        assert_eq!(pattern("a\\b_cde").as_deref(), Some(r"%a\\b\_%cde%"));
        assert_eq!(
            pattern("caf\u{e9} au-lait").as_deref(),
            Some("%caf%\u{e9} au-%lait%")
        );
        assert_eq!(pattern("  x  ").as_deref(), None);
        assert_eq!(
            pattern("pam_unix(sshd:auth)").as_deref(),
            Some("%pam%unix%sshd%auth%")
        );
    }

    #[test]
    fn common_words_are_left_out_unless_every_long_word_is_common() {
        let stats = MessageStats {
            common: vec![("session opened for user root".into(), 0.3)],
            histogram: vec![
                "worker 1 finished job".into(),
                "worker 2 finished job".into(),
                "Failed password for u42".into(),
            ],
            histogram_share: 0.6,
        };
        let with = |text: &str| trigram_pattern(text, &stats);
        // `session` 0.3, `worker` and `job` 0.4, `failed` 0.2 (not more), `u42` 0.2.
        assert_eq!(
            with("session opened for bob").as_deref(),
            Some("%bob%"),
            "`opened`, `for` are common too"
        );
        assert_eq!(with("worker 12 failed").as_deref(), Some("% 12 %failed%"));
        assert_eq!(
            with("a worker").as_deref(),
            Some("%a %worker%"),
            "the only long word"
        );
        assert_eq!(with("job: u42").as_deref(), Some("%u42%"));
        assert_eq!(with("finished job").as_deref(), Some("%finished%job%"));
        let st = select_planned(
            &EventFilter {
                text: Some("worker 7 finished job abc123".into()),
                ..EventFilter::default()
            },
            51,
            Planning {
                trigram_index: true,
                messages: &stats,
                ..Planning::default()
            },
        );
        assert_eq!(format!("{:?}", st.params[0]), r#""% 7 %abc123%""#);
    }
}
