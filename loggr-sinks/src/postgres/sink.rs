//! [`PostgresSink`]: the runtime of the `postgres` sink (see the [module docs](super)).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use loggr_core::{async_trait, ContentId, Event, Sink, SinkError};
use tokio::task::JoinHandle;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, Statement, Transaction};

use super::copy::CopyWriter;
use super::error::{describe, is_data_error};
use super::row::{
    pg_text, write_event, COPY_EVENT, COPY_EVENT_WITH_ID, COPY_STAGE, COPY_TAG, CREATE_STAGE,
    EVENT_FIELDS, ID_SEQUENCE, INSERT_QUARANTINE, INSERT_STAGED, RESERVE_IDS,
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
    /// The batch went by `COPY` straight into `event` (the direct path).
    pub direct: bool,
    /// The direct `COPY` was tried and refused (a digest was already stored, or PostgreSQL
    /// refused an event); the batch then went through the staging table.
    pub direct_refused: bool,
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
    statements: Statements,
    /// Whether the next batch tries the direct path: the last one held no stored event.
    direct: bool,
}

/// The session's prepared statements.
struct Statements {
    copy_stage: Statement,
    copy_event: Statement,
    copy_event_with_id: Statement,
    copy_tag: Statement,
    insert_staged: Statement,
    reserve_ids: Statement,
    /// The oid of `event.id`'s sequence.
    id_sequence: u32,
    /// Whether the session may draw ids from it.
    can_reserve_ids: bool,
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
        // No JIT: these statements are cheap per row, compiling them is not (tens of ms).
        let mut setup = String::from("SET temp_buffers = '32MB'; SET jit = off;");
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
        let sequence = client.query_one(ID_SEQUENCE, &[]).await?;
        let statements = Statements {
            copy_stage: client.prepare(COPY_STAGE).await?,
            copy_event: client.prepare(COPY_EVENT).await?,
            copy_event_with_id: client.prepare(COPY_EVENT_WITH_ID).await?,
            copy_tag: client.prepare(COPY_TAG).await?,
            insert_staged: client.prepare(INSERT_STAGED).await?,
            reserve_ids: client
                .prepare_typed(RESERVE_IDS, &[Type::OID, Type::INT4])
                .await?,
            id_sequence: sequence.try_get(0)?,
            can_reserve_ids: sequence.try_get(1)?,
            quarantine: client
                .prepare_typed(
                    INSERT_QUARANTINE,
                    &[Type::BYTEA, Type::TEXT, Type::TEXT, Type::TEXT, Type::BYTEA],
                )
                .await?,
        };
        let session = Session {
            connection,
            statements,
            direct: true,
        };
        tracing::debug!(application_name = %self.config.application_name, "Connected to PostgreSQL");
        Ok(session)
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
        let result = session
            .write(
                &rows,
                self.config.direct_copy,
                self.config.quarantine,
                &mut stats,
            )
            .await;
        match result {
            Ok(()) => {
                let stored = (rows.len() as u64)
                    .saturating_sub(stats.inserted)
                    .saturating_sub(stats.quarantined);
                stats.duplicates += stored;
                // A batch with events stored before (a redelivery) is likely followed by more:
                // the direct COPY would fail on them, so it waits for a batch without any.
                session.direct = stored == 0;
                self.session = Some(session);
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
                // The runner splits the batch and writes the halves again: stage them.
                session.direct = false;
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

/// Whether the direct `COPY` failed for a reason the staging path handles: an event already
/// stored (unique violation, class 23), an event PostgreSQL refuses (classes 22, 23, 54: the
/// staging path isolates it), or a deadlock or serialization failure with another session
/// (class 40); the transaction is rolled back and the connection stays usable.
fn is_refusal(error: &tokio_postgres::Error) -> bool {
    is_data_error(error)
        || error
            .code()
            .is_some_and(|code| code.code().starts_with("40"))
}

impl Session {
    /// Stores `rows` (unique digests): by the direct path when `direct_copy` allows it and the
    /// last batch held no stored event, else (or when the direct `COPY` is refused) through
    /// the staging table.
    async fn write(
        &mut self,
        rows: &[(ContentId, &Event)],
        direct_copy: bool,
        quarantine: bool,
        stats: &mut WriteStats,
    ) -> Result<(), StoreError> {
        if direct_copy && self.direct {
            match self.copy_direct(rows).await {
                // No ids to draw (the role may not use the sequence), or not enough drawn
                // (never seen; the transaction was rolled back): staged.
                Ok(None) => {}
                Ok(Some(inserted)) => {
                    stats.inserted = inserted;
                    stats.transactions = 1;
                    stats.direct = true;
                    return Ok(());
                }
                Err(error) if is_refusal(&error) => {
                    tracing::debug!(
                        error = %describe(&error),
                        "Direct COPY refused; staging the batch"
                    );
                    stats.direct_refused = true;
                }
                Err(error) => return Err(StoreError::Broken(error)),
            }
        }
        self.store(rows, quarantine, stats).await
    }

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

    /// The direct path, one transaction: `COPY` the events straight into `event`, then the
    /// `tag` rows of those that have tags (their ids drawn from `event.id`'s sequence
    /// beforehand, so that the events need not be looked up again); fails (PostgreSQL's unique
    /// violation) when one of them is stored already, or being stored by another session that
    /// then commits.
    async fn copy_direct(
        &mut self,
        rows: &[(ContentId, &Event)],
    ) -> Result<Option<u64>, tokio_postgres::Error> {
        let any_tagged = rows.iter().any(|(_, event)| !event.tags.is_empty());
        if any_tagged && !self.statements.can_reserve_ids {
            return Ok(None);
        }
        let transaction = self.connection.client.transaction().await?;
        let inserted = if any_tagged {
            let count = i32::try_from(rows.len()).unwrap_or(i32::MAX);
            let ids = transaction
                .query(
                    &self.statements.reserve_ids,
                    &[&self.statements.id_sequence, &count],
                )
                .await?;
            if ids.len() != rows.len() {
                tracing::warn!(
                    drawn = ids.len(),
                    events = rows.len(),
                    "PostgreSQL gave fewer event ids than asked; staging the batch"
                );
                return Ok(None);
            }
            let copy = transaction
                .copy_in(&self.statements.copy_event_with_id)
                .await?;
            let mut writer = CopyWriter::new(copy);
            let mut tagged = Vec::new();
            for ((id, event), reserved) in rows.iter().zip(&ids) {
                let event_id: i64 = reserved.try_get(0)?;
                let row = writer.row(EVENT_FIELDS + 1).await?;
                row.i64(event_id);
                let tags = write_event(row, id, event);
                if !tags.is_empty() {
                    tagged.push((event_id, tags));
                }
            }
            let inserted = writer.finish().await?;
            self.statements.copy_tags(&transaction, &tagged).await?;
            inserted
        } else {
            let copy = transaction.copy_in(&self.statements.copy_event).await?;
            let mut writer = CopyWriter::new(copy);
            for (id, event) in rows {
                write_event(writer.row(EVENT_FIELDS).await?, id, event);
            }
            writer.finish().await?
        };
        transaction.commit().await?;
        Ok(Some(inserted))
    }

    /// The staging path, one transaction: `COPY` into the staging table, move the new events
    /// over and add their `tag` rows (one statement), commit.
    async fn store_once(
        &mut self,
        rows: &[(ContentId, &Event)],
    ) -> Result<u64, tokio_postgres::Error> {
        let transaction = self.connection.client.transaction().await?;
        let copy = transaction.copy_in(&self.statements.copy_stage).await?;
        let mut writer = CopyWriter::new(copy);
        for (id, event) in rows {
            write_event(writer.row(EVENT_FIELDS).await?, id, event);
        }
        writer.finish().await?;
        let inserted: i64 = transaction
            .query_one(&self.statements.insert_staged, &[])
            .await?
            .try_get(0)?;
        transaction.commit().await?;
        Ok(u64::try_from(inserted).unwrap_or_default())
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
                &self.statements.quarantine,
                &[&digest, &sqlstate, &reason, &json, &raw],
            )
            .await?;
        Ok(())
    }
}

impl Statements {
    /// Copies in the `tag` rows of new events: each `id` with the tag names written in its
    /// row.
    async fn copy_tags(
        &self,
        transaction: &Transaction<'_>,
        events: &[(i64, Vec<Cow<'_, str>>)],
    ) -> Result<(), tokio_postgres::Error> {
        let copy = transaction.copy_in(&self.copy_tag).await?;
        let mut writer = CopyWriter::new(copy);
        for (id, names) in events {
            for name in names {
                let row = writer.row(2).await?;
                row.i64(*id);
                row.bytes(name.as_bytes());
            }
        }
        writer.finish().await?;
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

    /// Each writer has its own connection and transactions; batches of different writers
    /// touch different digests, and a digest two of them store at once is stored once (the
    /// second one's direct `COPY` is refused and it goes through the staging table).
    fn concurrent_writers(&self) -> bool {
        true
    }
}
