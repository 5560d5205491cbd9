//! The `fallback` sink: write to a primary sink, and to a secondary one when the primary fails
//! — pyloggr's "RabbitMQ, or the Redis spool when RabbitMQ is down".
//!
//! ```toml
//! [[sinks]]
//! type = "fallback"
//! name = "out"
//! probe_interval = "5s"
//! primary = { type = "amqp", url = "amqp://127.0.0.1:5672/%2f", exchange = "loggr.syslog" }
//! secondary = { type = "redis_spool", key = "loggr:spool" }
//! ```
//!
//! A batch goes to the primary. If the primary fails (transiently or permanently: a returned
//! or nacked message is a failure too), the same batch goes to the secondary, and the primary is
//! skipped for `probe_interval` so a dead broker does not add a connect timeout to every batch;
//! after that, the next batch probes it again. Only when **both** fail does the write fail,
//! with a transient error: nothing is acknowledged upstream (RELP answers `500`, TCP stops
//! reading) until one of them is back.
//!
//! # Durability
//!
//! `Ok` means the primary's `Ok` or, failing that, the secondary's `Ok` (see each sink's own
//! `# Durability`). A batch is never acknowledged on the strength of neither.

use std::time::{Duration, Instant};

use serde::Deserialize;

use loggr_core::metrics::ComponentKind;
use loggr_core::{
    async_trait, BoxError, BuildContext, Event, Registry, Sink, SinkConfig, SinkError,
};

/// Configuration of the `fallback` sink.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackSinkConfig {
    /// The preferred sink: a sink table with its own `type`.
    pub primary: toml::Table,
    /// The sink that takes over when the primary fails: a sink table with its own `type`.
    pub secondary: toml::Table,
    /// After a primary failure, how long to send straight to the secondary before trying the
    /// primary again (default `5s`).
    #[serde(
        default = "default_probe_interval",
        with = "loggr_core::config::duration"
    )]
    pub probe_interval: Duration,
}

fn default_probe_interval() -> Duration {
    Duration::from_secs(5)
}

/// Writes to a primary sink, or to a secondary one when the primary fails.
pub struct FallbackSink {
    primary: Box<dyn Sink>,
    secondary: Box<dyn Sink>,
    probe_interval: Duration,
    primary_down_until: Option<Instant>,
    metrics: Option<std::sync::Arc<loggr_core::metrics::ComponentMetrics>>,
}

impl FallbackSink {
    /// Joins two sinks.
    pub fn new(primary: Box<dyn Sink>, secondary: Box<dyn Sink>, probe_interval: Duration) -> Self {
        FallbackSink {
            primary,
            secondary,
            probe_interval,
            primary_down_until: None,
            metrics: None,
        }
    }

    /// Whether the last batch went to the secondary because the primary is failing.
    pub fn primary_is_down(&self) -> bool {
        self.primary_down_until.is_some()
    }
}

#[async_trait]
impl Sink for FallbackSink {
    async fn write(&mut self, events: &[Event]) -> Result<(), SinkError> {
        let skip_primary = self
            .primary_down_until
            .is_some_and(|until| Instant::now() < until);
        let primary_error = if skip_primary {
            None
        } else {
            match self.primary.write(events).await {
                Ok(()) => {
                    if self.primary_down_until.take().is_some() {
                        tracing::info!("The primary sink is back; the secondary is no longer used");
                    }
                    return Ok(());
                }
                Err(error) => {
                    if self.primary_down_until.is_none() {
                        tracing::warn!(%error, "The primary sink failed; writing to the secondary");
                    }
                    self.primary_down_until = Some(Instant::now() + self.probe_interval);
                    Some(error)
                }
            }
        };
        match self.secondary.write(events).await {
            Ok(()) => {
                if let Some(metrics) = &self.metrics {
                    loggr_core::metrics::ComponentMetrics::add(
                        &metrics.delivered,
                        events.len() as u64,
                    );
                }
                Ok(())
            }
            Err(secondary) => {
                // The primary may have recovered while we were skipping it.
                if skip_primary {
                    if let Ok(()) = self.primary.write(events).await {
                        self.primary_down_until = None;
                        return Ok(());
                    }
                }
                let primary = primary_error
                    .map_or_else(|| "skipped (down)".to_owned(), |error| error.to_string());
                Err(SinkError::transient(format!(
                    "both sinks failed: primary: {primary}; secondary: {secondary}"
                )))
            }
        }
    }

    async fn close(&mut self) -> Result<(), SinkError> {
        let primary = self.primary.close().await;
        let secondary = self.secondary.close().await;
        primary.and(secondary)
    }
}

fn build_inner(
    role: &str,
    mut table: toml::Table,
    cx: &BuildContext,
) -> Result<Box<dyn Sink>, BoxError> {
    let type_name = match table.remove("type") {
        Some(toml::Value::String(name)) => name,
        _ => return Err(format!("`{role}` needs a `type` (a sink type name)").into()),
    };
    let registry = Registry::from_inventory()?;
    let plugin = registry
        .sink(&type_name)
        .ok_or_else(|| format!("`{role}`: unknown sink type `{type_name}`"))?;
    let inner_cx = BuildContext {
        name: format!("{}.{role}", cx.name),
        metrics: cx.metrics.clone(),
    };
    Ok(plugin.build(&inner_cx.name, table, &inner_cx)?)
}

impl SinkConfig for FallbackSinkConfig {
    fn build(self, cx: &BuildContext) -> Result<Box<dyn Sink>, BoxError> {
        let primary = build_inner("primary", self.primary, cx)?;
        let secondary = build_inner("secondary", self.secondary, cx)?;
        let mut sink = FallbackSink::new(primary, secondary, self.probe_interval);
        sink.metrics = Some(
            cx.metrics
                .component(ComponentKind::Sink, &format!("{}.secondary", cx.name)),
        );
        Ok(Box::new(sink))
    }
}

loggr_core::register_sink!("fallback", FallbackSinkConfig);

#[inline(never)]
pub(crate) fn link() {}
