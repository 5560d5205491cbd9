//! Counters per component, rendered in the Prometheus text format for the daemons' `/metrics`.
//!
//! Label sets stay bounded: one series per component and counter, never per host or per event.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The kind of a pipeline component, used as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ComponentKind {
    /// A source.
    Source,
    /// The filter stage.
    Filter,
    /// A sink.
    Sink,
}

impl ComponentKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Source => "source",
            ComponentKind::Filter => "filter",
            ComponentKind::Sink => "sink",
        }
    }
}

/// Event counters of one component. Every field is a monotonic counter.
#[derive(Debug, Default)]
pub struct ComponentMetrics {
    /// Events that entered the component (a source: emitted; a sink: handed to it).
    pub received: AtomicU64,
    /// Frames or events that could not be parsed.
    pub parse_failures: AtomicU64,
    /// Events a sink durably took, or a source saw acknowledged as delivered.
    pub delivered: AtomicU64,
    /// Events discarded on purpose by filters.
    pub discarded: AtomicU64,
    /// Events rejected for good.
    pub rejected: AtomicU64,
    /// Events given back for a retry.
    pub retried: AtomicU64,
    /// Failed write attempts of a sink (each retry counts).
    pub write_errors: AtomicU64,
    /// Open connections (a gauge: goes up and down). Listeners maintain it through
    /// [`ComponentMetrics::open_connection`], which also lists each connection.
    pub connections: AtomicU64,
    /// The connections listed for `/connections` (see [`crate::connections`]).
    pub(crate) clients: crate::connections::ConnectionTable,
}

impl ComponentMetrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    fn series(&self) -> [(&'static str, &'static str, u64); 8] {
        let get = Self::get;
        [
            (
                "loggr_events_received_total",
                "counter",
                get(&self.received),
            ),
            (
                "loggr_parse_failures_total",
                "counter",
                get(&self.parse_failures),
            ),
            (
                "loggr_events_delivered_total",
                "counter",
                get(&self.delivered),
            ),
            (
                "loggr_events_discarded_total",
                "counter",
                get(&self.discarded),
            ),
            (
                "loggr_events_rejected_total",
                "counter",
                get(&self.rejected),
            ),
            ("loggr_events_retried_total", "counter", get(&self.retried)),
            (
                "loggr_write_errors_total",
                "counter",
                get(&self.write_errors),
            ),
            ("loggr_open_connections", "gauge", get(&self.connections)),
        ]
    }
}

/// One component's counters, with its kind and name.
pub(crate) type Registered = (ComponentKind, Arc<str>, Arc<ComponentMetrics>);

/// All components' counters of one process.
#[derive(Debug, Default)]
pub struct Metrics {
    components: Mutex<Vec<Registered>>,
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// The counters of a component, created on first use.
    pub fn component(&self, kind: ComponentKind, name: &str) -> Arc<ComponentMetrics> {
        let mut components = match self.components.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((_, _, metrics)) = components
            .iter()
            .find(|(k, n, _)| *k == kind && &**n == name)
        {
            return metrics.clone();
        }
        let metrics = Arc::new(ComponentMetrics::default());
        components.push((kind, Arc::from(name), metrics.clone()));
        metrics
    }

    /// Every component's counters, in registration order (a copy: the lock is not held).
    pub(crate) fn registered(&self) -> Vec<Registered> {
        match self.components.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The Prometheus text exposition of every counter.
    pub fn render_prometheus(&self) -> String {
        let components = self.registered();
        let mut out = String::new();
        let names = ComponentMetrics::default().series();
        for (index, (metric, kind, _)) in names.iter().enumerate() {
            let _ = writeln!(out, "# TYPE {metric} {kind}");
            for (component_kind, name, metrics) in &components {
                let value = metrics.series()[index].2;
                let _ = writeln!(
                    out,
                    "{metric}{{component_kind=\"{}\",component=\"{}\"}} {value}",
                    component_kind.as_str(),
                    escape_label(name)
                );
            }
        }
        out
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_series_per_component_and_counter() {
        let metrics = Metrics::new();
        let sink = metrics.component(ComponentKind::Sink, "pg\"main");
        ComponentMetrics::add(&sink.delivered, 3);
        let again = metrics.component(ComponentKind::Sink, "pg\"main");
        ComponentMetrics::add(&again.delivered, 2);
        let text = metrics.render_prometheus();
        assert!(
            text.contains(
                "loggr_events_delivered_total{component_kind=\"sink\",component=\"pg\\\"main\"} 5"
            ),
            "{text}"
        );
        assert!(text.contains("# TYPE loggr_open_connections gauge"));
    }
}
