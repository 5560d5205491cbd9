//! The bundled reports (Kernel, AuthFailure, Sleep) and a generic one, rendered from a
//! store filled with loghub's lines and `testdata/kernel_sleep.log` through the BuzzSaw
//! stack and `Store::insert`; each output is checked line by line against lines computed
//! here from the input files. And the run log: never ran, not due, `--all`, `--dryrun`, one
//! period only; and the reporter driven in-process from another task, as the all-in-one
//! daemon does. Every check runs twice: over the embedded SQLite store and over PostgreSQL
//! (`both!`), with the same expected output.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

#[macro_use]
mod support;

use std::collections::{BTreeMap, HashSet};

use jiff::tz::TimeZone;
use jiff::Timestamp;
use loggr_reports::{Period, ReportConfig, ReportKind, Reporter, ReporterConfig, RunOptions};
use support::{input_lines, read_line, Kind, Line, TestDb};

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// The reporter's clock in these tests: Wednesday 11 December 2024, 06:00 UTC, so
/// `yesterday`..`today` is 10 December.
const NOW: &str = "2024-12-11T06:00:00Z";

fn config(db: &TestDb, extra: &str) -> ReporterConfig {
    ReporterConfig::from_toml(&format!(
        "database = \"{}\"\ntimezone = \"UTC\"\n{extra}",
        db.database()
    ))
    .unwrap()
}

async fn render(db: &TestDb, config: ReporterConfig, period: Period, index: usize) -> String {
    let report = config.reports(period)[index].clone();
    let reporter = Reporter::new(config).unwrap();
    reporter
        .render(db.store(), period, &report, t(NOW))
        .await
        .unwrap()
        .body
}

fn assert_lines(got: &str, expected: &[String]) {
    if std::env::var_os("SHOW_REPORTS").is_some() {
        eprintln!("{got}");
    }
    let got: Vec<&str> = got.lines().collect();
    for (index, (g, e)) in got.iter().zip(expected).enumerate() {
        assert_eq!(
            g,
            e,
            "line {} differs\n--- got:\n{}",
            index + 1,
            got.join("\n")
        );
    }
    assert_eq!(
        got.len(),
        expected.len(),
        "line count\n--- got:\n{}\n--- expected:\n{}",
        got.join("\n"),
        expected.join("\n")
    );
}

fn lines_in(start: &str, end: &str) -> Vec<(usize, Line)> {
    let (start, end) = (t(start), t(end));
    input_lines()
        .iter()
        .enumerate()
        .filter_map(|(index, line)| read_line(line).map(|l| (index, l)))
        .filter(|(_, l)| l.time >= start && l.time < end)
        .collect()
}

/// The kernel problem a line shows, as the BuzzSaw Kernel filter's documentation describes
/// it (first match wins).
fn kernel_problem(line: &Line) -> Option<&'static str> {
    if line.program != "kernel" {
        return None;
    }
    let message = line.message.to_lowercase();
    if message.contains("segfault") {
        Some("segfault")
    } else if message.contains(" invoked oom-killer")
        || message.starts_with("out of memory")
        || message.starts_with("killed process")
    {
        Some("oom")
    } else if message.starts_with("kernel panic ") || message.starts_with("panic occurred") {
        Some("panic")
    } else if ["oops: ", "bug: ", "kernel bug ", "unable to handle "]
        .iter()
        .any(|p| message.starts_with(p))
    {
        Some("oops")
    } else {
        None
    }
}

fn plural(n: usize, word: &str, suffix: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { suffix })
}

both!(kernel_report_lists_hosts_per_problem_in_severity_order);

