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
//!
//! On a shared machine wall-clock figures move with the load; with `LOGGR_BENCH_CPU_TIME=1`
//! the same two loops run interleaved and are timed by the thread's CPU time instead
//! (Linux, from `/proc/thread-self/stat`), and the bench prints lines/s per engine and stops.

use std::collections::BTreeMap;
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

    // Same answers on the same lines (every field of every line), or the comparison means
    // nothing.
    let mut matched = 0;
    for (event, line) in events.iter().zip(&lines) {
        let mut event = event.clone();
        let _ = loggr.apply(&mut event);
        let fields_loggr = (!event.has_tag("_grokparsefailure")).then(|| {
            event
                .fields
                .iter()
                .filter(|(name, _)| ***name != *"grok_pattern")
                .map(|(name, value)| (name.to_string(), value.as_str().unwrap_or("").to_owned()))
                .collect::<BTreeMap<_, _>>()
        });
        let fields_crate = grok_crate.match_against(line).map(|matches| {
            matches
                .iter()
                .filter(|(_, value)| !value.is_empty())
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect::<BTreeMap<_, _>>()
        });
        assert_eq!(fields_loggr, fields_crate, "{line}");
        matched += usize::from(fields_loggr.is_some());
    }
    assert!(
        matched > lines.len() / 2,
        "{matched} of {} lines match",
        lines.len()
    );

    if std::env::var_os("LOGGR_BENCH_CPU_TIME").is_some() {
        let (mut loggr_time, mut crate_time) = (0.0, 0.0);
        let rounds = 40;
        for _ in 0..rounds {
            let start = thread_cpu_seconds();
            run_loggr(&loggr, &events);
            loggr_time += thread_cpu_seconds() - start;
            let start = thread_cpu_seconds();
            run_grok_crate(&grok_crate, &lines);
            crate_time += thread_cpu_seconds() - start;
        }
        let total = (lines.len() * rounds) as f64;
        eprintln!(
            "grok_syslogline, CPU time: loggr {:.0} lines/s, grok_crate_onig {:.0} lines/s",
            total / loggr_time,
            total / crate_time
        );
        return;
    }

    let mut group = c.benchmark_group("grok_syslogline");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("loggr", |b| b.iter(|| run_loggr(&loggr, &events)));
    group.bench_function("grok_crate_onig", |b| {
        b.iter(|| run_grok_crate(&grok_crate, &lines))
    });
    group.finish();
}

fn run_loggr(loggr: &Grok, events: &[Event]) {
    for event in events {
        let mut event = event.clone();
        let _ = loggr.apply(&mut event);
        black_box(event);
    }
}

fn run_grok_crate(pattern: &grok::Pattern, lines: &[String]) {
    for line in lines {
        if let Some(matches) = pattern.match_against(line) {
            let fields: Vec<(&str, &str)> = matches.iter().collect();
            black_box(fields);
        }
    }
}

/// The calling thread's CPU time (user and system), in seconds.
fn thread_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat")
        .expect("LOGGR_BENCH_CPU_TIME needs Linux's /proc/thread-self/stat");
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap_or(0) + 2..]
        .split(' ')
        .collect();
    let ticks = |at: usize| {
        fields
            .get(at)
            .and_then(|t| t.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Clock ticks are 1/100 s on Linux (USER_HZ).
    (ticks(11) + ticks(12)) / 100.0
}

// BuzzSaw: its bench group goes here (a function taking `&mut Criterion`, added to the
// `criterion_group!` list below).

criterion_group!(benches, grok_syslogline);
criterion_main!(benches);
