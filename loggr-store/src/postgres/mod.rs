//! [`PgStore`]: the [`Store`] over loggr's PostgreSQL schema (created and migrated by
//! `loggr-sinks`' `postgres` module). Writes go through the `postgres` sink's binary `COPY`
//! path ([`PostgresSink::write_batch`]); reads are parameterised statements over the schema's
//! indexes (see [`query`]).

pub mod query;
mod report;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jiff::Timestamp;
use loggr_core::config::redact_url;
use loggr_core::Event;
use loggr_sinks::postgres::{search_index, PostgresSink, PostgresSinkConfig, SearchIndex};
use tokio::sync::Mutex;
use tokio_postgres::Client;

use crate::model::{EventDetail, EventFilter, EventSummary, InsertStats, StoreStatus};
use crate::report::{
    AnonymiseCounts, AuthCounts, ReportEvent, ReportQuery, Selection, TagHostCount,
};
use crate::{Store, StoreError};

/// The PostgreSQL store: a writing sink and a few reading connections, each (re)connected on
/// first use, so the store can be built while the server is down.
pub struct PgStore {
    url: String,
    application_name: String,
    sink: Mutex<PostgresSink>,
    /// Reading connections, used in turn: each is one server process, so concurrent queries
    /// (the web UI's users) run on several cores instead of one after another.
    readers: Vec<Mutex<Option<Arc<Client>>>>,
    next_reader: AtomicUsize,
    /// What the text search plans by, and when it was looked up.
    search: Mutex<Option<(Search, Instant)>>,
}

/// What the text search plans by.
#[derive(Clone, Debug, Default)]
struct Search {
    /// Whether `event` has the trigram search index.
    trigram_index: bool,
    /// What its messages look like (only looked up with the index).
    messages: Arc<query::MessageStats>,
}

/// How long the store trusts what it found about the search index and the messages: an
/// operator may create (or drop) the index while the store is in use, and `ANALYZE` renews
/// the statistics.
const SEARCH_RECHECK: Duration = Duration::from_secs(60);

/// Reading connections of a new store (see [`PgStore::with_readers`]).
pub const DEFAULT_READERS: usize = 4;

/// `event.message`'s statistics: the most common values and their frequencies, the
/// histogram, the share of NULLs (`pg_stats` of `event`'s schema, as `to_regclass` finds it).
const MESSAGE_STATS: &str = "SELECT s.most_common_vals::text::text[], s.most_common_freqs, \
     s.histogram_bounds::text::text[], s.null_frac \
     FROM pg_stats s JOIN pg_namespace n ON n.nspname = s.schemaname \
     JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename \
     WHERE c.oid = to_regclass('event') AND s.attname = 'message'";

