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

#[path = "common/bundled_daemon.rs"]
mod bundled_daemon;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bundled_daemon::run(
        "replays the Redis spool into RabbitMQ (pyloggr's collector).",
        include_str!("config/collector.toml"),
    )
    .await
}
