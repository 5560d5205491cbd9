//! `loggr_ctl`: operate the distributed chain (pyloggr_ctl's setup commands).
//!
//! ```text
//! cargo run --release --all-features --example loggr_ctl -- init-db --url postgresql://root@127.0.0.1/loggr
//! cargo run --release --all-features --example loggr_ctl -- init-rabbitmq examples/config/*.toml
//! cargo run --release --all-features --example loggr_ctl -- validate examples/config/parser.toml
//! ```
//!
//! `init-rabbitmq` declares, for every `amqp` source and sink of the given configurations
//! (including a `fallback` sink's primary), the `topology` its table describes, on its broker:
//! durable exchanges, queues with their dead-letter exchange and queue, bindings. Declaring is
//! idempotent; a declaration that contradicts what exists fails with the broker's reason.

#![allow(clippy::print_stdout)] // the command's report is its output

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

async fn init_rabbitmq(configs: &[PathBuf]) -> anyhow::Result<()> {
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

async fn init_db(url: &str) -> anyhow::Result<()> {
    use loggr::sinks::postgres::tokio_postgres;
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(connection);
    let migrated = loggr::sinks::postgres::migrate(&client).await?;
    println!("schema ready: {migrated:?}");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    loggr::daemon::init_logging();
    match Command::parse() {
        Command::InitDb { url } => init_db(&url).await,
        Command::InitRabbitmq { configs } => init_rabbitmq(&configs).await,
        Command::Validate { config } => {
            let config = PipelineConfig::from_file(&config)?;
            loggr::daemon::run_configured(config, None, true).await?;
            println!("configuration is valid");
            Ok(())
        }
    }
}
