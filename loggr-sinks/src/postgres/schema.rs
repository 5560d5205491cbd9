//! The loggr schema and its numbered migrations.
//!
//! Each [`Migration`] is one SQL script under `src/postgres/migrations/`, applied once, in
//! order, inside its own transaction, and recorded in `loggr_schema_migrations`. A later issue
//! adds a schema change by appending a script and an entry to [`MIGRATIONS`]; an applied
//! script is never edited.
//!
//! [`migrate`] holds a transaction-scoped advisory lock while it works, so several processes
//! starting at once (two shippers, `loggr_ctl init-db` run twice) apply each migration exactly
//! once: the others wait, then find it recorded.

use tokio_postgres::Client;

use super::PgError;

/// One schema change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migration {
    /// Its number: migrations run in increasing order, each once.
    pub version: u32,
    /// A short name, recorded with the number.
    pub name: &'static str,
    /// The SQL script (several statements).
    pub sql: &'static str,
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "file_lock_owner",
        sql: include_str!("migrations/0002_file_lock_owner.sql"),
    },
    Migration {
        version: 3,
        name: "event_severity_index",
        sql: include_str!("migrations/0003_event_severity_index.sql"),
    },
    Migration {
        version: 4,
        name: "event_id_by_default",
        sql: include_str!("migrations/0004_event_id_by_default.sql"),
    },
    Migration {
        version: 5,
        name: "tags_and_extra_info_in_event",
        sql: include_str!("migrations/0005_tags_and_extra_info_in_event.sql"),
    },
    Migration {
        version: 6,
        name: "event_time_ordered_key",
        sql: include_str!("migrations/0006_event_time_ordered_key.sql"),
    },
];

/// The schema version this code writes to: the number of the newest migration.
pub const SCHEMA_VERSION: u32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// The key of the advisory lock that serialises migrations ("loggr_mi" in ASCII).
const MIGRATION_LOCK: i64 = 0x6c6f_6767_725f_6d69;

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS loggr_schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// What [`migrate`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    /// The migrations applied by this call, in order (empty: the schema was up to date).
    pub applied: Vec<u32>,
    /// The newest version recorded in the database afterwards.
    pub version: u32,
}

/// Creates the loggr schema in the client's database, or brings it up to date: applies every
/// migration of [`MIGRATIONS`] not yet recorded in `loggr_schema_migrations`.
///
/// Safe to run any number of times and from several processes at once; a run with nothing to
/// do changes nothing. The tables go to the first schema of the session's `search_path`
/// (normally `public`).
///
/// # Errors
///
/// [`PgError::Migration`] naming the migration that failed (it was rolled back; the ones before
/// it stay applied), or [`PgError::Query`] when the ledger cannot be read.
pub async fn migrate(client: &Client) -> Result<Migrated, PgError> {
    let mut applied = Vec::new();
    for migration in MIGRATIONS {
        if apply(client, migration).await? {
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "Applied a schema migration"
            );
            applied.push(migration.version);
        }
    }
    let version = schema_version(client).await?.unwrap_or(0);
    Ok(Migrated { applied, version })
}

/// Applies one migration unless it is recorded; returns whether it ran.
async fn apply(client: &Client, migration: &Migration) -> Result<bool, PgError> {
    let failed = |source| PgError::Migration {
        version: migration.version,
        name: migration.name,
        source,
    };
    client.batch_execute("BEGIN").await.map_err(failed)?;
    let result = async {
        // A migration may build an index on a large table: no session timeout applies.
        client
            .batch_execute("SET LOCAL statement_timeout = 0")
            .await?;
        client
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        client.batch_execute(CREATE_LEDGER).await?;
        let version = i32::try_from(migration.version).unwrap_or(i32::MAX);
        let done = client
            .query_opt(
                "SELECT 1 FROM loggr_schema_migrations WHERE version = $1",
                &[&version],
            )
            .await?
            .is_some();
        if !done {
            client.batch_execute(migration.sql).await?;
            client
                .execute(
                    "INSERT INTO loggr_schema_migrations (version, name) VALUES ($1, $2)",
                    &[&version, &migration.name],
                )
                .await?;
        }
        client.batch_execute("COMMIT").await?;
        Ok(!done)
    }
    .await;
    if result.is_err() {
        // Best effort: on a broken connection the server rolls back by itself.
        let _ = client.batch_execute("ROLLBACK").await;
    }
    result.map_err(failed)
}

/// The newest migration recorded in the database, or `None` when loggr's schema was never
/// created there.
///
/// # Errors
///
/// [`PgError::Query`].
pub async fn schema_version(client: &Client) -> Result<Option<u32>, PgError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('loggr_schema_migrations') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let newest: Option<i32> = client
        .query_one("SELECT max(version) FROM loggr_schema_migrations", &[])
        .await?
        .get(0);
    Ok(newest.map(|version| u32::try_from(version).unwrap_or(0)))
}

/// Checks that every migration this code knows is applied.
///
/// # Errors
///
/// [`PgError::SchemaOutdated`] when one is missing, [`PgError::Query`] when the ledger cannot
/// be read.
pub async fn check_schema(client: &Client) -> Result<u32, PgError> {
    let found = schema_version(client).await?.unwrap_or(0);
    if found < SCHEMA_VERSION {
        return Err(PgError::SchemaOutdated {
            found,
            needed: SCHEMA_VERSION,
        });
    }
    Ok(found)
}