/// What `event.message`'s values look like, from PostgreSQL's statistics (empty when `event`
/// was never analysed): what the text search plans by.
///
/// # Errors
///
/// The statistics cannot be read.
pub async fn message_stats(client: &Client) -> Result<query::MessageStats, StoreError> {
    let Some(row) = client.query_opt(MESSAGE_STATS, &[]).await? else {
        return Ok(query::MessageStats::default());
    };
    let values: Option<Vec<String>> = row.try_get(0)?;
    let freqs: Option<Vec<f32>> = row.try_get(1)?;
    let histogram: Option<Vec<String>> = row.try_get(2)?;
    let nulls: f32 = row.try_get(3)?;
    let common: Vec<(String, f64)> = values
        .unwrap_or_default()
        .into_iter()
        .zip(freqs.unwrap_or_default())
        .map(|(value, freq)| (value.to_ascii_lowercase(), f64::from(freq)))
        .collect();
    let common_share: f64 = common.iter().map(|(_, share)| share).sum();
    Ok(query::MessageStats {
        common,
        histogram: histogram
            .unwrap_or_default()
            .iter()
            .map(|value| value.to_ascii_lowercase())
            .collect(),
        histogram_share: (1.0 - f64::from(nulls) - common_share).max(0.0),
    })
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &redact_url(&self.url))
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// A store on the database `config` names (its `url`, `application_name`, and whether
    /// the schema is created or migrated on first use: `migrate`). Nothing connects until the
    /// first call.
    ///
    /// # Errors
    ///
    /// A URL PostgreSQL's client cannot parse.
    pub fn new(config: PostgresSinkConfig) -> Result<PgStore, StoreError> {
        let url = config.url.clone();
        let application_name = config.application_name.clone();
        let sink = PostgresSink::new(config).map_err(|e| StoreError::Postgres(e.to_string()))?;
        Ok(PgStore {
            url,
            application_name,
            sink: Mutex::new(sink),
            readers: (0..DEFAULT_READERS).map(|_| Mutex::new(None)).collect(),
            next_reader: AtomicUsize::new(0),
            search: Mutex::new(None),
        })
    }

    /// The same store with `readers` reading connections (at least one; default
    /// [`DEFAULT_READERS`]): at most that many queries run at once.
    ///
    /// ```
    /// # use loggr_sinks::postgres::PostgresSinkConfig;
    /// let config = PostgresSinkConfig::new("postgresql://root@127.0.0.1/loggr");
    /// let store = loggr_store::PgStore::new(config).unwrap().with_readers(8);
    /// assert_eq!(store.readers(), 8);
    /// ```
    #[must_use]
    pub fn with_readers(mut self, readers: usize) -> PgStore {
        self.readers = (0..readers.max(1)).map(|_| Mutex::new(None)).collect();
        self
    }

    /// How many reading connections the store uses.
    pub fn readers(&self) -> usize {
        self.readers.len()
    }

    /// A reading connection (the next in turn), connecting (again) when it has none or it
    /// broke.
    ///
    /// # Errors
    ///
    /// The server cannot be reached or refuses the login.
    pub async fn client(&self) -> Result<Arc<Client>, StoreError> {
        let turn = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let mut reader = self.readers[turn].lock().await;
        if let Some(client) = reader.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(client));
        }
        let mut pg: tokio_postgres::Config = self.url.parse()?;
        pg.connect_timeout(Duration::from_secs(5));
        pg.application_name(&self.application_name);
        let (client, connection) = pg.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "The PostgreSQL connection failed");
            }
        });
        tracing::info!(database = %redact_url(&self.url), "Connected to PostgreSQL");
        let client = Arc::new(client);
        *reader = Some(Arc::clone(&client));
        Ok(client)
    }
}

impl PgStore {
    /// What the text search plans by: whether `event` has the trigram search index
    /// (`SearchIndex::Trigram`) and, if so, `message`'s statistics; looked up at most once per
    /// [`SEARCH_RECHECK`]. No index when that fails (the plain plan is always right, only
    /// slower).
    async fn search(&self, client: &Client) -> Search {
        let mut search = self.search.lock().await;
        if let Some((found, at)) = &*search {
            if at.elapsed() < SEARCH_RECHECK {
                return found.clone();
            }
        }
        let found = async {
            let index = search_index(client)
                .await
                .map_err(|e| StoreError::Postgres(e.to_string()))?;
            if index != Some(SearchIndex::Trigram) {
                return Ok(Search::default());
            }
            Ok::<_, StoreError>(Search {
                trigram_index: true,
                messages: Arc::new(message_stats(client).await?),
            })
        }
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "Cannot tell whether the message search index exists");
            Search::default()
        });
        *search = Some((found.clone(), Instant::now()));
        found
    }

    /// `EXPLAIN (ANALYZE, BUFFERS)` of a report query, exactly as
    /// [`Store::report_events`], [`Store::tag_host_counts`] or [`Store::auth_counts`] run
    /// it: the plan and its timings, one line each (for benchmarks, and to check that the
    /// indexes are used). PostgreSQL only.
    ///
    /// # Errors
    ///
    /// The server cannot be reached, or the statement failed.
    pub async fn explain_report(
        &self,
        query: ReportQuery,
        selection: &Selection,
    ) -> Result<Vec<String>, StoreError> {
        report::explain(&*self.client().await?, query, selection).await
    }
}

