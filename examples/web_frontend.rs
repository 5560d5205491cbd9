//! `web_frontend`: loggr's web frontend over the PostgreSQL store (see `loggr_web`).
//!
//! ```text
//! cargo run --release --all-features --example web_frontend -- --config examples/config/web_frontend.toml
//! cargo run --release --all-features --example web_frontend -- hash-password   # reads the password on stdin
//! ```
//!
//! The server listens on `listen` (default `127.0.0.1:8080`); put a TLS-terminating reverse
//! proxy in front of it for anything but localhost, and keep `secure_cookies = true` there.
//! `${VAR:-default}` in the configuration is read from the environment (`LOGGR_PG_URL` for the
//! database in the bundled file). `hash-password` prints the argon2id PHC string to paste as a
//! user's `password_hash`. The bundled file ships no password: its user `admin` (or
//! `$LOGGR_WEB_ADMIN`) takes its hash from `$LOGGR_WEB_ADMIN_HASH`, and the frontend refuses to
//! start while that is unset.
//!
//! The `[status]` table lists what the status page watches besides the store: the other
//! daemons' `/metrics`, RabbitMQ queues (loggr-web's `amqp` feature) and Redis spools (its
//! `redis` feature). The frontend serves its own `/healthz` and `/metrics` on `listen`.

#![allow(clippy::print_stdout, clippy::print_stderr)] // the hash is the output

use std::io::BufRead as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser as _;

const BUNDLED: &str = include_str!("config/web_frontend.toml");

/// loggr's web frontend.
#[derive(clap::Parser)]
#[command(version, about)]
struct Args {
    /// The configuration (TOML); default: the bundled one.
    #[arg(long, short)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Read a password on stdin (one line) and print its argon2id hash.
    HashPassword,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if let Some(Command::HashPassword) = args.command {
        eprintln!("Password (one line on stdin):");
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let password = line.trim_end_matches(['\r', '\n']);
        anyhow::ensure!(!password.is_empty(), "empty password");
        println!("{}", loggr_web::auth::hash_password(password)?);
        return Ok(());
    }
    let text = match &args.config {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => BUNDLED.to_owned(),
    };
    let text = loggr_core::config::interpolate(&text, |name| std::env::var(name).ok())?;
    let config = loggr_web::WebConfig::from_toml_str(&text)?;
    if config.users.is_empty() {
        tracing::warn!("No users configured: nobody can log in (add [[users]], see hash-password)");
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(address = %listener.local_addr()?, "Web frontend listening");
    let app = loggr_web::router(loggr_web::AppState::new(config)?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("Shutting down");
        })
        .await?;
    Ok(())
}
