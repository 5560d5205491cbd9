//! [`PgError`] and the classification of PostgreSQL failures into "these events are bad" and
//! "try again later".

use tokio_postgres::error::SqlState;

/// A PostgreSQL operation of loggr failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The connection string does not parse.
    #[error("invalid PostgreSQL connection string: {}", describe(.0))]
    Url(#[source] tokio_postgres::Error),
    /// The server could not be reached or refused the session.
    #[error("cannot connect to PostgreSQL: {}", describe(.0))]
    Connect(#[source] tokio_postgres::Error),
    /// Connecting took longer than `connect_timeout`.
    #[error("connecting to PostgreSQL timed out after {} ms", .0.as_millis())]
    ConnectTimeout(std::time::Duration),
    /// A migration failed; it was rolled back.
    #[error("schema migration {version} ({name}) failed: {}", describe(source))]
    Migration {
        /// The migration's number.
        version: u32,
        /// The migration's name.
        name: &'static str,
        /// What PostgreSQL said.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The database lacks migrations this loggr needs.
    #[error(
        "the loggr schema is at version {found}, this loggr needs version {needed}: \
         run `loggr_ctl init-db` (or set `migrate = true` on the sink)"
    )]
    SchemaOutdated {
        /// The newest migration applied (0: none).
        found: u32,
        /// The newest migration this loggr knows.
        needed: u32,
    },
    /// A stored value could not be turned back into an event.
    #[error("cannot decode stored {what}: {message}")]
    Decode {
        /// Which value.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// A query failed.
    #[error("PostgreSQL query failed: {}", describe(.0))]
    Query(#[from] tokio_postgres::Error),
}

impl PgError {
    /// Whether the failure is about the data sent (see [`is_data_error`]) rather than the
    /// server, the connection or the schema.
    pub fn is_data_error(&self) -> bool {
        match self {
            PgError::Query(error) => is_data_error(error),
            _ => false,
        }
    }

    /// The SQLSTATE PostgreSQL reported, if any.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            PgError::Query(error)
            | PgError::Connect(error)
            | PgError::Migration { source: error, .. } => error.code().map(SqlState::code),
            _ => None,
        }
    }
}

/// What went wrong, in full: the server's SQLSTATE, message, detail and context for an error
/// PostgreSQL reported, else the client's error with its causes (`tokio_postgres::Error`'s own
/// message leaves them out: "error connecting to server", "db error").
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{}: {}", db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        if let Some(context) = db.where_() {
            text.push_str(&format!(" [{context}]"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Whether PostgreSQL refused the *data* of a statement, so that sending the same rows again
/// would fail again: SQLSTATE classes 22 (data exception: a value out of range, a bad
/// encoding), 23 (integrity constraint violation: a CHECK, NOT NULL or foreign key) and 54
/// (program limit exceeded: a value too large for an index entry).
///
/// Everything else is not the events' fault and may go away: no SQLSTATE at all (the
/// connection broke, a timeout), 08 (connection exception), 40 (transaction rollback:
/// serialization failure, deadlock), 53 (insufficient resources: disk full, too many
/// connections), 57 (operator intervention: `pg_terminate_backend`, shutdown, statement
/// timeout), 42 (a missing table or privilege: fix the schema, the events are fine), XX…
pub fn is_data_error(error: &tokio_postgres::Error) -> bool {
    error
        .code()
        .is_some_and(|code| matches!(code.code().get(..2), Some("22" | "23" | "54")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outdated_schema_says_what_to_run() {
        let error = PgError::SchemaOutdated {
            found: 0,
            needed: 1,
        };
        let text = error.to_string();
        assert!(text.contains("loggr_ctl init-db"), "{text}");
        assert!(!error.is_data_error());
        assert_eq!(error.sqlstate(), None);
    }
}
