#![allow(missing_docs)] // criterion_group! generates undocumented items
//! BuzzSaw's vote chain (SSH, Kernel, Cosign, Sleep, UserClassifier with their defaults) over
//! the four loghub samples in `../shared/corpus/loghub`.
//!
//! Each file is parsed once (format `auto`, year 2005, UTC) outside the timed loop; lines that
//! do not parse are left out. An iteration runs the stack over every event of one file (or of
//! all four); the events are cloned for each iteration in untimed setup, since the stack adds
//! tags and fields. Throughput is in lines (events) per second on one core.
//!
//! `cargo bench --bench buzzsaw`

use std::path::PathBuf;

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use loggr::core::syslog::{Format, SyslogOptions};
use loggr::core::{Bytes, Event, Filter, ParseContext, Verdict};
use loggr::filters::buzzsaw::VoteChain;

const FILES: [&str; 4] = [
    "Linux_2k.log",
    "Mac_2k.log",
    "OpenSSH_2k.log",
    "Thunderbird_2k.log",
];

fn load(name: &str) -> Vec<Event> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus/loghub")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let options = SyslogOptions {
        year: Some(2005),
        timezone: Some("UTC".into()),
        ..SyslogOptions::default()
    };
    let parser = Format::Auto.parser(&options).expect("UTC is a zone");
    let cx = ParseContext::now();
    text.lines()
        .filter_map(|line| {
            parser
                .parse(Bytes::copy_from_slice(line.as_bytes()), &cx)
                .ok()
        })
        .collect()
}

fn run(chain: &VoteChain, events: &mut [Event]) -> usize {
    let mut kept = 0;
    for event in events.iter_mut() {
        if chain.apply(black_box(event)).expect("infallible") == Verdict::Keep {
            kept += 1;
        }
    }
    kept
}

fn buzzsaw(c: &mut Criterion) {
    let chain = VoteChain::buzzsaw().expect("/etc/passwd and /etc/group are readable");
    let files: Vec<(&str, Vec<Event>)> = FILES.iter().map(|name| (*name, load(name))).collect();
    let all: Vec<Event> = files
        .iter()
        .flat_map(|(_, events)| events.iter().cloned())
        .collect();
    let mut group = c.benchmark_group("buzzsaw");
    for (name, events) in files.iter().map(|(n, e)| (*n, e)).chain([("all", &all)]) {
        group.throughput(Throughput::Elements(events.len() as u64));
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || events.clone(),
                |events| run(&chain, events),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, buzzsaw);
criterion_main!(benches);
