//! The grok filter against the shared corpus' `grok-cases.jsonl`: every case, `legacy` with the
//! bundled definitions and `ecs-v1` with the corpus' ecs-v1 files (field references such as
//! `[process][pid]` become the field `process.pid`).

use std::path::PathBuf;

use loggr_core::{Event, Filter, Value};
use loggr_filters::grok::{Grok, GrokConfig, PatternBank};
use serde_json::Value as Json;

/// The shared corpus: `$LOGGR_SHARED_DIR/corpus`, else `../shared/corpus` next to the
/// workspace. Missing corpus = failure, never a silent skip.
fn corpus_dir() -> PathBuf {
    let shared = std::env::var_os("LOGGR_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let corpus = shared.join("corpus");
    assert!(
        corpus.join("grok-cases.jsonl").is_file(),
        "the shared test corpus is missing at {}: set LOGGR_SHARED_DIR to the directory that \
         holds `corpus/grok-cases.jsonl`",
        corpus.display()
    );
    corpus
}

fn field_name(key: &str) -> String {
    if key.starts_with('[') {
        key.split(['[', ']'])
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(".")
    } else {
        key.to_owned()
    }
}

fn same(value: &Value, want: &Json) -> bool {
    match (value, want) {
        (Value::String(text), Json::String(want)) => **text == **want,
        (Value::Int(number), Json::Number(want)) if want.is_i64() => want.as_i64() == Some(*number),
        (Value::Float(number), Json::Number(want)) if want.is_f64() => {
            want.as_f64() == Some(*number)
        }
        _ => false,
    }
}

#[test]
fn grok_corpus_cases() {
    let corpus = corpus_dir();
    let legacy = PatternBank::legacy();
    let mut ecs = PatternBank::empty();
    ecs.load_dir(&corpus.join("grok-patterns/ecs-v1")).unwrap();
    let text = std::fs::read_to_string(corpus.join("grok-cases.jsonl")).unwrap();
    let mut failures = Vec::new();
    let mut passed = [0usize; 2];
    let mut total = [0usize; 2];
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let case: Json = serde_json::from_str(line).unwrap();
        let id = case["id"].as_str().unwrap();
        let mode = case["mode"].as_str().unwrap();
        let (bank, slot) = match mode {
            "legacy" => (&legacy, 0),
            "ecs-v1" => (&ecs, 1),
            other => panic!("{id}: unknown mode {other}"),
        };
        total[slot] += 1;
        let mut pattern = case["pattern"].as_str().unwrap().to_owned();
        if case["anchored"].as_bool() == Some(true) {
            pattern = format!("^{pattern}$");
        }
        let mut config = GrokConfig::new([pattern.clone()]);
        config.pattern_field = String::new();
        let grok = match Grok::with_bank(&config, bank) {
            Ok(grok) => grok,
            Err(error) => {
                failures.push(format!("{id} ({mode}) `{pattern}`: {error}"));
                continue;
            }
        };
        let input = case["input"].as_str().unwrap();
        let mut event = Event::new(input.to_owned());
        grok.apply(&mut event).unwrap();
        let mut problems = Vec::new();
        if event.has_tag("_grok_timeout") {
            problems.push("timed out".to_owned());
        }
        let matched = !event.has_tag("_grokparsefailure");
        let want_match = case["match"].as_bool().unwrap();
        if matched != want_match {
            problems.push(format!("matched {matched}, expected {want_match}"));
        }
        if let Some(expect) = case["expect"].as_object() {
            for (key, want) in expect {
                let name = field_name(key);
                match event.field(&name) {
                    Some(value) if same(value, want) => {}
                    got => problems.push(format!("{key}: got {got:?}, expected {want}")),
                }
            }
        }
        if let Some(absent) = case["absent"].as_array() {
            for key in absent.iter().filter_map(Json::as_str) {
                let name = field_name(key);
                let prefix = format!("{name}.");
                if let Some((found, _)) = event
                    .fields
                    .iter()
                    .find(|(field, _)| ***field == *name || field.starts_with(&prefix))
                {
                    problems.push(format!("{key} should be absent, found {found}"));
                }
            }
        }
        if problems.is_empty() {
            passed[slot] += 1;
        } else {
            failures.push(format!(
                "{id} ({mode}) `{pattern}` on {input:?}: {}",
                problems.join("; ")
            ));
        }
    }
    eprintln!(
        "grok corpus: legacy {}/{}, ecs-v1 {}/{}",
        passed[0], total[0], passed[1], total[1]
    );
    assert!(total[0] > 0 && total[1] > 0);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
