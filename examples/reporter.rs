//! `reporter`: BuzzSaw's scheduled reports over loggr's store — PostgreSQL, or the SQLite
//! file of the all-in-one `loggr` daemon — and its anonymiser.
//!
//! ```text
//! cargo run --release --all-features --example reporter -- report [--all] [--dryrun] [hourly|daily|weekly|monthly …]
//! cargo run --release --all-features --example reporter -- anonymise --max-age "26 weeks" [--dryrun]
//! cargo run --release --all-features --example reporter -- print-config
//! ```
//!
//! `report` runs the configured reports that are due (see `loggr_reports::schedule`): those
//! of the periods named (default: all four), each when it never ran or its period has passed
//! since its last run, or every one of them with `--all`. Reports go to stdout or by mail,
//! as each says; the run log (`report_run`) records each run. `--dryrun` prints
//! `would run daily report Kernel (never ran)` lines and changes nothing. cron can call it
//! hourly with no period: each report runs when due, and a missed day is caught up once.
//! The exit status is 1 when a report failed (after running the others).
//!
//! `anonymise` (BuzzSaw's `anonymisedata`) blanks `raw`, `message` and `userid` of the events
//! older than `--max-age` (default `26 weeks`; `190 days`, `6 months`…) and deletes their
//! extra_info, keeping their tags; it prints `anonymised N events, deleted M extra_info rows`
//! (with `--dryrun`: `would anonymise …`, nothing changed).
//!
//! Both read `examples/config/reporter.toml` unless `--config` names another file;
//! `${VAR:-default}` is read from the environment (`LOGGR_PG_URL` for the database). The
//! `database` setting is a `postgresql://…` URL, or the path of the all-in-one daemon's
//! SQLite store (`loggr-data/loggr.db`, or `sqlite:PATH`; `LOGGR_PG_URL=loggr-data/loggr.db`
//! works with the bundled file): the same reports from either.

#![allow(clippy::print_stdout, clippy::print_stderr)] // the reports and counts are the output

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use loggr_reports::anonymise::{anonymise, cutoff};
use loggr_reports::{open_store, Period, Reporter, ReporterConfig, RunOptions};

const BUNDLED: &str = include_str!("config/reporter.toml");

/// BuzzSaw's reporter and anonymiser.
#[derive(clap::Parser)]
#[command(version, about)]
enum Command {
    /// Run the reports that are due.
    Report {
        /// Run every selected report, due or not.
        #[arg(long)]
        all: bool,
        /// Print what would run; render, send and record nothing.
        #[arg(long)]
        dryrun: bool,
        /// The reporter configuration (TOML); default: the bundled one.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The periods whose reports are considered (default: all).
        periods: Vec<Period>,
    },
    /// Blank the personal data of old events.
    Anonymise {
        /// Events older than this are anonymised (`26 weeks`, `190 days`, `P6M`).
        #[arg(long, default_value = "26 weeks")]
        max_age: String,
        /// Print the counts; change nothing.
        #[arg(long)]
        dryrun: bool,
        /// The reporter configuration (TOML; its `database` and `timezone`).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Print the bundled configuration.
    PrintConfig,
}

fn load(path: Option<&PathBuf>) -> anyhow::Result<ReporterConfig> {
    let text = match path {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => BUNDLED.to_owned(),
    };
    let text = loggr::core::config::interpolate(&text, |name| std::env::var(name).ok())?;
    Ok(ReporterConfig::from_toml(&text)?)
}

async fn run(command: Command) -> anyhow::Result<bool> {
    match command {
        Command::Report {
            all,
            dryrun,
            config,
            periods,
        } => {
            let config = load(config.as_ref())?;
            let store = open_store(&config.database)?;
            let reporter = Reporter::new(config)?;
            let options = RunOptions {
                all,
                dryrun,
                periods,
                now: jiff::Timestamp::now(),
            };
            let mut stdout = std::io::stdout();
            let summary = reporter.run(&*store, &options, &mut stdout).await?;
            for (period, name, error) in &summary.failed {
                eprintln!("{period} report {name} failed: {error}");
            }
            Ok(summary.failed.is_empty())
        }
        Command::Anonymise {
            max_age,
            dryrun,
            config,
        } => {
            let config = load(config.as_ref())?;
            let before = cutoff(jiff::Timestamp::now(), &max_age, &config.time_zone()?)?;
            let store = open_store(&config.database)?;
            let stats = anonymise(&*store, before, dryrun).await?;
            let verb = if dryrun {
                "would anonymise"
            } else {
                "anonymised"
            };
            let delete = if dryrun { "would delete" } else { "deleted" };
            println!(
                "{verb} {} events, {delete} {} extra_info rows (older than {before})",
                stats.events, stats.extra_info
            );
            Ok(true)
        }
        Command::PrintConfig => {
            print!("{BUNDLED}");
            Ok(true)
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    loggr::daemon::init_logging();
    match run(Command::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("reporter: {error:#}");
            ExitCode::FAILURE
        }
    }
}
