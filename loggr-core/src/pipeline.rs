//! The pipeline: sources → filter stage → fan-out → sink runners, joined by bounded channels.
//!
//! ```text
//!  source ─┐                      ┌─▶ [queue] ─▶ sink runner A ─▶ sink A
//!  source ─┼─▶ [queue] ─▶ filters ┤
//!  source ─┘   (bounded)  (N      └─▶ [queue] ─▶ sink runner B ─▶ sink B
//!                          workers,   (bounded; each event forked per sink)
//!                          order kept)
//! ```
//!
//! Every queue holds at most [`PipelineOptions::channel_capacity`] batches, so a stalled sink
//! fills the queues and then stops the sources: memory stays bounded and, with acknowledging
//! sources, the senders wait.
//!
//! Shutdown (the token passed to [`Pipeline::run`]): sources stop reading and wait for their
//! outstanding acknowledgements; everything in flight drains to the sinks; after the grace
//! period whatever is still unresolved is abandoned (its tokens resolve as Retry, so acking
//! upstreams resend it).

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::ack::AckToken;
use crate::config::{ConfigError, PipelineConfig, PipelineOptions};
use crate::envelope::{Batch, Envelope};
use crate::filter::{apply_chain, Filter, Verdict, FILTER_FAILURE_TAG};
use crate::metrics::{ComponentKind, ComponentMetrics, Metrics};
use crate::packer::{Packer, PackerCondition};
use crate::registry::{BuildContext, Registry};
use crate::sink::{Sink, SinkOptions, SinkRunner};
use crate::source::{Emitter, Source, SourceContext, SourceError};

/// The pipeline stopped because of a failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A source failed; the rest of the pipeline was shut down gracefully.
    #[error("source `{name}` failed: {source}")]
    Source {
        /// The source's name.
        name: String,
        /// Its error.
        #[source]
        source: SourceError,
    },
    /// A task panicked or was aborted.
    #[error("pipeline task `{0}` ended abnormally")]
    Task(String),
}

/// A named sink: its writers (one instance each) and its runner settings.
type SinkEntry = (String, Vec<Box<dyn Sink>>, SinkOptions);

/// Assembles a pipeline in code.
///
/// ```
/// use loggr_core::test_util::{CollectingSink, MemorySource};
/// use loggr_core::{CancellationToken, Event, Pipeline};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (source, outcomes) = MemorySource::new(vec![Event::new("hello")], 1);
/// let sink = CollectingSink::new();
/// Pipeline::builder()
///     .source("memory", source)
///     .sink("collect", sink.clone())
///     .build()?
///     .run(CancellationToken::new())
///     .await?;
/// assert_eq!(sink.events()[0].message_str(), "hello");
/// assert!(outcomes.all_delivered());
/// # Ok(()) }
/// ```
#[derive(Default)]
#[must_use]
pub struct PipelineBuilder {
    sources: Vec<(String, Box<dyn Source>)>,
    filters: Vec<Box<dyn Filter>>,
    sinks: Vec<SinkEntry>,
    packers: Vec<(String, Box<dyn Packer>, Option<PackerCondition>)>,
    options: PipelineOptions,
    metrics: Option<Arc<Metrics>>,
}

impl PipelineBuilder {
    /// Puts a packer between the named source and the filters; `condition` selects the
    /// events it applies to (`None`: all), the others pass straight through.
    pub fn packer(
        mut self,
        source: impl Into<String>,
        packer: Box<dyn Packer>,
        condition: Option<PackerCondition>,
    ) -> Self {
        self.packers.push((source.into(), packer, condition));
        self
    }

    /// Adds a source.
    pub fn source(self, name: impl Into<String>, source: impl Source) -> Self {
        self.boxed_source(name, Box::new(source))
    }

    /// Adds a boxed source.
    pub fn boxed_source(mut self, name: impl Into<String>, source: Box<dyn Source>) -> Self {
        self.sources.push((name.into(), source));
        self
    }

    /// Appends a filter to the chain.
    pub fn filter(self, filter: impl Filter) -> Self {
        self.boxed_filter(Box::new(filter))
    }

    /// Appends a boxed filter to the chain.
    pub fn boxed_filter(mut self, filter: Box<dyn Filter>) -> Self {
        self.filters.push(filter);
        self
    }

