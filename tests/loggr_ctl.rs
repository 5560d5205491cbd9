//! `loggr_ctl` against the machine's RabbitMQ and PostgreSQL (start them with
//! `bash scripts/services.sh`): `init-rabbitmq` declares the bundled chain's topology,
//! `init-db` creates the schema, `validate` refuses a broken configuration.

#![cfg(all(feature = "amqp", feature = "postgres"))]
#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod support;

use std::process::Command;

fn ctl(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(support::example("loggr_ctl"));
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn rabbitmqctl(args: &[&str]) -> String {
    let output = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!("rabbitmqctl is missing ({error}): run `bash scripts/services.sh`")
        });
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?}: {} (is RabbitMQ running? `bash scripts/services.sh`)",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Removes the test's exchanges (rabbitmqctl cannot).
fn delete_exchanges(prefix: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
        let connection =
            loggr::amqp::connect(url, "loggr_ctl-test", std::time::Duration::from_secs(10))
                .await
                .unwrap();
        let channel = connection.create_channel().await.unwrap();
        for exchange in ["syslog", "parsed", "dead"] {
            let name = format!("{prefix}.{exchange}");
            channel
                .exchange_delete(
                    name.as_str().into(),
                    loggr::amqp::lapin::options::ExchangeDeleteOptions::default(),
                )
                .await
                .unwrap();
        }
    });
}

