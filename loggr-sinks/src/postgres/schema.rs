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
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "initial",
    sql: include_str!("migrations/0001_initial.sql"),
}];

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
