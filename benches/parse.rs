#![allow(missing_docs)] // criterion_group! generates undocumented items
//! Parsing and framing speed, side by side with the `syslog_loose` crate on the same inputs.
//!
//! - `rfc5424/*` and `rfc3164/*`: one ~200-byte message per iteration; loggr builds a complete
//!   owned `Event` (zero-copy slices of the frame), `syslog_loose` borrows from a `&str`.
//! - `framing/octet_counting`: 10,000 octet-counted frames cut from one buffer.
//!
//! `cargo bench --bench parse`

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use loggr::core::codec::OctetCountingDecoder;
use loggr::core::syslog::{Rfc3164Parser, Rfc5424Parser, SyslogOptions};
use loggr::core::{ParseContext, Parser};
use syslog_loose::{parse_message_with_year_exact, Variant};
use tokio_util::codec::Decoder;

const RFC5424: &str = "<165>1 2026-11-21T10:15:03.123456+01:00 web-frontend-01.example.com nginx 21423 ACCESS [meta@32473 client=\"10.11.12.13\" method=\"GET\" status=\"200\"] GET /api/v1/items?page=2 took 12ms bytes=5120 ua=curl/8.5";
const RFC3164: &str = "<38>Nov 21 10:15:03 web-frontend-01.example.com sshd[21423]: Accepted publickey for alice from 10.11.12.13 port 50022 ssh2: RSA SHA256:Zx8kLm2nQ9pR4sT7uV0wX3yZ6aB1cD4eF7gH0iJ3kL6mN";

fn options() -> SyslogOptions {
    SyslogOptions {
        year: Some(2026),
        timezone: Some("UTC".into()),
        ..SyslogOptions::default()
    }
}

fn parsers(c: &mut Criterion) {
    let cx = ParseContext::now();
    let rfc5424 = Rfc5424Parser::new(&options());
    let rfc3164 = Rfc3164Parser::new(&options()).expect("UTC is a zone");
    for (name, input, variant) in [
        ("rfc5424", RFC5424, Variant::RFC5424),
        ("rfc3164", RFC3164, Variant::RFC3164),
    ] {
        let frame = Bytes::from_static(input.as_bytes());
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        group.bench_function("loggr", |b| {
            b.iter(|| {
                let event = match name {
                    "rfc5424" => rfc5424.parse(black_box(frame.clone()), &cx),
                    _ => rfc3164.parse(black_box(frame.clone()), &cx),
                };
                black_box(event.expect("valid message"))
            })
        });
        group.bench_function("syslog_loose", |b| {
            b.iter(|| {
                let message = parse_message_with_year_exact(black_box(input), |_| 2026, variant);
                black_box(message.expect("valid message").msg.len())
            })
        });
        group.finish();
    }
}

fn framing(c: &mut Criterion) {
    let mut stream = Vec::new();
    for _ in 0..10_000 {
        stream.extend_from_slice(format!("{} {}", RFC5424.len(), RFC5424).as_bytes());
    }
    let mut group = c.benchmark_group("framing");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("octet_counting", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&stream[..]),
            |buffer| {
                let mut decoder = OctetCountingDecoder::new(64 * 1024);
                let mut frames = 0usize;
                while let Ok(Some(frame)) = decoder.decode(buffer) {
                    frames += black_box(frame).len();
                }
                frames
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, parsers, framing);
criterion_main!(benches);
