//! The status page's figures: the store's, and (from the optional `[status]` table) the other
//! loggr daemons' (each one's Prometheus `/metrics`, and the clients connected to its listeners
//! from its `/connections`), RabbitMQ queue depths (feature `amqp`) and Redis spool lengths
//! (feature `redis`).
//!
//! One [`Snapshot`] holds them all; the page renders it and `/status/stream` sends it as JSON
//! every two seconds. Snapshots are cached for a second, so any number of open status pages
//! cost the probed services one round of requests per second at most. Every probe has a
//! timeout (`probe_timeout_ms`); what does not answer in time is shown down or unknown, with
//! a short reason and never a secret (URLs are shown redacted, errors are classified, and the
//! full error goes to the log at `debug`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::redact_url;
use crate::metrics::StoreQuery;
use crate::AppState;

/// The window of the status page's ingest figures.
pub const WINDOW_MINUTES: u64 = 5;

/// How long a snapshot is reused.
const CACHE_FOR: Duration = Duration::from_secs(1);

/// The most bytes read from a component's `/metrics` or `/connections`.
const MAX_METRICS_BYTES: u64 = 4 << 20;

/// The most connected clients listed per component; the others are counted.
pub const MAX_CLIENTS: usize = 200;

/// The longest text kept of each field of a listed client.
const MAX_CLIENT_FIELD_CHARS: usize = 200;

/// The optional `[status]` table: what the status page watches besides the store.
///
/// ```toml
/// [status]
/// components = [
///     { name = "syslog_server", metrics_url = "http://127.0.0.1:9464/metrics" },
/// ]
/// amqp_url = "amqp://guest:guest@127.0.0.1:5672/%2f"   # feature `amqp`
/// queues = ["loggr.events"]
/// redis_url = "redis://127.0.0.1:6379/"                 # feature `redis`
/// spool_keys = ["loggr:spool"]
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusConfig {
    /// The loggr daemons to watch: each is up when its Prometheus `/metrics` answers within
    /// `probe_timeout_ms`, and shows the sums of its event counters, its listeners' open
    /// connections, and the connected clients from its `/connections` (beside `/metrics`: the
    /// URL's last path segment replaced; a daemon without it shows no clients).
    #[serde(default)]
    pub components: Vec<ComponentConfig>,
    /// The RabbitMQ broker whose `queues` to watch (`amqp://user:password@host:port/vhost`;
    /// shown with the password redacted). Needs the `amqp` feature.
    #[serde(default)]
    pub amqp_url: Option<String>,
    /// The queues whose message counts to show (a passive declare: never creates a queue).
    #[serde(default)]
    pub queues: Vec<String>,
    /// The Redis server whose `spool_keys` to watch (`redis://[:password@]host:port/db`;
    /// shown with the password redacted). Needs the `redis` feature.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// The Redis lists whose lengths (`LLEN`) to show: the spools of loggr's redis sinks.
    #[serde(default)]
    pub spool_keys: Vec<String>,
    /// How long each probe may take, in milliseconds (default 2000).
    #[serde(default = "default_probe_timeout_ms")]
    pub probe_timeout_ms: u64,
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig {
            components: Vec::new(),
            amqp_url: None,
            queues: Vec::new(),
            redis_url: None,
            spool_keys: Vec::new(),
            probe_timeout_ms: default_probe_timeout_ms(),
        }
    }
}

fn default_probe_timeout_ms() -> u64 {
    2000
}

/// One watched daemon.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    /// The name shown on the status page.
    pub name: String,
    /// Its Prometheus endpoint, plain HTTP (`http://127.0.0.1:9464/metrics`).
    pub metrics_url: String,
}

impl std::fmt::Debug for StatusConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusConfig")
            .field("components", &self.components)
            .field("amqp_url", &self.amqp_url.as_deref().map(redact_url))
            .field("queues", &self.queues)
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("spool_keys", &self.spool_keys)
            .field("probe_timeout_ms", &self.probe_timeout_ms)
            .finish()
    }
}

impl std::fmt::Debug for ComponentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentConfig")
            .field("name", &self.name)
            .field("metrics_url", &redact_url(&self.metrics_url))
            .finish()
    }
}