async fn kernel_report_lists_hosts_per_problem_in_severity_order(kind: Kind) {
    let db = TestDb::new(kind, "kernel").await;
    db.fill(&input_lines()).await;
    let config = config(&db, "[[daily]]\nname = \"Kernel\"\nkind = \"kernel\"\n");
    let body = render(&db, config, Period::Daily, 0).await;

    // Expected from the input lines of 10 December.
    let mut hosts: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    for (_, line) in lines_in("2024-12-10T00:00:00Z", "2024-12-11T00:00:00Z") {
        if let Some(problem) = kernel_problem(&line) {
            *hosts
                .entry(problem)
                .or_default()
                .entry(line.host)
                .or_default() += 1;
        }
    }
    let mut expected =
        vec!["Kernel report, 2024-12-10 00:00:00 to 2024-12-11 00:00:00 (UTC)".to_owned()];
    for (tag, title) in [
        ("panic", "SERIOUS: Kernel Panic"),
        ("oops", "SERIOUS: Kernel Oops"),
        ("oom", "IMPORTANT: Out-Of-Memory"),
        ("segfault", "MINOR: Segmentation Fault"),
    ] {
        let of_tag = hosts.remove(tag).unwrap_or_default();
        expected.push(String::new());
        expected.push(format!("{title}: {}", plural(of_tag.len(), "host", "s")));
        // BTreeMap<String, _> iterates in byte order, as the report sorts.
        for (host, count) in of_tag {
            expected.push(format!("    {host}: {count}"));
        }
    }
    assert_lines(&body, &expected);
    // The data set is the one described in testdata: every section has hosts, and the
    // capitalised host sorts first.
    assert!(
        body.contains(
            "MINOR: Segmentation Fault: 3 hosts\n    Node-C: 1\n    node-b: 1\n    web1: 2\n"
        ),
        "{body}"
    );
    assert!(!body.contains("edge9") && !body.contains("node-z") && !body.contains("node-y"));
}

both!(auth_failure_report_counts_top_ten_and_never_prints_unknown_user_names);

async fn auth_failure_report_counts_top_ten_and_never_prints_unknown_user_names(kind: Kind) {
    let db = TestDb::new(kind, "auth").await;
    db.fill(&input_lines()).await;
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    std::fs::write(
        &passwd,
        "# local accounts\nuucp:x:10:14::/var/spool/uucp:/sbin/nologin\nftp:x:14:50::/srv:/sbin/nologin\ngit:x:990:990::/srv/git:/bin/sh\n",
    )
    .unwrap();
    let config = config(
        &db,
        &format!(
            r#"
[accounts]
known = ["root", "fztu"]
passwd_file = "{}"

[[daily]]
name = "AuthFailure"
kind = "auth_failure"

[[hourly]]
name = "AuthFailure 8h"
kind = "auth_failure"
start = "2024-12-10 08:00"
end = "2024-12-10T09:00:00"
"#,
            passwd.display()
        ),
    );
    let known: HashSet<&str> = ["root", "fztu", "uucp", "ftp", "git"].into();

    for (period, start, end) in [
        (
            Period::Daily,
            "2024-12-10T00:00:00Z",
            "2024-12-11T00:00:00Z",
        ),
        (
            Period::Hourly,
            "2024-12-10T08:00:00Z",
            "2024-12-10T09:00:00Z",
        ),
    ] {
        let body = render(&db, config.clone(), period, 0).await;
        // Expected from the input lines: sshd's "Failed <method> for [invalid user ]<user>
        // from <address> …" lines in the range.
        let mut users: BTreeMap<String, i64> = BTreeMap::new();
        let mut targets: BTreeMap<String, i64> = BTreeMap::new();
        let mut sources: BTreeMap<String, i64> = BTreeMap::new();
        let (mut distinct_users, mut total) = (HashSet::new(), 0);
        for (_, line) in lines_in(start, end) {
            if line.program != "sshd" || !line.message.starts_with("Failed ") {
                continue;
            }
            let words: Vec<&str> = line.message.split_whitespace().collect();
            let user_at = if words[3..5] == ["invalid", "user"] {
                5
            } else {
                3
            };
            assert_eq!(words[2], "for");
            assert_eq!(words[user_at + 1], "from");
            let user = words[user_at];
            distinct_users.insert(user.to_owned());
            let shown = if known.contains(user) {
                user
            } else {
                "**INVALID**"
            };
            *users.entry(shown.to_owned()).or_default() += 1;
            *targets.entry(line.host.clone()).or_default() += 1;
            *sources.entry(words[user_at + 2].to_owned()).or_default() += 1;
            total += 1;
        }
        assert!(total > 0);
        let top = |counts: &BTreeMap<String, i64>| -> Vec<String> {
            let mut ranked: Vec<(&String, &i64)> = counts.iter().collect();
            ranked.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            ranked
                .iter()
                .take(10)
                .enumerate()
                .map(|(i, (name, count))| format!("{:>3}. {name}: {count}", i + 1))
                .collect()
        };
        let mut expected = vec![
            format!(
                "Authentication failures, {} to {} (UTC)",
                start.replace('T', " ").trim_end_matches('Z'),
                end.replace('T', " ").trim_end_matches('Z')
            ),
            String::new(),
            format!(
                "There have been {total} authentication failures, involving {}, {} and {}.",
                plural(distinct_users.len(), "user name", "s"),
                plural(targets.len(), "target host", "s"),
                plural(sources.len(), "source address", "es"),
            ),
        ];
        for (title, counts) in [
            ("Users", &users),
            ("Target hosts", &targets),
            ("Source addresses", &sources),
        ] {
            expected.push(String::new());
            expected.push(format!("{title} (top 10)"));
            expected.extend(top(counts));
        }
        assert_lines(&body, &expected);
        // No unknown name is ever printed (they may be passwords): every user entry is a
        // known account or **INVALID**.
        let users_section: Vec<&str> = body
            .lines()
            .skip_while(|l| *l != "Users (top 10)")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect();
        assert!(!users_section.is_empty());
        for entry in users_section {
            let name = entry
                .split_once(". ")
                .unwrap()
                .1
                .rsplit_once(": ")
                .unwrap()
                .0;
            assert!(
                name == "**INVALID**" || known.contains(name),
                "{name} printed"
            );
        }
        assert!(
            !body.contains("webmaster") && !body.contains("oracle"),
            "{body}"
        );
    }
}

