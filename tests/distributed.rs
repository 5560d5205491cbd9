//! The distributed chain, end to end and under faults, with the bundled daemons and the
//! bundled configurations (`examples/config/`):
//!
//! ```text
//! loggen ─RELP─▶ syslog_server ─▶ RabbitMQ ─▶ parser ─▶ RabbitMQ ─▶ shipper2pgsql ─▶ PostgreSQL
//!                      └─(RabbitMQ failing)─▶ Redis spool ─▶ collector ─▶ RabbitMQ
//! ```
//!
//! Each test runs its own RabbitMQ node, PostgreSQL cluster and Redis server (see
//! `support/`), so it can stop, kill and restart them. Every test ends with `loggen check`
//! over the `event` table's messages: sent, received, lost, duplicated, unexpected.

#![cfg(all(feature = "amqp", feature = "postgres", feature = "redis"))]
#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{
    example, free_port, wait_port, Daemon, PrivatePostgres, PrivateRabbit, PrivateRedis,
};

/// The servers and daemons of one test.
struct Chain {
    dir: tempfile::TempDir,
    rabbit: PrivateRabbit,
    redis: PrivateRedis,
    postgres: PrivatePostgres,
    relp_port: u16,
    env: Vec<(String, String)>,
    /// Built with the daemons, so that no test times a build of it.
    loggen: std::path::PathBuf,
    syslog_server: Option<Daemon>,
    collector: Option<Daemon>,
    parser: Option<Daemon>,
    shipper: Option<Daemon>,
}

const PREFIX: &str = "t";

impl Chain {
    fn start() -> Chain {
        let dir = tempfile::tempdir().unwrap();
        let rabbit = PrivateRabbit::start();
        let redis = PrivateRedis::start();
        let postgres = PrivatePostgres::start();
        postgres.psql("postgres", "CREATE DATABASE loggr");
        let relp_port = free_port();
        let env = vec![
            ("LOGGR_PREFIX".to_owned(), PREFIX.to_owned()),
            ("LOGGR_AMQP_URL".to_owned(), rabbit.url()),
            ("LOGGR_REDIS_URL".to_owned(), redis.url()),
            ("LOGGR_PG_URL".to_owned(), postgres.url("loggr")),
            (
                "LOGGR_RELP_ADDRESS".to_owned(),
                format!("127.0.0.1:{relp_port}"),
            ),
            (
                "LOGGR_TCP_ADDRESS".to_owned(),
                format!("127.0.0.1:{}", free_port()),
            ),
        ];
        let mut chain = Chain {
            dir,
            rabbit,
            redis,
            postgres,
            relp_port,
            env,
            loggen: example("loggen"),
            syslog_server: None,
            collector: None,
            parser: None,
            shipper: None,
        };
        chain.shipper = Some(chain.spawn("shipper2pgsql", &[]));
        chain.parser = Some(chain.spawn("parser", &[]));
        chain.collector = Some(chain.spawn("collector", &[]));
        chain.syslog_server = Some(chain.spawn(
            "syslog_server",
            &["--config", &config("syslog_server_amqp.toml")],
        ));
        wait_port(
            relp_port,
            "syslog_server's RELP listener",
            Duration::from_secs(30),
        );
        chain
    }

