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
