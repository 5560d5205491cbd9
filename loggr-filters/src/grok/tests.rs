//! Unit tests of the grok filter, one per feature.

use std::time::{Duration, Instant};

use super::*;

fn grok(patterns: &[&str]) -> Grok {
    Grok::new(&GrokConfig::new(patterns.iter().copied())).unwrap()
}

fn run(grok: &Grok, message: &str) -> Event {
    let mut event = Event::new(message.to_owned());
    assert_eq!(grok.apply(&mut event).unwrap(), Verdict::Keep);
    event
}

fn text<'e>(event: &'e Event, field: &str) -> Option<&'e str> {
    event.field(field).and_then(Value::as_str)
}

#[test]
fn bundled_legacy_files_load_whole() {
    for (file, contents) in patterns::LEGACY {
        let mut bank = PatternBank::empty();
        bank.load_str(contents, file).unwrap();
    }
    let bank = PatternBank::legacy();
    assert!(bank.len() > 300, "{}", bank.len());
    // Every bundled definition compiles.
    let mut names: Vec<_> = ["SYSLOGLINE", "COMBINEDAPACHELOG", "HAPROXYHTTP", "RUUID"].to_vec();
    names.sort_unstable();
    for name in names {
        Grok::with_bank(&GrokConfig::new([format!("%{{{name}}}")]), &bank).unwrap();
    }
}

