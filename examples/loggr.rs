//! `loggr`: run a pipeline described by a TOML file.
//!
//! ```text
//! cargo run --release --example loggr -- --config pipeline.toml
//! printf 'hello\n' | cargo run --release --example loggr          # stdin → JSON lines on stdout
//! cargo run --release --example loggr -- --list                    # the registered plugin types
//! ```
//!
//! SIGINT or SIGTERM stops reading and drains what is in flight (within the grace period).

use clap::Parser as _;
use loggr::core::config::PipelineConfig;
use loggr::{CancellationToken, PipelineBuilder};

/// Run a loggr pipeline from a TOML configuration.
#[derive(clap::Parser)]
#[command(version, about)]
struct Args {
    /// The pipeline configuration (TOML). Without it: stdin → JSON lines on stdout.
    #[arg(long, short)]
    config: Option<std::path::PathBuf>,
    /// Print the registered source, filter and sink types, then exit.
    #[arg(long)]
    list: bool,
    /// Check the configuration and exit.
    #[arg(long)]
    check: bool,
}

const DEFAULT_CONFIG: &str = r#"
[[sources]]
type = "stdin"

[[sinks]]
type = "stdout"
"#;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let registry = loggr::registry()?;
    if args.list {
        let join = |names: Vec<&str>| names.join(", ");
        eprintln!("sources: {}", join(registry.source_types().collect()));
        eprintln!("filters: {}", join(registry.filter_types().collect()));
        eprintln!("sinks:   {}", join(registry.sink_types().collect()));
        eprintln!("packers: {}", join(registry.packer_types().collect()));
        return Ok(());
    }
    let config = match &args.config {
        Some(path) => PipelineConfig::from_file(path)?,
        None => PipelineConfig::from_toml(DEFAULT_CONFIG)?,
    };
    let pipeline = PipelineBuilder::from_config(config, &registry)?.build()?;
    if args.check {
        eprintln!("configuration is valid: {pipeline:?}");
        return Ok(());
    }
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signals(shutdown.clone()));
    pipeline.run(shutdown).await?;
    Ok(())
}

async fn stop_on_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("Signal received: draining");
    shutdown.cancel();
}
