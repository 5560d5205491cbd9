//! loggr's web frontend: log in, query the stored events (any [`loggr_store::Store`]:
//! PostgreSQL or the embedded SQLite store), open one, export a selection as JSON lines or
//! CSV, and see the status of the store and of the other loggr daemons, queues and spools.
//!
//! Plain server-rendered HTML ([minijinja] templates bundled in the binary, auto-escaping on:
//! log messages are attacker-controlled), a strict Content-Security-Policy on every answer.
//! The only JavaScript is the status page's optional live update (`/static/status.js`, no
//! inline script); every page works without it. Users come from the configuration with argon2 password hashes and a role;
//! sessions live in memory (see [`auth`]); every POST checks a CSRF token; every SQL
//! statement is parameterised (see [`query`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = loggr_web::WebConfig::from_toml_str(&std::fs::read_to_string("web.toml")?)?;
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! let app = loggr_web::router(loggr_web::AppState::new(config)?);
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! | route | what |
//! | --- | --- |
//! | `GET /login`, `POST /login`, `POST /logout` | the session |
//! | `GET /events?from&to&host&program&severity&tag&q&cursor` | the query page, newest first, keyset-paged |
//! | `GET /events/{id}` | one event: every column, tags, extra info, structured data, raw bytes |
//! | `GET /events.jsonl`, `GET /events.csv` (same filters) | exports, capped at `export_max_rows` |
//! | `GET /status` | the store (reachability, event count estimate, recent ingest) and what `[status]` watches (see [`status`]) |
//! | `GET /status/stream` | the same as server-sent events: a JSON [`status::Snapshot`] every two seconds |
//! | `GET /healthz` | `ok` (no session needed) |
//! | `GET /metrics` | the frontend's own Prometheus figures (no session needed; bounded labels, see below) |
//!
//! Without a session, pages redirect to `/login` (303); exports and `/status/stream` answer
//! 401.
//!
//! `/metrics` carries `loggr_web_http_requests_total{route,status}` (by route template and
//! status class, never the raw path), `loggr_web_sessions_open`, and per store query kind
//! (`events`, `event`, `status`) `loggr_web_store_query_duration_seconds` (`_sum`, `_count`)
//! and `loggr_web_store_query_errors_total`. It needs no session: bind the frontend to
//! localhost or let the reverse proxy keep `/metrics` internal if its figures are private.
//!
//! Cargo features: `amqp` (RabbitMQ queue depths on the status page), `redis` (Redis spool
//! lengths).

pub mod auth;
pub mod config;
pub mod export;
mod metrics;
pub mod query;
mod routes;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use minijinja::Environment;

pub use config::{ConfigError, Role, UserConfig, WebConfig};
pub use routes::router;

/// The frontend's shared state: configuration, templates, sessions, the store.
pub struct AppState {
    config: WebConfig,
    templates: Environment<'static>,
    sessions: auth::SessionStore,
    store: Arc<dyn loggr_store::Store>,
    metrics: metrics::WebMetrics,
    probes: status::Probes,
}

/// Why the frontend cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// A bundled template does not compile (a bug).
    #[error("bundled template {name} is invalid")]
    Template {
        /// The template.
        name: &'static str,
        /// The compiler's complaint.
        #[source]
        source: minijinja::Error,
    },
    /// The store cannot be opened (a bad URL or an unusable SQLite file).
    #[error(transparent)]
    Store(#[from] loggr_store::StoreError),
}

const TEMPLATES: [(&str, &str); 5] = [
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("events.html", include_str!("../templates/events.html")),
    ("event.html", include_str!("../templates/event.html")),
    ("status.html", include_str!("../templates/status.html")),
];

impl AppState {
    /// The state for a configuration, over the store its `database_url` names (PostgreSQL,
    /// connected at the first request and again after the connection broke, so the frontend
    /// starts even while it is down; or an SQLite file).
    ///
    /// # Errors
    ///
    /// [`WebError::Template`] when a bundled template does not compile; [`WebError::Store`]
    /// when the store cannot be opened.
    pub fn new(config: WebConfig) -> Result<Arc<AppState>, WebError> {
        let store = loggr_store::open(&config.database_url, "loggr_web")?;
        AppState::with_store(config, store)
    }

    /// The state for a configuration over a store the program already has (the all-in-one
    /// daemon shares its SQLite store); `database_url` is not used.
    ///
    /// # Errors
    ///
    /// [`WebError::Template`] when a bundled template does not compile.
    pub fn with_store(
        config: WebConfig,
        store: Arc<dyn loggr_store::Store>,
    ) -> Result<Arc<AppState>, WebError> {
        let mut templates = Environment::new();
        // `.html` names are auto-escaped (minijinja's default callback); keep it explicit.
        templates.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        for (name, source) in TEMPLATES {
            templates
                .add_template(name, source)
                .map_err(|source| WebError::Template { name, source })?;
        }
        Ok(Arc::new(AppState {
            sessions: auth::SessionStore::new(Duration::from_secs(config.session_ttl_secs)),
            config,
            templates,
            store,
            metrics: metrics::WebMetrics::default(),
            probes: status::Probes::default(),
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &WebConfig {
        &self.config
    }
}