#[test]
fn every_bundled_definition_compiles() {
    let bank = PatternBank::legacy();
    let mut failures = Vec::new();
    for name in bank.names() {
        if let Err(error) = Grok::with_bank(&GrokConfig::new([format!("%{{{name}}}")]), &bank) {
            failures.push(format!("{name}: {error}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn syslogline_captures_fields_and_names_the_pattern() {
    let grok = grok(&["%{SYSLOGLINE}"]);
    let event = run(
        &grok,
        "Mar 16 00:01:25 evita postfix/smtpd[1713]: connect from camomile.cloud9.net[168.100.1.3]",
    );
    assert_eq!(text(&event, "program"), Some("postfix/smtpd"));
    assert_eq!(text(&event, "pid"), Some("1713"));
    assert_eq!(text(&event, "logsource"), Some("evita"));
    assert_eq!(text(&event, "timestamp"), Some("Mar 16 00:01:25"));
    assert_eq!(
        text(&event, "message"),
        Some("connect from camomile.cloud9.net[168.100.1.3]")
    );
    assert_eq!(text(&event, "grok_pattern"), Some("%{SYSLOGLINE}"));
    assert!(event.tags.is_empty());
}

#[test]
fn type_conversions() {
    let grok = grok(&["%{NUMBER:bytes:int} %{NUMBER:ratio:float} %{NUMBER:raw} %{WORD:w:int}"]);
    let event = run(&grok, "1234 0.5 42 abc");
    assert_eq!(event.field("bytes"), Some(&Value::Int(1234)));
    assert_eq!(event.field("ratio"), Some(&Value::Float(0.5)));
    assert_eq!(text(&event, "raw"), Some("42"));
    // Not a number: stays text.
    assert_eq!(text(&event, "w"), Some("abc"));
    let error = Grok::new(&GrokConfig::new(["%{NUMBER:n:bool}"])).unwrap_err();
    assert!(error.to_string().starts_with("unknown type"), "{error}");
}

#[test]
fn prefix_and_pattern_field() {
    let mut config = GrokConfig::new(["%{IP:client} %{WORD:verb}"]);
    config.prefix = "x_".to_owned();
    config.pattern_field = "matched_by".to_owned();
    let event = run(&Grok::new(&config).unwrap(), "10.0.0.1 GET");
    assert_eq!(text(&event, "x_client"), Some("10.0.0.1"));
    assert_eq!(text(&event, "x_verb"), Some("GET"));
    assert_eq!(
        text(&event, "matched_by"),
        Some("%{IP:client} %{WORD:verb}")
    );
    assert!(event.field("client").is_none() && event.field("grok_pattern").is_none());
    config.pattern_field = String::new();
    let event = run(&Grok::new(&config).unwrap(), "10.0.0.1 GET");
    assert_eq!(event.fields.len(), 2);
}

#[test]
fn first_matching_pattern_wins() {
    let grok = grok(&[
        "^%{INT:number}$",
        "^%{WORD:first} %{WORD:second}$",
        "^%{WORD:any}",
    ]);
    let event = run(&grok, "hello world");
    assert_eq!(text(&event, "first"), Some("hello"));
    assert!(event.field("any").is_none());
    assert_eq!(
        text(&event, "grok_pattern"),
        Some("^%{WORD:first} %{WORD:second}$")
    );
    let event = run(&grok, "42");
    assert_eq!(text(&event, "number"), Some("42"));
    let event = run(&grok, "alone!");
    assert_eq!(text(&event, "any"), Some("alone"));
}

#[test]
fn no_match_tags_failure_and_keeps_the_event() {
    let grok = grok(&["^%{INT}$"]);
    let event = run(&grok, "not a number");
    assert!(event.has_tag("_grokparsefailure"));
    let mut config = GrokConfig::new(["^%{INT}$"]);
    config.tag_on_failure = vec!["a".into(), "b".into()];
    let event = run(&Grok::new(&config).unwrap(), "x");
    assert!(event.has_tag("a") && event.has_tag("b") && !event.has_tag("_grokparsefailure"));
}

#[test]
fn dot_matches_newline() {
    let grok = grok(&["%{WORD:first} %{GREEDYDATA:rest}"]);
    let event = run(&grok, "one two\nthree");
    assert_eq!(text(&event, "rest"), Some("two\nthree"));
}

#[test]
fn inline_definitions_recursion_and_raw_named_groups() {
    let mut config = GrokConfig::new(["%{PAIR:pair} (?<queue_id>[0-9A-F]{4}) %{HEXQ}"]);
    config
        .pattern_definitions
        .insert("KEY".into(), "[a-z]+".into());
    config
        .pattern_definitions
        .insert("PAIR".into(), "%{KEY:key}=%{INT:value:int}".into());
    config
        .pattern_definitions
        .insert("HEXQ".into(), r"\h+".into());
    let event = run(&Grok::new(&config).unwrap(), "a=1 BEEF cafe");
    assert_eq!(text(&event, "pair"), Some("a=1"));
    assert_eq!(text(&event, "key"), Some("a"));
    assert_eq!(event.field("value"), Some(&Value::Int(1)));
    assert_eq!(text(&event, "queue_id"), Some("BEEF"));
}

#[test]
fn pattern_files_and_dirs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), "# mine\nGREETING hello|hi\n").unwrap();
    let file = dir.path().join("extra.grok");
    std::fs::write(&file, "TARGET %{WORD}\n").unwrap();
    let mut config = GrokConfig::new(["%{GREETING:greeting} %{TARGET:target}"]);
    config.patterns_dir = vec![dir.path().to_owned()];
    config.pattern_files = vec![file.clone()];
    let event = run(&Grok::new(&config).unwrap(), "hi there");
    assert_eq!(text(&event, "greeting"), Some("hi"));
    assert_eq!(text(&event, "target"), Some("there"));
    std::fs::write(&file, "BROKEN\n").unwrap();
    let error = Grok::new(&config).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("extra.grok:1: expected `NAME REGEX`"),
        "{error}"
    );
}

/// The column of the first `^` on the second line, and the byte offset of `needle` on the
/// first line (both count characters, all ASCII here).
fn caret_under(message: &str, needle: &str) -> (usize, usize) {
    let (first, carets) = message.split_once('\n').unwrap();
    let width = carets.trim_start().len();
    assert_eq!(width, needle.len(), "{message}");
    assert!(carets.trim_start().bytes().all(|b| b == b'^'), "{message}");
    (carets.find('^').unwrap(), first.find(needle).unwrap())
}