both!(sleep_report_is_csv_in_the_report_time_zone);

async fn sleep_report_is_csv_in_the_report_time_zone(kind: Kind) {
    let db = TestDb::new(kind, "sleep").await;
    db.fill(&input_lines()).await;
    let config = config(
        &db,
        "[[daily]]\nname = \"Sleep\"\nkind = \"sleep\"\ntimezone = \"Europe/Paris\"\n",
    );
    let body = render(&db, config, Period::Daily, 0).await;
    // 10 December in Paris (UTC+1): 9 December 23:00Z to 10 December 23:00Z; ordered by host,
    // then time.
    let paris = TimeZone::get("Europe/Paris").unwrap();
    let mut rows: Vec<(String, Timestamp, String)> =
        lines_in("2024-12-09T23:00:00Z", "2024-12-10T23:00:00Z")
            .into_iter()
            .map(|(_, l)| l)
            .filter(|l| {
                l.program == "lcfg-sleep"
                    && (l.message == "Waking up" || l.message == "Going to sleep")
            })
            .map(|l| (l.host, l.time, l.message))
            .collect();
    rows.sort();
    let expected: Vec<String> = rows
        .iter()
        .map(|(host, time, message)| {
            format!(
                "{host},{},{message}",
                time.to_zoned(paris.clone()).strftime("%Y-%m-%d %H:%M:%S")
            )
        })
        .collect();
    assert_eq!(expected.len(), 6, "{expected:?}");
    assert_lines(&body, &expected);
    assert_eq!(
        body.lines().next(),
        Some("laptop1,2024-12-10 09:00:00,Waking up"),
        "local time, not UTC"
    );
}

both!(a_generic_report_from_configuration_alone_and_a_user_template);

async fn a_generic_report_from_configuration_alone_and_a_user_template(kind: Kind) {
    let db = TestDb::new(kind, "generic").await;
    db.fill(&input_lines()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("logins.txt"),
        "{{ params.name }}|{{ params.tags|join(',') }}|{{ params.program }}|{{ events|length }}\n\
         {% for e in events %}{{ e.hostname }} {{ e.fields.source_address|join(',') }} {{ e.userid }} {{ e.tags|join(',') }}\n{% endfor %}",
    )
    .unwrap();
    let config = config(
        &db,
        &format!(
            r#"
template_dir = "{}"

[[daily]]
name = "sshd logins"
tags = ["auth_success", "auth_failure"]
program = "sshd"
start = "2024-12-10 09:30"
end = "2024-12-10 09:45"

[[daily]]
name = "custom"
tags = ["auth_success"]
template = "logins.txt"
"#,
            dir.path().display()
        ),
    );
    let body = render(&db, config.clone(), Period::Daily, 0).await;
    let mut selected: Vec<(Timestamp, usize, Line)> =
        lines_in("2024-12-10T09:30:00Z", "2024-12-10T09:45:00Z")
            .into_iter()
            .filter(|(_, l)| {
                l.program == "sshd"
                    && (l.message.starts_with("Failed ") || l.message.starts_with("Accepted "))
            })
            .map(|(i, l)| (l.time, i, l))
            .collect();
    selected.sort_by_key(|(time, index, _)| (*time, *index));
    let mut expected = vec![format!(
        "sshd logins: {}, 2024-12-10 09:30:00 to 2024-12-10 09:45:00 (UTC)",
        plural(selected.len(), "event", "s")
    )];
    expected.extend(selected.iter().map(|(_, _, l)| {
        format!(
            "{} {} {}[{}]: {}",
            l.time.strftime("%Y-%m-%d %H:%M:%S"),
            l.host,
            l.program,
            l.pid,
            l.message.trim_end()
        )
    }));
    assert!(selected.len() > 3, "{selected:?}");
    assert_lines(&body, &expected);

    let custom = render(&db, config, Period::Daily, 1).await;
    assert_lines(
        &custom,
        &[
            "custom|auth_success||1".to_owned(),
            format!(
                "LabSZ 119.137.62.142 fztu {}",
                db.psql(
                    "SELECT string_agg(t.name, ',' ORDER BY t.name) FROM tag t \
                     JOIN tag s ON s.event = t.event AND s.name = 'auth_success'"
                )[0]
            ),
        ],
    );
}