    /// Adds a sink with the default batching and retry settings.
    pub fn sink(self, name: impl Into<String>, sink: impl Sink) -> Self {
        self.boxed_sink(name, Box::new(sink), SinkOptions::default())
    }

    /// Adds a sink with its own batching and retry settings.
    pub fn sink_with(self, name: impl Into<String>, sink: impl Sink, options: SinkOptions) -> Self {
        self.boxed_sink(name, Box::new(sink), options)
    }

    /// Adds a boxed sink.
    pub fn boxed_sink(
        self,
        name: impl Into<String>,
        sink: Box<dyn Sink>,
        options: SinkOptions,
    ) -> Self {
        self.sink_writers(name, vec![sink], options)
    }

    /// Adds one sink written by several instances at once (its `writers`), each taking the
    /// next batch when its previous write is done. Every instance must allow it
    /// ([`Sink::concurrent_writers`]); [`build`](Self::build) checks that there are
    /// `options.writers` of them.
    pub fn sink_writers(
        mut self,
        name: impl Into<String>,
        writers: Vec<Box<dyn Sink>>,
        options: SinkOptions,
    ) -> Self {
        self.sinks.push((name.into(), writers, options));
        self
    }

    /// Sets the pipeline options.
    pub fn options(mut self, options: PipelineOptions) -> Self {
        self.options = options;
        self
    }