impl StatusConfig {
    /// Checks the table; returns the culprit field and what is wrong with it.
    pub(crate) fn validate(&self) -> Result<(), (String, &'static str)> {
        for (i, component) in self.components.iter().enumerate() {
            if component.name.trim().is_empty() {
                return Err((format!("status.components[{i}].name"), "must not be empty"));
            }
            if self.components[..i]
                .iter()
                .any(|c| c.name == component.name)
            {
                return Err((format!("status.components[{i}].name"), "duplicate name"));
            }
            if HttpTarget::parse(&component.metrics_url).is_none() {
                return Err((
                    format!("status.components[{i}].metrics_url"),
                    "must be a plain http:// URL (http://host:port/metrics)",
                ));
            }
        }
        if !self.queues.is_empty() && self.amqp_url.is_none() {
            return Err(("status.queues".into(), "needs status.amqp_url"));
        }
        if self.amqp_url.is_some() && !cfg!(feature = "amqp") {
            return Err((
                "status.amqp_url".into(),
                "loggr-web was built without its `amqp` feature",
            ));
        }
        if !self.spool_keys.is_empty() && self.redis_url.is_none() {
            return Err(("status.spool_keys".into(), "needs status.redis_url"));
        }
        if self.redis_url.is_some() && !cfg!(feature = "redis") {
            return Err((
                "status.redis_url".into(),
                "loggr-web was built without its `redis` feature",
            ));
        }
        if self.probe_timeout_ms == 0 {
            return Err(("status.probe_timeout_ms".into(), "must be at least 1"));
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.probe_timeout_ms)
    }
}

/// Everything the status page shows, at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// When it was taken (RFC 3339).
    pub time: String,
    /// The store.
    pub store: StoreFigures,
    /// The watched daemons, in configuration order.
    pub components: Vec<ComponentStatus>,
    /// The watched RabbitMQ queues.
    pub queues: Vec<QueueStatus>,
    /// The watched Redis spools.
    pub spools: Vec<SpoolStatus>,
}

/// The store's figures.
#[derive(Clone, Debug, Serialize)]
pub struct StoreFigures {
    /// Whether it answered.
    pub ok: bool,
    /// `postgres` or `sqlite`.
    pub backend: &'static str,
    /// How long the status query took, in milliseconds.
    pub ms: Option<u64>,
    /// Events stored (an estimate on large PostgreSQL tables).
    pub events: Option<i64>,
    /// Events of the last [`WINDOW_MINUTES`] minutes.
    pub recent: Option<i64>,
    /// The ingest rate over the window, events per second, two decimals.
    pub rate: Option<String>,
    /// The newest event's `logtime`.
    pub newest: Option<String>,
    /// The window of `recent`, in minutes.
    pub window_minutes: u64,
}

/// One watched daemon's state.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentStatus {
    /// Its configured name.
    pub name: String,
    /// Its `/metrics` URL, redacted.
    pub url: String,
    /// Whether `/metrics` answered 200 in time.
    pub up: bool,
    /// Why it is down.
    pub error: Option<String>,
    /// How long `/metrics` took, in milliseconds.
    pub ms: Option<u64>,
    /// Sums of its event counters (`loggr_events_received_total`…), by short name
    /// (`received`, `delivered`, `rejected`, `retried`, `discarded`, `parse_failures`,
    /// `write_errors`); only those it exposes.
    pub counters: Vec<Figure>,
    /// Open connections of each of its sources (`loggr_open_connections`).
    pub listeners: Vec<Figure>,
    /// The clients connected to its listeners (from `/connections`; none when it does not
    /// serve it), at most [`MAX_CLIENTS`].
    pub clients: Vec<ClientStatus>,
    /// Open connections `clients` does not list (over the daemon's or this page's limit).
    pub unlisted: u64,
}

/// One client connected to a watched daemon's listener. Every field is the daemon's text
/// (the peer address is the client's doing): escape it wherever it is shown.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ClientStatus {
    /// The listener (the daemon's source name).
    pub listener: String,
    /// The client's address.
    pub peer: String,
    /// `tcp`, `tcp+tls`, `relp`, `relp+tls`…
    pub protocol: String,
    /// When it connected (RFC 3339, to the second).
    pub since: String,
}

