//! The frontend in a real browser: headless Chromium (Debian's `chromium`), driven by
//! `tests/browser/web.mjs` (playwright-core), walks through login, status, a filtered query,
//! paging, an event page, the exports, hostile log messages and logout, saving a screenshot
//! per step into `target/browser-artifacts/`.
//!
//! Needs PostgreSQL, node, chromium and `tests/browser/node_modules`: `bash scripts/services.sh`
//! installs them all. Without them this test fails, saying so.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{NewEvent, TestDb, ALICE_PASSWORD};

/// The screenshots `web.mjs` saves (its `SCREENSHOTS`).
const SCREENSHOTS: [&str; 14] = [
    "01-login.png",
    "02-login-wrong-password.png",
    "03-events.png",
    "04-status.png",
    "05-query-filtered.png",
    "06-query-filtered-page2.png",
    "07-paging-page1.png",
    "08-paging-page2.png",
    "09-event.png",
    "10-export-csv.png",
    "11-export-jsonl.png",
    "12-xss-list.png",
    "13-xss-event.png",
    "14-logout.png",
];

/// How long the whole browser walk may take.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(180);

/// The message that would set `window.__pwned` and offer a `javascript:` link if it were
/// rendered as HTML.
const HOSTILE: &str =
    "<script>window.__pwned=1</script> <a href=\"javascript:alert(1)\">javascript:alert(1)</a>";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Fails, saying how to install it, when a tool the browser test needs is missing.
fn require_tools() -> PathBuf {
    let hint = "run `bash scripts/services.sh` (installs chromium and the npm packages)";
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("`node --version` failed ({:?}): {hint}", out.status),
        Err(e) => panic!("node is missing ({e}): {hint}"),
    }
    let chromium = std::env::var("LOGGR_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: {hint}"
    );
    let dir = workspace().join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core/package.json")
            .exists(),
        "{} has no node_modules/playwright-core: {hint}",
        dir.display()
    );
    dir
}

/// A change to an event.
type Tweak = fn(&mut NewEvent<'static>);

/// The data set `web.mjs`'s `FIXTURE` describes: 7 events match every filter of its query
/// (host web2, program sshd, severity at most warning, tag auth_failure, "failed password",
/// on 2026-11-19), each near miss fails exactly one filter, 30 more events fill the other
/// pages, and two messages are hostile HTML.
async fn insert_fixture(db: &TestDb) {
    let mut seq = 0;
    let mut next = || {
        seq += 1;
        seq
    };
    for i in 0..7u32 {
        let message = format!("Failed password for root from 10.0.0.{i} port 22 ssh2");
        let mut e = NewEvent::new(next(), &format!("2026-11-19T10:{:02}:00Z", i * 5), &message);
        e.host = "web2";
        e.program = "sshd";
        e.severity = [4, 3, 2][i as usize % 3];
        e.tags = &["auth_failure", "ssh"];
        db.insert(&e).await;
    }
    // Each near miss fails exactly one filter of the query.
    let near_misses: [(&str, &str, Tweak); 7] = [
        ("2026-11-19T11:00:00Z", "Failed password for bob", |e| {
            e.severity = 6
        }),
        ("2026-11-19T11:01:00Z", "Failed password for bob", |e| {
            e.host = "web1"
        }),
        ("2026-11-19T11:02:00Z", "Failed password for bob", |e| {
            e.program = "nginx"
        }),
        ("2026-11-19T11:03:00Z", "Failed password for bob", |e| {
            e.tags = &["ssh"]
        }),
        ("2026-11-19T11:04:00Z", "Accepted password for bob", |_| {}),
        ("2026-11-18T23:59:59Z", "Failed password for bob", |_| {}),
        ("2026-11-20T00:00:00Z", "Failed password for bob", |_| {}),
    ];
    for (logtime, message, miss) in near_misses {
        let mut e = NewEvent::new(next(), logtime, message);
        e.host = "web2";
        e.program = "sshd";
        e.severity = 4;
        e.tags = &["auth_failure"];
        miss(&mut e);
        db.insert(&e).await;
    }
    let hosts = ["web1", "web2", "db1"];
    let programs = ["sshd", "nginx", "kernel", "cron"];
    let severities = [6, 5, 4, 3, 6, 2];
    for i in 0..30usize {
        let message = format!("background event {i}");
        let logtime = format!("2026-11-20T{:02}:{:02}:00Z", 1 + i / 6, (i % 6) * 7);
        let mut e = NewEvent::new(next(), &logtime, &message);
        e.host = hosts[i % hosts.len()];
        e.program = programs[i % programs.len()];
        e.severity = severities[i % severities.len()];
        if i % 5 == 0 {
            e.tags = &["disk"];
        }
        db.insert(&e).await;
    }
    let mut hostile = NewEvent::new(next(), "2026-11-20T12:00:00Z", HOSTILE);
    hostile.host = "evil";
    hostile.program = "xss";
    hostile.severity = 1;
    hostile.raw = Some(format!("<9>Nov 20 12:00:00 evil xss: {HOSTILE}").into_bytes());
    hostile.tags = &["javascript:alert(1)", "<b>bold</b>"];
    db.insert(&hostile).await;
    db.insert(&NewEvent::new(
        next(),
        "2026-11-20T12:01:00Z",
        "javascript:alert(1)",
    ))
    .await;
}

/// Runs `web.mjs`; kills it when it outlives [`BROWSER_TIMEOUT`].
fn run_browser(dir: &Path, base: &str, out: &Path) -> (bool, String) {
    let mut child = Command::new("node")
        .arg(dir.join("web.mjs"))
        .args([base, "alice", ALICE_PASSWORD])
        .arg(out)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node ({e}): run `bash scripts/services.sh`"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            child.kill().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "status {status:?}\n--- stdout\n{}--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (status.is_some_and(|s| s.success()), text)
}

both!(chromium_walks_through_login_query_paging_event_export_and_logout);
async fn chromium_walks_through_login_query_paging_event_export_and_logout(db: TestDb) {
    let dir = require_tools();
    insert_fixture(&db).await;
    // A watched daemon whose clients the status page lists; one peer is web.mjs's
    // `FIXTURE.hostileScript`.
    let relay = support::fake_daemon_with_clients("<script>window.__pwned=1</script>").await;
    let extra =
        format!("[status]\ncomponents = [{{ name = \"relay\", metrics_url = \"{relay}\" }}]\n");
    let addr = support::serve_with(&db.url(), 5, 100, &extra).await;

    let out = workspace().join("target/browser-artifacts");
    std::fs::create_dir_all(&out).unwrap();
    for name in SCREENSHOTS {
        let _ = std::fs::remove_file(out.join(name));
    }
    let base = format!("http://{addr}");
    let out_for_node = out.clone();
    let (ok, text) = tokio::task::spawn_blocking(move || run_browser(&dir, &base, &out_for_node))
        .await
        .unwrap();
    assert!(ok, "the browser walk failed:\n{text}");

    for name in SCREENSHOTS {
        let path = out.join(name);
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("screenshot {} missing ({e})\n{text}", path.display()));
        assert!(
            bytes.len() > 1000 && bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is not a PNG screenshot ({} bytes)",
            path.display(),
            bytes.len()
        );
    }
    // The walk only read: every event is still there.
    assert_eq!(db.count().await, 7 + 7 + 30 + 2);
}
