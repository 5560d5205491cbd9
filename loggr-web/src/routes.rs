//! The HTTP routes, the session extractor and the security headers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath, Path, Query, Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Serialize;

use crate::auth::{self, Session, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use crate::export::csv_record;
use crate::metrics::StoreQuery;
use crate::query::{encode_cursor, severity_name, BadFilter, Filters, RawFilters};
use crate::AppState;

const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                   base-uri 'none'";
const STYLE: &str = include_str!("../static/style.css");
const STATUS_JS: &str = include_str!("../static/status.js");

/// How often `/status/stream` sends a snapshot.
const STREAM_EVERY: Duration = Duration::from_secs(2);

type Shared = Arc<AppState>;

/// The frontend's routes over `state`, with the security headers on every answer, and its
/// `/healthz` (`ok`) and `/metrics` (Prometheus text, see the crate docs), which need no
/// session: they show no event data and only bounded label sets.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/events") }))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/events", get(events))
        .route("/events.jsonl", get(export_jsonl))
        .route("/events.csv", get(export_csv))
        .route("/events/{id}", get(event))
        .route("/status", get(status))
        .route("/status/stream", get(status_stream))
        .route("/static/style.css", get(style))
        .route("/static/status.js", get(status_js))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn_with_state(state.clone(), count_request))
        .with_state(state)
}

/// Counts the answer by route template and status class.
async fn count_request(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let response = next.run(request).await;
    state
        .metrics
        .request(route.as_deref(), response.status().as_u16());
    response
}

async fn metrics(State(state): State<Shared>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(state.sessions.open_count()),
    )
        .into_response()
}

async fn status_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STATUS_JS,
    )
        .into_response()
}

/// Runs a store query, recording its duration and outcome in the metrics.
async fn timed<T>(
    state: &AppState,
    query: StoreQuery,
    run: impl std::future::Future<Output = Result<T, loggr_store::StoreError>>,
) -> Result<T, loggr_store::StoreError> {
    let started = Instant::now();
    let answer = run.await;
    state
        .metrics
        .store_query(query, started.elapsed(), answer.is_err());
    answer
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

/// What went wrong in a request; the details go to the log, never to the client.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    BadFilter(#[from] BadFilter),
    #[error("bad request")]
    BadRequest,
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("store error")]
    Store(#[from] loggr_store::StoreError),
    #[error("template error")]
    Template(#[from] minijinja::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, text) = match &self {
            Failure::BadFilter(bad) => (StatusCode::BAD_REQUEST, bad.to_string()),
            Failure::BadRequest => (StatusCode::BAD_REQUEST, "bad request".into()),
            Failure::NotFound => (StatusCode::NOT_FOUND, "not found".into()),
            Failure::Forbidden => (
                StatusCode::FORBIDDEN,
                "forbidden: missing or wrong CSRF token".into(),
            ),
            Failure::Store(error) => {
                tracing::error!(error = %chain(error), "A store request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error (see the server's log)".into(),
                )
            }
            Failure::Template(error) => {
                tracing::error!(%error, "A template failed to render");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error (see the server's log)".into(),
                )
            }
            Failure::Internal(error) => {
                tracing::error!(%error, "A request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error (see the server's log)".into(),
                )
            }
        };
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response()
    }
}

/// An error and its causes, `: `-separated (tokio-postgres's own message is only `db error`).
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A request with a live session. Without one, pages redirect to `/login`, exports get 401.
struct Authed {
    id: String,
    session: Session,
}

fn cookie_of(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| auth::cookie(h, name).map(str::to_owned))
}

impl FromRequestParts<Shared> for Authed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Authed, Response> {
        if let Some(id) = cookie_of(parts, SESSION_COOKIE) {
            if let Some(session) = state.sessions.get(&id) {
                return Ok(Authed { id, session });
            }
        }
        let path = parts.uri.path();
        if path.ends_with(".jsonl")
            || path.ends_with(".csv")
            || path.starts_with("/api/")
            || path == "/status/stream"
        {
            Err((
                StatusCode::UNAUTHORIZED,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "login required",
            )
                .into_response())
        } else {
            Err(Redirect::to("/login").into_response())
        }
    }
}

