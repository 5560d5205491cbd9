//! Real rsyslog (`omrelp`) sending to loggr's `syslog_server` over RELP: every message arrives,
//! exactly once on a calm run, and with 0 lost when the receiver is killed (`kill -9`) twice
//! mid-stream and restarted.
//!
//! Needs Debian's `rsyslog` and `rsyslog-relp` (scripts/test.sh installs them).

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::{example, free_port};

const OMRELP: &str = "/usr/lib/x86_64-linux-gnu/rsyslog/omrelp.so";
/// librelp's default window: the most transactions outstanding on one session.
const OMRELP_WINDOW: u64 = 128;

fn require_rsyslog() {
    let missing: Vec<&str> = [("/usr/sbin/rsyslogd", "rsyslog"), (OMRELP, "rsyslog-relp")]
        .iter()
        .filter(|(path, _)| !Path::new(path).exists())
        .map(|(_, package)| *package)
        .collect();
    assert!(
        missing.is_empty(),
        "rsyslog is the RELP peer of this test; install {} (apt-get install rsyslog rsyslog-relp, \
         or run scripts/test.sh as root)",
        missing.join(" ")
    );
}

/// Kills the child when dropped (tests never leave daemons behind).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_receiver(binary: &Path, port: u16, out: &Path) -> Daemon {
    let child = Command::new(binary)
        .args(["--relp", &format!("127.0.0.1:{port}"), "--out"])
        .arg(out)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("syslog_server starts");
    // Wait until it listens.
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "syslog_server did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Daemon(child)
}

fn start_rsyslog(dir: &Path, input: &Path, port: u16) -> Daemon {
    let work = dir.join("rsyslog");
    std::fs::create_dir_all(&work).unwrap();
    let config = dir.join("rsyslog.conf");
    std::fs::write(
        &config,
        format!(
            r#"global(workDirectory="{work}")
module(load="imfile")
module(load="omrelp")
input(type="imfile" File="{input}" Tag="loggen" Facility="local0" Severity="info"
      ruleset="forward" freshStartTail="off")
ruleset(name="forward") {{
  action(type="omrelp" target="127.0.0.1" port="{port}" template="RSYSLOG_SyslogProtocol23Format"
         queue.type="LinkedList" queue.size="200000" action.resumeRetryCount="-1"
         action.resumeInterval="1")
}}
"#,
            work = work.display(),
            input = input.display(),
        ),
    )
    .unwrap();
    let child = Command::new("/usr/sbin/rsyslogd")
        .args(["-n", "-iNONE", "-f"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rsyslogd starts");
    Daemon(child)
}

/// How many times each sequence number of the run appears in the sink's file.
fn tally(out: &Path, run: &str) -> HashMap<u64, u64> {
    let mut seen = HashMap::new();
    let Ok(file) = std::fs::File::open(out) else {
        return seen;
    };
    let marker = format!("run={run} seq=");
    for line in std::io::BufReader::new(file).lines() {
        let Ok(line) = line else { break };
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue; // a line being written right now
        };
        let message = event["message"].as_str().unwrap_or_default();
        if let Some(at) = message.find(&marker) {
            let digits: String = message[at + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            *seen.entry(digits.parse().unwrap()).or_insert(0) += 1;
        }
    }
    seen
}

fn write_input(path: &Path, run: &str, count: u64) {
    let mut text = String::with_capacity(count as usize * 80);
    for seq in 0..count {
        text.push_str(&format!(
            "loggen run={run} seq={seq} padding-to-make-a-realistic-line\n"
        ));
    }
    std::fs::write(path, text).unwrap();
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn rsyslog_omrelp_delivers_100k_messages_exactly_once() {
    require_rsyslog();
    let binary = example("syslog_server");
    let dir = tempfile::tempdir().unwrap();
    let (input, out, port) = (
        dir.path().join("input.log"),
        dir.path().join("events.jsonl"),
        free_port(),
    );
    let count = 100_000;
    write_input(&input, "calm", count);
    let _receiver = start_receiver(&binary, port, &out);
    let _rsyslog = start_rsyslog(dir.path(), &input, port);
    wait_until("every message to arrive", Duration::from_secs(240), || {
        tally(&out, "calm").len() as u64 == count
    });
    // Give stragglers a moment, then check exactly once.
    std::thread::sleep(Duration::from_secs(1));
    let seen = tally(&out, "calm");
    assert_eq!(seen.len() as u64, count, "0 lost");
    let duplicates: u64 = seen.values().map(|n| n - 1).sum();
    assert_eq!(duplicates, 0, "exactly once on a calm run");
}

#[test]
fn killing_the_receiver_twice_loses_nothing() {
    require_rsyslog();
    let binary = example("syslog_server");
    let dir = tempfile::tempdir().unwrap();
    let (input, out, port) = (
        dir.path().join("input.log"),
        dir.path().join("events.jsonl"),
        free_port(),
    );
    let count = 100_000;
    write_input(&input, "crash", count);
    let mut receiver = start_receiver(&binary, port, &out);
    let _rsyslog = start_rsyslog(dir.path(), &input, port);
    for threshold in [20_000, 60_000] {
        wait_until(
            "progress before the crash",
            Duration::from_secs(240),
            || tally(&out, "crash").len() >= threshold,
        );
        // kill -9: no drain, no serverclose, unanswered transactions stay unanswered.
        receiver.0.kill().unwrap();
        receiver.0.wait().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        receiver = start_receiver(&binary, port, &out);
    }
    wait_until(
        "every message to arrive after the crashes",
        Duration::from_secs(300),
        || tally(&out, "crash").len() as u64 == count,
    );
    std::thread::sleep(Duration::from_secs(1));
    let seen = tally(&out, "crash");
    assert_eq!(seen.len() as u64, count, "0 lost across two kill -9");
    let duplicates: u64 = seen.values().map(|n| n - 1).sum();
    let reconnects = 2;
    assert!(
        duplicates <= OMRELP_WINDOW * reconnects,
        "{duplicates} duplicates, at most window × reconnects = {}",
        OMRELP_WINDOW * reconnects
    );
    eprintln!("kill -9 twice: 0 lost, {duplicates} duplicated");
}
