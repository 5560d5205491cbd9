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

#[path = "common/bundled_daemon.rs"]
mod bundled_daemon;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bundled_daemon::run(
        "RabbitMQ → PostgreSQL (pyloggr's shipper).",
        include_str!("config/shipper2pgsql.toml"),
    )
    .await
}