    /// Uses this metrics registry (for example one a `/metrics` endpoint serves).
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Builds the components a configuration names, with the plugins of `registry`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the component (and field) at fault.
    pub fn from_config(config: PipelineConfig, registry: &Registry) -> Result<Self, ConfigError> {
        let metrics = Metrics::new();
        let mut builder = PipelineBuilder::default()
            .options(config.pipeline)
            .metrics(metrics.clone());
        let label = |kind: &str, index: usize, c: &crate::config::ComponentConfig| match &c.name {
            Some(name) => format!("{kind}[{index}] (type `{}`, name `{name}`)", c.type_name),
            None => format!("{kind}[{index}] (type `{}`)", c.type_name),
        };
        let names = |list: &[crate::config::ComponentConfig]| -> Vec<String> {
            list.iter()
                .enumerate()
                .map(|(index, c)| match &c.name {
                    Some(name) => name.clone(),
                    None if list.iter().filter(|o| o.type_name == c.type_name).count() == 1 => {
                        c.type_name.clone()
                    }
                    None => format!("{}_{index}", c.type_name),
                })
                .collect()
        };
        let unknown =
            |component: String, kind, type_name: &str, known: Vec<&str>| ConfigError::UnknownType {
                component,
                kind,
                type_name: type_name.to_owned(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            };
        let cx = |name: &str| BuildContext {
            name: name.to_owned(),
            metrics: metrics.clone(),
        };

        let source_names = names(&config.sources);
        for (index, (component, name)) in config.sources.into_iter().zip(source_names).enumerate() {
            let at = label("sources", index, &component);
            let plugin = registry.source(&component.type_name).ok_or_else(|| {
                unknown(
                    at.clone(),
                    "source",
                    &component.type_name,
                    registry.source_types().collect(),
                )
            })?;
            let source = plugin.build(&at, component.table, &cx(&name))?;
            builder = builder.boxed_source(name, source);
        }
        let filter_names = names(&config.filters);
        for (index, (component, name)) in config.filters.into_iter().zip(filter_names).enumerate() {
            let at = label("filters", index, &component);
            let plugin = registry.filter(&component.type_name).ok_or_else(|| {
                unknown(
                    at.clone(),
                    "filter",
                    &component.type_name,
                    registry.filter_types().collect(),
                )
            })?;
            builder = builder.boxed_filter(plugin.build(&at, component.table, &cx(&name))?);
        }
        let sink_names = names(&config.sinks);
        for (index, (mut component, name)) in config.sinks.into_iter().zip(sink_names).enumerate() {
            let at = label("sinks", index, &component);
            let plugin = registry.sink(&component.type_name).ok_or_else(|| {
                unknown(
                    at.clone(),
                    "sink",
                    &component.type_name,
                    registry.sink_types().collect(),
                )
            })?;
            let mut runner_table = toml::Table::new();
            for key in ["batch", "retry", "writers"] {
                if let Some(value) = component.table.remove(key) {
                    runner_table.insert(key.to_owned(), value);
                }
            }
            let options: SinkOptions = crate::config::deserialize_component(&at, runner_table)?;
            // No second instance of a sink that takes no concurrent writers: `build` refuses
            // it before it would open its target again.
            let mut writers: Vec<Box<dyn Sink>> = Vec::with_capacity(options.writers);
            while writers.len() < options.writers
                && writers.iter().all(|sink| sink.concurrent_writers())
            {
                writers.push(plugin.build(&at, component.table.clone(), &cx(&name))?);
            }
            builder = builder.sink_writers(name, writers, options);
        }
        for (index, mut component) in config.packers.into_iter().enumerate() {
            let at = label("packers", index, &component);
            let plugin = registry.packer(&component.type_name).ok_or_else(|| {
                unknown(
                    at.clone(),
                    "packer",
                    &component.type_name,
                    registry.packer_types().collect(),
                )
            })?;
            let source = match component.table.remove("source") {
                Some(toml::Value::String(source)) => source,
                _ => {
                    return Err(ConfigError::Field {
                        component: at,
                        field: "source".into(),
                        message: "missing: the name of the source whose events this packer merges"
                            .into(),
                    })
                }
            };
            let (packer, condition) = plugin.build(&at, component.table, &cx(&source))?;
            builder = builder.packer(source, packer, condition);
        }
        Ok(builder)
    }

    /// Checks the assembly and returns the runnable pipeline.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] without a source or a sink, with a duplicate name, or with a
    /// zero capacity.
    pub fn build(self) -> Result<Pipeline, ConfigError> {
        if self.sources.is_empty() {
            return Err(ConfigError::Invalid(
                "a pipeline needs at least one source".into(),
            ));
        }
        if self.sinks.is_empty() {
            return Err(ConfigError::Invalid(
                "a pipeline needs at least one sink".into(),
            ));
        }
        if self.options.channel_capacity == 0 {
            return Err(ConfigError::Invalid(
                "`channel_capacity` must be at least 1".into(),
            ));
        }
        for (kind, names) in [
            (
                "source",
                self.sources
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            ),
            (
                "sink",
                self.sinks.iter().map(|(n, _, _)| n.as_str()).collect(),
            ),
        ] {
            let mut seen = HashSet::new();
            for name in names {
                if !seen.insert(name) {
                    return Err(ConfigError::Invalid(format!(
                        "two {kind}s are named `{name}`"
                    )));
                }
            }
        }
        let mut packed = HashSet::new();
        for (source, _, _) in &self.packers {
            if !self.sources.iter().any(|(name, _)| name == source) {
                return Err(ConfigError::Invalid(format!(
                    "a packer names source `{source}`, which does not exist"
                )));
            }
            if !packed.insert(source.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "source `{source}` has two packers"
                )));
            }
        }
        for (name, writers, options) in &self.sinks {
            if options.batch.max_events == 0 || options.batch.max_bytes == 0 {
                return Err(ConfigError::Invalid(format!(
                    "sink `{name}`: batch limits must be at least 1"
                )));
            }
            if options.writers > 1 && !writers.iter().all(|sink| sink.concurrent_writers()) {
                return Err(ConfigError::Invalid(format!(
                    "sink `{name}`: this sink does not take concurrent writers; set `writers = 1`"
                )));
            }
            if options.writers == 0 || writers.len() != options.writers {
                return Err(ConfigError::Invalid(format!(
                    "sink `{name}`: `writers` is {} but {} instances were given (at least 1)",
                    options.writers,
                    writers.len()
                )));
            }
        }
        Ok(Pipeline {
            sources: self.sources,
            filters: self.filters,
            sinks: self.sinks,
            packers: self.packers,
            options: self.options,
            metrics: self.metrics.unwrap_or_default(),
        })
    }
}

/// A pipeline ready to run.
pub struct Pipeline {
    sources: Vec<(String, Box<dyn Source>)>,
    filters: Vec<Box<dyn Filter>>,
    sinks: Vec<SinkEntry>,
    packers: Vec<(String, Box<dyn Packer>, Option<PackerCondition>)>,
    options: PipelineOptions,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field(
                "sources",
                &self.sources.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field(
                "filters",
                &self.filters.iter().map(|f| f.name()).collect::<Vec<_>>(),
            )
            .field(
                "sinks",
                &self.sinks.iter().map(|(n, _, _)| n).collect::<Vec<_>>(),
            )
            .field("options", &self.options)
            .finish()
    }
}