#[test]
fn unknown_pattern_error_points_with_a_caret() {
    let mut config = GrokConfig::new(["%{FOO} %{BAR}"]);
    config
        .pattern_definitions
        .insert("FOO".into(), "foo".into());
    let error = Grok::new(&config).unwrap_err().to_string();
    assert_eq!(
        error,
        "unknown pattern BAR in `%{FOO} %{BAR}`\n                               ^^^^^^"
    );
    let (column, at) = caret_under(&error, "%{BAR}");
    assert_eq!(column, at);
    config
        .pattern_definitions
        .insert("FOO".into(), "x %{NOPE:y}".into());
    let error = Grok::new(&config).unwrap_err().to_string();
    assert!(
        error.starts_with("unknown pattern NOPE in the definition of FOO: `x %{NOPE:y}`\n"),
        "{error}"
    );
    let (column, at) = caret_under(&error, "%{NOPE:y}");
    assert_eq!(column, at);
}

#[test]
fn regex_syntax_error_points_into_the_definition() {
    let mut config = GrokConfig::new(["%{WORD} %{BAD}"]);
    config
        .pattern_definitions
        .insert("BAD".into(), "ab\\qc".into());
    let error = Grok::new(&config).unwrap_err().to_string();
    let (first, carets) = error.split_once('\n').unwrap();
    assert!(first.starts_with("invalid escape"), "{error}");
    assert!(first.contains("the definition of BAD: `ab\\qc`"), "{error}");
    // The caret sits under a character of `ab(c`.
    let column = carets.find('^').unwrap();
    let start = first.find("`ab\\qc`").unwrap() + 1;
    assert_eq!(column, start + 2, "{error}");
}

#[test]
fn engine_errors_without_a_position_name_the_pattern() {
    let error = Grok::new(&GrokConfig::new(["ab[z-a]c"]))
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("cannot compile `ab[z-a]c`: "), "{error}");
    assert!(error.contains("invalid character class range"), "{error}");
}

