//! `parser`: RabbitMQ → filters → RabbitMQ (pyloggr's parser).
//!
//! Consumes the `syslog` queue, runs the configured filter stack on all cores (BuzzSaw's stack
//! and grok by default), and publishes to the `parsed` exchange; a delivery is acknowledged only
//! after every one of its events was confirmed by the broker (or intentionally dropped).
//!
//! ```text
//! cargo run --release --all-features --example parser                       # the bundled configuration
//! cargo run --release --all-features --example parser -- --config FILE.toml
//! cargo run --release --all-features --example parser -- --print-config     # start from this
//! ```
//!
//! The bundled configuration is `examples/config/parser.toml` (localhost services, `${VAR:-default}`
//! from the environment). SIGINT or SIGTERM stops intake and drains within the grace period.

use clap::Parser as _;
use loggr::core::PipelineConfig;

const BUNDLED_CONFIG: &str = include_str!("config/parser.toml");

/// RabbitMQ → filters → RabbitMQ (pyloggr's parser).
#[derive(clap::Parser)]
#[command(version, about)]
struct Args {
    /// The pipeline configuration (TOML); default: the bundled `examples/config/parser.toml`.
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
