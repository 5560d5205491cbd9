//! `loggr_ctl`: operate a loggr deployment (pyloggr_ctl): run, start and stop its daemons,
//! check its services, set up and empty its database and queues, send test messages.
//!
//! ```text
//! loggr_ctl run syslog_server -- --relp 127.0.0.1:2514 --out /tmp/events.jsonl   # foreground
//! loggr_ctl start parser -- --config /etc/loggr/parser.toml    # background: pid and log in the run dir
//! loggr_ctl status                                             # components; PostgreSQL, RabbitMQ, Redis
//! loggr_ctl stop parser                                        # SIGTERM, waits for the drain
//! loggr_ctl init-db --url postgresql://root@127.0.0.1/loggr [--search-index]
//! loggr_ctl purge-db --url postgresql://root@127.0.0.1/loggr --yes
//! loggr_ctl init-rabbitmq examples/config/*.toml
//! loggr_ctl purge-queues examples/config/*.toml
//! loggr_ctl send --transport relp --target 127.0.0.1:2514 "hello" "world"
//! loggr_ctl send --transport tcp --target 127.0.0.1:6514 --tls --ca ca.pem --file messages.txt
//! loggr_ctl validate examples/config/parser.toml
//! ```
//!
//! (`cargo run --release --all-features --example loggr_ctl -- …`; `run` and `start` find the
//! daemons built next to it: `cargo build --release --all-features --examples`.)
//!
//! `init-rabbitmq` declares, for every `amqp` source and sink of the given configurations
//! (including a `fallback` sink's primary), the `topology` its table describes, on its broker:
//! durable exchanges, queues with their dead-letter exchange and queue, bindings. Declaring is
//! idempotent; a declaration that contradicts what exists fails with the broker's reason.
//!
//! The run directory (pid and log files) is `--run-dir`, else `$LOGGR_RUN_DIR`, else
//! `$XDG_RUNTIME_DIR/loggr`, else `/run/loggr` (root) or `~/.local/state/loggr`.

#![allow(clippy::print_stdout)] // the command's report is its output

mod process;
mod purge;
mod send;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser as _;
use loggr::amqp::TopologyConfig;
use loggr::core::config::ComponentConfig;
use loggr::core::PipelineConfig;