both!(the_run_log_runs_reports_when_due);

async fn the_run_log_runs_reports_when_due(kind: Kind) {
    let db = TestDb::new(kind, "runlog").await;
    let config = config(
        &db,
        r#"
[[hourly]]
name = "H"
tags = ["x"]
[[daily]]
name = "D"
tags = ["x"]
[[monthly]]
name = "M"
tags = ["x"]
"#,
    );
    let reporter = Reporter::new(config).unwrap();
    let run = |now: &str, all: bool, dryrun: bool, periods: Vec<Period>| RunOptions {
        all,
        dryrun,
        periods,
        now: t(now),
    };
    let names = |list: &[(Period, String)]| -> Vec<String> {
        list.iter().map(|(p, n)| format!("{p}:{n}")).collect()
    };
    let mut out = Vec::new();

    // A dry run says what would run and records nothing.
    let summary = reporter
        .run(db.store(), &run(NOW, false, true, vec![]), &mut out)
        .await
        .unwrap();
    assert_eq!(names(&summary.ran), ["hourly:H", "daily:D", "monthly:M"]);
    assert_eq!(
        String::from_utf8(std::mem::take(&mut out)).unwrap(),
        "would run hourly report H (never ran)\nwould run daily report D (never ran)\nwould run monthly report M (never ran)\n"
    );
    assert_eq!(db.count("SELECT count(*) FROM report_run"), 0);

    // Never ran: all three run and are recorded at `now`.
    let summary = reporter
        .run(db.store(), &run(NOW, false, false, vec![]), &mut out)
        .await
        .unwrap();
    assert_eq!(names(&summary.ran), ["hourly:H", "daily:D", "monthly:M"]);
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    let printed = String::from_utf8(std::mem::take(&mut out)).unwrap();
    assert_eq!(
        printed
            .lines()
            .filter(|l| l.contains(": 0 events, "))
            .count(),
        3,
        "{printed}"
    );
    assert_eq!(
        db.psql(&format!(
            "SELECT period, name, {} FROM report_run ORDER BY 1, 2",
            db.utc_text("last_run")
        )),
        [
            "daily|D|2024-12-11 06:00:00",
            "hourly|H|2024-12-11 06:00:00",
            "monthly|M|2024-12-11 06:00:00"
        ]
    );

    // An hour later: only the hourly one is due.
    let summary = reporter
        .run(
            db.store(),
            &run("2024-12-11T07:00:00Z", false, false, vec![]),
            &mut out,
        )
        .await
        .unwrap();
    assert_eq!(names(&summary.ran), ["hourly:H"]);
    assert_eq!(names(&summary.not_due), ["daily:D", "monthly:M"]);

    // --all runs the selected periods whatever the log says.
    let summary = reporter
        .run(
            db.store(),
            &run(
                "2024-12-11T07:10:00Z",
                true,
                false,
                vec![Period::Daily, Period::Monthly],
            ),
            &mut out,
        )
        .await
        .unwrap();
    assert_eq!(names(&summary.ran), ["daily:D", "monthly:M"]);

    // Cron calling `daily` only, the next day at 07:09 (within the slack of 07:10).
    let summary = reporter
        .run(
            db.store(),
            &run("2024-12-12T07:09:00Z", false, false, vec![Period::Daily]),
            &mut out,
        )
        .await
        .unwrap();
    assert_eq!(names(&summary.ran), ["daily:D"]);
    assert!(summary.not_due.is_empty());

    // After an outage: one catch-up run runs each overdue report once; the monthly one waits
    // for 11 January.
    let summary = reporter
        .run(
            db.store(),
            &run("2025-01-10T07:00:00Z", false, false, vec![]),
            &mut out,
        )
        .await
        .unwrap();
    assert_eq!(names(&summary.ran), ["hourly:H", "daily:D"]);
    assert_eq!(names(&summary.not_due), ["monthly:M"]);
    let summary = reporter
        .run(
            db.store(),
            &run("2025-01-11T07:10:00Z", false, false, vec![Period::Monthly]),
            &mut out,
        )
        .await
        .unwrap();
    assert_eq!(names(&summary.ran), ["monthly:M"]);

    // A report that fails (an unknown time word) is reported and not recorded; others run.
    let bad = ReporterConfig {
        daily: vec![
            ReportConfig {
                start: Some("tomorrow".into()),
                ..ReportConfig::new("Broken", ReportKind::Generic)
            },
            ReportConfig::new("Fine", ReportKind::Generic),
        ],
        ..reporter.config().clone()
    };
    let summary = Reporter::new(bad)
        .unwrap()
        .run(
            db.store(),
            &run("2025-02-01T00:00:00Z", false, false, vec![Period::Daily]),
            &mut out,
        )
        .await
        .unwrap();
    assert_eq!(names(&summary.ran), ["daily:Fine"]);
    assert_eq!(summary.failed.len(), 1);
    assert!(
        summary.failed[0].2.contains("unknown time `tomorrow`"),
        "{:?}",
        summary.failed
    );
    assert_eq!(
        db.count("SELECT count(*) FROM report_run WHERE name = 'Broken'"),
        0
    );
}

