//! loggr's reports: BuzzSaw's reporter over loggr's event store — the embedded SQLite store
//! of the all-in-one daemon or the PostgreSQL store the `postgres` sink fills, with the same
//! code — and BuzzSaw's anonymiser.
//!
//! # A short tutorial
//!
//! Reports are listed by how often they run, in TOML:
//!
//! ```toml
//! database = "postgresql://root@127.0.0.1/loggr"   # or the SQLite store: "loggr-data/loggr.db"
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
//! `database` names the store ([`open_store`]): a `postgresql://…` URL (or libpq
//! `key=value` pairs) for PostgreSQL, anything else — a path, or `sqlite:PATH` — for the
//! SQLite file of the all-in-one daemon (`loggr-data/loggr.db` by default). The reports read
//! the same things from either, through the [`Store`] trait.
//!
//! A program (the `reporter` example is one) builds a [`Reporter`] from the configuration
//! and runs it against the store; cron calls it every hour, and each report runs when it
//! is due (see [`schedule`]):
//!
//! ```no_run
//! # async fn demo() -> Result<(), loggr_reports::ReportError> {
//! use loggr_reports::{open_store, Reporter, ReporterConfig, RunOptions};
//!
//! let config = ReporterConfig::from_file("reporter.toml".as_ref())?;
//! let store = open_store(&config.database)?;
//! let reporter = Reporter::new(config)?;
//! let options = RunOptions { all: false, dryrun: false, periods: vec![], now: jiff::Timestamp::now() };
//! let summary = reporter.run(&*store, &options, &mut std::io::stdout()).await?;
//! eprintln!("{} reports ran, {} failed", summary.ran.len(), summary.failed.len());
//! # Ok(()) }
//! ```
//!
//! A process that already holds a store — the all-in-one daemon and its `SqliteStore` —
//! runs the reporter in-process instead: [`Reporter::run_due`] every few minutes, with its
//! `Arc<dyn Store>`.
//!
//! A report selects the events of a time range ([`timewords`]: `yesterday` to `today`…),
//! with any of its tags and of its program, ordered by a column, in a time zone
//! ([`query`]); computes its results ([`report`]); renders a template with `events`,
//! `results` and `params` ([`render`]: bundled templates, overridable from a directory); and
//! prints it or sends it by mail ([`mail`]). The run is then recorded in the store's
//! `report_run` table (in PostgreSQL the store creates it when it is missing:
//! [`query::RUN_LOG_SQL`]; SQLite's schema has it).
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

use std::path::{Path, PathBuf};
use std::sync::Arc;

use loggr_store::{Store, StoreError};

pub use config::{AccountsConfig, OrderBy, OutputKind, ReportConfig, ReportKind, ReporterConfig};
pub use mail::{MailConfig, MailError, Mailer, StartTls};
pub use report::{Rendered, Reporter, RunOptions, RunSummary};
pub use schedule::{Decision, Period};
pub use timewords::TimeWordError;

/// The store crate, at the version the reporter takes ([`open_store`] gives its [`Store`]).
pub use loggr_store;

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
    /// The store cannot be opened, or one of its operations failed.
    #[error("cannot {what}")]
    Database {
        /// What was being done.
        what: &'static str,
        /// Why.
        #[source]
        source: StoreError,
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
    pub(crate) fn db(what: &'static str, source: StoreError) -> Self {
        ReportError::Database { what, source }
    }

    /// Whether running again later may succeed (the database was unreachable or busy, or
    /// the mail server was unreachable).
    pub fn is_transient(&self) -> bool {
        match self {
            ReportError::Database { source, .. } => store_error_is_transient(source),
            ReportError::Mail(error) => error.is_transient(),
            _ => false,
        }
    }
}

/// PostgreSQL: no answer from the server (a refusal has a SQLSTATE); SQLite: the database
/// was busy or locked (`SQLITE_BUSY`, `SQLITE_LOCKED`).
fn store_error_is_transient(error: &StoreError) -> bool {
    const SQLITE_BUSY: i32 = 5;
    const SQLITE_LOCKED: i32 = 6;
    match error {
        StoreError::Pg(error) => error.as_db_error().is_none(),
        StoreError::Sqlite(error) => error
            .sqlite_error()
            .is_some_and(|e| matches!(e.extended_code & 0xff, SQLITE_BUSY | SQLITE_LOCKED)),
        _ => false,
    }
}

pub use loggr_store::is_postgres;

/// Opens the store the reports read, as the `database` setting names it: PostgreSQL for a
/// `postgresql://…` URL or libpq `key=value` pairs (a [`PgStore`](loggr_store::PgStore) that connects on first use
/// and never touches the schema, which is the operator's; it creates only the run log table
/// when missing), else the embedded SQLite store at that path (`sqlite:` prefix optional),
/// which must exist already (the `loggr` daemon creates it).
///
/// # Errors
///
/// [`ReportError::Database`]: a PostgreSQL connection string that does not parse, no SQLite
/// store at the path, or one that cannot be opened.
pub fn open_store(database: &str) -> Result<Arc<dyn Store>, ReportError> {
    if !is_postgres(database) {
        // A report over a store that does not exist yet is a mistake, not an empty report.
        let path = Path::new(
            database
                .trim()
                .strip_prefix("sqlite:")
                .unwrap_or(database.trim()),
        );
        if !path.is_file() {
            return Err(ReportError::db(
                "open the SQLite store",
                StoreError::Io {
                    path: path.display().to_string(),
                    source: std::io::ErrorKind::NotFound.into(),
                },
            ));
        }
    }
    loggr_store::open(database, "loggr-reports").map_err(|e| ReportError::db("open the store", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_or_sqlite_by_the_setting() {
        for pg in [
            "postgresql://root@127.0.0.1/loggr",
            "postgres://h/db",
            "host=/run/postgresql dbname=loggr",
            "dbname=loggr",
        ] {
            assert!(is_postgres(pg), "{pg}");
        }
        for sqlite in [
            "loggr-data/loggr.db",
            "/var/lib/loggr/loggr.db",
            "sqlite:loggr.db",
            "sqlite:/a=b/loggr.db",
        ] {
            assert!(!is_postgres(sqlite), "{sqlite}");
        }
    }

    #[test]
    fn a_missing_sqlite_store_is_refused_not_created() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("none.db");
        let error = open_store(&format!("sqlite:{}", path.display())).expect_err("refused");
        assert!(matches!(error, ReportError::Database { .. }), "{error:?}");
        assert!(!path.exists());
    }
}