/// The message search index of `event` (see [`create_search_index`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SearchIndex {
    /// `event_message_trgm_idx`, a `pg_trgm` GIN index on `message`: serves `LIKE`, `ILIKE`,
    /// `~`, `~*` and `%` (similarity) on `message`.
    Trigram,
    /// `event_message_fts_idx`, a GIN index on `to_tsvector('simple', coalesce(message, ''))`:
    /// serves `to_tsvector('simple', coalesce(message, '')) @@ query` (word search), when
    /// `pg_trgm` cannot be installed.
    FullText,
}

impl SearchIndex {
    /// The index's name.
    pub fn name(self) -> &'static str {
        match self {
            SearchIndex::Trigram => "event_message_trgm_idx",
            SearchIndex::FullText => "event_message_fts_idx",
        }
    }

    fn definition(self) -> &'static str {
        match self {
            SearchIndex::Trigram => "USING gin (message gin_trgm_ops)",
            SearchIndex::FullText => "USING gin (to_tsvector('simple', coalesce(message, '')))",
        }
    }
}

/// Whether this valid index exists on `event`.
async fn has_index(client: &Client, index: SearchIndex) -> Result<bool, PgError> {
    let row = client
        .query_opt(
            "SELECT i.indisvalid FROM pg_index i
             WHERE i.indexrelid = to_regclass($1) AND i.indrelid = to_regclass('event')",
            &[&index.name()],
        )
        .await?;
    Ok(row.map(|row| row.get::<_, bool>(0)).unwrap_or(false))
}

/// The message search index of `event`, if one exists (`loggr-store` plans the web UI's text
/// search for the trigram index when it is there).
///
/// # Errors
///
/// [`PgError::Query`].
pub async fn search_index(client: &Client) -> Result<Option<SearchIndex>, PgError> {
    for index in [SearchIndex::Trigram, SearchIndex::FullText] {
        if has_index(client, index).await? {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

/// Creates the message search index of `event`, for the web UI (no daemon calls it: run it
/// once per store, e.g. with `loggr_ctl init-db --search-index`): a
/// `pg_trgm` GIN index on `message` when the extension is or can be installed, else a full-text
/// GIN index (see [`SearchIndex`]). Does nothing when it exists; replaces one a failed earlier
/// attempt left invalid. Returns which index is in place.
///
/// The index is built with `CREATE INDEX CONCURRENTLY`: writers go on meanwhile (the call
/// waits for the transactions running on `event`), which is why it must not run inside a
/// transaction. It runs under the session's `statement_timeout`: on a big table, connect with
/// `statement_timeout = 0`.
///
/// # Ingest cost
///
/// The migrations leave it out because it is by far the most expensive index: a GIN entry
/// for every distinct trigram of every message. With it, the `postgres` sink stores about a
/// fifth of the rows per second it stores without (`pg_bench`: 6,400 rows/s for `sink-search`
/// against 31,800 for `sink`, on a loaded 2-core machine). GIN's pending list (`fastupdate`,
/// on by default) spreads the cost unevenly: most inserts are cheap, and the one that
/// overflows `gin_pending_list_limit` (or a vacuum) merges the list into the index. Create it
/// only where the web UI searches messages.
///
/// Two calls at once may make one of them fail (each may drop the other's index while it is
/// being built, taking it for a failed one): call it from one place, again on failure.
///
/// # Errors
///
/// [`PgError::Query`]: the index cannot be built (no `CREATE` privilege on the schema, the
/// statement timeout, a missing `event` table: run [`migrate`] first).
pub async fn create_search_index(client: &Client) -> Result<SearchIndex, PgError> {
    let index = if trigram_available(client).await? {
        SearchIndex::Trigram
    } else {
        SearchIndex::FullText
    };
    if has_index(client, index).await? {
        return Ok(index);
    }
    // Left invalid by a failed or cancelled build: IF NOT EXISTS would keep it.
    client
        .batch_execute(&format!(
            "DROP INDEX CONCURRENTLY IF EXISTS {}",
            index.name()
        ))
        .await?;
    let created = client
        .batch_execute(&format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON event {}",
            index.name(),
            index.definition()
        ))
        .await;
    match created {
        Ok(()) => {
            tracing::info!(index = index.name(), "Created the message search index");
            Ok(index)
        }
        // Another session built it at the same time.
        Err(_) if has_index(client, index).await? => Ok(index),
        Err(error) => Err(error.into()),
    }
}

/// Whether `pg_trgm` is installed in the database, installing it when possible.
async fn trigram_available(client: &Client) -> Result<bool, PgError> {
    let installed = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')";
    if client.query_one(installed, &[]).await?.get::<_, bool>(0) {
        return Ok(true);
    }
    match client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        .await
    {
        Ok(()) => Ok(true),
        Err(error) => {
            // Installed by another session meanwhile?
            if client.query_one(installed, &[]).await?.get::<_, bool>(0) {
                return Ok(true);
            }
            // Not shipped with the server (58P01), not allowed (42501), not supported: fall
            // back to full-text search.
            let code = error.code().map(|code| code.code()).unwrap_or("");
            if matches!(code, "58P01" | "42501" | "0A000") {
                tracing::info!(
                    error = %super::error::describe(&error),
                    "pg_trgm is not available; message search uses full-text search"
                );
                Ok(false)
            } else {
                Err(error.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_from_one() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version as usize, index + 1, "{}", migration.name);
            assert!(!migration.sql.trim().is_empty());
        }
        assert_eq!(SCHEMA_VERSION as usize, MIGRATIONS.len());
    }
}
