//! `importer`: imports log files into PostgreSQL through BuzzSaw's filter stack (BuzzSaw's
//! `buzzsaw_importer`).
//!
//! ```text
//! cargo run --release --all-features --example importer -- import                  # bundled configuration
//! cargo run --release --all-features --example importer -- import --readall        # ignore the file registry
//! cargo run --release --all-features --example importer -- import --config FILE.toml
//! cargo run --release --all-features --example importer -- print-config            # start from this
//! ```
//!
//! The configuration is a pipeline whose sources are `files` sources (see
//! `examples/config/importer.toml`). On a terminal a progress line shows files, lines, lines/s
//! and the time left; at the end the importer prints `examined N, accepted M, skipped K files`
//! and exits with status 1 if a file could not be read or delivered (after importing the
//! others). SIGINT or SIGTERM stops after the files being read: their events are delivered,
//! the files are not recorded, and the next run imports them.

#![allow(clippy::print_stdout, clippy::print_stderr)] // the summary and progress are the output

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser as _;
use loggr::core::config::deserialize_component;
use loggr::core::{PipelineBuilder, PipelineConfig};
use loggr::sources::files::ledger::LedgerConfig;
use loggr::sources::files::{FilesConfig, FilesSource, ImportProgress, ProgressSnapshot};

const BUNDLED: &str = include_str!("config/importer.toml");

/// Import log files (plain, gzip, bzip2, zstd, xz) once each.
#[derive(clap::Parser)]
#[command(version, about)]
enum Command {
    /// Import the files the configuration's `files` sources select.
    Import {
        /// Import files even if their content was imported before (stored lines are not
        /// stored twice).
        #[arg(long)]
        readall: bool,
        /// The pipeline configuration (TOML); default: the bundled one.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// No progress line, even on a terminal.
        #[arg(long, short)]
        quiet: bool,
        /// Serve Prometheus /metrics and /healthz here while importing.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Print the bundled configuration.
    PrintConfig,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    loggr::daemon::init_logging();
    match run(Command::parse()).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("importer: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(command: Command) -> anyhow::Result<std::process::ExitCode> {
    let (readall, config, quiet, metrics) = match command {
        Command::PrintConfig => {
            print!("{BUNDLED}");
            return Ok(std::process::ExitCode::SUCCESS);
        }
        Command::Import {
            readall,
            config,
            quiet,
            metrics,
        } => (readall, config, quiet, metrics),
    };
    let mut config = match &config {
        Some(path) => PipelineConfig::from_file(path)?,
        None => PipelineConfig::from_toml(BUNDLED)?,
    };
    // The `files` sources are built here, so that `--readall` applies and their progress can
    // be shown; the rest comes from the registry.
    let mut files = Vec::new();
    let mut others = Vec::new();
    for (index, component) in std::mem::take(&mut config.sources).into_iter().enumerate() {
        if component.type_name != "files" {
            others.push(component);
            continue;
        }
        let name = component
            .name
            .clone()
            .unwrap_or_else(|| format!("files_{index}"));
        let at = format!("sources[{index}] (type `files`, name `{name}`)");
        let mut source_config: FilesConfig = deserialize_component(&at, component.table)?;
        source_config.readall |= readall;
        if let LedgerConfig::Postgres { url, .. } = &source_config.ledger {
            migrate(url)
                .await
                .with_context(|| format!("{at}: the ledger's database"))?;
        }
        let source = FilesSource::new(source_config).map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
        files.push((name, source));
    }
    anyhow::ensure!(!files.is_empty(), "the configuration has no `files` source");
    config.sources = others;
    let metrics = metrics.or(config.metrics.as_ref().map(|m| m.address));
    let registry = loggr::registry()?;
    let mut builder = PipelineBuilder::from_config(config, &registry)?;
    let progress: Vec<Arc<ImportProgress>> = files.iter().map(|(_, s)| s.progress()).collect();
    for (name, source) in files {
        builder = builder.source(name, source);
    }
    let pipeline = builder.build()?;
    let shutdown = loggr::daemon::shutdown_on_signals();
    if let Some(address) = metrics {
        loggr::http::serve_metrics(address, pipeline.metrics().clone(), shutdown.clone())
            .await
            .context("serving /metrics")?;
    }
    let show = !quiet && std::io::stderr().is_terminal();
    let reporter = show.then(|| tokio::spawn(report_progress(progress.clone())));
    let started = Instant::now();
    let outcome = pipeline.run(shutdown).await;
    if let Some(reporter) = reporter {
        reporter.abort();
        eprintln!();
    }
    let total = sum(&progress);
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "examined {}, accepted {}, skipped {} files; {} failed, {} interrupted; {} lines in {:.1} s ({:.0} lines/s)",
        total.files_found,
        total.files_accepted,
        total.files_skipped,
        total.files_failed,
        total.files_interrupted,
        total.lines,
        seconds,
        total.lines as f64 / seconds.max(1e-9),
    );
    if let Err(error) = outcome {
        eprintln!("importer: {error}");
        return Ok(std::process::ExitCode::FAILURE);
    }
    if total.files_failed > 0 || total.files_interrupted > 0 {
        return Ok(std::process::ExitCode::FAILURE);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Creates or updates loggr's schema (the ledger's `log` and `current_processing` tables must
/// exist before the first file is claimed).
async fn migrate(url: &str) -> anyhow::Result<()> {
    use loggr::sinks::postgres::tokio_postgres;
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {}", loggr::core::config::redact_url(url)))?;
    let connection = tokio::spawn(connection);
    loggr::sinks::postgres::migrate(&client).await?;
    drop(client);
    let _ = connection.await;
    Ok(())
}

fn sum(progress: &[Arc<ImportProgress>]) -> ProgressSnapshot {
    progress
        .iter()
        .map(|p| p.snapshot())
        .fold(ProgressSnapshot::default(), |a, b| ProgressSnapshot {
            files_found: a.files_found + b.files_found,
            bytes_found: a.bytes_found + b.bytes_found,
            files_accepted: a.files_accepted + b.files_accepted,
            files_skipped: a.files_skipped + b.files_skipped,
            files_failed: a.files_failed + b.files_failed,
            files_interrupted: a.files_interrupted + b.files_interrupted,
            bytes_done: a.bytes_done + b.bytes_done,
            lines: a.lines + b.lines,
            finished: a.finished && b.finished,
        })
}

/// One progress line on standard error, rewritten twice a second.
async fn report_progress(progress: Vec<Arc<ImportProgress>>) {
    let started = Instant::now();
    let mut last = (Instant::now(), 0u64);
    let mut rate = 0.0f64;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = sum(&progress);
        let elapsed = last.0.elapsed().as_secs_f64().max(1e-3);
        let instant = (now.lines - last.1) as f64 / elapsed;
        rate = if rate == 0.0 {
            instant
        } else {
            0.7 * rate + 0.3 * instant
        };
        last = (Instant::now(), now.lines);
        let handled = now.files_accepted + now.files_skipped + now.files_failed;
        let eta = if now.bytes_done > 0 && now.bytes_found > now.bytes_done {
            let spent = started.elapsed().as_secs_f64();
            let left = spent * (now.bytes_found - now.bytes_done) as f64 / now.bytes_done as f64;
            format!("{left:.0} s")
        } else {
            "-".into()
        };
        let mut stderr = std::io::stderr().lock();
        let _ = write!(
            stderr,
            "\r\x1b[2Kfiles {handled}/{} · lines {} · {:.0} lines/s · ETA {eta}",
            now.files_found, now.lines, rate
        );
        let _ = stderr.flush();
    }
}
