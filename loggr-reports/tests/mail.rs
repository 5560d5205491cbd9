//! Reports sent by e-mail to a real SMTP server started here: Python's `aiosmtpd` (from
//! PyPI: `python3 -m pip install aiosmtpd`) storing what it receives in a Maildir. Checks the
//! envelope (sender, To and Cc recipients), the headers (`Subject` from its template,
//! `Precedence: bulk`), the body (the rendered report, line by line), the run log, and that
//! a subject rendering a line break is refused before anything is sent; over the SQLite and
//! the PostgreSQL store alike.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

#[macro_use]
mod support;

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use loggr_reports::{Period, Reporter, ReporterConfig, RunOptions};
use support::{input_lines, Kind, TestDb};

/// `python3 -m aiosmtpd` on a free port, storing messages in a Maildir; killed on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    fn start() -> SmtpServer {
        let check = Command::new("python3")
            .args(["-m", "aiosmtpd", "--version"])
            .output();
        match check {
            Ok(output) if output.status.success() => {}
            other => panic!(
                "`python3 -m aiosmtpd` is unavailable ({other:?}): install it with \
                 `python3 -m pip install aiosmtpd` (run `bash scripts/services.sh`)"
            ),
        }
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("Maildir");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpServer {
            child,
            port,
            maildir,
            _dir: dir,
        }
    }

    /// The messages received so far, as text.
    fn messages(&self) -> Vec<String> {
        let new = self.maildir.join("new");
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&new) {
            Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        };
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of a header (first occurrence, unfolded).
fn header(message: &str, name: &str) -> Option<String> {
    let head = message.split("\n\n").next().unwrap();
    let mut lines = head.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(value) = line.strip_prefix(&format!("{name}: ")) {
            let mut value = value.to_owned();
            while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                value.push_str(next);
                lines.next();
            }
            return Some(value);
        }
    }
    None
}

fn config(db: &TestDb, port: u16, extra: &str) -> ReporterConfig {
    ReporterConfig::from_toml(&format!(
        r#"
database = "{}"
timezone = "UTC"

[mail]
server = "127.0.0.1"
port = {port}
from = "loggr <loggr@example.org>"
to = ["ops@example.org", "sec@example.org"]
cc = ["boss@example.org"]
subject = "[loggr] {{{{ params.name }}}} for {{{{ params.start_local[:10] }}}}"
{extra}
"#,
        db.database()
    ))
    .unwrap()
}

fn body(message: &str) -> String {
    message.split_once("\n\n").unwrap().1.replace("\r\n", "\n")
}

both!(a_report_is_mailed_with_its_headers_and_recorded);

async fn a_report_is_mailed_with_its_headers_and_recorded(kind: Kind) {
    let server = SmtpServer::start();
    let db = TestDb::new(kind, "mail").await;
    db.fill(&input_lines()).await;
    let config = config(
        &db,
        server.port,
        "[[daily]]\nname = \"Kernel\"\nkind = \"kernel\"\noutput = \"mail\"\n",
    );
    let report = config.daily[0].clone();
    let reporter = Reporter::new(config).unwrap();
    let now = "2024-12-11T06:00:00Z".parse().unwrap();
    let expected = reporter
        .render(db.store(), Period::Daily, &report, now)
        .await
        .unwrap();
    let mut stdout = Vec::new();
    let summary = reporter
        .run(
            db.store(),
            &RunOptions {
                all: false,
                dryrun: false,
                periods: vec![],
                now,
            },
            &mut stdout,
        )
        .await
        .unwrap();
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    assert_eq!(summary.ran.len(), 1);
    assert!(stdout.is_empty(), "a mailed report is not printed");
    assert_eq!(
        db.count("SELECT count(*) FROM report_run WHERE name = 'Kernel'"),
        1
    );

    let messages = server.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0];
    let expect = |name: &str, value: &str| {
        assert_eq!(
            header(message, name).as_deref(),
            Some(value),
            "{name} in\n{message}"
        );
    };
    expect("X-MailFrom", "loggr@example.org");
    expect(
        "X-RcptTo",
        "ops@example.org, sec@example.org, boss@example.org",
    );
    expect("From", "loggr <loggr@example.org>");
    expect("To", "ops@example.org, sec@example.org");
    expect("Cc", "boss@example.org");
    expect("Subject", "[loggr] Kernel for 2024-12-10");
    expect("Precedence", "bulk");
    expect("Auto-Submitted", "auto-generated");
    assert_eq!(
        expected.subject.as_deref(),
        Some("[loggr] Kernel for 2024-12-10")
    );
    // (The Maildir copy ends with one more newline than was sent.)
    let got = body(message);
    let got: Vec<&str> = got.trim_end_matches('\n').lines().collect();
    let want: Vec<&str> = expected.body.lines().collect();
    assert_eq!(got, want);
    assert!(
        want[0].starts_with("Kernel report, 2024-12-10 00:00:00"),
        "{want:?}"
    );
    assert!(
        want.contains(&"MINOR: Segmentation Fault: 3 hosts"),
        "{want:?}"
    );
}

both!(a_subject_with_a_line_break_is_refused_and_nothing_is_sent);

async fn a_subject_with_a_line_break_is_refused_and_nothing_is_sent(kind: Kind) {
    let server = SmtpServer::start();
    let db = TestDb::new(kind, "inject").await;
    // The template itself has no line break (the configuration check would refuse it); what
    // it renders has one.
    let config = config(
        &db,
        server.port,
        r#"
[[daily]]
name = "Injected"
tags = ["panic", "oops"]
output = "mail"
subject = '{{ params.tags|join("\r\nBcc: victim@example.org\r\n") }}'
"#,
    );
    let reporter = Reporter::new(config).unwrap();
    let summary = reporter
        .run(
            db.store(),
            &RunOptions {
                all: false,
                dryrun: false,
                periods: vec![],
                now: jiff::Timestamp::now(),
            },
            &mut Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(summary.failed.len(), 1, "{summary:?}");
    assert!(
        summary.failed[0].2.contains("header injection refused"),
        "{:?}",
        summary.failed
    );
    assert!(summary.ran.is_empty());
    assert_eq!(
        db.count("SELECT count(*) FROM report_run"),
        0,
        "not recorded"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(server.messages().is_empty());

    // A line break in the configuration itself is refused when it is read.
    let error = ReporterConfig::from_toml(&format!(
        "database = \"{}\"\n[mail]\nserver = \"x\"\nfrom = \"a@example.org\"\nto = [\"a@example.org\\r\\nBcc: b@example.org\"]\n",
        db.database()
    ))
    .unwrap_err();
    assert!(
        loggr_reports::report::error_chain(&error).contains("line break"),
        "{error:?}"
    );
}