/// Set up and check the services of a loggr deployment.
#[derive(clap::Parser)]
#[command(version, about)]
enum Command {
    /// Create or migrate loggr's PostgreSQL schema.
    InitDb {
        /// The database (libpq URL or key=value string).
        #[arg(long, default_value = "postgresql://root@127.0.0.1:5432/loggr")]
        url: String,
        /// Also build the message search index (pg_trgm, else full text) that the web
        /// frontend's text search uses, without locking `event` (CREATE INDEX CONCURRENTLY).
        /// It makes text searches fast and every insert slower.
        #[arg(long)]
        search_index: bool,
    },
    /// Declare the RabbitMQ topology of every amqp source and sink in these configurations.
    InitRabbitmq {
        /// Pipeline configuration files (TOML).
        #[arg(required = true)]
        configs: Vec<PathBuf>,
    },
    /// Check that a configuration builds (plugins, fields, patterns), without running it.
    Validate {
        /// The configuration file (TOML).
        config: PathBuf,
    },
    /// Run a daemon in the foreground (syslog_server, parser, shipper2pgsql, collector,
    /// harvest, loggr); arguments after `--` are its own.
    Run {
        /// The daemon.
        name: String,
        /// Its arguments.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Start a daemon in the background (pid file and log in the run directory).
    Start {
        /// The daemon.
        name: String,
        /// Where pid and log files go.
        #[arg(long)]
        run_dir: Option<PathBuf>,
        /// Its arguments.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Stop a daemon started with `start`: SIGTERM, then wait for its drain.
    Stop {
        /// The daemon.
        name: String,
        /// Where pid and log files go.
        #[arg(long)]
        run_dir: Option<PathBuf>,
        /// How long to wait for it to exit.
        #[arg(long, default_value = "30s", value_parser = loggr::core::config::parse_duration)]
        timeout: Duration,
    },
    /// Which daemons run, and whether PostgreSQL, RabbitMQ and Redis answer (exit status 1
    /// when a checked service does not).
    Status {
        /// Where pid and log files go.
        #[arg(long)]
        run_dir: Option<PathBuf>,
        /// PostgreSQL.
        #[arg(long, default_value = "postgresql://root@127.0.0.1:5432/loggr")]
        pg_url: String,
        /// RabbitMQ.
        #[arg(long, default_value = DEFAULT_AMQP_URL)]
        amqp_url: String,
        /// Redis.
        #[arg(long, default_value = "redis://127.0.0.1:6379/")]
        redis_url: String,
        /// Services not to check: `postgres`, `rabbitmq`, `redis` (repeatable).
        #[arg(long, value_delimiter = ',')]
        skip: Vec<String>,
    },
    /// Empty loggr's tables (events, tags, extra info, file registry, quarantine).
    PurgeDb {
        /// The database.
        #[arg(long, default_value = "postgresql://root@127.0.0.1:5432/loggr")]
        url: String,
        /// Really delete.
        #[arg(long)]
        yes: bool,
    },
    /// Purge the queues of every amqp source and sink in these configurations.
    PurgeQueues {
        /// Pipeline configuration files (TOML).
        #[arg(required = true)]
        configs: Vec<PathBuf>,
        /// Purge their dead-letter queues too.
        #[arg(long)]
        dead_letters: bool,
    },
    /// Send messages over RELP or TCP (TLS optional) and print the acknowledgements.
    Send(send::SendArgs),
}

const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The (url, topology) of an amqp component table, if it is one.
fn amqp_topology(
    type_name: &str,
    table: &toml::Table,
    found: &mut Vec<(String, TopologyConfig)>,
) -> anyhow::Result<()> {
    match type_name {
        "amqp" => {
            let url = table
                .get("url")
                .and_then(toml::Value::as_str)
                .unwrap_or(DEFAULT_AMQP_URL)
                .to_owned();
            if let Some(topology) = table.get("topology") {
                let topology: TopologyConfig = topology.clone().try_into()?;
                found.push((url, topology));
            }
        }
        "fallback" => {
            for role in ["primary", "secondary"] {
                if let Some(inner) = table.get(role).and_then(toml::Value::as_table) {
                    let inner_type = inner
                        .get("type")
                        .and_then(toml::Value::as_str)
                        .unwrap_or("");
                    amqp_topology(inner_type, inner, found)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The (url, topology) of every amqp component of these configuration files.
fn topologies(configs: &[PathBuf]) -> anyhow::Result<Vec<(String, TopologyConfig)>> {
    let mut found = Vec::new();
    for path in configs {
        let config = PipelineConfig::from_file(path)?;
        let components: Vec<&ComponentConfig> =
            config.sources.iter().chain(config.sinks.iter()).collect();
        for component in components {
            amqp_topology(&component.type_name, &component.table, &mut found)
                .with_context(|| format!("{}: {}", path.display(), component.type_name))?;
        }
    }
    if found.is_empty() {
        bail!("no amqp source or sink with a `topology` in these configurations");
    }
    Ok(found)
}

async fn init_rabbitmq(configs: &[PathBuf]) -> anyhow::Result<()> {
    let found = topologies(configs)?;
    for (url, topology) in found {
        let connection = loggr::amqp::connect(&url, "loggr_ctl", Duration::from_secs(10)).await?;
        let channel = connection.create_channel().await?;
        loggr::amqp::declare_topology(&channel, &topology).await?;
        println!(
            "declared on {}: {} exchanges, {} queues, {} bindings",
            loggr::amqp::redact_url(&url),
            topology.exchanges.len(),
            topology.queues.len(),
            topology.bindings.len()
        );
        let _ = connection.close(200, "done".into()).await;
    }
    Ok(())
}

async fn init_db(url: &str, search_index: bool) -> anyhow::Result<()> {
    use loggr::sinks::postgres::tokio_postgres;
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(connection);
    let migrated = loggr::sinks::postgres::migrate(&client).await?;
    println!("schema ready: {migrated:?}");
    if search_index {
        let index = loggr::sinks::postgres::create_search_index(&client).await?;
        println!("search index ready: {}", index.name());
    }
    Ok(())
}

/// Whether each service answers (a short timeout each).
async fn status(pg_url: &str, amqp_url: &str, redis_url: &str, skip: &[String]) -> bool {
    let timeout = Duration::from_secs(3);
    let mut all_up = true;
    let mut report = |name: &str, url: &str, outcome: Result<(), String>| match outcome {
        Ok(()) => println!(
            "{name:<14} up      {}",
            loggr::core::config::redact_url(url)
        ),
        Err(error) => {
            all_up = false;
            println!(
                "{name:<14} DOWN    {}: {error}",
                loggr::core::config::redact_url(url)
            );
        }
    };
    if !skip.iter().any(|s| s == "postgres") {
        let outcome = tokio::time::timeout(timeout, async {
            use loggr::sinks::postgres::tokio_postgres;
            let describe = |error: tokio_postgres::Error| match error.as_db_error() {
                Some(db) => db.message().to_owned(),
                None => match std::error::Error::source(&error) {
                    Some(cause) => format!("{error}: {cause}"),
                    None => error.to_string(),
                },
            };
            let (client, connection) = tokio_postgres::connect(pg_url, tokio_postgres::NoTls)
                .await
                .map_err(describe)?;
            tokio::spawn(connection);
            client.simple_query("SELECT 1").await.map_err(describe)?;
            Ok(())
        })
        .await
        .unwrap_or_else(|_| Err("no answer within 3 s".into()));
        report("postgresql", pg_url, outcome);
    }
    if !skip.iter().any(|s| s == "rabbitmq") {
        let outcome = match loggr::amqp::connect(amqp_url, "loggr_ctl", timeout).await {
            Ok(connection) => {
                let _ = connection.close(200, "status".into()).await;
                Ok(())
            }
            Err(error) => Err(error.to_string()),
        };
        report("rabbitmq", amqp_url, outcome);
    }
    if !skip.iter().any(|s| s == "redis") {
        let outcome = tokio::time::timeout(timeout, async {
            let client = redis::Client::open(redis_url).map_err(|e| e.to_string())?;
            let mut connection = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        })
        .await
        .unwrap_or_else(|_| Err("no answer within 3 s".into()));
        report("redis", redis_url, outcome);
    }
    all_up
}

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    use std::process::ExitCode;
    loggr::daemon::init_logging();
    match Command::parse() {
        Command::InitDb { url, search_index } => init_db(&url, search_index).await?,
        Command::InitRabbitmq { configs } => init_rabbitmq(&configs).await?,
        Command::Validate { config } => {
            let config = PipelineConfig::from_file(&config)?;
            loggr::daemon::run_configured(config, None, true).await?;
            println!("configuration is valid");
        }
        Command::Run { name, args } => process::run(&name, &args)?,
        Command::Start {
            name,
            run_dir,
            args,
        } => {
            let dir = process::run_dir(run_dir)?;
            let pid = process::start(&name, &args, &dir)?;
            println!(
                "{name} started (pid {pid}, log {})",
                dir.join(format!("{name}.log")).display()
            );
        }
        Command::Stop {
            name,
            run_dir,
            timeout,
        } => {
            let dir = process::run_dir(run_dir)?;
            match process::stop(&name, &dir, timeout)? {
                Some(pid) => println!("{name} stopped (pid {pid})"),
                None => println!("{name} was not running"),
            }
        }
        Command::Status {
            run_dir,
            pg_url,
            amqp_url,
            redis_url,
            skip,
        } => {
            let dir = process::run_dir(run_dir)?;
            for name in process::COMPONENTS {
                match process::running(&dir, name) {
                    Some(pid) => println!("{name:<14} running pid {pid}"),
                    None => println!("{name:<14} stopped"),
                }
            }
            if !status(&pg_url, &amqp_url, &redis_url, &skip).await {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::PurgeDb { url, yes } => {
            for (table, rows) in purge::purge_db(&url, yes).await? {
                println!("{table}: {rows} rows deleted");
            }
        }
        Command::PurgeQueues {
            configs,
            dead_letters,
        } => {
            for (queue, count) in purge::purge_queues(topologies(&configs)?, dead_letters).await? {
                println!("{queue}: {count} messages purged");
            }
        }
        Command::Send(args) => {
            let sent = send::send(&args).await?;
            match sent.acked {
                Some(acked) => {
                    println!("sent {}, acknowledged {acked}", sent.sent);
                    if acked < sent.sent {
                        return Ok(ExitCode::FAILURE);
                    }
                }
                None => println!("sent {} (tcp: no acknowledgements)", sent.sent),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
