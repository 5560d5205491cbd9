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
    let database = format!("loggr_ctl_{}", std::process::id());
    let admin = |sql: &str| {
        let status = Command::new("psql")
            .args(["-X", "-q", "-h", "127.0.0.1", "-d", "postgres", "-c", sql])
            .status()
            .unwrap();
        assert!(
            status.success(),
            "{sql} (is PostgreSQL running? `bash scripts/services.sh`)"
        );
    };
    admin(&format!("DROP DATABASE IF EXISTS {database}"));
    admin(&format!("CREATE DATABASE {database}"));
    let url = format!("postgresql://root@127.0.0.1:5432/{database}");
    let first = ctl(&["init-db", "--url", &url], &[]);
    let second = ctl(&["init-db", "--url", &url], &[]);
    let tables = Command::new("psql")
        .args(["-X", "-A", "-t", &url, "-c"])
        .arg("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'")
        .output()
        .unwrap();
    admin(&format!("DROP DATABASE IF EXISTS {database}"));
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(second.status.success(), "migrating twice is a no-op");
    let tables = String::from_utf8_lossy(&tables.stdout);
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
