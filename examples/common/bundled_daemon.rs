//! What the config-driven daemons (`collector`, `parser`, `shipper2pgsql`) share: their
//! command line and `main`, around a configuration bundled at build time.

use loggr::core::PipelineConfig;

/// The command line of a daemon that runs a bundled or given pipeline configuration.
#[derive(clap::Parser)]
#[command(version, about)]
struct Args {
    /// The pipeline configuration (TOML); default: the bundled one in `examples/config/`.
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

/// Parses the command line and runs the pipeline (`bundled` unless `--config` is given) until
/// SIGINT or SIGTERM; `about` is the `--help` summary.
pub(crate) async fn run(about: &'static str, bundled: &str) -> anyhow::Result<()> {
    use clap::{CommandFactory as _, FromArgMatches as _};
    loggr::daemon::init_logging();
    let args = Args::from_arg_matches(&Args::command().about(about).get_matches())?;
    if args.print_config {
        std::io::Write::write_all(&mut std::io::stdout(), bundled.as_bytes())?;
        return Ok(());
    }
    let config = match &args.config {
        Some(path) => PipelineConfig::from_file(path)?,
        None => PipelineConfig::from_toml(bundled)?,
    };
    loggr::daemon::run_configured(config, args.metrics, args.check).await?;
    Ok(())
}
