//! What every loggr daemon does the same way: `tracing` logs on stderr (`RUST_LOG` to filter),
//! and a shutdown token cancelled by SIGINT or SIGTERM.

use loggr_core::CancellationToken;

/// Sends `tracing` logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A token cancelled on the first SIGINT or SIGTERM: the pipeline then stops reading and
/// drains. A second signal is left to its default action (the process ends at once).
pub fn shutdown_on_signals() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = match signal(SignalKind::terminate()) {
            Ok(stream) => stream,
            Err(error) => {
                tracing::error!(%error, "Cannot listen for SIGTERM");
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("Signal received: stopping intake and draining");
        token.cancel();
    });
    shutdown
}

/// Why a configuration-driven daemon stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The configuration is invalid or names an unknown plugin.
    #[error(transparent)]
    Config(#[from] loggr_core::ConfigError),
    /// The plugin registry is inconsistent.
    #[error(transparent)]
    Registry(#[from] loggr_core::RegistryError),
    /// The metrics endpoint could not be bound.
    #[error("serving /metrics: {0}")]
    Metrics(#[source] std::io::Error),
    /// The pipeline failed.
    #[error(transparent)]
    Pipeline(#[from] loggr_core::PipelineError),
}

/// Runs the pipeline a configuration describes, as the bundled daemons (`collector`, `parser`,
/// `shipper2pgsql`, …) do: plugins from [`crate::registry`], `/metrics` and `/healthz` on
/// `metrics` (or the configuration's `[metrics]` address), and a graceful drain on SIGINT or
/// SIGTERM. With `check`, only builds the pipeline and returns.
///
/// # Errors
///
/// A bad configuration, an unbindable metrics address, or a failed pipeline.
pub async fn run_configured(
    config: loggr_core::PipelineConfig,
    metrics: Option<std::net::SocketAddr>,
    check: bool,
) -> Result<(), DaemonError> {
    let metrics = metrics.or(config.metrics.as_ref().map(|options| options.address));
    let registry = crate::registry()?;
    let pipeline = loggr_core::PipelineBuilder::from_config(config, &registry)?.build()?;
    if check {
        tracing::info!("The configuration is valid");
        return Ok(());
    }
    let shutdown = shutdown_on_signals();
    if let Some(address) = metrics {
        crate::http::serve_metrics(address, pipeline.metrics().clone(), shutdown.clone())
            .await
            .map_err(DaemonError::Metrics)?;
    }
    pipeline.run(shutdown).await?;
    Ok(())
}
