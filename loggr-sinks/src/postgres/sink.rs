//! [`PostgresSink`]: the runtime of the `postgres` sink (see the [module docs](super)).

use std::collections::HashSet;
use std::fmt;

use loggr_core::{async_trait, ContentId, Event, Sink, SinkError};
use tokio::task::JoinHandle;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, Statement};

use super::error::{describe, is_data_error};
use super::row::{
    pg_text, StageRow, COPY_STAGE, CREATE_STAGE, INSERT_QUARANTINE, INSERT_STAGED, STAGE_TYPES,
};
use super::schema::{check_schema, migrate};
use super::{PgError, PostgresSinkConfig};

/// Writes events to PostgreSQL through binary `COPY`, idempotently (see the [module
/// docs](super)).
///
/// # Durability
///
/// `write` returns `Ok` only after PostgreSQL answered the batch's `COMMIT`: every event of the
/// batch is then in `event` (new, or stored before under the same digest) or in `quarantine`.
/// The commit is as durable as the server's `synchronous_commit` makes it (the default, `on`:
/// flushed to the server's WAL on disk).
///
/// When the connection breaks during the `COMMIT`, the outcome is unknown: the error is
/// transient, the runner writes the batch again, and the digests make the second write store
/// only what the first did not.
pub struct PostgresSink {
    config: PostgresSinkConfig,
    client_config: tokio_postgres::Config,
    /// The open session; `None` after a failure, so the next write reconnects. It is taken out
    /// while a write runs: a write abandoned midway (timeout) drops the connection with it.
    session: Option<Session>,
    /// Scratch set for in-batch duplicates.
    seen: HashSet<ContentId>,
}

impl fmt::Debug for PostgresSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSink")
            .field("application_name", &self.config.application_name)
            .field("connected", &self.session.is_some())
            .finish_non_exhaustive()
    }
}

/// What one `write` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Events newly stored in `event`.
    pub inserted: u64,
    /// Events already stored (redelivered), or repeated within the batch.
    pub duplicates: u64,
    /// Events stored in `quarantine` instead.
    pub quarantined: u64,
    /// Transactions committed (more than one when the batch was split to isolate bad events).
    pub transactions: u64,
}

/// A client and the task driving its connection, closed together.
struct Connection {
    client: Client,
    task: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection, with its staging table and prepared statements.
struct Session {
    connection: Connection,
    copy: Statement,
    quarantine: Statement,
}

/// Why storing a batch stopped.
enum StoreError {
    /// PostgreSQL refused the data and quarantining is off (or failed on the data too).
    Refused(tokio_postgres::Error),
    /// Anything else: the session is not trusted any more.
    Broken(tokio_postgres::Error),
}

impl PostgresSink {
    /// A sink with this configuration; it connects on its first write.
    ///
    /// # Errors
    ///
    /// [`PgError::Url`] when the connection string does not parse.
    pub fn new(config: PostgresSinkConfig) -> Result<Self, PgError> {
        let client_config = config.client_config()?;
        Ok(PostgresSink {
            config,
            client_config,
            session: None,
            seen: HashSet::new(),
        })
    }

    /// Connects now (instead of on the first write), to report a bad address or a missing
    /// schema early.
    ///
    /// # Errors
    ///
    /// As [`write_batch`](Self::write_batch) would report them when connecting.
    pub async fn connect(&mut self) -> Result<(), PgError> {
        if self.session.is_none() {
            self.session = Some(self.open().await?);
        }
        Ok(())
    }

    async fn open(&self) -> Result<Session, PgError> {
        let timeout = self.config.connect_timeout;
        match tokio::time::timeout(timeout, self.open_session()).await {
            Ok(session) => session,
            Err(_elapsed) => Err(PgError::ConnectTimeout(timeout)),
        }
    }

