//! The server session with well-behaved peers: rsyslog's exact bytes, the window, responses in
//! txnr order, handler flushes, shutdown and idle timeout.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use loggr_relp::{ServerConfig, Verdict};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn answers_rsyslog_open_byte_for_byte() {
    let seen = Seen::default();
    let s = seen.clone();
    let server = TestServer::start(librelp_config(), move || accept_all(&s)).await;
    let mut socket = TcpStream::connect(&server.addr).await.unwrap();
    socket.write_all(RSYSLOG_OPEN).await.unwrap();
    let got = read_until(&mut socket, b"syslog\n").await;
    assert_eq!(text(&got), text(RSYSLOG_OPEN_RSP));
}

#[tokio::test]
async fn replays_the_captured_rsyslog_session() {
    // PEERS.md: omrelp -> imrelp, two imfile lines, then close.
    let m1 = "<133>2026-11-21T00:06:02.725953+00:00 vm t1 first line";
    let m2 = "<133>2026-11-21T00:06:02.725963+00:00 vm t1 second line";
    let mut input = RSYSLOG_OPEN.to_vec();
    input.extend(syslog_frame(2, m1));
    input.extend(syslog_frame(3, m2));
    assert!(
        input.ends_with(b"3 syslog 55 <133>2026-11-21T00:06:02.725963+00:00 vm t1 second line\n")
    );
    input.extend_from_slice(b"4 close 0\n");

    let seen = Seen::default();
    let s = seen.clone();
    let server = TestServer::start(librelp_config(), move || accept_all(&s)).await;
    let got = exchange(&server.addr, &input).await;

    let mut expected = RSYSLOG_OPEN_RSP.to_vec();
    expected.extend_from_slice(b"2 rsp 6 200 OK\n3 rsp 6 200 OK\n4 rsp 0\n0 serverclose 0\n");
    assert_eq!(text(&got), text(&expected));
    assert_eq!(seen.messages(), vec![Bytes::from(m1), Bytes::from(m2)]);
    let stats = server.session(0).await.unwrap();
    assert_eq!((stats.messages, stats.accepted, stats.refused), (2, 2, 0));
}

#[tokio::test]
async fn keeps_the_trailing_lf_of_rfc5424_data() {
    // RSYSLOG_SyslogProtocol23Format counts a trailing LF in DATALEN; the session hands DATA
    // over untouched (dropping it is the parser's business).
    let msg = "<133>1 2026-11-21T00:07:53.036848+00:00 vm app 7 - - alpha line\n";
    let mut input = RSYSLOG_OPEN.to_vec();
    input.extend(syslog_frame(2, msg));
    assert!(input.ends_with(
        b"2 syslog 64 <133>1 2026-11-21T00:07:53.036848+00:00 vm app 7 - - alpha line\n\n"
    ));
    input.extend_from_slice(b"3 close 0\n");
    let seen = Seen::default();
    let s = seen.clone();
    let server = TestServer::start(librelp_config(), move || accept_all(&s)).await;
    let got = exchange(&server.addr, &input).await;
    assert!(text(&got).ends_with("2 rsp 6 200 OK\n3 rsp 0\n0 serverclose 0\n"));
    assert_eq!(seen.messages(), vec![Bytes::from(msg)]);
}

#[tokio::test]
async fn refused_messages_get_500_with_the_reason() {
    let seen = Seen::default();
    let s = seen.clone();
    let server = TestServer::start(librelp_config(), move || Decide {
        seen: s.clone(),
        decide: |m: &Bytes| {
            if m.starts_with(b"bad") {
                Verdict::Refused("sink unavailable".into())
            } else {
                Verdict::Accepted
            }
        },
    })
    .await;
    let mut input = RSYSLOG_OPEN.to_vec();
    input.extend(syslog_frame(2, "good"));
    input.extend(syslog_frame(3, "bad one"));
    input.extend(syslog_frame(4, "good again"));
    input.extend_from_slice(b"5 close 0\n");
    let got = text(&exchange(&server.addr, &input).await);
    assert!(
        got.ends_with("2 rsp 6 200 OK\n3 rsp 20 500 sink unavailable\n4 rsp 6 200 OK\n5 rsp 0\n0 serverclose 0\n"),
        "{got}"
    );
    let stats = server.session(0).await.unwrap();
    assert_eq!((stats.messages, stats.accepted, stats.refused), (3, 2, 1));
}

