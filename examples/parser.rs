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

#[path = "common/bundled_daemon.rs"]
mod bundled_daemon;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bundled_daemon::run(
        "RabbitMQ → filters → RabbitMQ (pyloggr's parser).",
        include_str!("config/parser.toml"),
    )
    .await
}