fn render(state: &AppState, name: &str, ctx: minijinja::Value) -> Result<String, Failure> {
    Ok(state.templates.get_template(name)?.render(ctx)?)
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn cookie_attrs(state: &AppState) -> &'static str {
    if state.config.secure_cookies {
        "; HttpOnly; SameSite=Strict; Secure"
    } else {
        "; HttpOnly; SameSite=Strict"
    }
}

fn set_cookie(value: String) -> Result<HeaderValue, Failure> {
    HeaderValue::try_from(value).map_err(|e| Failure::Internal(e.to_string()))
}

async fn login_page(State(state): State<Shared>) -> Result<Response, Failure> {
    login_form(&state, StatusCode::OK, None)
}

fn login_form(
    state: &AppState,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, Failure> {
    let token = auth::random_hex::<32>().map_err(|e| Failure::Internal(e.to_string()))?;
    let body = render(
        state,
        "login.html",
        minijinja::context! { csrf => token, error => error },
    )?;
    let mut response = html(status, body);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(format!(
            "{LOGIN_CSRF_COOKIE}={token}; Path=/login; Max-Age=3600{}",
            cookie_attrs(state)
        ))?,
    );
    Ok(response)
}

type FormResult = Result<Form<HashMap<String, String>>, axum::extract::rejection::FormRejection>;

fn form_field<'a>(form: &'a FormResult, name: &str) -> &'a str {
    form.as_ref()
        .ok()
        .and_then(|Form(f)| f.get(name))
        .map_or("", String::as_str)
}

async fn login(
    State(state): State<Shared>,
    headers: axum::http::HeaderMap,
    form: FormResult,
) -> Result<Response, Failure> {
    let cookie_token = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| auth::cookie(h, LOGIN_CSRF_COOKIE).map(str::to_owned))
        .unwrap_or_default();
    let form_token = form_field(&form, "csrf");
    if cookie_token.is_empty() || !auth::constant_time_eq(&cookie_token, form_token) {
        tracing::info!("Refused a login without a valid CSRF token");
        return Err(Failure::Forbidden);
    }
    let name = form_field(&form, "username").to_owned();
    let password = form_field(&form, "password").to_owned();
    let users = state.config.users.clone();
    let user_for_log = name.clone();
    let checked = tokio::task::spawn_blocking(move || auth::check_login(&users, &name, &password))
        .await
        .map_err(|e| Failure::Internal(e.to_string()))?;
    let Some((user, role)) = checked else {
        tracing::info!(user = %user_for_log.escape_debug(), "Refused a login");
        return login_form(
            &state,
            StatusCode::UNAUTHORIZED,
            Some("Wrong user name or password."),
        );
    };
    let id = state
        .sessions
        .create(user.clone(), role)
        .map_err(|e| Failure::Internal(e.to_string()))?;
    tracing::info!(user = %user, ?role, "Logged in");
    let mut response = Redirect::to("/events").into_response();
    let attrs = cookie_attrs(&state);
    let max_age = state.config.session_ttl_secs;
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(format!(
            "{SESSION_COOKIE}={id}; Path=/; Max-Age={max_age}{attrs}"
        ))?,
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(format!(
            "{LOGIN_CSRF_COOKIE}=; Path=/login; Max-Age=0{attrs}"
        ))?,
    );
    Ok(response)
}

async fn logout(
    State(state): State<Shared>,
    authed: Authed,
    form: FormResult,
) -> Result<Response, Failure> {
    if !auth::constant_time_eq(&authed.session.csrf, form_field(&form, "csrf")) {
        return Err(Failure::Forbidden);
    }
    state.sessions.remove(&authed.id);
    tracing::info!(user = %authed.session.user, "Logged out");
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(format!(
            "{SESSION_COOKIE}=; Path=/; Max-Age=0{}",
            cookie_attrs(&state)
        ))?,
    );
    Ok(response)
}

/// One row of an event list.
#[derive(Debug, Serialize)]
struct EventRow {
    id: i64,
    logtime: String,
    received_at: String,
    hostname: Option<String>,
    program: Option<String>,
    pid: Option<String>,
    facility: i16,
    severity: i16,
    severity_name: &'static str,
    message: Option<String>,
    tags: Vec<String>,
    #[serde(skip)]
    cursor: String,
}