/// A daemon's `/connections` answer (the fields the page uses).
#[derive(Deserialize)]
struct ConnectionsAnswer {
    #[serde(default)]
    connections: Vec<ClientStatus>,
    #[serde(default)]
    listeners: Vec<ListenerCount>,
}

#[derive(Deserialize)]
struct ListenerCount {
    #[serde(default)]
    open: u64,
}

/// A named number.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Figure {
    /// The name.
    pub name: String,
    /// The value.
    pub value: u64,
}

/// One RabbitMQ queue's depth.
#[derive(Clone, Debug, Serialize)]
pub struct QueueStatus {
    /// The queue.
    pub name: String,
    /// Ready messages, when known.
    pub messages: Option<u64>,
    /// Consumers, when known.
    pub consumers: Option<u64>,
    /// Why it is unknown.
    pub error: Option<String>,
}

/// One Redis spool's length.
#[derive(Clone, Debug, Serialize)]
pub struct SpoolStatus {
    /// The list's key.
    pub key: String,
    /// Its length, when known.
    pub length: Option<u64>,
    /// Why it is unknown.
    pub error: Option<String>,
}

/// The probes' connections and the snapshot cache.
#[derive(Default)]
pub(crate) struct Probes {
    cache: tokio::sync::Mutex<Option<(Instant, Arc<Snapshot>)>>,
    #[cfg(feature = "amqp")]
    amqp: tokio::sync::Mutex<Option<lapin::Connection>>,
    #[cfg(feature = "redis")]
    redis: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
}

/// The current snapshot (at most [`CACHE_FOR`] old).
pub(crate) async fn snapshot(state: &AppState) -> Arc<Snapshot> {
    let mut cache = state.probes.cache.lock().await;
    if let Some((taken, snapshot)) = cache.as_ref() {
        if taken.elapsed() < CACHE_FOR {
            return snapshot.clone();
        }
    }
    let config = &state.config.status;
    let (store, components, queues, spools) = tokio::join!(
        store_figures(state),
        futures::future::join_all(
            config
                .components
                .iter()
                .map(|c| component_status(c, config.timeout()))
        ),
        queue_depths(state),
        spool_lengths(state),
    );
    let snapshot = Arc::new(Snapshot {
        time: jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string()),
        store,
        components,
        queues,
        spools,
    });
    *cache = Some((Instant::now(), snapshot.clone()));
    snapshot
}

async fn store_figures(state: &AppState) -> StoreFigures {
    let backend = state.store.backend();
    let started = Instant::now();
    // The store reconnects at need; give it more time than the other probes.
    let limit = state.config.status.timeout().max(Duration::from_secs(5));
    let answer = tokio::time::timeout(
        limit,
        state.store.status(Duration::from_secs(WINDOW_MINUTES * 60)),
    )
    .await;
    let took = started.elapsed();
    let failed = !matches!(answer, Ok(Ok(_)));
    state.metrics.store_query(StoreQuery::Status, took, failed);
    match answer {
        Ok(Ok(status)) => StoreFigures {
            ok: true,
            backend,
            ms: Some(u64::try_from(took.as_millis()).unwrap_or(u64::MAX)),
            events: Some(status.events),
            recent: Some(status.recent),
            rate: Some(format!(
                "{:.2}",
                status.recent as f64 / (WINDOW_MINUTES as f64 * 60.0)
            )),
            newest: status.newest.map(|t| t.to_string()),
            window_minutes: WINDOW_MINUTES,
        },
        outcome => {
            match outcome {
                Ok(Err(error)) => tracing::warn!(
                    error = %crate::routes::chain(&error),
                    "The status page cannot reach the store"
                ),
                _ => tracing::warn!(?limit, "The store's status query timed out"),
            }
            StoreFigures {
                ok: false,
                backend,
                ms: None,
                events: None,
                recent: None,
                rate: None,
                newest: None,
                window_minutes: WINDOW_MINUTES,
            }
        }
    }
}

/// A parsed `http://host[:port]/path` URL.
#[derive(Debug, PartialEq)]
struct HttpTarget {
    host: String,
    port: u16,
    path: String,
}

impl HttpTarget {
    /// The URL beside this one: the last path segment (and any query) replaced by `name`.
    fn sibling(&self, name: &str) -> HttpTarget {
        let path = self.path.split('?').next().unwrap_or_default();
        let directory = path.rfind('/').map_or("/", |at| &path[..=at]);
        HttpTarget {
            host: self.host.clone(),
            port: self.port,
            path: format!("{directory}{name}"),
        }
    }

