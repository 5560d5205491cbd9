//! pyloggr's rules language: one test per construct and per kind of error.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use loggr_core::{BuildContext, Event, Filter, FilterConfig, Metrics, Severity, Verdict};
use loggr_filters::rules::RulesConfig;

fn compile(rules: &str) -> Result<Box<dyn Filter>, String> {
    let cx = BuildContext {
        name: "rules".into(),
        metrics: Metrics::new(),
    };
    RulesConfig {
        file: None,
        rules: Some(rules.to_owned()),
    }
    .build(&cx)
    .map_err(|e| e.to_string())
}

fn event(app: &str, message: &str) -> Event {
    let mut event = Event::new(message);
    event.app_name = Some(app.into());
    event.hostname = Some("web1".into());
    event
}

fn run(rules: &str, mut event: Event) -> (Verdict, Event) {
    let filter = compile(rules).unwrap();
    let verdict = filter.apply(&mut event).unwrap();
    (verdict, event)
}

fn tags(event: &Event) -> Vec<&str> {
    event.tags.iter().map(|t| &**t).collect()
}

#[test]
fn if_else_chains_pick_one_branch() {
    let rules = r#"
        if app_name == "nginx" { tags += "web" }
        else if app_name == "sshd" { tags += "ssh" }
        else { tags += "other" }
    "#;
    assert_eq!(tags(&run(rules, event("nginx", "x")).1), ["web"]);
    assert_eq!(tags(&run(rules, event("sshd", "x")).1), ["ssh"]);
    assert_eq!(tags(&run(rules, event("cron", "x")).1), ["other"]);
}

#[test]
fn comparisons_and_regexes() {
    let mut e = event("sshd", "Failed password for root");
    e.set_field("status", "503");
    let rules = r#"
        if [status] != "200" { tags += "not_ok" }
        if [status] ~ "^5\d\d$" { tags += "server_error" }
        if message ~* "^failed PASSWORD" { tags += "case_insensitive" }
        if message ~ "^failed" { tags += "case_sensitive_should_not_match" }
        if [missing] == "" { tags += "missing_is_not_empty_string" }
        if [missing] != "x" { tags += "missing_differs" }
        if severity == "notice" and facility == "user" { tags += "defaults" }
        if host == "web1" and program == "sshd" { tags += "aliases" }
    "#;
    let (_, out) = run(rules, e);
    assert_eq!(
        tags(&out),
        [
            "aliases",
            "case_insensitive",
            "defaults",
            "missing_differs",
            "not_ok",
            "server_error"
        ]
    );
}

#[test]
fn membership_and_boolean_logic_with_parentheses() {
    let mut e = event("app", "m");
    e.add_tag("a");
    e.set_field("f", "v");
    let rules = r#"
        if "a" in tags and "f" in fields { tags += "both" }
        if "b" notin tags { tags += "no_b" }
        if "g" notin fields and not ("a" notin tags) { tags += "logic" }
        if ("x" in tags or "a" in tags) and not "f" notin fields { tags += "nested" }
        if not "a" in tags or "z" in tags { tags += "never" }
    "#;
    assert_eq!(
        tags(&run(rules, e).1),
        ["a", "both", "logic", "nested", "no_b"]
    );
}

#[test]
fn tags_are_added_and_removed() {
    let mut e = event("app", "m");
    e.add_tag("_grokparsefailure");
    let (_, out) = run(
        "tags += \"kept\"\ntags -= \"_grokparsefailure\"\ntags -= \"absent\"",
        e,
    );
    assert_eq!(tags(&out), ["kept"]);
}

#[test]
fn fields_are_assigned_from_concatenations() {
    let mut e = event("nginx", "GET /");
    e.set_field("status", 503i64);
    let (_, out) = run(
        r#"[summary] := hostname + ": " + app_name + " " + [status] + [missing] + " \"q\"""#,
        e,
    );
    assert_eq!(
        out.field("summary").unwrap().to_string(),
        "web1: nginx 503 \"q\""
    );
}