impl From<loggr_store::EventSummary> for EventRow {
    fn from(e: loggr_store::EventSummary) -> EventRow {
        EventRow {
            id: e.id,
            logtime: e.logtime.to_string(),
            received_at: e.received_at.to_string(),
            hostname: e.hostname,
            program: e.program,
            pid: e.pid,
            facility: e.facility,
            severity: e.severity,
            severity_name: severity_name(e.severity),
            message: e.message,
            tags: e.tags,
            cursor: encode_cursor(e.logtime, e.id),
        }
    }
}

fn parse_filters(
    raw: Result<Query<RawFilters>, axum::extract::rejection::QueryRejection>,
) -> (RawFilters, Result<Filters, Failure>) {
    match raw {
        Ok(Query(raw)) => {
            let filters = Filters::try_from(&raw).map_err(Failure::from);
            (raw, filters)
        }
        Err(_) => (RawFilters::default(), Err(Failure::BadRequest)),
    }
}

/// Up to `limit` events matching `filters`, and whether more exist.
async fn fetch(
    state: &AppState,
    filters: &Filters,
    limit: u32,
) -> Result<(Vec<EventRow>, bool), Failure> {
    let mut events: Vec<EventRow> = timed(
        state,
        StoreQuery::Events,
        state.store.events(filters, limit.saturating_add(1)),
    )
    .await?
    .into_iter()
    .map(EventRow::from)
    .collect();
    let more = events.len() > limit as usize;
    events.truncate(limit as usize);
    Ok((events, more))
}

fn page_context(authed: &Authed) -> (String, String, String) {
    let role = match authed.session.role {
        crate::Role::Admin => "admin",
        crate::Role::Reader => "reader",
    };
    (
        authed.session.user.clone(),
        role.to_owned(),
        authed.session.csrf.clone(),
    )
}

async fn events(
    State(state): State<Shared>,
    authed: Authed,
    raw: Result<Query<RawFilters>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Failure> {
    let (user, role, csrf) = page_context(&authed);
    let (raw, filters) = parse_filters(raw);
    let (events, next_qs, error, status) = match filters {
        Ok(filters) => {
            let (mut events, more) = fetch(&state, &filters, state.config.page_size).await?;
            for e in &mut events {
                for text in [&mut e.message, &mut e.hostname, &mut e.program, &mut e.pid] {
                    *text = text.as_deref().map(escape_controls);
                }
                e.tags = e.tags.iter().map(|t| escape_controls(t)).collect();
            }
            let next = more
                .then(|| events.last().map(|e| raw.query_string(Some(&e.cursor))))
                .flatten();
            (events, next, None, StatusCode::OK)
        }
        Err(Failure::BadFilter(bad)) => (
            Vec::new(),
            None,
            Some(bad.to_string()),
            StatusCode::BAD_REQUEST,
        ),
        Err(_) => (
            Vec::new(),
            None,
            Some("invalid query string".to_owned()),
            StatusCode::BAD_REQUEST,
        ),
    };
    let body = render(
        &state,
        "events.html",
        minijinja::context! {
            user, role, csrf, events, error,
            f => raw,
            filters_qs => raw.query_string(None),
            next_qs,
        },
    )?;
    Ok(html(status, body))
}

async fn export_rows(
    state: &AppState,
    raw: Result<Query<RawFilters>, axum::extract::rejection::QueryRejection>,
) -> Result<(Vec<EventRow>, bool), Failure> {
    let (_, filters) = parse_filters(raw);
    fetch(state, &filters?, state.config.export_max_rows).await
}

fn export_response(
    content_type: &'static str,
    filename: &'static str,
    truncated: bool,
    body: String,
) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CONTENT_DISPOSITION,
                if filename.ends_with(".csv") {
                    "attachment; filename=\"events.csv\""
                } else {
                    "attachment; filename=\"events.jsonl\""
                },
            ),
            (
                header::HeaderName::from_static("x-loggr-truncated"),
                if truncated { "true" } else { "false" },
            ),
        ],
        body,
    )
        .into_response()
}