    async fn open_session(&self) -> Result<Session, PgError> {
        let (client, connection) = self
            .client_config
            .connect(NoTls)
            .await
            .map_err(PgError::Connect)?;
        let task = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "PostgreSQL connection ended");
            }
        });
        // Dropped on an early return, which closes the connection.
        let connection = Connection { client, task };
        let client = &connection.client;
        let mut setup = String::from("SET temp_buffers = '32MB';");
        let timeout = self.config.statement_timeout.as_millis();
        if timeout > 0 {
            setup.push_str(&format!("SET statement_timeout = {timeout};"));
        }
        client.batch_execute(&setup).await?;
        if self.config.migrate {
            migrate(client).await?;
        } else {
            check_schema(client).await?;
        }
        client.batch_execute(CREATE_STAGE).await?;
        let copy = client.prepare(COPY_STAGE).await?;
        let quarantine = client
            .prepare_typed(
                INSERT_QUARANTINE,
                &[Type::BYTEA, Type::TEXT, Type::TEXT, Type::TEXT, Type::BYTEA],
            )
            .await?;
        tracing::debug!(application_name = %self.config.application_name, "Connected to PostgreSQL");
        Ok(Session {
            connection,
            copy,
            quarantine,
        })
    }

    /// Writes a batch and says what happened to its events (what [`Sink::write`] does, with
    /// the figures).
    ///
    /// # Errors
    ///
    /// A transient [`SinkError`] when connecting failed, the connection broke, the schema is
    /// missing or a statement failed for a reason other than the data; the next call
    /// reconnects. A permanent one when PostgreSQL refused some events and `quarantine` is off
    /// (or the quarantine refused them too).
    pub async fn write_batch(&mut self, events: &[Event]) -> Result<WriteStats, SinkError> {
        self.seen.clear();
        let mut rows = Vec::with_capacity(events.len());
        for event in events {
            let id = event.content_id();
            if self.seen.insert(id) {
                rows.push((id, event));
            }
        }
        if rows.is_empty() {
            return Ok(WriteStats::default());
        }
        let mut session = match self.session.take() {
            Some(session) => session,
            None => self.open().await.map_err(|error| {
                SinkError::transient(format!("postgres: {error}")).with_source(error)
            })?,
        };
        let mut stats = WriteStats {
            duplicates: (events.len() - rows.len()) as u64,
            ..WriteStats::default()
        };
        match session
            .store(&rows, self.config.quarantine, &mut stats)
            .await
        {
            Ok(()) => {
                self.session = Some(session);
                stats.duplicates += (rows.len() as u64)
                    .saturating_sub(stats.inserted)
                    .saturating_sub(stats.quarantined);
                if stats.quarantined > 0 {
                    tracing::warn!(
                        quarantined = stats.quarantined,
                        "PostgreSQL refused events; they are in the quarantine table"
                    );
                }
                tracing::debug!(
                    events = events.len(),
                    inserted = stats.inserted,
                    duplicates = stats.duplicates,
                    transactions = stats.transactions,
                    "Stored a batch in PostgreSQL"
                );
                Ok(stats)
            }
            Err(StoreError::Refused(error)) => {
                self.session = Some(session);
                Err(SinkError::permanent(format!(
                    "postgres refused the events: {}",
                    describe(&error)
                ))
                .with_source(error))
            }
            Err(StoreError::Broken(error)) => {
                drop(session);
                Err(
                    SinkError::transient(format!("postgres: {}", describe(&error)))
                        .with_source(error),
                )
            }
        }
    }
}

impl Session {
    /// Stores `rows` (unique digests), splitting them to isolate the events PostgreSQL refuses.
    async fn store(
        &mut self,
        rows: &[(ContentId, &Event)],
        quarantine: bool,
        stats: &mut WriteStats,
    ) -> Result<(), StoreError> {
        let mut work = vec![rows];
        while let Some(part) = work.pop() {
            let error = match self.store_once(part).await {
                Ok(inserted) => {
                    stats.inserted += inserted;
                    stats.transactions += 1;
                    continue;
                }
                Err(error) => error,
            };
            if !is_data_error(&error) {
                return Err(StoreError::Broken(error));
            }
            if !quarantine {
                return Err(StoreError::Refused(error));
            }
            match part {
                [(id, event)] => {
                    self.quarantine(id, event, &error).await.map_err(|error| {
                        if is_data_error(&error) {
                            StoreError::Refused(error)
                        } else {
                            StoreError::Broken(error)
                        }
                    })?;
                    stats.quarantined += 1;
                    stats.transactions += 1;
                }
                _ => {
                    let (first, second) = part.split_at(part.len() / 2);
                    work.push(second);
                    work.push(first);
                }
            }
        }
        Ok(())
    }

    /// One transaction: `COPY` into the staging table, move the new events over, commit.
    async fn store_once(
        &mut self,
        rows: &[(ContentId, &Event)],
    ) -> Result<u64, tokio_postgres::Error> {
        let transaction = self.connection.client.transaction().await?;
        let copy = transaction.copy_in(&self.copy).await?;
        let writer = BinaryCopyInWriter::new(copy, STAGE_TYPES);
        let mut writer = std::pin::pin!(writer);
        for (id, event) in rows {
            let row = StageRow::new(id, event);
            writer.as_mut().write(&row.values()).await?;
        }
        writer.finish().await?;
        // Planned anew each time (not prepared): the plan of the joins depends on how many
        // rows the staging table holds, which a plan made when it was empty would not know.
        let inserted: i64 = transaction
            .query_one(INSERT_STAGED, &[])
            .await?
            .try_get(0)?;
        transaction.commit().await?;
        Ok(u64::try_from(inserted).unwrap_or(0))
    }

    /// Records one refused event with the reason.
    async fn quarantine(
        &self,
        id: &ContentId,
        event: &Event,
        error: &tokio_postgres::Error,
    ) -> Result<(), tokio_postgres::Error> {
        let mut json = Vec::with_capacity(event.estimated_size() * 2);
        loggr_core::encode::json(&mut json, event);
        let json = String::from_utf8_lossy(&json);
        let digest: &[u8] = &id.0;
        let sqlstate = error.code().map(|code| code.code());
        let reason = describe(error);
        let reason = pg_text(&reason);
        let raw = event.raw.as_deref();
        self.connection
            .client
            .execute(
                &self.quarantine,
                &[&digest, &sqlstate, &reason, &json, &raw],
            )
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Sink for PostgresSink {
    async fn write(&mut self, events: &[Event]) -> Result<(), SinkError> {
        self.write_batch(events).await.map(drop)
    }

    async fn close(&mut self) -> Result<(), SinkError> {
        self.session = None;
        Ok(())
    }
}