#[test]
fn recursion_cycles_are_errors() {
    let mut config = GrokConfig::new(["%{A}"]);
    config
        .pattern_definitions
        .insert("A".into(), "a%{B}".into());
    config
        .pattern_definitions
        .insert("B".into(), "b%{A}?".into());
    let error = Grok::new(&config).unwrap_err();
    assert!(matches!(error, GrokError::Cycle { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with("pattern cycle A -> B -> A in the definition of B: `b%{A}?`\n"),
        "{message}"
    );
    let (column, at) = caret_under(&message, "%{A}");
    assert_eq!(column, at);
    let mut config = GrokConfig::new(["%{SELF}"]);
    config
        .pattern_definitions
        .insert("SELF".into(), "(%{SELF})".into());
    assert!(matches!(
        Grok::new(&config).unwrap_err(),
        GrokError::Cycle { .. }
    ));
}

#[test]
fn redos_finishes_within_the_budget() {
    let hostile = format!("{}!", "a".repeat(30));
    // The classic shape runs on the linear engine: a plain, fast "no match".
    let grok = grok(&["^(a+)+$"]);
    let started = Instant::now();
    let event = run(&grok, &hostile);
    assert!(started.elapsed() < Duration::from_millis(50));
    assert!(event.has_tag("_grokparsefailure"));
    // With look-arounds the backtracker runs (the relaxed prefilter lets this line through:
    // without the look-behind it would match); it stops at its budget, and says so.
    let grok = grok_budget(&["^(?:(?=a)a+)+!(?<=x!)"], 100_000);
    let started = Instant::now();
    let event = run(&grok, &hostile);
    let took = started.elapsed();
    assert!(took < Duration::from_millis(500), "{took:?}");
    assert!(event.has_tag("_grok_timeout"), "{:?}", event.tags);
    assert!(!event.has_tag("_grokparsefailure"));
}

fn grok_budget(patterns: &[&str], budget: usize) -> Grok {
    let mut config = GrokConfig::new(patterns.iter().copied());
    config.max_backtracks = budget;
    Grok::new(&config).unwrap()
}

#[test]
fn source_field_overwrite_and_append() {
    let mut config = GrokConfig::new(["%{WORD:user} %{GREEDYDATA:message}"]);
    config.source = "raw_line".into();
    config.overwrite = vec!["message".into()];
    let grok = Grok::new(&config).unwrap();
    let mut event = Event::new("original");
    event.set_field("raw_line", "alice logged in");
    event.set_field("user", "bob");
    grok.apply(&mut event).unwrap();
    assert_eq!(event.message_str(), "logged in");
    assert_eq!(
        event.field("user"),
        Some(&Value::List(vec![Value::from("bob"), Value::from("alice")]))
    );
    // Missing source: left alone, no failure tag.
    let mut event = Event::new("x");
    grok.apply(&mut event).unwrap();
    assert!(event.tags.is_empty() && event.fields.is_empty());
}

#[test]
fn empty_captures_are_dropped_unless_kept() {
    let mut config = GrokConfig::new(["^a(?<empty>x*)b%{DATA:data}$"]);
    let event = run(&Grok::new(&config).unwrap(), "ab");
    assert!(event.field("empty").is_none() && event.field("data").is_none());
    config.keep_empty_captures = true;
    let event = run(&Grok::new(&config).unwrap(), "ab");
    assert_eq!(text(&event, "empty"), Some(""));
}

#[test]
fn registered_and_built_from_toml() {
    let registry = loggr_core::Registry::from_inventory().unwrap();
    let plugin = registry.filter("grok").expect("grok is registered");
    let table: toml::Table = toml::from_str(
        r#"
        patterns = ["%{SYSLOGBASE} %{GREEDYDATA:rest}"]
        prefix = "s_"
        max_backtracks = 5000
        timeout_ms = 50
        pattern_definitions = { MINE = "x" }
        "#,
    )
    .unwrap();
    let cx = BuildContext {
        name: "g".into(),
        metrics: Default::default(),
    };
    let filter = plugin.build("g", table, &cx).unwrap();
    let mut event = Event::new("Oct 11 22:14:15 mymachine su: 'su root' failed");
    filter.apply(&mut event).unwrap();
    assert_eq!(text(&event, "s_program"), Some("su"));
    let bad: toml::Table = toml::from_str("patterns = [\"%{NOPE}\"]").unwrap();
    let error = plugin.build("g", bad, &cx).unwrap_err().to_string();
    assert!(error.contains("unknown pattern NOPE"), "{error}");
    let unknown: toml::Table = toml::from_str("patterns = [\"x\"]\nno_such_option = 3").unwrap();
    assert!(plugin.build("g", unknown, &cx).is_err());
}

#[test]
fn prefilter_never_changes_the_answer() {
    // Patterns with look-arounds: the prefilter's start must not skip a match the
    // backtracker would find.
    let grok = grok(&["%{IPV4:ip}(?![0-9])", "%{TIME:t}"]);
    for (line, field, want) in [
        ("x 1.2.3.4 y", "ip", "1.2.3.4"),
        ("9991.2.3.4 and 10.0.0.1", "ip", "10.0.0.1"),
        ("at 12:34:56", "t", "12:34:56"),
    ] {
        let event = run(&grok, line);
        assert_eq!(text(&event, field), Some(want), "{line}");
    }
}

// The fast (DFA) capture path against fancy-regex, the reference.

/// The shared corpus (`$LOGGR_SHARED_DIR/corpus`, else `../shared/corpus` next to the
/// workspace). Missing corpus = failure, never a silent skip.
fn corpus_dir() -> std::path::PathBuf {
    let shared = std::env::var_os("LOGGR_SHARED_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
        });
    let corpus = shared.join("corpus");
    assert!(
        corpus.join("loghub").is_dir(),
        "the shared test corpus is missing at {}: set LOGGR_SHARED_DIR",
        corpus.display()
    );
    corpus
}

fn loghub_lines() -> Vec<String> {
    let dir = corpus_dir().join("loghub");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    files.sort();
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        lines.extend(text.lines().map(str::to_owned));
    }
    assert!(lines.len() > 7000, "{}", lines.len());
    lines
}

/// fancy-regex's answer: the capture spans, `None` for no match.
fn fancy_spans(pattern: &Compiled, line: &str) -> Option<Spans> {
    let captures = pattern.regex.captures(line).unwrap()?;
    Some(
        pattern
            .captures
            .iter()
            .map(|capture| captures.get(capture.group).map(|found| found.range()))
            .collect(),
    )
}