async fn export_jsonl(
    State(state): State<Shared>,
    _authed: Authed,
    raw: Result<Query<RawFilters>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Failure> {
    let (events, truncated) = export_rows(&state, raw).await?;
    let mut body = String::new();
    for e in &events {
        body.push_str(&serde_json::to_string(e).map_err(|e| Failure::Internal(e.to_string()))?);
        body.push('\n');
    }
    Ok(export_response(
        "application/x-ndjson; charset=utf-8",
        "events.jsonl",
        truncated,
        body,
    ))
}

async fn export_csv(
    State(state): State<Shared>,
    _authed: Authed,
    raw: Result<Query<RawFilters>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Failure> {
    let (events, truncated) = export_rows(&state, raw).await?;
    let mut body = csv_record(&[
        "id",
        "logtime",
        "received_at",
        "hostname",
        "program",
        "pid",
        "facility",
        "severity",
        "message",
        "tags",
    ]);
    for e in &events {
        body.push_str(&csv_record(&[
            e.id.to_string(),
            e.logtime.clone(),
            e.received_at.clone(),
            e.hostname.clone().unwrap_or_default(),
            e.program.clone().unwrap_or_default(),
            e.pid.clone().unwrap_or_default(),
            e.facility.to_string(),
            e.severity.to_string(),
            e.message.clone().unwrap_or_default(),
            e.tags.join(" "),
        ]));
    }
    Ok(export_response(
        "text/csv; charset=utf-8",
        "events.csv",
        truncated,
        body,
    ))
}

/// Control characters other than newline and tab as `\u{…}` escapes.
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

async fn event(
    State(state): State<Shared>,
    authed: Authed,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    let (user, role, csrf) = page_context(&authed);
    let id: i64 = id.parse().map_err(|_| Failure::BadRequest)?;
    let Some(detail) = timed(&state, StoreQuery::Event, state.store.event(id)).await? else {
        return Err(Failure::NotFound);
    };
    let summary = &detail.summary;
    let opt = |value: &Option<String>| value.clone().unwrap_or_default();
    let fields: Vec<(&str, String)> = vec![
        ("id", id.to_string()),
        (
            "digest",
            detail.digest.iter().map(|b| format!("{b:02x}")).collect(),
        ),
        ("logtime", summary.logtime.to_string()),
        ("logdate", detail.logdate.clone()),
        ("received_at", summary.received_at.to_string()),
        ("reported", detail.reported.to_string()),
        ("facility", summary.facility.to_string()),
        (
            "severity",
            format!("{} ({})", summary.severity, severity_name(summary.severity)),
        ),
        ("hostname", opt(&summary.hostname)),
        ("program", opt(&summary.program)),
        ("pid", opt(&summary.pid)),
        ("msgid", opt(&detail.msgid)),
        ("userid", opt(&detail.userid)),
    ];
    let tags = summary.tags.clone();
    let extra = detail.extra.clone();
    let structured = detail
        .structured_data
        .as_ref()
        .map(serde_json::to_string_pretty)
        .transpose()
        .map_err(|e| Failure::Internal(e.to_string()))?;
    let raw = detail
        .raw
        .as_ref()
        .map(|r| escape_controls(&String::from_utf8_lossy(r)));
    let message = escape_controls(&opt(&summary.message));
    let body = render(
        &state,
        "event.html",
        minijinja::context! {
            user, role, csrf, fields, tags, extra, structured, raw,
            e => minijinja::context! { id, message },
        },
    )?;
    Ok(html(StatusCode::OK, body))
}

async fn status(State(state): State<Shared>, authed: Authed) -> Result<Response, Failure> {
    let (user, role, csrf) = page_context(&authed);
    let snapshot = crate::status::snapshot(&state).await;
    let ctx =
        minijinja::context! { user, role, csrf, s => minijinja::Value::from_serialize(&*snapshot) };
    Ok(html(StatusCode::OK, render(&state, "status.html", ctx)?))
}

/// Server-sent events: a JSON [`Snapshot`](crate::status::Snapshot) at once, then every
/// [`STREAM_EVERY`], as long as the client listens.
/// The stream ends when the session does (logout or expiry).
async fn status_stream(State(state): State<Shared>, authed: Authed) -> Response {
    let id = authed.id;
    let stream = futures::stream::unfold((state, true), move |(state, first)| {
        let id = id.clone();
        async move {
            if !first {
                tokio::time::sleep(STREAM_EVERY).await;
                state.sessions.get(&id)?;
            }
            let snapshot = crate::status::snapshot(&state).await;
            let event =
                serde_json::to_string(&*snapshot).map(|json| SseEvent::default().data(json));
            Some((event, (state, false)))
        }
    });
    let mut response = Sse::new(stream).into_response();
    // Tell buffering reverse proxies (nginx) to pass each event on at once.
    response.headers_mut().insert(
        header::HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_characters() {
        assert_eq!(escape_controls("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\n");
    }
}
