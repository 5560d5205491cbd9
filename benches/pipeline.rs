#![allow(missing_docs)] // criterion_group! generates undocumented items
//! Throughput of the pipeline machinery itself: memory source → one filter → null sink, every
//! event carrying an acknowledgement token, on one core (current-thread runtime, one filter
//! worker). Target: at least 1,000,000 events/s.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use loggr::core::ack::AckGroup;
use loggr::core::{NullSink, PipelineOptions, SinkOptions};
use loggr::{
    async_trait, CancellationToken, Envelope, Event, Filter, FilterError, Pipeline, Source,
    SourceContext, SourceError, Verdict,
};

const EVENTS: usize = 200_000;
const BATCH: usize = 256;

/// Emits clones of a template event (cheap: text is reference-counted) in acked groups.
struct Template {
    event: Event,
    count: usize,
}

#[async_trait]
impl Source for Template {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let mut waiters = Vec::with_capacity(self.count / BATCH + 1);
        let mut left = self.count;
        while left > 0 {
            let n = left.min(BATCH);
            let (group, waiter) = AckGroup::new();
            let batch = (0..n)
                .map(|_| Envelope::new(self.event.clone(), group.token()))
                .collect();
            group.seal();
            waiters.push(waiter);
            cx.emitter()
                .send(batch)
                .await
                .map_err(|_| SourceError::other("closed"))?;
            left -= n;
        }
        for waiter in waiters {
            assert_eq!(waiter.await, loggr::Outcome::Delivered);
        }
        Ok(())
    }
}

struct TagSshd;

impl Filter for TagSshd {
    fn name(&self) -> &str {
        "tag_sshd"
    }
    fn apply(&self, event: &mut Event) -> Result<Verdict, FilterError> {
        if event.app_name.as_deref() == Some("sshd") {
            event.add_tag("ssh");
        }
        Ok(Verdict::Keep)
    }
}

fn pipeline(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut event =
        Event::new("Accepted publickey for alice from 10.0.0.9 port 50022 ssh2: RSA SHA256:abc");
    event.hostname = Some("web1.example.com".into());
    event.app_name = Some("sshd".into());
    event.procid = Some("812".into());
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("memory_filter_null_with_acks", |b| {
        b.iter(|| {
            let sink = NullSink::new();
            runtime.block_on(async {
                Pipeline::builder()
                    .source(
                        "memory",
                        Template {
                            event: event.clone(),
                            count: EVENTS,
                        },
                    )
                    .filter(TagSshd)
                    .sink_with("null", sink.clone(), SinkOptions::default())
                    .options(PipelineOptions {
                        filter_workers: 1,
                        ..PipelineOptions::default()
                    })
                    .build()
                    .expect("valid pipeline")
                    .run(CancellationToken::new())
                    .await
                    .expect("pipeline ran");
            });
            assert_eq!(sink.count(), EVENTS as u64);
        });
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
