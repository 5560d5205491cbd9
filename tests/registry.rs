//! The facade's registry holds every bundled plugin, even though this test names none of their
//! types in code (the linker pitfall `loggr::registry()` guards against).

#[test]
fn every_bundled_plugin_is_registered() {
    let registry = loggr::registry().expect("no duplicate plugin names");
    registry
        .require(&["stdin"], &[], &["file", "stdout", "null"])
        .expect("bundled plugins linked");
}

#[test]
fn a_configured_pipeline_builds_with_bundled_plugins() {
    let registry = loggr::registry().unwrap();
    let config = loggr::PipelineConfig::from_toml(
        r#"
        [[sources]]
        type = "stdin"
        max_line_bytes = 1024
        [[sinks]]
        type = "file"
        path = "/tmp/loggr-registry-test.jsonl"
        fsync = "never"
        [[sinks]]
        type = "null"
        "#,
    )
    .unwrap();
    let pipeline = loggr::PipelineBuilder::from_config(config, &registry)
        .unwrap()
        .build()
        .unwrap();
    let shown = format!("{pipeline:?}");
    assert!(
        shown.contains("\"file\"") && shown.contains("\"null\"") && shown.contains("\"stdin\""),
        "{shown}"
    );
    let error =
        loggr::PipelineConfig::from_toml("[[sinks]]\ntype = \"file\"\nfsync = \"sometimes\"\n")
            .map_err(|e| e.to_string())
            .and_then(|config| {
                loggr::PipelineBuilder::from_config(config, &registry)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .unwrap_err();
    assert!(
        error.contains("sinks[0] (type `file`): field `fsync`: unknown variant `sometimes`"),
        "{error}"
    );
}

#[test]
fn the_example_configuration_builds() {
    let registry = loggr::registry().unwrap();
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/config/syslog_server.toml");
    let config = loggr::PipelineConfig::from_file(&path).unwrap();
    assert_eq!(
        config.metrics.as_ref().map(|m| m.address.port()),
        Some(9464)
    );
    let pipeline = loggr::PipelineBuilder::from_config(config, &registry)
        .unwrap()
        .build()
        .unwrap();
    let shown = format!("{pipeline:?}");
    for name in ["\"relp\"", "\"tcp\"", "\"udp\"", "\"archive\""] {
        assert!(shown.contains(name), "{name} in {shown}");
    }
}

#[test]
fn packers_are_configured_per_source() {
    let registry = loggr::registry().unwrap();
    assert_eq!(
        registry.packer_types().collect::<Vec<_>>(),
        ["merge_by_format", "merge_by_time"]
    );
    let build = |packers: &str| {
        let text = format!("[[sources]]\ntype = \"stdin\"\n[[sinks]]\ntype = \"null\"\n{packers}");
        let config = loggr::PipelineConfig::from_toml(&text).map_err(|e| e.to_string())?;
        loggr::PipelineBuilder::from_config(config, &registry)
            .and_then(|builder| builder.build())
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    build("[[packers]]\ntype = \"merge_by_format\"\nsource = \"stdin\"\nstart_patterns = ['^\\d']\napp_name = \"^java$\"\n")
        .unwrap();
    build("[[packers]]\ntype = \"merge_by_time\"\nsource = \"stdin\"\nwindow = \"250ms\"\n")
        .unwrap();
    let error = build("[[packers]]\ntype = \"merge_by_time\"\nsource = \"nope\"\n").unwrap_err();
    assert_eq!(
        error,
        "invalid pipeline: a packer names source `nope`, which does not exist"
    );
    let error = build("[[packers]]\ntype = \"merge_by_time\"\n").unwrap_err();
    assert!(
        error.starts_with("packers[0] (type `merge_by_time`): field `source`: missing"),
        "{error}"
    );
    let error = build(
        "[[packers]]\ntype = \"merge_by_format\"\nsource = \"stdin\"\nstart_patterns = ['(']\n",
    )
    .unwrap_err();
    assert!(
        error.contains("packers[0] (type `merge_by_format`): regex parse error"),
        "{error}"
    );
}