/// How the fast path decided a line.
#[derive(Debug, Default)]
struct Tally {
    /// The fast path answered (match or no match) and agreed with fancy-regex.
    decided: usize,
    /// The fast path handed the line to fancy-regex.
    fell_back: usize,
    /// The fast path answered differently from fancy-regex.
    wrong: Vec<String>,
}

fn compare(pattern: &Compiled, line: &str, verify: bool, tally: &mut Tally) {
    let fast = pattern.fast.as_ref().expect("the pattern has a fast path");
    let want = fancy_spans(pattern, line);
    let got = match fast.search(line, verify) {
        fast::FastOutcome::Matched(spans) => Some(spans),
        fast::FastOutcome::NoMatch => None,
        fast::FastOutcome::Fallback(start) => {
            // The fallback's start never skips the real match.
            if let Some(want) = &want {
                let real = pattern.regex.find(line).unwrap().unwrap().start();
                assert!(start <= real, "{line:?}: start {start} > {real} ({want:?})");
            }
            tally.fell_back += 1;
            return;
        }
    };
    if got == want {
        tally.decided += 1;
    } else {
        tally.wrong.push(format!(
            "`{}` on {line:?}: fast {got:?}, fancy-regex {want:?}",
            pattern.text
        ));
    }
}

#[test]
fn fast_path_agrees_with_fancy_regex_on_every_loghub_line() {
    let lines = loghub_lines();
    // SYSLOGLINE on every line, the others on every third (debug builds are slow).
    let patterns = [
        ("%{SYSLOGLINE}", 1),
        ("%{SYSLOGBASE} %{GREEDYDATA:rest}", 3),
        (
            "%{SYSLOGTIMESTAMP:ts} %{DATA:host} %{DATA:prog}: %{GREEDYDATA:msg}",
            3,
        ),
        ("%{IP:ip}", 3),
        ("%{IPORHOST:host}", 3),
        ("%{NUMBER:n} %{WORD:w}", 3),
        ("%{TIME:time}", 3),
        ("%{PROG:prog}(?:\\[%{POSINT:pid}\\])?: %{WORD:first}", 3),
        ("user %{USERNAME:user} from %{IPORHOST:from}", 3),
        ("(?:%{WORD:word} )+%{INT:int}", 3),
        ("%{QUOTEDSTRING:quoted}", 3),
    ];
    for (text, step) in patterns {
        let grok = grok(&[text]);
        let pattern = &grok.patterns[0];
        assert!(pattern.fast.is_some(), "{text} has no fast path");
        let mut tally = Tally::default();
        for line in lines.iter().step_by(step) {
            compare(pattern, line, true, &mut tally);
        }
        assert!(tally.wrong.is_empty(), "{:#?}", tally.wrong);
        // The fast path does the work: fancy-regex runs on a few lines at most.
        let total = tally.decided + tally.fell_back;
        assert!(
            tally.fell_back * 100 <= total,
            "{text}: {} of {total} lines fell back",
            tally.fell_back
        );
        if text == "%{SYSLOGLINE}" {
            assert_eq!(tally.fell_back, 0, "{tally:?}");
        }
    }
}

