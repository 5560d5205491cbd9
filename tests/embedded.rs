//! The zero-config `loggr` daemon as a newcomer runs it: RELP, TCP and UDP senders, the
//! embedded SQLite store, the events in `loggr query`, the web frontend and the daily
//! reports, and `kill -9` under RELP load (nothing acknowledged is lost, nothing is stored
//! twice).

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly by design

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use loggr::relp::{Client, ClientConfig};
use loggr::store::{EventFilter, SqliteConfig, SqliteStore, Store};
use support::{example, free_port, wait_port, Daemon};

/// The ports of one daemon, kept across restarts.
struct Ports {
    relp: u16,
    tcp: u16,
    udp: u16,
    metrics: u16,
    web: u16,
}

impl Ports {
    fn new() -> Ports {
        Ports {
            relp: free_port(),
            tcp: free_port(),
            udp: free_port(),
            metrics: free_port(),
            web: free_port(),
        }
    }
}

/// Starts the zero-config daemon with its data in `data` (nothing but addresses changed).
fn start(data: &Path, ports: &Ports, log: &Path) -> Daemon {
    let mut command = Command::new(example("loggr"));
    command
        .env("LOGGR_DATA", data)
        .env("LOGGR_RELP", format!("127.0.0.1:{}", ports.relp))
        .env("LOGGR_TCP", format!("127.0.0.1:{}", ports.tcp))
        .env("LOGGR_UDP", format!("127.0.0.1:{}", ports.udp))
        .env("LOGGR_METRICS", format!("127.0.0.1:{}", ports.metrics))
        .env("LOGGR_WEB", format!("127.0.0.1:{}", ports.web))
        .env_remove("LOGGR_WEB_ADMIN_HASH");
    let mut daemon = Daemon::spawn_command(command, "loggr", log);
    daemon.wait_port(ports.relp, log, Duration::from_secs(60));
    daemon.wait_port(ports.tcp, log, Duration::from_secs(10));
    daemon
}

/// `curl` with a cookie jar; the body of the answer.
fn curl(jar: &Path, args: &[&str]) -> String {
    let output = Command::new("curl")
        .args(["-sS", "--fail", "-b"])
        .arg(jar)
        .arg("-c")
        .arg(jar)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("curl is missing ({e}): run `bash scripts/services.sh`"));
    assert!(output.status.success(), "curl {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// Logs in to the daemon's web frontend as admin with the password it printed at start.
fn web_login(base: &str, log: &Path, jar: &Path) {
    let printed = std::fs::read_to_string(log).unwrap();
    let password = printed
        .split("user admin, password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no admin password printed in {printed}"));
    let page = curl(jar, &[&format!("{base}/login")]);
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF field in {page}"));
    curl(
        jar,
        &[
            "--data-urlencode",
            &format!("csrf={csrf}"),
            "--data-urlencode",
            "username=admin",
            "--data-urlencode",
            &format!("password={password}"),
            &format!("{base}/login"),
        ],
    );
}

fn store(data: &Path) -> SqliteStore {
    SqliteStore::open(SqliteConfig::new(data.join("loggr.db"))).unwrap()
}

