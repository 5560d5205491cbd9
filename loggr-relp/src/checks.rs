//! The invariants the RELP fuzz targets check, shared with the regression test that replays
//! their crash inputs (`tests/fuzz_regressions.rs`). Not a public API.
//!
//! - [`codec`]: decoding never panics; every frame respects the limits (txnr ≤ 999,999,999,
//!   data ≤ `max_data_len`); decoding stops at the first error; the frames and the error do not
//!   depend on how the stream is cut into chunks; every frame encodes back to bytes that decode
//!   to the same frame.
//! - [`session`]: a server session fed arbitrary bytes never panics and ends; what it writes
//!   is valid RELP; its `rsp` frames come in increasing txnr order; it never answers `200` to a
//!   `syslog` transaction the handler refused.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::{Decoder, Encoder};
use tokio_util::sync::CancellationToken;

use crate::codec::{Command, Frame, FrameCodec, MAX_TXNR};
use crate::server::{serve, MessageHandler, ServerConfig, Verdict};

/// Splits fuzzer input into (max_data_len, chunk lengths, payload).
fn layout(data: &[u8]) -> (usize, Vec<usize>, &[u8]) {
    let (Some(&limit), Some(&splits)) = (data.first(), data.get(1)) else {
        return (64, Vec::new(), data);
    };
    let max_data_len = 1 + usize::from(limit) * 16;
    let splits = usize::from(splits % 8);
    let lengths: Vec<usize> = data
        .iter()
        .skip(2)
        .take(splits)
        .map(|&b| usize::from(b) + 1)
        .collect();
    let payload = data.get(2 + lengths.len()..).unwrap_or_default();
    (max_data_len, lengths, payload)
}

/// Decodes `payload` fed in chunks of the given lengths (the rest in one piece).
fn decode_chunks(max: usize, lengths: &[usize], payload: &[u8]) -> (Vec<Frame>, Option<String>) {
    let mut codec = FrameCodec::new(max);
    let mut buffer = BytesMut::new();
    let mut frames = Vec::new();
    let mut rest = payload;
    let mut chunks = lengths.iter().copied().chain(std::iter::once(usize::MAX));
    while !rest.is_empty() {
        let take = chunks.next().unwrap_or(usize::MAX).min(rest.len());
        buffer.extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        loop {
            match codec.decode(&mut buffer) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => return (frames, Some(error.to_string())),
            }
        }
    }
    match codec.decode_eof(&mut buffer) {
        Ok(Some(frame)) => frames.push(frame),
        Ok(None) => {}
        Err(error) => return (frames, Some(error.to_string())),
    }
    (frames, None)
}

/// The codec invariants (see the module docs).
///
/// # Panics
///
/// When an invariant does not hold: that is the finding.
pub fn codec(data: &[u8]) {
    let (max, lengths, payload) = layout(data);
    let (frames, error) = decode_chunks(max, &lengths, payload);
    let (whole, whole_error) = decode_chunks(max, &[], payload);
    assert_eq!(frames, whole, "frames depend on chunking");
    assert_eq!(
        error.is_some(),
        whole_error.is_some(),
        "errors depend on chunking"
    );
    for frame in &frames {
        assert!(frame.txnr <= MAX_TXNR, "txnr {} over the limit", frame.txnr);
        assert!(
            frame.data.len() <= max,
            "{} bytes of data over the limit {max}",
            frame.data.len()
        );
        let mut encoded = BytesMut::new();
        FrameCodec::new(max)
            .encode(frame, &mut encoded)
            .expect("a decoded frame encodes");
        let again = FrameCodec::new(max)
            .decode(&mut encoded)
            .expect("re-decodes");
        assert_eq!(again.as_ref(), Some(frame), "encode/decode round trip");
    }
}

/// Accepts messages whose first byte is even, refuses the others (after a yield, so that
/// answers interleave).
struct EvenHandler;

impl MessageHandler for EvenHandler {
    type Ack = std::pin::Pin<Box<dyn Future<Output = Verdict> + Send>>;

    fn on_message(&mut self, data: Bytes) -> Self::Ack {
        Box::pin(async move {
            tokio::task::yield_now().await;
            match data.first() {
                Some(byte) if byte % 2 == 0 => Verdict::Accepted,
                _ => Verdict::Refused("odd".into()),
            }
        })
    }

    async fn flush(&mut self) {}
}

/// The session invariants (see the module docs).
///
/// # Panics
///
/// When an invariant does not hold.
pub fn session(data: &[u8]) {
    let (max, _, payload) = layout(data);
    let to_send = payload.to_vec();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let written = runtime.block_on(async move {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let config = ServerConfig {
            window: 4,
            max_data_len: max,
            idle_timeout: Some(Duration::from_secs(1)),
            shutdown_grace: Duration::from_millis(100),
            ..ServerConfig::default()
        };
        let session = tokio::spawn(async move {
            let _ = serve(server, EvenHandler, &config, CancellationToken::new()).await;
        });
        let _ = client.write_all(&to_send).await;
        let _ = client.shutdown().await;
        let mut written = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut written));
        assert!(read.await.is_ok(), "the session ends");
        let _ = session.await;
        written
    });
    // What the client sent, by txnr (only frames before any framing error were processed).
    let (sent, _) = decode_chunks(max, &[], payload);
    // The first frame with each txnr, whatever its command: the server ends the session at a
    // repeated or skipped txnr, so a later frame with the same number is never the one an
    // answer refers to.
    let mut data_of: HashMap<u32, &Frame> = HashMap::new();
    for frame in &sent {
        data_of.entry(frame.txnr).or_insert(frame);
    }
    let (answers, error) = decode_chunks(usize::MAX >> 8, &[], &written);
    assert!(error.is_none(), "the server writes valid RELP: {error:?}");
    let mut last = 0u32;
    for answer in answers.iter().filter(|f| f.command == Command::Rsp) {
        assert!(
            answer.txnr > last || answer.txnr == 0,
            "rsp txnr {} after {last}",
            answer.txnr
        );
        if answer.txnr != 0 {
            last = answer.txnr;
        }
        if answer.data.starts_with(b"200") {
            if let Some(frame) = data_of
                .get(&answer.txnr)
                .filter(|f| f.command == Command::Syslog)
            {
                assert!(
                    frame.data.first().is_some_and(|b| b % 2 == 0),
                    "200 for refused transaction {}",
                    answer.txnr
                );
            }
        }
    }
}