#[test]
fn init_rabbitmq_declares_the_chains_queues_and_bindings() {
    let prefix = format!("ctltest{}", std::process::id());
    let configs = [
        "parser.toml",
        "shipper2pgsql.toml",
        "syslog_server_amqp.toml",
    ]
    .map(|name| format!("{}/examples/config/{name}", env!("CARGO_MANIFEST_DIR")));
    let mut args = vec!["init-rabbitmq"];
    args.extend(configs.iter().map(String::as_str));
    let output = ctl(&args, &[("LOGGR_PREFIX", &prefix)]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let queues = rabbitmqctl(&["list_queues", "-q", "--no-table-headers", "name", "durable"]);
    let bindings = rabbitmqctl(&[
        "list_bindings",
        "-q",
        "--no-table-headers",
        "source_name",
        "destination_name",
        "routing_key",
    ]);
    for queue in ["syslog", "parsed", "dead"] {
        let name = format!("{prefix}.{queue}");
        let _ = rabbitmqctl(&["delete_queue", &name]);
        assert!(
            queues
                .lines()
                .any(|line| line.split_whitespace().collect::<Vec<_>>() == [&name, "true"]),
            "durable queue {name} missing:\n{queues}"
        );
    }
    for exchange in ["syslog", "parsed"] {
        let expected = [
            format!("{prefix}.{exchange}"),
            format!("{prefix}.{exchange}"),
            format!("{prefix}.{exchange}.#"),
        ];
        assert!(
            bindings
                .lines()
                .any(|line| line.split_whitespace().collect::<Vec<_>>() == expected),
            "binding of {prefix}.{exchange} missing:\n{bindings}"
        );
    }
    delete_exchanges(&prefix);
}

#[test]
fn init_db_creates_the_schema_and_validate_refuses_a_bad_configuration() {
    let db = support::TestDb::new("ctl_init");
    let url = db.url();
    let first = ctl(&["init-db", "--url", &url], &[]);
    let second = ctl(&["init-db", "--url", &url], &[]);
    let tables = db.psql(
        "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables \
         WHERE table_schema = 'public'",
    );
    let search_index = "SELECT count(*) FROM pg_indexes WHERE tablename = 'event' \
         AND indexname IN ('event_message_trgm_idx', 'event_message_fts_idx')";
    let without = db.psql(search_index);
    let indexed = ctl(&["init-db", "--url", &url, "--search-index"], &[]);
    let with = db.psql(search_index);
    drop(db);
    assert!(
        indexed.status.success(),
        "{}",
        String::from_utf8_lossy(&indexed.stderr)
    );
    assert_eq!(
        (without.trim(), with.trim()),
        ("0", "1"),
        "the search index only on request"
    );
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(second.status.success(), "migrating twice is a no-op");
    for table in [
        "current_processing",
        "event",
        "extra_info",
        "log",
        "quarantine",
        "tag",
    ] {
        assert!(
            tables.split(',').any(|t| t.trim() == table),
            "{table} missing: {tables}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[sinks]]\ntype = \"postgres\"\nurl = \"x\"\nbogus = 1\n",
    )
    .unwrap();
    let refused = ctl(&["validate", bad.to_str().unwrap()], &[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("bogus"));
    let good = format!("{}/examples/config/parser.toml", env!("CARGO_MANIFEST_DIR"));
    let accepted = ctl(&["validate", &good], &[]);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn assert_ok(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}{}",
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn start_status_send_and_stop_a_daemon() {
    // `start` finds the daemon next to loggr_ctl.
    support::example("syslog_server");
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let run = run_dir.to_str().unwrap();
    let out = dir.path().join("events.jsonl");
    let (relp, tcp) = (support::free_port(), support::free_port());
    let (relp_addr, tcp_addr) = (format!("127.0.0.1:{relp}"), format!("127.0.0.1:{tcp}"));
    let daemon_args = [
        "--relp",
        &relp_addr,
        "--tcp",
        &tcp_addr,
        "--out",
        out.to_str().unwrap(),
    ];
    let mut start = vec!["start", "syslog_server", "--run-dir", run, "--"];
    start.extend(daemon_args);
    let started = ctl(&start, &[]);
    assert_ok(&started);
    assert!(
        stdout(&started).contains("syslog_server started (pid"),
        "{}",
        stdout(&started)
    );
    support::wait_port(
        relp,
        "syslog_server (RELP)",
        std::time::Duration::from_secs(20),
    );

    let again = ctl(&start, &[]);
    assert!(!again.status.success(), "a second start must be refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already running"));

    let status = ctl(
        &[
            "status",
            "--run-dir",
            run,
            "--skip",
            "postgres,rabbitmq,redis",
        ],
        &[],
    );
    assert_ok(&status);
    let pid = std::fs::read_to_string(run_dir.join("syslog_server.pid")).unwrap();
    assert!(
        stdout(&status).contains(&format!("syslog_server  running pid {}", pid.trim())),
        "{}",
        stdout(&status)
    );

    let sent = ctl(
        &[
            "send",
            "--transport",
            "relp",
            "--target",
            &relp_addr,
            "ctl-relp-1",
            "ctl-relp-2",
        ],
        &[],
    );
    assert_ok(&sent);
    assert!(
        stdout(&sent).contains("sent 2, acknowledged 2"),
        "{}",
        stdout(&sent)
    );
    let file = dir.path().join("lines.txt");
    std::fs::write(&file, "ctl-tcp-1\nctl-tcp-2\n\nctl-tcp-3\n").unwrap();
    let sent = ctl(
        &[
            "send",
            "--transport",
            "tcp",
            "--framing",
            "lf",
            "--target",
            &tcp_addr,
            "--file",
            file.to_str().unwrap(),
        ],
        &[],
    );
    assert_ok(&sent);
    assert!(stdout(&sent).contains("sent 3"), "{}", stdout(&sent));

    // TCP has no acknowledgements: wait for the lines to be written before stopping.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_to_string(&out)
        .unwrap_or_default()
        .matches("ctl-tcp-")
        .count()
        < 3
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the TCP lines never arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let stopped = ctl(&["stop", "syslog_server", "--run-dir", run], &[]);
    assert_ok(&stopped);
    assert!(
        stdout(&stopped).contains("syslog_server stopped"),
        "{}",
        stdout(&stopped)
    );
    support::wait_port_closed(relp, "syslog_server (RELP)");
    assert!(!run_dir.join("syslog_server.pid").exists());
    let status = ctl(
        &[
            "status",
            "--run-dir",
            run,
            "--skip",
            "postgres,rabbitmq,redis",
        ],
        &[],
    );
    assert!(
        stdout(&status).contains("syslog_server  stopped"),
        "{}",
        stdout(&status)
    );

    let events = std::fs::read_to_string(&out).unwrap();
    let messages: Vec<String> = events
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            event["message"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    for expected in [
        "ctl-relp-1",
        "ctl-relp-2",
        "ctl-tcp-1",
        "ctl-tcp-2",
        "ctl-tcp-3",
    ] {
        assert!(
            messages.iter().any(|m| m == expected),
            "{expected} missing from {messages:?}"
        );
    }
    assert_eq!(messages.len(), 5, "{messages:?}");

    // A daemon that cannot start is reported at once, with its log.
    let bad = ctl(
        &[
            "start",
            "syslog_server",
            "--run-dir",
            run,
            "--",
            "--relp",
            "not-an-address",
        ],
        &[],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("exited at once"));
}

#[test]
fn status_says_which_services_answer() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().to_str().unwrap();
    let up = ctl(
        &[
            "status",
            "--run-dir",
            run,
            "--pg-url",
            "postgresql://root@127.0.0.1:5432/postgres",
        ],
        &[],
    );
    assert_ok(&up);
    for service in ["postgresql", "rabbitmq", "redis"] {
        assert!(
            stdout(&up)
                .lines()
                .any(|line| line.starts_with(service) && line.contains(" up ")),
            "{service} should be up (is it running? `bash scripts/services.sh`):\n{}",
            stdout(&up)
        );
    }
    let down = ctl(
        &[
            "status",
            "--run-dir",
            run,
            "--pg-url",
            &format!("postgresql://root@127.0.0.1:{}/x", support::free_port()),
            "--skip",
            "rabbitmq,redis",
        ],
        &[],
    );
    assert!(
        !down.status.success(),
        "a service down must fail the status"
    );
    assert!(
        stdout(&down).contains("postgresql     DOWN"),
        "{}",
        stdout(&down)
    );
}

#[test]
fn purge_db_empties_the_tables_only_with_yes() {
    let db = support::TestDb::new("ctl_purge");
    let url = db.url();
    assert_ok(&ctl(&["init-db", "--url", &url], &[]));
    let psql = |sql: &str| db.psql(sql);
    psql(
        "INSERT INTO event (digest, logtime, received_at, facility, severity, message) \
         SELECT sha256(i::text::bytea), now(), now(), 1, 5, 'm' || i FROM generate_series(1, 7) i",
    );
    psql("INSERT INTO tag (event, name) SELECT id, 'x' FROM event");
    let refused = ctl(&["purge-db", "--url", &url], &[]);
    let kept = psql("SELECT count(*) FROM event");
    let purged = ctl(&["purge-db", "--url", &url, "--yes"], &[]);
    let (events, tags) = (
        psql("SELECT count(*) FROM event"),
        psql("SELECT count(*) FROM tag"),
    );
    drop(db);
    assert!(
        !refused.status.success(),
        "purge-db without --yes must refuse"
    );
    assert_eq!(kept, "7");
    assert_ok(&purged);
    assert!(
        stdout(&purged).contains("event: 7 rows deleted"),
        "{}",
        stdout(&purged)
    );
    assert_eq!((events.as_str(), tags.as_str()), ("0", "0"));
}

#[test]
fn purge_queues_empties_the_configured_queues() {
    let prefix = format!("ctlpurge{}", std::process::id());
    let config = format!("{}/examples/config/parser.toml", env!("CARGO_MANIFEST_DIR"));
    let env = [("LOGGR_PREFIX", prefix.as_str())];
    assert_ok(&ctl(&["init-rabbitmq", &config], &env));
    let queue = format!("{prefix}.syslog");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use loggr::amqp::lapin::{options::BasicPublishOptions, BasicProperties};
        let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
        let connection =
            loggr::amqp::connect(url, "loggr_ctl-test", std::time::Duration::from_secs(10))
                .await
                .unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel.confirm_select(Default::default()).await.unwrap();
        for i in 0..5 {
            channel
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    format!("m{i}").as_bytes(),
                    BasicProperties::default(),
                )
                .await
                .unwrap()
                .await
                .unwrap();
        }
    });
    let depth = |name: &str| {
        rabbitmqctl(&[
            "list_queues",
            "-q",
            "--no-table-headers",
            "name",
            "messages",
        ])
        .lines()
        .find_map(|line| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            (parts.first() == Some(&name)).then(|| parts[1].to_owned())
        })
    };
    let before = depth(&queue);
    let purged = ctl(&["purge-queues", &config], &env);
    let after = depth(&queue);
    for name in [
        &queue,
        &format!("{prefix}.parsed"),
        &format!("{prefix}.dead"),
    ] {
        let _ = rabbitmqctl(&["delete_queue", name]);
    }
    delete_exchanges(&prefix);
    assert_eq!(before.as_deref(), Some("5"));
    assert_ok(&purged);
    assert!(
        stdout(&purged).contains(&format!("{queue}: 5 messages purged")),
        "{}",
        stdout(&purged)
    );
    assert_eq!(after.as_deref(), Some("0"));
}
