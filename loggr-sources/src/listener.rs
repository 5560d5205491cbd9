//! The accept loop the TCP-based listeners (`tcp`, `relp`) share: a bounded number of
//! connections (the ones over the limit are closed at once and counted), a short pause when
//! `accept` fails (out of file descriptors) instead of a busy loop, the open-connections
//! gauge and the list of connected clients (`/connections`), and at shutdown: stop accepting,
//! let the connections finish (they drain their own acknowledgements), give up when the
//! pipeline aborts.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use loggr_core::metrics::ComponentMetrics;
use loggr_core::{SourceContext, SourceError};

/// Accepts connections until shutdown, running `serve(stream, peer)` for each on its own
/// task, at most `max_connections` at once; returns when they have all ended (or the pipeline
/// aborts). Each connection is counted and listed under `protocol` (`tcp`, `relp+tls`…) while
/// its task runs.
pub(crate) async fn accept_connections<F, Fut>(
    listener: TcpListener,
    cx: &SourceContext,
    max_connections: usize,
    protocol: &'static str,
    mut serve: F,
) where
    F: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let metrics = cx.emitter().metrics().clone();
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = cx.shutdown().cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(source = cx.name(), %error, "Accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(source = cx.name(), %peer, max = max_connections, "Too many connections; closing the new one");
            ComponentMetrics::add(&metrics.rejected, 1);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Counted and listed from the accept on; the guard moves into the task, so the
        // connection leaves the list however the task ends (even by a panic).
        let open = metrics.open_connection(peer, protocol);
        let connection = serve(stream, peer);
        connections.spawn(async move {
            connection.await;
            drop(open);
            drop(slot);
        });
    }
    connections.close();
    tokio::select! {
        () = connections.wait() => {}
        () = cx.abort().cancelled() => {}
    }
}

/// The listener a source was given, or a new one bound to `address`; the error names the
/// protocol and address.
pub(crate) async fn listen(
    given: Option<TcpListener>,
    address: SocketAddr,
    protocol: &str,
) -> Result<TcpListener, SourceError> {
    match given {
        Some(listener) => Ok(listener),
        None => TcpListener::bind(address).await.map_err(|error| {
            SourceError::other(format!("cannot listen on {protocol} {address}: {error}"))
        }),
    }
}