    fn parse(url: &str) -> Option<HttpTarget> {
        let rest = url.strip_prefix("http://")?;
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        // Credentials in the URL are not supported (and never shown).
        if authority.contains('@') || authority.is_empty() {
            return None;
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']')?;
            match after {
                "" => (host, 80),
                _ => (host, after.strip_prefix(':')?.parse().ok()?),
            }
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, port.parse().ok()?),
                None => (authority, 80),
            }
        };
        if host.is_empty() || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        Some(HttpTarget {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }
}

async fn component_status(config: &ComponentConfig, timeout: Duration) -> ComponentStatus {
    let mut status = ComponentStatus {
        name: config.name.clone(),
        url: redact_url(&config.metrics_url),
        up: false,
        error: None,
        ms: None,
        counters: Vec::new(),
        listeners: Vec::new(),
        clients: Vec::new(),
        unlisted: 0,
    };
    let Some(target) = HttpTarget::parse(&config.metrics_url) else {
        status.error = Some("bad URL".to_owned());
        return status;
    };
    let started = Instant::now();
    let metrics = async {
        let answer = tokio::time::timeout(timeout, http_get(&target, "text/plain")).await;
        (answer, started.elapsed())
    };
    let connections_target = target.sibling("connections");
    let connections =
        tokio::time::timeout(timeout, http_get(&connections_target, "application/json"));
    let ((answer, took), connections) = tokio::join!(metrics, connections);
    match answer {
        Ok(Ok(body)) => {
            status.up = true;
            status.ms = Some(u64::try_from(took.as_millis()).unwrap_or(u64::MAX));
            let (counters, listeners) = figures(&parse_prometheus(&body));
            status.counters = counters;
            status.listeners = listeners;
            match connections {
                Ok(Ok(body)) => (status.clients, status.unlisted) = clients(&config.name, &body),
                // A daemon from before `/connections` answers 404: it lists nobody.
                Ok(Err(reason)) if reason == "HTTP 404" => {}
                Ok(Err(reason)) => {
                    tracing::debug!(component = %config.name, %reason, "A component's /connections failed");
                }
                Err(_elapsed) => {
                    tracing::debug!(component = %config.name, "A component's /connections timed out");
                }
            }
        }
        Ok(Err(reason)) => {
            tracing::debug!(component = %config.name, %reason, "A component's /metrics failed");
            status.error = Some(reason);
        }
        Err(_elapsed) => status.error = Some(format!("no answer within {timeout:?}")),
    }
    status
}

/// A daemon's listed clients (at most [`MAX_CLIENTS`], each field at most
/// [`MAX_CLIENT_FIELD_CHARS`], times to the second) and how many open connections they leave
/// out, from its `/connections` JSON; nothing when it does not parse.
fn clients(component: &str, body: &str) -> (Vec<ClientStatus>, u64) {
    let answer: ConnectionsAnswer = match serde_json::from_str(body) {
        Ok(answer) => answer,
        Err(error) => {
            tracing::debug!(component, %error, "A component's /connections is not the JSON expected");
            return (Vec::new(), 0);
        }
    };
    let clip = |text: String| match text.char_indices().nth(MAX_CLIENT_FIELD_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    };
    let listed: Vec<ClientStatus> = answer
        .connections
        .into_iter()
        .take(MAX_CLIENTS)
        .map(|client| ClientStatus {
            listener: clip(client.listener),
            peer: clip(client.peer),
            protocol: clip(client.protocol),
            since: match client.since.parse::<jiff::Timestamp>() {
                Ok(since) => since
                    .round(jiff::Unit::Second)
                    .map_or_else(|_| since.to_string(), |t| t.to_string()),
                Err(_) => clip(client.since),
            },
        })
        .collect();
    let open = answer
        .listeners
        .iter()
        .fold(0u64, |sum, listener| sum.saturating_add(listener.open));
    let unlisted = open.saturating_sub(listed.len() as u64);
    (listed, unlisted)
}