#[test]
fn fast_path_agrees_with_fancy_regex_on_the_corpus_cases() {
    let corpus = corpus_dir();
    let legacy = PatternBank::legacy();
    let mut ecs = PatternBank::empty();
    ecs.load_dir(&corpus.join("grok-patterns/ecs-v1")).unwrap();
    let text = std::fs::read_to_string(corpus.join("grok-cases.jsonl")).unwrap();
    let mut tally = Tally::default();
    let mut without_fast_path = 0;
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let bank = match case["mode"].as_str().unwrap() {
            "legacy" => &legacy,
            _ => &ecs,
        };
        let mut pattern = case["pattern"].as_str().unwrap().to_owned();
        if case["anchored"].as_bool() == Some(true) {
            pattern = format!("^{pattern}$");
        }
        let grok = Grok::with_bank(&GrokConfig::new([pattern]), bank).unwrap();
        let compiled = &grok.patterns[0];
        if compiled.fast.is_none() {
            without_fast_path += 1;
            continue;
        }
        let input = case["input"].as_str().unwrap();
        // The input, and variants that move, cut or disturb it.
        let half = (0..=input.len() / 2)
            .rev()
            .find(|&at| input.is_char_boundary(at))
            .unwrap();
        let variants = [
            input.to_owned(),
            format!("0 {input} 9"),
            format!("1{input}1"),
            input[..half].to_owned(),
            input.replace(' ', "  "),
            input.replace('.', "0"),
            input.to_uppercase(),
            format!("{input}\n{input}"),
        ];
        for line in variants {
            compare(compiled, &line, true, &mut tally);
        }
    }
    eprintln!(
        "corpus cases: {} lines decided by the fast path, {} fell back; {without_fast_path} \
         patterns without one",
        tally.decided, tally.fell_back
    );
    assert!(tally.wrong.is_empty(), "{:#?}", tally.wrong);
    // All cases but a handful have a fast path, and it decides nine lines in ten or more.
    assert!(without_fast_path <= 5, "{without_fast_path}");
    let total = tally.decided + tally.fell_back;
    assert!(tally.decided * 10 >= total * 9, "{tally:?}");
}

