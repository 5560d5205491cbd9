//! A downstream program's pipeline, assembled in code, with an in-house filter.
//!
//! Reads lines on standard input, keeps those an in-house filter finds interesting (and tags
//! them), and appends them as JSON lines to a file, fsynced before each batch is acknowledged.
//!
//! ```text
//! printf 'sshd: Failed password for root\nnoise\n' \
//!   | cargo run --example custom_pipeline -- --out /tmp/alerts.jsonl
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use clap::Parser as _;
use loggr::sinks::{FileSink, FileSinkConfig};
use loggr::sources::{StdinConfig, StdinSource};
use loggr::{CancellationToken, Event, Filter, FilterError, Pipeline, Severity, Verdict};

/// Keeps security-relevant lines, tags them and raises their severity; drops the rest.
///
/// This is the whole contract of a filter: look at one event, change it, say keep or discard.
/// It runs on several worker threads at once, so shared state is atomic.
struct SecurityLines {
    kept: AtomicU64,
}

impl Filter for SecurityLines {
    fn name(&self) -> &str {
        "security_lines"
    }

    fn apply(&self, event: &mut Event) -> Result<Verdict, FilterError> {
        let message = event.message_str();
        let kind = if message.contains("Failed password") {
            "auth_failure"
        } else if message.contains("segfault") {
            "segfault"
        } else {
            return Ok(Verdict::Discard);
        };
        event.add_tag(kind);
        event.severity = event.severity.min(Severity::Warning);
        let seen = self.kept.fetch_add(1, Ordering::Relaxed) + 1;
        event.set_field("alert_number", seen as i64);
        Ok(Verdict::Keep)
    }
}

/// Keep security-relevant lines from standard input in a JSON-lines file.
#[derive(clap::Parser)]
struct Args {
    /// The JSON-lines file to append to.
    #[arg(long, default_value = "alerts.jsonl")]
    out: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    Pipeline::builder()
        .source("stdin", StdinSource::new(StdinConfig::default()))
        .filter(SecurityLines {
            kept: AtomicU64::new(0),
        })
        .sink("alerts", FileSink::new(FileSinkConfig::new(args.out)))
        .build()?
        .run(shutdown)
        .await?;
    Ok(())
}