    fn spawn(&self, name: &str, args: &[&str]) -> Daemon {
        let binary = example(name);
        let metrics = format!("127.0.0.1:{}", free_port());
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--metrics", &metrics]);
        let log = self.dir.path().join(format!("{name}.log"));
        let mut command = Command::new(&binary);
        command.args(&all);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        Daemon::spawn_command(command, name, &log)
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    fn logs(&self) -> String {
        ["syslog_server", "collector", "parser", "shipper2pgsql"]
            .iter()
            .map(|name| format!("--- {name}\n{}", self.log(name)))
            .collect()
    }

    /// Rows in `event` (0 until the shipper created the schema at its first write).
    fn stored(&self) -> u64 {
        let exists = self
            .postgres
            .psql("loggr", "SELECT to_regclass('public.event') IS NOT NULL");
        if exists != "t" {
            return 0;
        }
        self.postgres
            .psql("loggr", "SELECT count(*) FROM event")
            .parse()
            .unwrap()
    }

    /// Waits until the `event` table holds `count` rows (or fails after `timeout`).
    fn wait_stored(&self, count: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let stored = self.stored();
            if stored >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {stored} of {count} events stored after {timeout:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `loggen check` over the stored messages.
    fn check(&self, run_id: &str, count: u64) -> Tally {
        let messages = self.dir.path().join("messages.txt");
        let status = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
            .arg(self.postgres.url("loggr"))
            .arg("-c")
            .arg(format!(
                "\\copy (SELECT message FROM event) TO '{}'",
                messages.display()
            ))
            .status()
            .unwrap();
        assert!(status.success());
        loggen_check(&messages, run_id, count)
    }
}

fn config(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/config")
        .join(name)
        .display()
        .to_string()
}

#[derive(Debug, PartialEq, Eq)]
struct Tally {
    received: u64,
    lost: u64,
    duplicated: u64,
    unexpected: u64,
}

fn loggen_check(file: &Path, run_id: &str, count: u64) -> Tally {
    let output = Command::new(example("loggen"))
        .args([
            "check",
            "--run-id",
            run_id,
            "--count",
            &count.to_string(),
            "--file",
        ])
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let field = |name: &str| -> u64 {
        text.split_whitespace()
            .find_map(|part| part.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= in loggen's output: {text}"))
            .parse()
            .unwrap()
    };
    Tally {
        received: field("received"),
        lost: field("lost"),
        duplicated: field("duplicated"),
        unexpected: field("unexpected"),
    }
}

/// Starts `loggen send` over RELP in the background.
fn loggen_send(chain: &Chain, run_id: &str, count: u64, rate: u64) -> std::process::Child {
    Command::new(&chain.loggen)
        .args(["send", "--transport", "relp", "--target"])
        .arg(format!("127.0.0.1:{}", chain.relp_port))
        .args(["--count", &count.to_string(), "--rate", &rate.to_string()])
        .args(["--size", "200", "--connections", "2", "--run-id", run_id])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_sent(sender: std::process::Child) -> String {
    let output = sender.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "loggen send failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn assert_exactly_once(chain: &Chain, run_id: &str, count: u64) {
    let tally = chain.check(run_id, count);
    assert_eq!(
        tally,
        Tally {
            received: count,
            lost: 0,
            duplicated: 0,
            unexpected: 0
        },
        "\n{}",
        chain.logs()
    );
}

#[test]
fn relp_to_postgres_through_rabbitmq_stores_every_message_exactly_once() {
    let chain = Chain::start();
    let count = 200_000;
    let started = Instant::now();
    let sent = wait_sent(loggen_send(&chain, "e2e", count, 0));
    chain.wait_stored(count, Duration::from_secs(300));
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "end to end: {count} events RELP → RabbitMQ → parser → RabbitMQ → PostgreSQL in \
         {seconds:.1} s ({:.0} events/s); loggen: {sent}",
        count as f64 / seconds
    );
    // Give a straggler time to show up as a duplicate before counting.
    std::thread::sleep(Duration::from_secs(2));
    assert_exactly_once(&chain, "e2e", count);
    // The parser's filters ran: BuzzSaw's stack tagged nothing in this load, but every event
    // went through the parsed queue, whose consumer acknowledged everything.
    assert_eq!(chain.rabbit.queue_depth("t.syslog"), Some(0));
    assert_eq!(chain.rabbit.queue_depth("t.parsed"), Some(0));
}

#[test]
fn rabbitmq_down_for_30_seconds_under_load_loses_nothing() {
    let mut chain = Chain::start();
    let count = 150_000;
    let sender = loggen_send(&chain, "outage", count, 3_000);
    std::thread::sleep(Duration::from_secs(5));
    chain.rabbit.kill();
    std::thread::sleep(Duration::from_secs(30));
    // While RabbitMQ was away, the spool took the events (RELP kept acknowledging).
    let spooled = spool_length(&chain);
    assert!(spooled > 0, "nothing was spooled\n{}", chain.logs());
    chain.rabbit.restart();
    wait_sent(sender);
    chain.wait_stored(count, Duration::from_secs(300));
    std::thread::sleep(Duration::from_secs(2));
    assert_exactly_once(&chain, "outage", count);
    assert_eq!(spool_length(&chain), 0, "the collector drained the spool");
}

#[test]
fn a_queue_deleted_under_publishing_sends_the_returned_events_to_the_spool_and_loses_nothing() {
    let mut chain = Chain::start();
    // A first load through the whole chain: syslog_server's sink is connected (it declares
    // its topology when it connects), and the queue is empty again.
    let first = 2_000;
    wait_sent(loggen_send(&chain, "qfirst", first, 0));
    chain.wait_stored(first, Duration::from_secs(120));
    // No consumer to declare the queue again, and nothing in it to lose: stop the parser,
    // then delete the queue syslog_server publishes to.
    assert!(chain.parser.take().unwrap().terminate().success());
    chain
        .rabbit
        .ctl(&["delete_queue", &format!("{PREFIX}.syslog")]);
    let count = 20_000;
    wait_sent(loggen_send(&chain, "qdeleted", count, 4_000));
    // Every message was acknowledged over RELP: the broker returned the unroutable ones
    // (`mandatory`), and the fallback sink put them in the spool instead.
    assert!(
        chain
            .log("syslog_server")
            .contains("The primary sink failed; writing to the secondary"),
        "no returned publish went to the spool\n{}",
        chain.logs()
    );
    // The parser declares its queue again; the collector replays the spool into it.
    chain.parser = Some(chain.spawn("parser", &[]));
    chain.wait_stored(first + count, Duration::from_secs(300));
    std::thread::sleep(Duration::from_secs(2));
    // Each run exactly once (the other run's messages are the only "unexpected" ones).
    for (run, sent, other) in [("qfirst", first, count), ("qdeleted", count, first)] {
        let tally = chain.check(run, sent);
        let expected = Tally {
            received: sent,
            lost: 0,
            duplicated: 0,
            unexpected: other,
        };
        assert_eq!(tally, expected, "run {run}\n{}", chain.logs());
    }
    assert_eq!(spool_length(&chain), 0, "the collector drained the spool");
}

#[test]
fn a_poison_event_is_quarantined_and_the_stream_goes_on() {
    let chain = Chain::start();
    let count = 20_000;
    let sender = loggen_send(&chain, "poison", count, 5_000);
    std::thread::sleep(Duration::from_secs(1));
    // In the middle of the load, an event PostgreSQL refuses for good: a JSON event reported
    // in 4800 BC (timestamptz starts at 4713 BC, SQLSTATE 22008).
    let poison = r#"{"message":"poison from the past","timestamp":"-004800-06-01T00:00:00Z","hostname":"h"}"#;
    let relp = format!("127.0.0.1:{}", chain.relp_port);
    let acked = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut client = loggr::relp::Client::connect(&relp, loggr::relp::ClientConfig::default())
            .await
            .unwrap();
        client.send(poison.into()).await.unwrap();
        client.flush().await.unwrap();
        client.close().await.unwrap().acked
    });
    assert_eq!(acked, 1);
    wait_sent(sender);
    chain.wait_stored(count, Duration::from_secs(300));
    // The poison is kept, with PostgreSQL's reason; everything else is stored once.
    let deadline = Instant::now() + Duration::from_secs(60);
    let quarantined = loop {
        let rows = chain.postgres.psql(
            "loggr",
            "SELECT sqlstate || ' ' || (event->>'message') FROM quarantine",
        );
        if !rows.is_empty() || Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(
        quarantined,
        "22008 poison from the past",
        "\n{}",
        chain.logs()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_exactly_once(&chain, "poison", count);
}

fn spool_length(chain: &Chain) -> u64 {
    let output = Command::new("redis-cli")
        .args([
            "-p",
            &chain.redis.port.to_string(),
            "LLEN",
            &format!("{PREFIX}:spool"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn postgres_crash_and_shipper_kill_lose_nothing_and_duplicate_no_row() {
    let mut chain = Chain::start();
    let count = 100_000;
    let sender = loggen_send(&chain, "pgcrash", count, 5_000);
    std::thread::sleep(Duration::from_secs(4));
    chain.postgres.crash();
    std::thread::sleep(Duration::from_secs(3));
    chain.postgres.restart();
    std::thread::sleep(Duration::from_secs(4));
    // kill -9 the shipper mid-stream: its unacknowledged deliveries come back to the next one.
    chain.shipper.take().unwrap().kill();
    std::thread::sleep(Duration::from_secs(1));
    chain.shipper = Some(chain.spawn("shipper2pgsql", &[]));
    wait_sent(sender);
    chain.wait_stored(count, Duration::from_secs(300));
    std::thread::sleep(Duration::from_secs(3));
    assert_exactly_once(&chain, "pgcrash", count);
}

/// syslog_server's resident memory, in KiB.
fn resident_kib(daemon: &Daemon) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.child.id())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Messages of run `run_id` with sequence numbers `seqs`, padded to `size` bytes, over one
/// RELP connection with `window` messages in flight; the client's statistics once all are
/// acknowledged.
async fn relp_send_all(
    address: String,
    window: usize,
    run_id: &'static str,
    seqs: std::ops::Range<u64>,
    size: usize,
) -> loggr::relp::ClientStats {
    let config = loggr::relp::ClientConfig {
        window,
        ..loggr::relp::ClientConfig::default()
    };
    let mut client = loggr::relp::Client::connect(&address, config)
        .await
        .unwrap();
    for seq in seqs {
        let mut message =
            format!("<134>1 2026-11-21T00:00:00Z h app - - - loggen run={run_id} seq={seq} ");
        let padding = size.saturating_sub(message.len());
        message.extend(std::iter::repeat_n('x', padding));
        client.send(message.into()).await.unwrap();
    }
    client.close().await.unwrap()
}

#[test]
fn with_rabbitmq_and_redis_both_down_nothing_is_acknowledged_memory_stays_bounded_and_all_arrives_after(
) {
    const FLOOD_CONNECTIONS: u64 = 6;
    const PER_CONNECTION: u64 = 4_000;
    const SIZE: usize = 4_000;
    let mut chain = Chain::start();
    chain.rabbit.kill();
    chain.redis.kill();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let address = format!("127.0.0.1:{}", chain.relp_port);
    let server = chain.syslog_server.as_ref().unwrap();
    let before = resident_kib(server);
    // Senders that keep offering more than the windows hold (96 MB in all), for as long as
    // the outage lasts.
    let offered_kib = FLOOD_CONNECTIONS * PER_CONNECTION * SIZE as u64 / 1024;
    let flood: Vec<_> = (0..FLOOD_CONNECTIONS)
        .map(|c| {
            let first = 500 + c * PER_CONNECTION;
            runtime.spawn(relp_send_all(
                address.clone(),
                5_000,
                "bothdown",
                first..first + PER_CONNECTION,
                SIZE,
            ))
        })
        .collect();
    let (client, while_down, early, late) = runtime.block_on(async {
        let config = loggr::relp::ClientConfig {
            window: 1000,
            ..loggr::relp::ClientConfig::default()
        };
        let mut client = loggr::relp::Client::connect(&address, config)
            .await
            .unwrap();
        for seq in 0..500u64 {
            let message =
                format!("<134>1 2026-11-21T00:00:00Z h app - - - loggen run=bothdown seq={seq} ");
            client.send(message.into()).await.unwrap();
        }
        // Memory once the windows are full, then for 8 s more of refused writes and retries.
        tokio::time::sleep(Duration::from_secs(4)).await;
        let early = resident_kib(server);
        let mut late = early;
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            late = late.max(resident_kib(server));
        }
        let while_down = client.stats();
        (client, while_down, early, late)
    });
    assert_eq!(
        while_down.acked, 0,
        "acknowledged with both stores down: {while_down:?}"
    );
    eprintln!(
        "syslog_server resident: {before} KiB before, {early} KiB once the windows were full, \
         at most {late} KiB over 8 s more, with {offered_kib} KiB offered"
    );
    assert!(
        late <= early + 16 * 1024,
        "memory grew with the outage: {early} KiB -> {late} KiB"
    );
    assert!(
        late.saturating_sub(before) < offered_kib / 2,
        "the daemon holds what the senders offer: {before} KiB -> {late} KiB"
    );
    chain.redis.restart();
    chain.rabbit.restart();
    let after = runtime.block_on(async move {
        let mut client = client;
        tokio::time::timeout(Duration::from_secs(120), client.flush())
            .await
            .expect("the chain recovered within 2 minutes")
            .unwrap();
        client.close().await.unwrap()
    });
    assert!(after.acked >= 500, "{after:?}");
    for sender in flood {
        let stats = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(180), sender).await })
            .expect("the flood was acknowledged within 3 minutes")
            .unwrap();
        assert!(stats.acked >= PER_CONNECTION, "{stats:?}");
    }
    let total = 500 + FLOOD_CONNECTIONS * PER_CONNECTION;
    chain.wait_stored(total, Duration::from_secs(180));
    std::thread::sleep(Duration::from_secs(2));
    assert_exactly_once(&chain, "bothdown", total);
}