impl Pipeline {
    /// Starts assembling a pipeline.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    /// The counters of every component.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Runs until every source is done (or `shutdown` fires and the pipeline drained, or the
    /// grace period ran out).
    ///
    /// # Errors
    ///
    /// [`PipelineError::Source`] when a source failed (the others were shut down gracefully).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), PipelineError> {
        let Pipeline {
            sources,
            filters,
            sinks,
            mut packers,
            options,
            metrics,
        } = self;
        let capacity = options.channel_capacity;
        let stop_sources = shutdown.child_token();
        let abort = CancellationToken::new();
        let mut tasks: JoinSet<TaskEnd> = JoinSet::new();

        // Sinks, each behind its own bounded queue.
        let mut sink_inputs = Vec::with_capacity(sinks.len());
        for (name, writers, sink_options) in sinks {
            let (sender, receiver) = mpsc::channel::<Batch>(capacity);
            sink_inputs.push(sender);
            let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
            let component = metrics.component(ComponentKind::Sink, &name);
            let name: Arc<str> = Arc::from(name.as_str());
            for sink in writers {
                let runner = SinkRunner {
                    metrics: component.clone(),
                    name: name.clone(),
                    sink,
                    options: sink_options.clone(),
                    abort: abort.clone(),
                };
                let receiver = receiver.clone();
                tasks.spawn(async move {
                    runner.run(receiver).await;
                    TaskEnd::Done
                });
            }
        }

        // Fan-out, when there is more than one sink.
        let to_sinks = if sink_inputs.len() == 1 {
            sink_inputs
                .pop()
                .ok_or_else(|| PipelineError::Task("fan-out".into()))?
        } else {
            let (sender, receiver) = mpsc::channel::<Batch>(capacity);
            tasks.spawn(async move {
                fan_out(receiver, sink_inputs).await;
                TaskEnd::Done
            });
            sender
        };

        // The filter stage.
        let from_sources = if filters.is_empty() {
            to_sinks
        } else {
            let (sender, receiver) = mpsc::channel::<Batch>(capacity);
            let stage = FilterStage {
                filters: Arc::new(filters),
                workers: options.effective_filter_workers(),
                metrics: metrics.component(ComponentKind::Filter, "filters"),
            };
            tasks.spawn(async move {
                stage.run(receiver, to_sinks).await;
                TaskEnd::Done
            });
            sender
        };

        for (name, source) in sources {
            // A packed source emits into its packer's own queue; the packer feeds the pipeline.
            let sender = match packers.iter().position(|(packed, _, _)| *packed == name) {
                Some(at) => {
                    let (_, packer, condition) = packers.swap_remove(at);
                    let (sender, receiver) = mpsc::channel::<Batch>(capacity);
                    let downstream = from_sources.clone();
                    tasks.spawn(async move {
                        crate::packer::run_packer_stage(packer, condition, receiver, downstream)
                            .await;
                        TaskEnd::Done
                    });
                    sender
                }
                None => from_sources.clone(),
            };
            let emitter = Emitter::new(sender, metrics.component(ComponentKind::Source, &name));
            let cx =
                SourceContext::new(name.as_str(), emitter, stop_sources.clone(), abort.clone());
            tasks.spawn(async move {
                match source.run(cx).await {
                    Ok(()) => TaskEnd::Done,
                    Err(error) => TaskEnd::SourceFailed(name, error),
                }
            });
        }
        drop(from_sources);