#[tokio::test]
async fn responses_follow_txnr_order_when_acks_resolve_out_of_order() {
    let (tx, mut acks) = tokio::sync::mpsc::unbounded_channel();
    let seen = Seen::default();
    let s = seen.clone();
    let server = TestServer::start(librelp_config(), move || Manual {
        seen: s.clone(),
        acks: tx.clone(),
    })
    .await;
    let mut socket = TcpStream::connect(&server.addr).await.unwrap();
    let mut input = RSYSLOG_OPEN.to_vec();
    for i in 2..=6 {
        input.extend(syslog_frame(i, &format!("m{i}")));
    }
    socket.write_all(&input).await.unwrap();
    read_until(&mut socket, b"syslog\n").await;
    let mut pending = Vec::new();
    for _ in 2..=6 {
        pending.push(acks.recv().await.unwrap());
    }
    // Resolve 6, 5, 4, 3 first: nothing may be written before 2.
    for (_, ack) in pending.drain(1..).rev() {
        ack.send(Verdict::Accepted).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut probe = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(100), socket.peek(&mut probe)).await;
    assert!(early.is_err(), "a response was written before txnr 2's");
    let (_, first) = pending.pop().unwrap();
    first.send(Verdict::Accepted).unwrap();
    let got = read_until(&mut socket, b"6 rsp 6 200 OK\n").await;
    assert_eq!(
        text(&got),
        "2 rsp 6 200 OK\n3 rsp 6 200 OK\n4 rsp 6 200 OK\n5 rsp 6 200 OK\n6 rsp 6 200 OK\n"
    );
}

#[tokio::test]
async fn reading_pauses_while_the_window_is_full() {
    let (tx, mut acks) = tokio::sync::mpsc::unbounded_channel();
    let seen = Seen::default();
    let s = seen.clone();
    let config = ServerConfig {
        window: 4,
        ..librelp_config()
    };
    let server = TestServer::start(config, move || Manual {
        seen: s.clone(),
        acks: tx.clone(),
    })
    .await;
    let mut socket = TcpStream::connect(&server.addr).await.unwrap();
    let mut input = RSYSLOG_OPEN.to_vec();
    for i in 2..=11 {
        input.extend(syslog_frame(i, &format!("m{i}")));
    }
    socket.write_all(&input).await.unwrap();
    read_until(&mut socket, b"syslog\n").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(seen.count(), 4, "the window is 4 transactions");
    // One ack frees one slot: exactly one more message is handed over.
    let (_, ack) = acks.recv().await.unwrap();
    ack.send(Verdict::Accepted).unwrap();
    read_until(&mut socket, b"2 rsp 6 200 OK\n").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(seen.count(), 5);
    // Accept everything: all ten arrive.
    tokio::spawn(async move {
        while let Some((_, ack)) = acks.recv().await {
            let _ = ack.send(Verdict::Accepted);
        }
    });
    read_until(&mut socket, b"11 rsp 6 200 OK\n").await;
    assert_eq!(seen.count(), 10);
}

#[tokio::test]
async fn the_handler_is_flushed_when_the_read_buffer_is_drained() {
    let seen = Seen::default();
    let s = seen.clone();
    let server = TestServer::start(librelp_config(), move || accept_all(&s)).await;
    let mut socket = TcpStream::connect(&server.addr).await.unwrap();
    let mut input = RSYSLOG_OPEN.to_vec();
    for i in 2..=51 {
        input.extend(syslog_frame(i, "x"));
    }
    socket.write_all(&input).await.unwrap();
    read_until(&mut socket, b"51 rsp 6 200 OK\n").await;
    let flushes = seen.flushes();
    assert!(
        (1..=50).contains(&flushes),
        "{flushes} flushes for one burst"
    );
    socket.write_all(&syslog_frame(52, "y")).await.unwrap();
    read_until(&mut socket, b"52 rsp 6 200 OK\n").await;
    assert_eq!(seen.flushes(), flushes + 1);
}

