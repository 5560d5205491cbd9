//! The daemons' HTTP endpoint: Prometheus `/metrics`, `/connections` (the clients connected to
//! each listener, JSON) and a `/healthz` liveness probe.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use loggr_core::{CancellationToken, Metrics};

/// Serves `/metrics` (the Prometheus text format), `/connections` (JSON: see
/// [`loggr_core::connections::ConnectionList`]) and `/healthz` on `address` until `shutdown`
/// fires. Returns the bound address (useful with port 0) and the server's task.
///
/// # Errors
///
/// When the address cannot be bound.
pub async fn serve_metrics(
    address: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(render))
        .route("/connections", get(connections))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(metrics);
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "The metrics endpoint failed");
        }
    });
    tracing::info!(address = %bound, "Serving /metrics, /connections and /healthz");
    Ok((bound, task))
}

async fn render(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render_prometheus(),
    )
}

async fn connections(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "application/json")],
        metrics.render_connections_json(),
    )
}