        let mut first_error = None;
        let mut phase = Phase::Running;
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let timer = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                joined = tasks.join_next() => match joined {
                    None => break,
                    Some(Ok(TaskEnd::Done)) => {}
                    Some(Ok(TaskEnd::SourceFailed(name, error))) => {
                        tracing::error!(source = %name, %error, "Source failed; shutting the pipeline down");
                        stop_sources.cancel();
                        first_error.get_or_insert(PipelineError::Source { name, source: error });
                    }
                    Some(Err(join_error)) => {
                        tracing::error!(error = %join_error, "Pipeline task ended abnormally");
                        first_error.get_or_insert(PipelineError::Task(join_error.to_string()));
                    }
                },
                () = stop_sources.cancelled(), if phase == Phase::Running => {
                    tracing::info!(grace_ms = options.grace_period.as_millis() as u64, "Shutting down: draining");
                    phase = Phase::Draining;
                    deadline = Some(tokio::time::Instant::now() + options.grace_period);
                }
                () = timer => match phase {
                    Phase::Draining => {
                        tracing::warn!("Grace period over: abandoning unacknowledged events (they will be resent)");
                        abort.cancel();
                        phase = Phase::Aborting;
                        deadline = Some(tokio::time::Instant::now() + Duration::from_secs(1));
                    }
                    Phase::Running | Phase::Aborting => {
                        tasks.abort_all();
                        deadline = None;
                    }
                },
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Draining,
    Aborting,
}

enum TaskEnd {
    Done,
    SourceFailed(String, SourceError),
}

/// Copies each batch to every sink, forking each token so that an event counts as delivered
/// only when every sink took it.
async fn fan_out(mut input: mpsc::Receiver<Batch>, outputs: Vec<mpsc::Sender<Batch>>) {
    while let Some(batch) = input.recv().await {
        let Some((first, rest)) = outputs.split_first() else {
            return;
        };
        for output in rest {
            let copy: Batch = batch
                .iter()
                .map(|envelope| Envelope::new(envelope.event.clone(), envelope.ack.fork()))
                .collect();
            if output.send(copy).await.is_err() {
                tracing::error!("A sink queue closed; its copies count as not delivered");
            }
        }
        if first.send(batch).await.is_err() {
            tracing::error!("A sink queue closed; its copies count as not delivered");
        }
    }
}

/// Applies the filter chain on several workers, putting batches back in arrival order.
struct FilterStage {
    filters: Arc<Vec<Box<dyn Filter>>>,
    workers: usize,
    metrics: Arc<ComponentMetrics>,
}

impl FilterStage {
    async fn run(self, mut input: mpsc::Receiver<Batch>, output: mpsc::Sender<Batch>) {
        if self.workers <= 1 {
            while let Some(batch) = input.recv().await {
                let batch = filter_batch(&self.filters, batch, &self.metrics);
                if output.send(batch).await.is_err() {
                    return;
                }
            }
            return;
        }
        let filters = self.filters.clone();
        let metrics = self.metrics.clone();
        // `buffered` keeps up to `workers` batches in flight on the runtime's threads and
        // yields them in the order they arrived: a source's order survives the parallelism.
        let mut processed = futures::stream::poll_fn(move |cx| input.poll_recv(cx))
            .map(|batch| {
                let filters = filters.clone();
                let metrics = metrics.clone();
                tokio::spawn(async move { filter_batch(&filters, batch, &metrics) })
            })
            .buffered(self.workers);
        while let Some(joined) = processed.next().await {
            match joined {
                Ok(batch) => {
                    if output.send(batch).await.is_err() {
                        return;
                    }
                }
                // Its tokens were dropped with it: the upstream will resend.
                Err(error) => tracing::error!(%error, "A filter worker failed"),
            }
        }
    }
}

fn filter_batch(
    filters: &[Box<dyn Filter>],
    mut batch: Batch,
    metrics: &ComponentMetrics,
) -> Batch {
    let before = batch.len();
    batch.retain_mut(|envelope| {
        let verdict = std::panic::catch_unwind(AssertUnwindSafe(|| {
            apply_chain(filters, &mut envelope.event)
        }));
        match verdict {
            Ok(Verdict::Keep) => true,
            Ok(Verdict::Discard) => {
                std::mem::replace(&mut envelope.ack, AckToken::detached()).discard();
                false
            }
            Err(_) => {
                tracing::error!("A filter panicked on an event; keeping the event, tagged");
                envelope.event.add_tag(FILTER_FAILURE_TAG);
                envelope
                    .event
                    .set_field("filter_error", "a filter panicked");
                true
            }
        }
    });
    ComponentMetrics::add(&metrics.received, before as u64);
    ComponentMetrics::add(&metrics.discarded, (before - batch.len()) as u64);
    batch
}