/// GETs a plain-HTTP URL (hyper's HTTP/1.1 client), asking for `accept`; the body of a 200
/// answer, at most [`MAX_METRICS_BYTES`], or a short reason (no secrets).
async fn http_get(target: &HttpTarget, accept: &str) -> Result<String, String> {
    use http_body_util::BodyExt as _;
    let stream = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("unreachable: {}", e.kind()))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|_| "not an HTTP server".to_owned())?;
    // The connection is driven beside the request, and dropped with it.
    let driver = tokio::spawn(connection);
    let host = if target.host.contains(':') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let request = axum::http::Request::get(target.path.as_str())
        .header(axum::http::header::HOST, host)
        .header(axum::http::header::ACCEPT, accept)
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|_| "bad URL".to_owned())?;
    let answer = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|_| "not an HTTP answer".to_owned())?;
        if response.status() != axum::http::StatusCode::OK {
            return Err(format!("HTTP {}", response.status().as_u16()));
        }
        let limit = usize::try_from(MAX_METRICS_BYTES).unwrap_or(usize::MAX);
        let body = http_body_util::Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|_| "answer broken or too large".to_owned())?
            .to_bytes();
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
    .await;
    driver.abort();
    answer
}

/// One sample of the Prometheus text format.
#[derive(Debug, PartialEq)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) value: f64,
}