fn summary(row: &tokio_postgres::Row) -> Result<EventSummary, StoreError> {
    Ok(EventSummary {
        id: row.try_get("id")?,
        logtime: row.try_get("logtime")?,
        received_at: row.try_get("received_at")?,
        hostname: row.try_get("hostname")?,
        program: row.try_get("program")?,
        pid: row.try_get("pid")?,
        facility: row.try_get("facility")?,
        severity: row.try_get("severity")?,
        message: row.try_get("message")?,
        tags: row.try_get("tags")?,
    })
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn insert(&self, events: &[Event]) -> Result<InsertStats, StoreError> {
        let stats = self
            .sink
            .lock()
            .await
            .write_batch(events)
            .await
            .map_err(|e| StoreError::Postgres(e.to_string()))?;
        Ok(InsertStats {
            inserted: stats.inserted,
            duplicates: stats.duplicates,
        })
    }

    async fn events(
        &self,
        filter: &EventFilter,
        limit: u32,
    ) -> Result<Vec<EventSummary>, StoreError> {
        let client = self.client().await?;
        let search = if filter.text.is_some() {
            self.search(&client).await
        } else {
            Search::default()
        };
        let planning = query::Planning {
            trigram_index: search.trigram_index,
            messages: &search.messages,
            ..query::Planning::default()
        };
        let statement = query::select_planned(filter, i64::from(limit), planning);
        let rows = client
            .query(statement.sql.as_str(), &statement.param_refs())
            .await?;
        rows.iter().map(summary).collect()
    }

    async fn event(&self, id: i64) -> Result<Option<EventDetail>, StoreError> {
        let client = self.client().await?;
        let Some(row) = client
            .query_opt(
                &format!(
                    "SELECT {}, e.digest, e.logdate::text AS logdate, e.reported, e.msgid, \
                     e.userid, e.structured_data, e.raw FROM event e WHERE e.id = $1",
                    query::LIST_COLUMNS
                ),
                &[&id],
            )
            .await?
        else {
            return Ok(None);
        };
        let extra = client
            .query(
                "SELECT name, val FROM extra_info WHERE event = $1 ORDER BY name, val",
                &[&id],
            )
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()?;
        Ok(Some(EventDetail {
            summary: summary(&row)?,
            digest: row.try_get("digest")?,
            logdate: row.try_get("logdate")?,
            reported: row.try_get("reported")?,
            msgid: row.try_get("msgid")?,
            userid: row.try_get("userid")?,
            structured_data: row.try_get("structured_data")?,
            raw: row.try_get("raw")?,
            extra,
        }))
    }

    async fn status(&self, window: Duration) -> Result<StoreStatus, StoreError> {
        let client = self.client().await?;
        // The planner's estimate: counting a large table takes seconds.
        let events: i64 = client
            .query_opt(
                "SELECT GREATEST(reltuples, 0)::bigint FROM pg_class \
                 WHERE oid = to_regclass('event')",
                &[],
            )
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(0);
        let since = Timestamp::now()
            .checked_sub(
                jiff::SignedDuration::try_from(window).unwrap_or(jiff::SignedDuration::MAX),
            )
            .unwrap_or(Timestamp::MIN);
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM event WHERE logtime >= $1), \
                 (SELECT max(logtime) FROM event)",
                &[&since],
            )
            .await?;
        Ok(StoreStatus {
            events,
            recent: row.try_get(0)?,
            newest: row.try_get(1)?,
        })
    }

    async fn report_events(
        &self,
        selection: &Selection,
        limit: u32,
    ) -> Result<(Vec<ReportEvent>, u64), StoreError> {
        report::report_events(&*self.client().await?, selection, limit).await
    }

    async fn tag_host_counts(
        &self,
        selection: &Selection,
    ) -> Result<Vec<TagHostCount>, StoreError> {
        report::tag_host_counts(&*self.client().await?, selection).await
    }

    async fn auth_counts(&self, selection: &Selection) -> Result<AuthCounts, StoreError> {
        report::auth_counts(&*self.client().await?, selection).await
    }

    async fn last_run(&self, name: &str, period: &str) -> Result<Option<Timestamp>, StoreError> {
        report::last_run(&*self.client().await?, name, period).await
    }

    async fn record_run(&self, name: &str, period: &str, at: Timestamp) -> Result<(), StoreError> {
        report::record_run(&*self.client().await?, name, period, at).await
    }

    async fn anonymise(
        &self,
        before: Timestamp,
        dryrun: bool,
    ) -> Result<AnonymiseCounts, StoreError> {
        report::anonymise(&*self.client().await?, before, dryrun).await
    }
}
