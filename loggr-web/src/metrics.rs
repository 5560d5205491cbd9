//! The frontend's own Prometheus figures, served at `/metrics`.
//!
//! Label sets stay bounded: requests are counted by route *template* (`/events/{id}`, never the
//! raw path; requests no route matched share `route="unmatched"`) and status class (`2xx`…),
//! store queries by kind (`events`, `event`, `status`). No user, host or session id is ever a
//! label.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `loggr_web_http_requests_total` | counter | `route`, `status` |
//! | `loggr_web_sessions_open` | gauge | |
//! | `loggr_web_store_query_duration_seconds` | summary (`_sum`, `_count`) | `query` |
//! | `loggr_web_store_query_errors_total` | counter | `query` |

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The kinds of store query the frontend makes (the `query` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreQuery {
    /// The query page and the exports.
    Events,
    /// One event's page.
    Event,
    /// The status page and stream.
    Status,
}

impl StoreQuery {
    const ALL: [StoreQuery; 3] = [StoreQuery::Events, StoreQuery::Event, StoreQuery::Status];

    fn label(self) -> &'static str {
        match self {
            StoreQuery::Events => "events",
            StoreQuery::Event => "event",
            StoreQuery::Status => "status",
        }
    }
}

#[derive(Debug, Default)]
struct QueryFigures {
    count: AtomicU64,
    micros: AtomicU64,
    errors: AtomicU64,
}

/// The counters of one frontend.
#[derive(Debug, Default)]
pub(crate) struct WebMetrics {
    /// Requests by (route template, status class).
    requests: Mutex<BTreeMap<(String, &'static str), u64>>,
    queries: [QueryFigures; 3],
}

/// The status class label of an HTTP status code.
fn status_class(code: u16) -> &'static str {
    match code {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl WebMetrics {
    /// Counts an answered request; `route` is the matched route template, if any.
    pub(crate) fn request(&self, route: Option<&str>, status: u16) {
        let key = (
            route.unwrap_or("unmatched").to_owned(),
            status_class(status),
        );
        let mut requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *requests.entry(key).or_insert(0) += 1;
    }

    /// Records one store query: how long it took and whether it failed.
    pub(crate) fn store_query(&self, query: StoreQuery, took: Duration, failed: bool) {
        let figures = &self.queries[query as usize];
        figures.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        figures.micros.fetch_add(micros, Ordering::Relaxed);
        if failed {
            figures.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition, with `sessions_open` as the sessions gauge.
    pub(crate) fn render(&self, sessions_open: usize) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP loggr_web_http_requests_total HTTP requests answered, by route template \
             and status class.\n# TYPE loggr_web_http_requests_total counter\n",
        );
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for ((route, class), n) in &requests {
            let _ = writeln!(
                out,
                "loggr_web_http_requests_total{{route=\"{}\",status=\"{class}\"}} {n}",
                escape_label(route)
            );
        }
        let _ = writeln!(
            out,
            "# HELP loggr_web_sessions_open Live login sessions.\n\
             # TYPE loggr_web_sessions_open gauge\nloggr_web_sessions_open {sessions_open}"
        );
        out.push_str(
            "# HELP loggr_web_store_query_duration_seconds Time spent in store queries, by \
             kind.\n# TYPE loggr_web_store_query_duration_seconds summary\n",
        );
        for query in StoreQuery::ALL {
            let figures = &self.queries[query as usize];
            let seconds = figures.micros.load(Ordering::Relaxed) as f64 / 1e6;
            let count = figures.count.load(Ordering::Relaxed);
            let label = query.label();
            let _ = writeln!(
                out,
                "loggr_web_store_query_duration_seconds_sum{{query=\"{label}\"}} {seconds}\n\
                 loggr_web_store_query_duration_seconds_count{{query=\"{label}\"}} {count}"
            );
        }
        out.push_str(
            "# HELP loggr_web_store_query_errors_total Store queries that failed, by kind.\n\
             # TYPE loggr_web_store_query_errors_total counter\n",
        );
        for query in StoreQuery::ALL {
            let errors = self.queries[query as usize].errors.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "loggr_web_store_query_errors_total{{query=\"{}\"}} {errors}",
                query.label()
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_bounded_series() {
        let metrics = WebMetrics::default();
        metrics.request(Some("/events/{id}"), 200);
        metrics.request(Some("/events/{id}"), 204);
        metrics.request(None, 404);
        metrics.store_query(StoreQuery::Event, Duration::from_millis(1500), true);
        let text = metrics.render(2);
        assert!(
            text.contains("loggr_web_http_requests_total{route=\"/events/{id}\",status=\"2xx\"} 2"),
            "{text}"
        );
        assert!(text.contains("{route=\"unmatched\",status=\"4xx\"} 1"));
        assert!(text.contains("loggr_web_sessions_open 2"));
        assert!(text.contains("loggr_web_store_query_duration_seconds_sum{query=\"event\"} 1.5"));
        assert!(text.contains("loggr_web_store_query_duration_seconds_count{query=\"event\"} 1"));
        assert!(text.contains("loggr_web_store_query_errors_total{query=\"event\"} 1"));
        assert!(text.contains("loggr_web_store_query_errors_total{query=\"events\"} 0"));
    }
}
