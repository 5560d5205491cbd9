#![allow(missing_docs)] // criterion_group! generates undocumented items
//! Filter speed over the loghub samples (`../shared/corpus/loghub/*.log`, or
//! `$LOGGR_SHARED_DIR/corpus/loghub`), side by side with other implementations on the same
//! inputs in the same run.
//!
//! - `grok_syslogline/loggr`: loggr's `grok` filter with `%{SYSLOGLINE}` applied to a clone of
//!   each line's event (fields written, pattern name recorded).
//! - `grok_syslogline/grok_crate_onig`: the `grok` crate with its default engine (Oniguruma),
//!   given the same definitions (loggr's bundled logstash `legacy` set) and the same pattern,
//!   collecting the named captures of each line.
//!
//! `cargo bench --bench filters`

use std::path::PathBuf;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use loggr::core::{Event, Filter};
use loggr::filters::grok::{Grok, GrokConfig, PatternBank};

fn loghub_lines() -> Vec<String> {
    let shared = std::env::var_os("LOGGR_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let dir = shared.join("corpus/loghub");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| {
            panic!("the loghub corpus is missing at {}: {error}", dir.display())
        })
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    files.sort();
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a readable loghub file");
        lines.extend(text.lines().map(str::to_owned));
    }
    assert!(!lines.is_empty(), "no loghub lines in {}", dir.display());
    lines
}

fn grok_syslogline(c: &mut Criterion) {
    let lines = loghub_lines();
    let events: Vec<Event> = lines.iter().map(|line| Event::new(line.clone())).collect();

    let loggr = Grok::new(&GrokConfig::new(["%{SYSLOGLINE}"])).expect("SYSLOGLINE compiles");

    let bank = PatternBank::legacy();
    let mut grok_crate = grok::Grok::empty();
    for name in bank.names() {
        grok_crate.add_pattern(name, bank.get(name).unwrap_or_default());
    }
    let grok_crate = grok_crate
        .compile("%{SYSLOGLINE}", true)
        .expect("SYSLOGLINE compiles in the grok crate");

    // Same answers on the same lines, or the comparison means nothing.
    let matched_loggr = events
        .iter()
        .filter(|event| {
            let mut event = (*event).clone();
            let _ = loggr.apply(&mut event);
            !event.has_tag("_grokparsefailure")
        })
        .count();
    let matched_crate = lines
        .iter()
        .filter(|line| grok_crate.match_against(line).is_some())
        .count();
    assert_eq!(matched_loggr, matched_crate);

    let mut group = c.benchmark_group("grok_syslogline");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("loggr", |b| {
        b.iter(|| {
            for event in &events {
                let mut event = event.clone();
                let _ = loggr.apply(&mut event);
                black_box(event);
            }
        })
    });
    group.bench_function("grok_crate_onig", |b| {
        b.iter(|| {
            for line in &lines {
                if let Some(matches) = grok_crate.match_against(line) {
                    let fields: Vec<(&str, &str)> = matches.iter().collect();
                    black_box(fields);
                }
            }
        })
    });
    group.finish();
}

// BuzzSaw: its bench group goes here (a function taking `&mut Criterion`, added to the
// `criterion_group!` list below).

criterion_group!(benches, grok_syslogline);
criterion_main!(benches);
