//! loggr's reports: BuzzSaw's reporter over the PostgreSQL store the `postgres` sink fills,
//! and BuzzSaw's anonymiser.
//!
//! # A short tutorial
//!
//! Reports are listed by how often they run, in TOML:
//!
//! ```toml
//! database = "postgresql://root@127.0.0.1/loggr"
//! timezone = "Europe/London"
//!
//! [[daily]]
//! name = "Kernel"
//! kind = "kernel"               # panics, oopses, OOM kills, segfaults: hosts per kind
//!
//! [[daily]]
//! name = "AuthFailure"
//! kind = "auth_failure"         # sshd's failed logins: top users, targets, sources
//!
//! [[weekly]]
//! name = "Sleep"
//! kind = "sleep"                # wake and sleep events as CSV
//!
//! [[hourly]]
//! name = "sudo"                 # a generic report: configuration alone
//! tags = ["sudo"]
//! program = "sudo"
//! start = "hour-ago"
//! end = "now"
//! order_by = "hostname"
//! template = "generic.txt"
//! ```
//!
//! A program (the `reporter` example is one) builds a [`Reporter`] from the configuration
//! and runs it against the database; cron calls it every hour, and each report runs when it
//! is due (see [`schedule`]):
//!
//! ```no_run
//! # async fn demo() -> Result<(), loggr_reports::ReportError> {
//! use loggr_reports::{connect, Reporter, ReporterConfig, RunOptions};
//!
//! let config = ReporterConfig::from_file("reporter.toml".as_ref())?;
//! let client = connect(&config.database).await?;
//! let reporter = Reporter::new(config)?;
//! let options = RunOptions { all: false, dryrun: false, periods: vec![], now: jiff::Timestamp::now() };
//! let summary = reporter.run(&client, &options, &mut std::io::stdout()).await?;
//! eprintln!("{} reports ran, {} failed", summary.ran.len(), summary.failed.len());
//! # Ok(()) }
//! ```
//!
//! A report selects the events of a time range ([`timewords`]: `yesterday` to `today`…),
//! with any of its tags and of its program, ordered by a column, in a time zone
//! ([`query`]); computes its results ([`report`]); renders a template with `events`,
//! `results` and `params` ([`render`]: bundled templates, overridable from a directory); and
//! prints it or sends it by mail ([`mail`]). The run is then recorded in the `report_run`
//! table, which the reporter creates in the database if it is missing ([`query::RUN_LOG_SQL`]).
//!
//! [`anonymise`] blanks the personal data of events older than a maximum age.

pub mod anonymise;
pub mod config;
pub mod mail;
pub mod query;
pub mod render;
pub mod report;
pub mod schedule;
pub mod timewords;

use std::path::PathBuf;

pub use config::{AccountsConfig, OrderBy, OutputKind, ReportConfig, ReportKind, ReporterConfig};
pub use mail::{MailConfig, MailError, Mailer, StartTls};
pub use report::{Rendered, Reporter, RunOptions, RunSummary};
pub use schedule::{Decision, Period};
pub use timewords::TimeWordError;

/// The PostgreSQL client crate, at the version the reporter takes.
pub use tokio_postgres;

/// A reporter or anonymiser failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The configuration is not valid TOML for [`ReporterConfig`].
    #[error("invalid reporter configuration")]
    Config(#[source] toml::de::Error),
    /// A configuration value is refused.
    #[error("{report}: `{field}` {why}")]
    Invalid {
        /// The report (or table).
        report: String,
        /// The field.
        field: String,
        /// Why.
        why: String,
    },
    /// A file or directory could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An unknown time zone.
    #[error("unknown time zone `{name}`")]
    TimeZone {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: jiff::Error,
    },
    /// A report's `start` or `end` cannot be resolved.
    #[error("report `{report}`: bad time range")]
    TimeWord {
        /// The report.
        report: String,
        /// Why.
        #[source]
        source: TimeWordError,
    },
    /// `--max-age` is refused.
    #[error("bad maximum age `{value}`: {why}")]
    MaxAge {
        /// The value.
        value: String,
        /// Why.
        why: String,
    },
    /// A database statement failed.
    #[error("cannot {what}")]
    Database {
        /// What was being done.
        what: &'static str,
        /// Why.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A template is missing, does not compile or failed to render.
    #[error("template `{name}` failed")]
    Template {
        /// The template.
        name: String,
        /// Why.
        #[source]
        source: minijinja::Error,
    },
    /// A report could not be mailed.
    #[error("cannot mail the report")]
    Mail(#[from] MailError),
    /// A report could not be written out.
    #[error("cannot write the report")]
    Output(#[source] std::io::Error),
}

impl ReportError {
    pub(crate) fn db(what: &'static str, source: tokio_postgres::Error) -> Self {
        ReportError::Database { what, source }
    }

    /// Whether running again later may succeed (the database or the mail server was
    /// unreachable).
    pub fn is_transient(&self) -> bool {
        match self {
            ReportError::Database { source, .. } => source.as_db_error().is_none(),
            ReportError::Mail(error) => error.is_transient(),
            _ => false,
        }
    }
}

/// Connects to PostgreSQL without TLS and drives the connection on a spawned task (so
/// within a tokio runtime).
///
/// # Errors
///
/// [`ReportError::Database`] when the server cannot be reached or refuses the login.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, ReportError> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|source| ReportError::db("connect to PostgreSQL", source))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "The PostgreSQL connection failed");
        }
    });
    Ok(client)
}