/// `SELECT count(*), count(DISTINCT message) FROM event`, read while the daemon runs.
fn counts(data: &Path) -> (i64, i64) {
    let db = rusqlite::Connection::open(data.join("loggr.db")).unwrap();
    db.query_row(
        "SELECT count(*), count(DISTINCT message) FROM event",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

async fn wait_for_rows(data: &Path, rows: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while counts(data).0 < rows {
        assert!(
            Instant::now() < deadline,
            "only {:?} of {rows} events stored",
            counts(data)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_config_stores_relp_tcp_and_udp_with_tags_and_fields() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ports = Ports::new();
    let log = dir.path().join("loggr.log");
    let daemon = start(&data, &ports, &log);
    wait_port(ports.web, "loggr's web frontend", Duration::from_secs(10));
    // Yesterday, for the daily reports (local time zone, as the reports use).
    let yesterday = jiff::Zoned::now()
        .yesterday()
        .unwrap()
        .with()
        .hour(12)
        .build()
        .unwrap()
        .timestamp();
    // Three days ago in RFC 3164's year-less form, for the events the daily reports must leave
    // out (a fixed date was yesterday once a year, and the reports then counted them).
    let earlier = {
        use jiff::ToSpan as _;
        let day = jiff::Zoned::now().checked_sub(3.days()).unwrap();
        day.strftime("%b %e").to_string()
    };

    let mut relp = Client::connect(
        &format!("127.0.0.1:{}", ports.relp),
        ClientConfig::default(),
    )
    .await
    .unwrap();
    relp.send(Bytes::from(format!(
        "<38>{earlier} 10:00:00 bastion sshd[812]: Failed password for invalid user mallory from 203.0.113.9 port 2222 ssh2",
    )))
    .await
    .unwrap();
    relp.send(Bytes::from(format!(
        "<86>1 {yesterday} bastion sshd 813 - - Failed password for invalid user eve from 198.51.100.7 port 4242 ssh2"
    )))
    .await
    .unwrap();
    relp.send(Bytes::from(format!(
        "<2>1 {yesterday} db7 kernel - - - Out of memory: Killed process 99 (postgres)"
    )))
    .await
    .unwrap();
    relp.flush().await.unwrap();
    assert_eq!(relp.close().await.unwrap().acked, 3);

    use std::io::Write as _;
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", ports.tcp)).unwrap();
    // LF framing, then octet counting on the same connection.
    tcp.write_all(format!("<13>{earlier} 10:00:01 web1 cron[4]: over tcp lf\n").as_bytes())
        .unwrap();
    let counted = "<13>1 2026-11-21T10:00:02Z web2 app 9 - - over tcp octet-counted";
    tcp.write_all(format!("{} {counted}", counted.len()).as_bytes())
        .unwrap();
    drop(tcp);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        format!("<13>{earlier} 10:00:03 web3 kernel: Out of memory: Killed process 42 (java)")
            .as_bytes(),
        ("127.0.0.1", ports.udp),
    )
    .unwrap();
    wait_for_rows(&data, 6).await;

    let store = store(&data);
    let all = store.events(&EventFilter::default(), 10).await.unwrap();
    let hosts: Vec<&str> = all.iter().filter_map(|e| e.hostname.as_deref()).collect();
    for host in ["bastion", "web1", "web2", "web3", "db7"] {
        assert!(hosts.contains(&host), "{host} missing from {all:?}");
    }
    // BuzzSaw's tags and grok's fields are stored with the events.
    let failed = store
        .events(
            &EventFilter {
                tag: Some("auth_failure".into()),
                ..EventFilter::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(failed.len(), 2, "{all:?}");
    let mallory = failed
        .iter()
        .find(|e| e.message.as_deref().unwrap().contains("mallory"))
        .unwrap();
    let detail = store.event(mallory.id).await.unwrap().unwrap();
    for (name, value) in [
        ("src_ip", "203.0.113.9"),
        ("user", "mallory"),
        ("syslog_protocol", "relp"),
    ] {
        assert!(
            detail.extra.contains(&(name.to_owned(), value.to_owned())),
            "{name}={value} missing from {:?}",
            detail.extra
        );
    }
    let oom = store
        .events(
            &EventFilter {
                tag: Some("oom".into()),
                ..EventFilter::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(oom.len(), 2, "{all:?}");
    // `loggr query` prints them from the store while the daemon runs.
    let output = Command::new(example("loggr"))
        .args(["query", "--tag", "auth_failure", "--db"])
        .arg(data.join("loggr.db"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).unwrap();
    assert_eq!(printed.lines().count(), 2, "{printed}");
    assert!(
        printed.contains("bastion sshd[812]: Failed password for invalid user mallory")
            && printed.contains("auth_failure"),
        "{printed}"
    );

    // The web frontend shows them to the admin (its password printed at the first start),
    // escaped, filtered by tag.
    let base = format!("http://127.0.0.1:{}", ports.web);
    let jar = dir.path().join("cookies");
    web_login(&base, &log, &jar);
    let page = curl(&jar, &[&format!("{base}/events?tag=auth_failure")]);
    assert!(
        page.contains("invalid user mallory") && page.contains("invalid user eve"),
        "{page}"
    );
    assert!(!page.contains("web3"), "only the tagged events: {page}");
    // The status page watches the daemon itself through its /metrics.
    let status = curl(&jar, &[&format!("{base}/status")]);
    assert!(status.contains("sqlite, reachable"), "{status}");
    assert!(
        status.contains("<td>loggr <small>") && status.contains("<td class=\"up\">up ("),
        "{status}"
    );
    let export = curl(&jar, &[&format!("{base}/events.jsonl?host=db7")]);
    assert_eq!(export.lines().count(), 1, "{export}");
    assert!(export.contains("Out of memory"), "{export}");

    // The daily reports over yesterday's events.
    let output = Command::new(example("loggr"))
        .args(["report", "--all", "daily", "--db"])
        .arg(data.join("loggr.db"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let report = String::from_utf8(output.stdout).unwrap();
    assert!(
        report.contains("IMPORTANT: Out-Of-Memory: 1 host"),
        "{report}"
    );
    assert!(report.contains("db7"), "{report}");
    assert!(report.contains("198.51.100.7"), "{report}");
    assert!(
        !report.contains("eve"),
        "an unknown user name is never printed: {report}"
    );
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_relp_load_loses_nothing_acknowledged_and_stores_nothing_twice() {
    const MESSAGES: usize = 30_000;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ports = Ports::new();
    let daemon = start(&data, &ports, &dir.path().join("loggr-1.log"));

    let address = format!("127.0.0.1:{}", ports.relp);
    let config = ClientConfig {
        reconnect_backoff: (Duration::from_millis(50), Duration::from_millis(500)),
        ..ClientConfig::default()
    };
    let mut client = Client::connect(&address, config).await.unwrap();
    let sender = tokio::spawn(async move {
        for n in 0..MESSAGES {
            let line = format!("<13>1 2026-11-21T10:00:00Z load app - - - message {n:06}");
            client.send(Bytes::from(line)).await.unwrap();
        }
        client.flush().await.unwrap();
        client.close().await.unwrap()
    });

    // Kill it mid-stream, once part of the load is committed.
    wait_for_rows(&data, 3_000).await;
    daemon.kill();
    let (at_kill, _) = counts(&data);
    assert!(
        at_kill < MESSAGES as i64,
        "the load was over before the kill"
    );
    let restarted = start(&data, &ports, &dir.path().join("loggr-2.log"));

    let stats = tokio::time::timeout(Duration::from_secs(120), sender)
        .await
        .expect("the sender finishes after the restart")
        .unwrap();
    assert_eq!(stats.acked, MESSAGES as u64, "{stats:?}");
    assert!(stats.reconnects >= 1, "{stats:?}");
    let (rows, distinct) = counts(&data);
    assert_eq!(
        distinct, MESSAGES as i64,
        "every acknowledged message is stored"
    );
    assert_eq!(
        rows, MESSAGES as i64,
        "no message is stored twice ({stats:?})"
    );
    assert!(restarted.terminate().success());
}