/// The samples of a Prometheus text exposition (`name{label="value",…} value [timestamp]`);
/// comments and lines that do not parse are skipped.
pub(crate) fn parse_prometheus(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices();
        let mut key = String::new();
        let mut end = None;
        // key="value" pairs, separated by commas, values with \\ \" \n escapes.
        while let Some((at, c)) = chars.next() {
            match c {
                '}' => {
                    end = Some(at);
                    break;
                }
                ',' | ' ' => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            '"' => break,
                            other => value.push(other),
                        }
                    }
                    labels.push((std::mem::take(&mut key).trim().to_owned(), value));
                }
                other => key.push(other),
            }
        }
        rest = &after[end? + 1..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// The counters the status page sums, with their short names.
const COUNTERS: [(&str, &str); 7] = [
    ("loggr_events_received_total", "received"),
    ("loggr_events_delivered_total", "delivered"),
    ("loggr_events_rejected_total", "rejected"),
    ("loggr_events_retried_total", "retried"),
    ("loggr_events_discarded_total", "discarded"),
    ("loggr_parse_failures_total", "parse_failures"),
    ("loggr_write_errors_total", "write_errors"),
];

/// The most listeners shown per component.
const MAX_LISTENERS: usize = 50;

fn to_u64(value: f64) -> u64 {
    // Saturating; NaN becomes 0.
    value.max(0.0).round() as u64
}

/// A daemon's counter sums and its sources' open connections.
fn figures(samples: &[Sample]) -> (Vec<Figure>, Vec<Figure>) {
    let mut counters = Vec::new();
    for (metric, short) in COUNTERS {
        let mut seen = false;
        let mut sum = 0.0;
        for sample in samples.iter().filter(|s| s.name == metric) {
            seen = true;
            sum += sample.value;
        }
        if seen {
            counters.push(Figure {
                name: short.to_owned(),
                value: to_u64(sum),
            });
        }
    }
    let label = |sample: &Sample, name: &str| {
        sample
            .labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let listeners = samples
        .iter()
        .filter(|s| s.name == "loggr_open_connections")
        .filter(|s| label(s, "component_kind").is_none_or(|kind| kind == "source"))
        .take(MAX_LISTENERS)
        .map(|s| Figure {
            name: label(s, "component").unwrap_or_else(|| "(all)".to_owned()),
            value: to_u64(s.value),
        })
        .collect();
    (counters, listeners)
}

#[cfg(feature = "amqp")]
async fn queue_depths(state: &AppState) -> Vec<QueueStatus> {
    let config = &state.config.status;
    let Some(url) = config.amqp_url.as_deref() else {
        return Vec::new();
    };
    let unknown = |name: &String, reason: &str| QueueStatus {
        name: name.clone(),
        messages: None,
        consumers: None,
        error: Some(reason.to_owned()),
    };
    let timeout = config.timeout();
    let mut connection = state.probes.amqp.lock().await;
    if !connection.as_ref().is_some_and(|c| c.status().connected()) {
        *connection = None;
        match loggr_amqp::connect(url, "loggr-web status", timeout).await {
            Ok(fresh) => *connection = Some(fresh),
            Err(error) => {
                tracing::debug!(error = %crate::routes::chain(&error), "The status page cannot reach RabbitMQ");
                let reason = if error.is_transient() {
                    "broker unreachable"
                } else {
                    "broker refused the connection"
                };
                return config.queues.iter().map(|q| unknown(q, reason)).collect();
            }
        }
    }
    let Some(conn) = connection.as_ref() else {
        return Vec::new();
    };
    let mut channel = None;
    let mut out = Vec::with_capacity(config.queues.len());
    for name in &config.queues {
        if channel
            .as_ref()
            .is_none_or(|c: &lapin::Channel| !c.status().connected())
        {
            channel = match tokio::time::timeout(timeout, conn.create_channel()).await {
                Ok(Ok(fresh)) => Some(fresh),
                _ => {
                    out.push(unknown(name, "cannot open a channel"));
                    continue;
                }
            };
        }
        let Some(ch) = channel.as_ref() else {
            continue;
        };
        let declared = tokio::time::timeout(
            timeout,
            ch.queue_declare(
                lapin::types::ShortString::from(name.clone()),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                lapin::types::FieldTable::default(),
            ),
        )
        .await;
        out.push(match declared {
            Ok(Ok(queue)) => QueueStatus {
                name: name.clone(),
                messages: Some(u64::from(queue.message_count())),
                consumers: Some(u64::from(queue.consumer_count())),
                error: None,
            },
            Ok(Err(error)) if loggr_amqp::reply_code(&error) == Some(404) => {
                unknown(name, "no such queue")
            }
            Ok(Err(error)) => {
                tracing::debug!(%error, queue = %name, "A passive queue declare failed");
                unknown(name, "declare failed")
            }
            Err(_elapsed) => unknown(name, "timeout"),
        });
    }
    if let Some(ch) = channel {
        if ch.status().connected() {
            let _ = ch.close(200, "status done".into()).await;
        }
    }
    out
}

#[cfg(not(feature = "amqp"))]
async fn queue_depths(_state: &AppState) -> Vec<QueueStatus> {
    Vec::new()
}

#[cfg(feature = "redis")]
async fn spool_lengths(state: &AppState) -> Vec<SpoolStatus> {
    let config = &state.config.status;
    let Some(url) = config.redis_url.as_deref() else {
        return Vec::new();
    };
    let unknown = |key: &String, reason: &str| SpoolStatus {
        key: key.clone(),
        length: None,
        error: Some(reason.to_owned()),
    };
    let timeout = config.timeout();
    let mut connection = state.probes.redis.lock().await;
    if connection.is_none() {
        let connected = async {
            redis::Client::open(url)?
                .get_multiplexed_async_connection()
                .await
        };
        match tokio::time::timeout(timeout, connected).await {
            Ok(Ok(fresh)) => *connection = Some(fresh),
            Ok(Err(error)) => {
                tracing::debug!(error = %error, "The status page cannot reach Redis");
                return config
                    .spool_keys
                    .iter()
                    .map(|k| unknown(k, "server unreachable"))
                    .collect();
            }
            Err(_elapsed) => {
                return config
                    .spool_keys
                    .iter()
                    .map(|k| unknown(k, "timeout"))
                    .collect();
            }
        }
    }
    let Some(conn) = connection.as_mut() else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(config.spool_keys.len());
    let mut broken = false;
    for key in &config.spool_keys {
        if broken {
            out.push(unknown(key, "server unreachable"));
            continue;
        }
        let asked = tokio::time::timeout(
            timeout,
            redis::cmd("LLEN").arg(key).query_async::<u64>(conn),
        )
        .await;
        out.push(match asked {
            Ok(Ok(length)) => SpoolStatus {
                key: key.clone(),
                length: Some(length),
                error: None,
            },
            Ok(Err(error)) if error.code() == Some("WRONGTYPE") => unknown(key, "not a list"),
            Ok(Err(error)) => {
                tracing::debug!(%error, "LLEN failed");
                broken = true;
                unknown(key, "server unreachable")
            }
            Err(_elapsed) => {
                broken = true;
                unknown(key, "timeout")
            }
        });
    }
    if broken {
        *connection = None;
    }
    out
}

#[cfg(not(feature = "redis"))]
async fn spool_lengths(_state: &AppState) -> Vec<SpoolStatus> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_text() {
        let text = "# TYPE loggr_events_received_total counter\n\
            loggr_events_received_total{component_kind=\"source\",component=\"tcp \\\"a\\\", b\"} 5\n\
            loggr_events_received_total{component_kind=\"sink\",component=\"pg\"} 7 1700000000\n\
            loggr_open_connections{component_kind=\"source\",component=\"relp\"} 3\n\
            loggr_open_connections{component_kind=\"sink\",component=\"pg\"} 1\n\
            up 1\n\
            broken{x=\"1\" 2\n\
            weird{} NaN\n";
        let samples = parse_prometheus(text);
        assert_eq!(samples.len(), 6, "{samples:?}");
        assert_eq!(
            samples[0].labels,
            vec![
                ("component_kind".to_owned(), "source".to_owned()),
                ("component".to_owned(), "tcp \"a\", b".to_owned())
            ]
        );
        assert_eq!(samples[1].value, 7.0);
        assert_eq!(samples[4].name, "up");
        let (counters, listeners) = figures(&samples);
        assert_eq!(
            counters,
            vec![Figure {
                name: "received".into(),
                value: 12
            }]
        );
        assert_eq!(
            listeners,
            vec![Figure {
                name: "relp".into(),
                value: 3
            }]
        );
    }

    #[test]
    fn the_connections_url_is_beside_the_metrics_url() {
        let sibling = |url: &str| HttpTarget::parse(url).map(|t| t.sibling("connections").path);
        assert_eq!(
            sibling("http://127.0.0.1:9464/metrics").as_deref(),
            Some("/connections")
        );
        assert_eq!(
            sibling("http://h/daemons/relay/metrics?x=1").as_deref(),
            Some("/daemons/relay/connections")
        );
        assert_eq!(sibling("http://h").as_deref(), Some("/connections"));
    }

    #[test]
    fn lists_clients_to_the_second_and_counts_the_unlisted() {
        let body = r#"{"connections": [
            {"listener": "relp", "peer": "10.0.0.1:5000", "protocol": "relp",
             "since": "2026-11-21T10:00:00.123456789Z"},
            {"listener": "tcp", "peer": "<b>", "protocol": "tcp", "since": "garbage"}],
            "listeners": [{"listener": "relp", "open": 5, "listed": 1},
                          {"listener": "tcp", "open": 1, "listed": 1}]}"#;
        let (listed, unlisted) = clients("relay", body);
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].since, "2026-11-21T10:00:00Z");
        assert_eq!(listed[1].peer, "<b>");
        assert_eq!(listed[1].since, "garbage");
        assert_eq!(unlisted, 4);
        assert_eq!(clients("relay", "not json"), (Vec::new(), 0));

        let many: Vec<String> = (0..MAX_CLIENTS + 10)
            .map(|i| {
                format!(
                    r#"{{"listener":"tcp","peer":"10.0.0.1:{i}","protocol":"tcp","since":"x"}}"#
                )
            })
            .collect();
        let body = format!(
            r#"{{"connections":[{}],"listeners":[{{"listener":"tcp","open":{}}}]}}"#,
            many.join(","),
            MAX_CLIENTS + 10
        );
        let (listed, unlisted) = clients("relay", &body);
        assert_eq!((listed.len(), unlisted), (MAX_CLIENTS, 10));
    }

    #[test]
    fn parses_http_urls() {
        assert_eq!(
            HttpTarget::parse("http://127.0.0.1:9464/metrics"),
            Some(HttpTarget {
                host: "127.0.0.1".into(),
                port: 9464,
                path: "/metrics".into()
            })
        );
        assert_eq!(
            HttpTarget::parse("http://[::1]:9/m").map(|t| (t.host, t.port)),
            Some(("::1".into(), 9))
        );
        assert_eq!(HttpTarget::parse("http://host").map(|t| t.port), Some(80));
        for bad in [
            "https://h/metrics",
            "http://u:p@h/metrics",
            "http://h:x/",
            "http:///m",
        ] {
            assert_eq!(HttpTarget::parse(bad), None, "{bad}");
        }
    }
}
