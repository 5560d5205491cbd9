//! `shipper2pgsql`: RabbitMQ → PostgreSQL (pyloggr's shipper).
//!
//! Consumes the `parsed` queue and stores events in loggr's PostgreSQL schema; a delivery is
//! acknowledged only after the transaction holding its events committed. Redelivery after a crash
//! never duplicates rows (inserts are idempotent on the content digest).
//!
//! ```text
//! cargo run --release --all-features --example shipper2pgsql                       # the bundled configuration
//! cargo run --release --all-features --example shipper2pgsql -- --config FILE.toml
//! cargo run --release --all-features --example shipper2pgsql -- --print-config     # start from this
//! ```
//!
//! The bundled configuration is `examples/config/shipper2pgsql.toml` (localhost services, `${VAR:-default}`
//! from the environment). SIGINT or SIGTERM stops intake and drains within the grace period.

use clap::Parser as _;
use loggr::core::PipelineConfig;

const BUNDLED_CONFIG: &str = include_str!("config/shipper2pgsql.toml");

/// RabbitMQ → PostgreSQL (pyloggr's shipper).
#[derive(clap::Parser)]
#[command(version, about)]
struct Args {
    /// The pipeline configuration (TOML); default: the bundled `examples/config/shipper2pgsql.toml`.
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
