//! Building pipelines from TOML through the plugin registry: plugins found by name, errors that
//! name the component and the field, duplicate registrations refused.

use loggr_core::registry::{SinkPlugin, SourcePlugin};
use loggr_core::test_util::{CollectingSink, MemorySource};
use loggr_core::{
    register_filter, register_sink, register_source, BoxError, BuildContext, CancellationToken,
    Event, Filter, FilterConfig, FilterError, Pipeline, PipelineConfig, Registry, Sink, SinkConfig,
    Source, SourceConfig, Verdict,
};
use serde::Deserialize;

/// Emits `count` numbered events.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CountConfig {
    count: usize,
    #[serde(default = "default_prefix")]
    prefix: String,
}

fn default_prefix() -> String {
    "event".into()
}

impl SourceConfig for CountConfig {
    fn build(self, _: &BuildContext) -> Result<Box<dyn Source>, BoxError> {
        let events = loggr_core::test_util::numbered_events(&self.prefix, self.count);
        Ok(Box::new(MemorySource::new(events, 1).0))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagConfig {
    tag: String,
}

struct TagFilter(String);

impl Filter for TagFilter {
    fn name(&self) -> &str {
        "tag"
    }
    fn apply(&self, event: &mut Event) -> Result<Verdict, FilterError> {
        event.add_tag(self.0.clone());
        Ok(Verdict::Keep)
    }
}

impl FilterConfig for TagConfig {
    fn build(self, _: &BuildContext) -> Result<Box<dyn Filter>, BoxError> {
        if self.tag.is_empty() {
            return Err("`tag` must not be empty".into());
        }
        Ok(Box::new(TagFilter(self.tag)))
    }
}

static COLLECTED: std::sync::OnceLock<CollectingSink> = std::sync::OnceLock::new();

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CollectConfig {}

impl SinkConfig for CollectConfig {
    fn build(self, _: &BuildContext) -> Result<Box<dyn Sink>, BoxError> {
        Ok(Box::new(COLLECTED.get_or_init(CollectingSink::new).clone()))
    }
}

register_source!("test_count", CountConfig);
register_filter!("test_tag", TagConfig);
register_sink!("test_collect", CollectConfig);

fn build(text: &str) -> Result<Pipeline, loggr_core::ConfigError> {
    let registry = Registry::from_inventory().expect("no duplicate plugins");
    let config = PipelineConfig::from_toml(text)?;
    loggr_core::PipelineBuilder::from_config(config, &registry)?.build()
}

#[tokio::test]
async fn a_pipeline_built_from_toml_runs() {
    std::env::set_var("LOGGR_TEST_TAG", "from-env");
    let pipeline = build(
        r#"
        [pipeline]
        filter_workers = 1
        [[sources]]
        type = "test_count"
        count = 5
        prefix = "msg"
        [[filters]]
        type = "test_tag"
        tag = "${LOGGR_TEST_TAG}"
        [[sinks]]
        type = "test_collect"
        batch = { max_events = 2, linger = "5ms" }
        retry = { max_attempts = 3 }
        "#,
    )
    .unwrap();
    pipeline.run(CancellationToken::new()).await.unwrap();
    let events = COLLECTED.get().unwrap().events();
    assert_eq!(events.len(), 5);
    assert_eq!(events[4].message_str(), "msg 4");
    assert!(events.iter().all(|e| e.has_tag("from-env")));
}

#[test]
fn unknown_types_list_the_known_ones() {
    let error = build("[[sources]]\ntype = \"tpc\"\n[[sinks]]\ntype = \"test_collect\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("sources[0] (type `tpc`): unknown source type `tpc` (known: "),
        "{error}"
    );
    assert!(error.contains("test_count"), "{error}");
}

#[test]
fn field_errors_name_the_component_and_the_field() {
    let error = build(
        "[[sources]]\ntype = \"test_count\"\nname = \"gen\"\ncount = \"many\"\n[[sinks]]\ntype = \"test_collect\"\n",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        error,
        "sources[0] (type `test_count`, name `gen`): field `count`: invalid type: string \"many\", expected usize"
    );
    let error = build("[[sources]]\ntype = \"test_count\"\ncount = 1\ncolour = 2\n[[sinks]]\ntype = \"test_collect\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("sources[0] (type `test_count`): field `colour`: unknown field `colour`"),
        "{error}"
    );
    let error = build("[[sources]]\ntype = \"test_count\"\ncount = 1\n[[sinks]]\ntype = \"test_collect\"\nbatch = { max_events = \"x\" }\n")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("sinks[0] (type `test_collect`): field `batch.max_events`"),
        "{error}"
    );
    let error = build("[[sources]]\ntype = \"test_count\"\ncount = 1\n[[sinks]]\ntype = \"test_collect\"\nretry = { timeout = \"10\" }\n")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("field `retry.timeout`: duration `10` needs a unit"),
        "{error}"
    );
}

#[test]
fn build_errors_name_the_component() {
    let error = build(
        "[[sources]]\ntype = \"test_count\"\ncount = 1\n[[filters]]\ntype = \"test_tag\"\ntag = \"\"\n[[sinks]]\ntype = \"test_collect\"\n",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        error,
        "filters[0] (type `test_tag`): `tag` must not be empty"
    );
}

#[test]
fn writers_build_one_instance_each_and_need_a_sink_that_takes_them() {
    let config = |writers: &str| {
        format!(
            "[[sources]]\ntype = \"test_count\"\ncount = 1\n[[sinks]]\ntype = \"test_collect\"\nwriters = {writers}\n"
        )
    };
    // `test_collect` (a CollectingSink) does not take concurrent writers.
    let error = build(&config("2")).unwrap_err().to_string();
    assert_eq!(
        error,
        "invalid pipeline: sink `test_collect`: this sink does not take concurrent writers; set `writers = 1`"
    );
    let error = build(&config("0")).unwrap_err().to_string();
    assert!(error.contains("`writers` is 0"), "{error}");
    assert!(build(&config("1")).is_ok());
}

#[test]
fn missing_variables_and_toml_syntax_errors_give_the_line() {
    let error = build("[[sources]]\ntype = \"test_count\"\ncount = ${NO_SUCH_LOGGR_VAR}\n")
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("line 3: environment variable `NO_SUCH_LOGGR_VAR` is not set"),
        "{error}"
    );
    let error = build("[[sources]\ntype = 1\n").unwrap_err().to_string();
    assert!(error.contains("line 1"), "{error}");
}

#[test]
fn duplicate_registrations_are_refused() {
    static FIRST: SinkPlugin = SinkPlugin::of::<CollectConfig>("twin", "crate_a::sink");
    static SECOND: SinkPlugin = SinkPlugin::of::<CollectConfig>("twin", "crate_b::sink");
    let mut registry = Registry::default();
    registry.add_sink(&FIRST).unwrap();
    let error = registry.add_sink(&SECOND).unwrap_err().to_string();
    assert_eq!(
        error,
        "sink type `twin` is registered twice: by crate_a::sink and by crate_b::sink"
    );
    // The same name may be used by plugins of different kinds.
    static SOURCE: SourcePlugin = SourcePlugin::of::<CountConfig>("twin", "crate_a::source");
    registry.add_source(&SOURCE).unwrap();
}

#[test]
fn require_reports_unlinked_plugins() {
    let registry = Registry::from_inventory().unwrap();
    registry
        .require(&["test_count"], &["test_tag"], &["test_collect"])
        .unwrap();
    let error = registry
        .require(&[], &[], &["postgres_nowhere"])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("sink type `postgres_nowhere` is not registered"),
        "{error}"
    );
}