/// Lines whose relaxed match (look-arounds ignored) breaks a look-around, so the fast path
/// must hand them to fancy-regex; and lines where nothing goes wrong.
const CRAFTED: &[(&str, &str)] = &[
    // IPV4's look-behind: `234.5.6.7` follows a digit.
    ("%{IPV4:ip}", "1234.5.6.7"),
    ("%{IPV4:ip}", "ip 10.1.2.3 ok"),
    // BASE10NUM's look-behind `(?<![0-9.+-])`.
    ("%{NUMBER:n}", "+-5"),
    ("%{NUMBER:n}", "took 1.25 s"),
    // TIME's look-ahead `(?![0-9])`.
    ("%{TIME:t}", "at 12:34:567"),
    ("%{TIME:t}", "at 12:34:56."),
    // A look-behind inside a loop: the third number would be `-3`, which follows a digit.
    ("(?:%{NUMBER:n} ?)+", "1 2-3"),
    ("(?:%{NUMBER:n} ?)+", "1 2 -3"),
    // IPV4's look-ahead after its last octet: the first path of the octets (`21`) fails it,
    // the guarded leaf finds `216`; inside the repeated SYSLOGHOST, no IPv4 passes it and
    // the real pattern reads a host name.
    ("%{IP:ip}", "from 24.54.76.216 (x)"),
    (
        "%{SYSLOGLINE}",
        "Jun 14 15:16:01 1.2.3.4567.8.9.1 sshd[1]: x",
    ),
    ("%{SYSLOGLINE}", "Jun 14 15:16:01 10.0.0.216 sshd[1]: x"),
    ("%{SYSLOGLINE}", "Jun 14 15:16:01 10.0.0.1 sshd[1]: x"),
    // Non-ASCII next to a Unicode word boundary: the DFAs give up, fancy-regex answers.
    ("%{SYSLOGLINE}", "Jun 14 15:16:01 hôte sshd[1]: été"),
    ("%{SYSLOGLINE}", "Jün 14 15:16:01 host su: x"),
    ("%{SYSLOGLINE}", "Jun 14 15:16:01 host prögram[1]: x"),
    // QUOTEDSTRING: atomic groups in atomic groups, and a look-behind for the backslash
    // before the opening quote.
    ("%{QS:q}", r#"say "hi \"there\"" now"#),
    ("%{QS:q}", r#"a \"b" c"#),
    ("%{QS:q}", "it's 'quoted' ''"),
    // An atomic group: BASE10NUM takes `1.5` and never gives back `.5`.
    ("%{NUMBER:n}\\.5", "1.5"),
    ("%{NUMBER:n}\\.5 ", "2 1.5.5 "),
];

fn crafted_tally(verify: bool) -> Tally {
    let mut tally = Tally::default();
    for (text, line) in CRAFTED {
        let grok = grok(&[text]);
        compare(&grok.patterns[0], line, verify, &mut tally);
    }
    tally
}

#[test]
fn failed_look_arounds_fall_back_to_fancy_regex() {
    let tally = crafted_tally(true);
    assert!(tally.wrong.is_empty(), "{:#?}", tally.wrong);
    assert!(tally.fell_back >= 5, "{tally:?}");
    assert!(tally.decided >= 8, "{tally:?}");
    // The whole filter gives fancy-regex's answer on the fallen-back lines.
    let event = run(
        &grok(&["%{SYSLOGLINE}"]),
        "Jun 14 15:16:01 1.2.3.4567.8.9.1 sshd[1]: x",
    );
    assert_eq!(text(&event, "logsource"), Some("1.2.3.4567.8.9.1"));
    assert!(run(&grok(&["%{IPV4:ip}"]), "1234.5.6.7").has_tag("_grokparsefailure"));
    assert!(run(&grok(&["%{NUMBER:n}\\.5"]), "1.5").has_tag("_grokparsefailure"));
}

#[test]
fn skipping_the_look_around_checks_gives_wrong_answers() {
    // The mutation check of the test above: without the checks, the same comparison fails.
    let tally = crafted_tally(false);
    assert!(tally.wrong.len() >= 3, "{tally:?}");
    assert!(
        tally.wrong.iter().any(|wrong| wrong.contains("2-3")),
        "{:#?}",
        tally.wrong
    );
}

#[test]
fn inline_pattern_definitions() {
    // `%{NAME:field=regex}` defines NAME for this reference and the later ones; braces in the
    // definition balance, `\}` is a brace.
    let grok = grok(&[r"%{QUEUEID:queue=[0-9A-F]{10,11}} %{QUEUEID:again} %{CURLY:c=\{x\}}"]);
    let event = run(&grok, "x 0123456789A ABCDEF0123 {x}");
    assert_eq!(text(&event, "queue"), Some("0123456789A"));
    assert_eq!(text(&event, "again"), Some("ABCDEF0123"));
    assert_eq!(text(&event, "c"), Some("{x}"));
    assert!(run(&grok, "0123456789A abc {x}").has_tag("_grokparsefailure"));
    // It overrides the bundled definition, and takes a type.
    let grok = self::grok(&["%{INT:n:int=[0-9]+}!"]);
    assert_eq!(run(&grok, "-12!").field("n"), Some(&Value::Int(12)));
    // Errors point into the inline definition.
    let error = Grok::new(&GrokConfig::new([r"%{BAD=ab\qc}"])).unwrap_err();
    assert!(
        error
            .to_string()
            .contains(r"the definition of BAD: `ab\qc`"),
        "{error}"
    );
    let error = Grok::new(&GrokConfig::new(["%{OPEN=[0-9]{2"])).unwrap_err();
    assert!(error.to_string().starts_with("unclosed %{"), "{error}");
    let error = Grok::new(&GrokConfig::new(["%{SELF=a%{SELF}}"])).unwrap_err();
    assert!(matches!(error, GrokError::Cycle { .. }), "{error:?}");
}

#[test]
fn time_limit_stops_the_pattern_list() {
    // The first pattern fails slowly (exponential backtracking within a large budget); the
    // second would match.
    let hostile = format!("{}!", "a".repeat(18));
    let mut config = GrokConfig::new(["^(?:(?=a)a+)+!(?<=x!)", "%{GREEDYDATA:all}"]);
    config.max_backtracks = 100_000_000;
    let event = run(&Grok::new(&config).unwrap(), &hostile);
    assert_eq!(text(&event, "all"), Some(hostile.as_str()));
    assert!(event.tags.is_empty());
    config.timeout_ms = Some(1);
    let event = run(&Grok::new(&config).unwrap(), &hostile);
    assert!(event.has_tag("_grok_timeout"), "{:?}", event.tags);
    assert!(event.field("all").is_none() && !event.has_tag("_grokparsefailure"));
    // A fast first pattern leaves time for the second.
    config.patterns[0] = "^x".to_owned();
    let event = run(&Grok::new(&config).unwrap(), &hostile);
    assert_eq!(text(&event, "all"), Some(hostile.as_str()));
}
