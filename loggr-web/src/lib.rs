//! loggr's web frontend: log in, query the events stored in PostgreSQL, open one, export a
//! selection as JSON lines or CSV, and see the store's status.
//!
//! Plain server-rendered HTML ([minijinja] templates bundled in the binary, auto-escaping on:
//! log messages are attacker-controlled), no JavaScript, a strict Content-Security-Policy on
//! every answer. Users come from the configuration with argon2 password hashes and a role;
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
//! | `GET /status` | database reachability, event count estimate, recent ingest |
//!
//! Without a session, pages redirect to `/login` (303) and exports answer 401.

pub mod auth;
pub mod config;
pub mod export;
pub mod query;
mod routes;

use std::sync::Arc;
use std::time::Duration;

use minijinja::Environment;
use tokio::sync::Mutex;

pub use config::{ConfigError, Role, UserConfig, WebConfig};
pub use routes::router;

/// The frontend's shared state: configuration, templates, sessions, the database connection.
pub struct AppState {
    config: WebConfig,
    templates: Environment<'static>,
    sessions: auth::SessionStore,
    db: Mutex<Option<Arc<tokio_postgres::Client>>>,
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
}

const TEMPLATES: [(&str, &str); 5] = [
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("events.html", include_str!("../templates/events.html")),
    ("event.html", include_str!("../templates/event.html")),
    ("status.html", include_str!("../templates/status.html")),
];

impl AppState {
    /// The state for a configuration; the database is connected at the first request (and
    /// again after the connection broke), so the frontend starts even while it is down.
    ///
    /// # Errors
    ///
    /// [`WebError::Template`] when a bundled template does not compile.
    pub fn new(config: WebConfig) -> Result<Arc<AppState>, WebError> {
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
            db: Mutex::new(None),
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &WebConfig {
        &self.config
    }

    async fn client(&self) -> Result<Arc<tokio_postgres::Client>, tokio_postgres::Error> {
        let mut db = self.db.lock().await;
        if let Some(client) = db.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(client));
        }
        let mut pg: tokio_postgres::Config = self.config.database_url.parse()?;
        pg.connect_timeout(Duration::from_secs(5));
        pg.application_name("loggr_web");
        let (client, connection) = pg.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "The PostgreSQL connection failed");
            }
        });
        tracing::info!(
            database = %config::redact_url(&self.config.database_url),
            "Connected to PostgreSQL"
        );
        let client = Arc::new(client);
        *db = Some(Arc::clone(&client));
        Ok(client)
    }
}