#[test]
fn drop_discards_and_stop_really_stops() {
    let (verdict, _) = run(r#"if app_name == "health" { drop }"#, event("health", "ok"));
    assert_eq!(verdict, Verdict::Discard);
    let (verdict, out) = run(
        "tags += \"before\"\nstop\ntags += \"after\"",
        event("x", "m"),
    );
    assert_eq!(verdict, Verdict::Keep);
    assert_eq!(tags(&out), ["before"], "nothing after stop runs");
    // stop inside a block ends the whole rules, not only the block.
    let (_, out) = run(
        "if app_name == \"x\" { stop }\ntags += \"after\"",
        event("x", "m"),
    );
    assert!(tags(&out).is_empty());
}

#[test]
fn filter_calls_run_and_branch_on_success() {
    let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    let bot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    let rules = r#"
        if useragent([agent]) { tags += "parsed" } else { tags += "unparsed" }
        if "bot" in tags { drop }
    "#;
    let mut e = event("nginx", "GET /");
    e.set_field("agent", chrome);
    let (verdict, out) = run(rules, e);
    assert_eq!(verdict, Verdict::Keep);
    assert_eq!(out.field("browser").unwrap().to_string(), "Chrome");
    assert_eq!(out.field("browser_os").unwrap().to_string(), "Windows 10");
    assert!(out.has_tag("parsed"));
    let mut e = event("nginx", "GET /");
    e.set_field("agent", bot);
    assert_eq!(
        run(rules, e).0,
        Verdict::Discard,
        "crawlers are tagged bot and dropped"
    );
    let (_, out) = run(rules, event("nginx", "no agent field"));
    assert!(out.has_tag("unparsed"));
}

#[test]
fn grok_calls_take_patterns_positionally_and_keywords() {
    let rules = r#"
        if grok("%{IP:client} %{WORD:verb}", prefix="http_") { tags += "matched" }
        else { tags += "no_match" }
    "#;
    let (_, out) = run(rules, event("nginx", "10.0.0.1 GET"));
    assert!(out.has_tag("matched"), "{:?}", out.tags);
    assert_eq!(out.field("http_client").unwrap().to_string(), "10.0.0.1");
    let (_, out) = run(rules, event("nginx", "nothing here"));
    assert!(out.has_tag("no_match"), "{:?}", out.tags);
}

#[test]
fn severity_is_compared_by_name() {
    let mut e = event("app", "m");
    e.severity = Severity::Error;
    assert!(run(r#"if severity == "err" { tags += "error" }"#, e)
        .1
        .has_tag("error"));
}

#[test]
fn syntax_errors_give_line_column_and_a_caret() {
    let error = compile("if app_name == \"x\" {\n  tags += oops\n}").unwrap_err();
    assert!(error.contains("--> <inline rules>:2:"), "{error}");
    assert!(error.contains("tags += oops"), "{error}");
    assert!(error.contains('^'), "{error}");
    let error = compile("if app_name === \"x\" { drop }").unwrap_err();
    assert!(error.contains(":1:"), "{error}");
}

#[test]
fn meaning_errors_point_at_the_culprit() {
    let error = compile("if message ~ \"(unclosed\" { drop }").unwrap_err();
    assert!(error.contains("invalid regex"), "{error}");
    assert!(error.contains("1:14"), "{error}");
    let error = compile("if message ~ [pattern] { drop }").unwrap_err();
    assert!(error.contains("must be a string literal"), "{error}");
    let error = compile("nosuchfilter(x=\"1\")").unwrap_err();
    assert!(error.contains("unknown filter `nosuchfilter`"), "{error}");
    assert!(
        error.contains("useragent"),
        "lists the known filters: {error}"
    );
    let error = compile("useragent(\"a\", \"b\")").unwrap_err();
    assert!(error.contains("keyword arguments only"), "{error}");
    let error = compile("rules(rules=\"if x\")").unwrap_err();
    assert!(error.contains("cannot build `rules`"), "{error}");
}

#[test]
fn comments_and_blank_lines_are_ignored() {
    let (_, out) = run(
        "# a comment\n\n  tags += \"x\"  # trailing\n",
        event("a", "m"),
    );
    assert_eq!(tags(&out), ["x"]);
}

#[test]
fn rules_load_from_a_file_and_a_missing_file_is_an_error() {
    let dir = std::env::temp_dir().join(format!("loggr-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("main.rules");
    std::fs::write(&path, "tags += \"from_file\"\n").unwrap();
    let cx = BuildContext {
        name: "rules".into(),
        metrics: Metrics::new(),
    };
    let filter = RulesConfig {
        file: Some(path),
        rules: None,
    }
    .build(&cx)
    .unwrap();
    let mut e = event("a", "m");
    filter.apply(&mut e).unwrap();
    assert!(e.has_tag("from_file"));
    let error = RulesConfig {
        file: Some(dir.join("missing.rules")),
        rules: None,
    }
    .build(&cx)
    .unwrap_err();
    assert!(
        error.to_string().starts_with("cannot read rules file"),
        "{error}"
    );
    let error = RulesConfig {
        file: None,
        rules: None,
    }
    .build(&cx)
    .unwrap_err();
    assert_eq!(error.to_string(), "give exactly one of `file` and `rules`");
    std::fs::remove_dir_all(dir).unwrap();
}