both!(a_reporter_runs_in_process_from_a_task_over_a_shared_store);

/// What the all-in-one daemon does: a task holding the reporter and the daemon's own store
/// (`Arc<dyn Store>`) calls `run_due` periodically; each report runs once per period,
/// whatever the calling rate, and renders the same report the `reporter` program would.
async fn a_reporter_runs_in_process_from_a_task_over_a_shared_store(kind: Kind) {
    let db = TestDb::new(kind, "inproc").await;
    db.fill(&input_lines()).await;
    let config = config(&db, "[[daily]]\nname = \"Kernel\"\nkind = \"kernel\"\n");
    let report = config.daily[0].clone();
    let reporter = std::sync::Arc::new(Reporter::new(config).unwrap());
    let expected = reporter
        .render(db.store(), Period::Daily, &report, t(NOW))
        .await
        .unwrap()
        .body;
    // The daemon's own store, shared with its sinks and web frontend.
    let store: std::sync::Arc<dyn loggr_store::Store> =
        loggr_reports::open_store(&db.database()).unwrap();
    let task = {
        let (reporter, store) = (reporter.clone(), store.clone());
        tokio::spawn(async move {
            let mut outputs = Vec::new();
            for now in [NOW, "2024-12-11T06:05:00Z", "2024-12-12T06:00:00Z"] {
                let mut out = Vec::new();
                let summary = reporter.run_due(&*store, t(now), &mut out).await.unwrap();
                outputs.push((summary.ran.len(), String::from_utf8(out).unwrap()));
            }
            outputs
        })
    };
    let outputs = task.await.unwrap();
    assert_eq!(outputs[0], (1, expected), "due: never ran");
    assert_eq!(
        outputs[1],
        (0, String::new()),
        "five minutes later: not due"
    );
    assert_eq!(outputs[2].0, 1, "the next day: due again");
    assert!(
        outputs[2]
            .1
            .starts_with("Kernel report, 2024-12-11 00:00:00 to 2024-12-12 00:00:00 (UTC)"),
        "{}",
        outputs[2].1
    );
    assert_eq!(
        db.psql(&format!(
            "SELECT period, name, {} FROM report_run",
            db.utc_text("last_run")
        )),
        ["daily|Kernel|2024-12-12 06:00:00"]
    );
}