#[tokio::test]
async fn shutdown_answers_outstanding_acks_then_sends_serverclose() {
    let (tx, mut acks) = tokio::sync::mpsc::unbounded_channel();
    let seen = Seen::default();
    let s = seen.clone();
    let config = ServerConfig {
        shutdown_grace: Duration::from_secs(5),
        ..librelp_config()
    };
    let server = TestServer::start(config, move || Manual {
        seen: s.clone(),
        acks: tx.clone(),
    })
    .await;
    let mut socket = TcpStream::connect(&server.addr).await.unwrap();
    let mut input = RSYSLOG_OPEN.to_vec();
    input.extend(syslog_frame(2, "a"));
    input.extend(syslog_frame(3, "b"));
    socket.write_all(&input).await.unwrap();
    read_until(&mut socket, b"syslog\n").await;
    let (_, a) = acks.recv().await.unwrap();
    let (_, b) = acks.recv().await.unwrap();
    server.shutdown.cancel();
    // Frames sent after the shutdown are not read any more.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = socket.write_all(&syslog_frame(4, "late")).await;
    a.send(Verdict::Accepted).unwrap();
    b.send(Verdict::Refused("no".into())).unwrap();
    let got = read_to_close(&mut socket).await;
    assert_eq!(
        text(&got),
        "2 rsp 6 200 OK\n3 rsp 6 500 no\n0 serverclose 0\n"
    );
    assert_eq!(seen.count(), 2);
    let stats = server.session(0).await.unwrap();
    assert_eq!((stats.messages, stats.accepted, stats.refused), (2, 1, 1));
}

#[tokio::test]
async fn shutdown_gives_up_on_acks_after_the_grace_period() {
    let (tx, mut acks) = tokio::sync::mpsc::unbounded_channel();
    let seen = Seen::default();
    let s = seen.clone();
    let config = ServerConfig {
        shutdown_grace: Duration::from_millis(200),
        ..librelp_config()
    };
    let server = TestServer::start(config, move || Manual {
        seen: s.clone(),
        acks: tx.clone(),
    })
    .await;
    let mut socket = TcpStream::connect(&server.addr).await.unwrap();
    let mut input = RSYSLOG_OPEN.to_vec();
    input.extend(syslog_frame(2, "a"));
    input.extend(syslog_frame(3, "never acked"));
    socket.write_all(&input).await.unwrap();
    read_until(&mut socket, b"syslog\n").await;
    let (_, a) = acks.recv().await.unwrap();
    let (_, _never) = acks.recv().await.unwrap();
    a.send(Verdict::Accepted).unwrap();
    read_until(&mut socket, b"2 rsp 6 200 OK\n").await;
    let started = std::time::Instant::now();
    server.shutdown.cancel();
    let got = read_to_close(&mut socket).await;
    assert_eq!(
        text(&got),
        "0 serverclose 0\n",
        "no 200 for the unacked message"
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn idle_sessions_are_closed() {
    let seen = Seen::default();
    let s = seen.clone();
    let config = ServerConfig {
        idle_timeout: Some(Duration::from_millis(200)),
        ..librelp_config()
    };
    let server = TestServer::start(config, move || accept_all(&s)).await;
    let mut socket = TcpStream::connect(&server.addr).await.unwrap();
    socket.write_all(RSYSLOG_OPEN).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    socket
        .write_all(&syslog_frame(2, "keeps it alive"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let got = read_to_close(&mut socket).await;
    assert!(
        text(&got).ends_with("2 rsp 6 200 OK\n0 serverclose 0\n"),
        "{}",
        text(&got)
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(server.session(0).await.is_ok());
}

#[tokio::test]
async fn many_messages_over_one_connection() {
    let seen = Seen::default();
    let s = seen.clone();
    let server = TestServer::start(librelp_config(), move || accept_all(&s)).await;
    let mut input = RSYSLOG_OPEN.to_vec();
    let n = 20_000;
    for i in 2..n + 2 {
        input.extend(syslog_frame(i, &format!("message number {i}")));
    }
    input.extend(format!("{} close 0\n", n + 2).into_bytes());
    let got = exchange(&server.addr, &input).await;
    assert!(text(&got).ends_with(&format!("{} rsp 0\n0 serverclose 0\n", n + 2)));
    let messages = seen.messages();
    assert_eq!(messages.len(), n as usize);
    assert!(messages
        .iter()
        .enumerate()
        .all(|(i, m)| m == format!("message number {}", i + 2).as_bytes()));
}
