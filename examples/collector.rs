//! `collector`: replays the Redis spool into RabbitMQ (pyloggr's collector).
//!
//! Each spool entry is removed only after RabbitMQ confirmed every one of its events; a broker
//! that is down or returns the messages leaves the entries in Redis.
//!
//! ```text
//! cargo run --release --all-features --example collector                       # the bundled configuration
//! cargo run --release --all-features --example collector -- --config FILE.toml
//! cargo run --release --all-features --example collector -- --print-config     # start from this
//! ```
//!
//! The bundled configuration is `examples/config/collector.toml` (localhost services, `${VAR:-default}`
//! from the environment). SIGINT or SIGTERM stops intake and drains within the grace period.

use clap::Parser as _;
use loggr::core::PipelineConfig;

const BUNDLED_CONFIG: &str = include_str!("config/collector.toml");

/// replays the Redis spool into RabbitMQ (pyloggr's collector).
#[derive(clap::Parser)]
#[command(version, about)]
struct Args {
    /// The pipeline configuration (TOML); default: the bundled `examples/config/collector.toml`.
    #[arg(long, short)]
    config: Option<std::path::PathBuf>,
    /// Serve Prometheus /metrics and /healthz here (overrides `[metrics]`).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Check the configuration and exit.
    #[arg(long)]
    check: bool,
    /// Print the bundled configuration and exit.
    #[arg(long)]
    print_config: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    loggr::daemon::init_logging();
    let args = Args::parse();
    if args.print_config {
        std::io::Write::write_all(&mut std::io::stdout(), BUNDLED_CONFIG.as_bytes())?;
        return Ok(());
    }
    let config = match &args.config {
        Some(path) => PipelineConfig::from_file(path)?,
        None => PipelineConfig::from_toml(BUNDLED_CONFIG)?,
    };
    loggr::daemon::run_configured(config, args.metrics, args.check).await?;
    Ok(())
}
