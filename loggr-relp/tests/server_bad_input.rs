//! The server session with misbehaving peers: every kind of bad input is answered as librelp
//! answers it (see the table in `loggr_relp::server`), nothing is acknowledged that the handler
//! did not accept, and a peer that never reads its responses cannot grow our memory.

mod common;

use std::time::Duration;

use common::*;
use loggr_relp::{RelpError, ServerConfig, Verdict};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

async fn server(config: ServerConfig) -> (TestServer, Seen) {
    let seen = Seen::default();
    let s = seen.clone();
    (
        TestServer::start(config, move || accept_all(&s)).await,
        seen,
    )
}

#[tokio::test]
async fn syslog_before_open_is_refused_and_the_session_ends() {
    // librelp: "500 command disabled", then it tears the session down.
    let (server, seen) = server(librelp_config()).await;
    let mut input = syslog_frame(1, "too early");
    input.extend(syslog_frame(2, "after the error"));
    let got = exchange(&server.addr, &input).await;
    assert_eq!(
        text(&got),
        "1 rsp 20 500 command disabled\n0 serverclose 0\n"
    );
    assert_eq!(seen.count(), 0);
    assert!(matches!(
        server.session(0).await,
        Err(RelpError::NotOpen(ref cmd)) if cmd == "syslog"
    ));
}

#[tokio::test]
async fn a_second_open_is_answered_and_ignored_like_librelp() {
    let (server, seen) = server(librelp_config()).await;
    let mut input = RSYSLOG_OPEN.to_vec();
    input.extend(syslog_frame(2, "one"));
    // The same open again, with txnr 3.
    input.push(b'3');
    input.extend_from_slice(&RSYSLOG_OPEN[1..]);
    input.extend(syslog_frame(4, "two"));
    input.extend_from_slice(b"5 close 0\n");
    let got = text(&exchange(&server.addr, &input).await);
    assert!(
        got.ends_with(
            "2 rsp 6 200 OK\n3 rsp 37 200 connection already open - ignored\n4 rsp 6 200 OK\n5 rsp 0\n0 serverclose 0\n"
        ),
        "{got}"
    );
    assert_eq!(seen.count(), 2);
}

#[tokio::test]
async fn open_without_syslog_or_with_a_bad_version_is_refused() {
    let (server, _) = server(librelp_config()).await;
    let got = exchange(&server.addr, b"1 open 27 relp_version=0\ncommands=foo\n").await;
    assert_eq!(
        text(&got),
        "1 rsp 44 500 required command not supported by client\n0 serverclose 0\n"
    );
    let got = exchange(&server.addr, b"1 open 30 relp_version=x\ncommands=syslog\n").await;
    assert_eq!(
        text(&got),
        "1 rsp 30 500 invalid relp_version offer\n0 serverclose 0\n"
    );
}

#[tokio::test]
async fn a_newer_client_version_is_answered_with_version_zero() {
    let (server, _) = server(librelp_config()).await;
    let mut socket = TcpStream::connect(&server.addr).await.unwrap();
    socket
        .write_all(b"1 open 30 relp_version=1\ncommands=syslog\n")
        .await
        .unwrap();
    let got = read_until(&mut socket, b"syslog\n").await;
    assert!(
        text(&got).starts_with("1 rsp 93 200 OK\nrelp_version=0\n"),
        "{}",
        text(&got)
    );
}

#[tokio::test]
async fn bad_or_non_increasing_txnr_ends_the_session() {
    let cases: &[(&str, &[u8], u32, u32)] = &[
        ("repeated", b"2 syslog 1 a\n2 syslog 1 b\n", 2, 3),
        ("going back", b"2 syslog 1 a\n1 syslog 1 b\n", 1, 3),
        ("skipping", b"2 syslog 1 a\n4 syslog 1 b\n", 4, 3),
        ("zero", b"0 syslog 1 a\n", 0, 2),
    ];
    for (name, frames, got_txnr, expected_txnr) in cases {
        let (server, seen) = server(librelp_config()).await;
        let mut input = RSYSLOG_OPEN.to_vec();
        input.extend_from_slice(frames);
        let got = text(&exchange(&server.addr, &input).await);
        assert!(got.starts_with("1 rsp 93 200 OK"), "{name}: {got}");
        assert!(got.ends_with("0 serverclose 0\n"), "{name}: {got}");
        let accepted = if *got_txnr == 0 { 0 } else { 1 };
        assert_eq!(seen.count(), accepted, "{name}");
        if accepted == 1 {
            assert!(
                got.contains("2 rsp 6 200 OK\n"),
                "{name}: the good message is answered"
            );
        }
        match server.session(0).await {
            Err(RelpError::UnexpectedTxnr { got, expected }) => {
                assert_eq!((got, expected), (*got_txnr, *expected_txnr), "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // The first frame must have txnr 1.
    let (server, _) = server(librelp_config()).await;
    let got = exchange(&server.addr, b"5 open 0\n").await;
    assert_eq!(text(&got), "0 serverclose 0\n");
}

#[tokio::test]
async fn oversize_datalen_ends_the_session_before_reading_the_data() {
    let config = ServerConfig {
        max_data_len: 1024,
        ..librelp_config()
    };
    let (server, seen) = server(config).await;
    let mut socket = TcpStream::connect(&server.addr).await.unwrap();
    let mut input = RSYSLOG_OPEN.to_vec();
    input.extend(syslog_frame(2, &"x".repeat(1024)));
    // Only the header of the oversize frame: the server must not wait for its data.
    input.extend_from_slice(b"3 syslog 1025 ");
    socket.write_all(&input).await.unwrap();
    let got = text(&read_to_close(&mut socket).await);
    assert!(got.ends_with("2 rsp 6 200 OK\n0 serverclose 0\n"), "{got}");
    assert_eq!(seen.count(), 1);
    assert!(matches!(
        server.session(0).await,
        Err(RelpError::DataTooLong {
            txnr: 3,
            len: 1025,
            max: 1024
        })
    ));
}

#[tokio::test]
async fn missing_trailer_lf_ends_the_session() {
    let (server, seen) = server(librelp_config()).await;
    let mut input = RSYSLOG_OPEN.to_vec();
    input.extend_from_slice(b"2 syslog 3 abcX3 syslog 1 a\n");
    let got = text(&exchange(&server.addr, &input).await);
    assert!(got.ends_with("syslog\n0 serverclose 0\n"), "{got}");
    assert_eq!(
        seen.count(),
        0,
        "a frame without its trailer is not handed over"
    );
    assert!(matches!(
        server.session(0).await,
        Err(RelpError::MissingTrailer { txnr: 2 })
    ));
}

#[tokio::test]
async fn garbage_header_ends_the_session() {
    let (server, _) = server(librelp_config()).await;
    let got = exchange(&server.addr, b"GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(text(&got), "0 serverclose 0\n");
    let err = server.session(0).await.unwrap_err();
    assert!(err.is_fatal() && err.is_framing(), "{err:?}");
}

#[tokio::test]
async fn a_frame_cut_by_the_end_of_the_connection_is_an_error() {
    let (server, seen) = server(librelp_config()).await;
    let mut socket = TcpStream::connect(&server.addr).await.unwrap();
    let mut input = RSYSLOG_OPEN.to_vec();
    input.extend_from_slice(b"2 syslog 10 abc");
    socket.write_all(&input).await.unwrap();
    socket.shutdown().await.unwrap();
    let got = text(&read_to_close(&mut socket).await);
    assert!(got.ends_with("syslog\n0 serverclose 0\n"), "{got}");
    assert_eq!(seen.count(), 0);
    assert!(matches!(
        server.session(0).await,
        Err(RelpError::UnexpectedEof)
    ));
}

#[tokio::test]
async fn unknown_commands_get_500_and_the_session_goes_on() {
    let (server, seen) = server(librelp_config()).await;
    let mut input = RSYSLOG_OPEN.to_vec();
    input.extend(syslog_frame(2, "a"));
    input.extend_from_slice(b"3 starttls 0\n4 rsp 6 200 OK\n");
    input.extend(syslog_frame(5, "b"));
    input.extend_from_slice(b"6 close 0\n");
    let got = text(&exchange(&server.addr, &input).await);
    assert!(
        got.ends_with(
            "2 rsp 6 200 OK\n3 rsp 19 500 unknown command\n4 rsp 19 500 unknown command\n5 rsp 6 200 OK\n6 rsp 0\n0 serverclose 0\n"
        ),
        "{got}"
    );
    assert_eq!(seen.count(), 2);
    assert!(server.session(0).await.is_ok());
}

#[tokio::test]
async fn nothing_is_acknowledged_that_the_handler_refused() {
    let seen = Seen::default();
    let s = seen.clone();
    let server = TestServer::start(librelp_config(), move || Decide {
        seen: s.clone(),
        decide: |_: &bytes::Bytes| Verdict::Refused("sink down".into()),
    })
    .await;
    let mut input = RSYSLOG_OPEN.to_vec();
    for i in 2..=101 {
        input.extend(syslog_frame(i, "m"));
    }
    input.extend_from_slice(b"102 close 0\n");
    let got = text(&exchange(&server.addr, &input).await);
    assert_eq!(got.matches("200 OK").count(), 1, "only the open: {got}");
    assert_eq!(got.matches("500 sink down").count(), 100);
    let stats = server.session(0).await.unwrap();
    assert_eq!((stats.accepted, stats.refused), (0, 100));
}

#[tokio::test]
async fn a_client_that_never_reads_cannot_grow_the_server_memory() {
    // Small socket buffers on both ends, so that "cannot write" happens quickly.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(16).unwrap();
    let seen = Seen::default();
    let s = seen.clone();
    let config = librelp_config();
    let window = config.window;
    let server = TestServer::start_on(listener, config, move || accept_all(&s));

    let client = TcpSocket::new_v4().unwrap();
    client.set_recv_buffer_size(4096).unwrap();
    let mut stream = client.connect(server.addr.parse().unwrap()).await.unwrap();
    let total = 100_000u32;
    let writer = tokio::spawn(async move {
        stream.write_all(RSYSLOG_OPEN).await.unwrap();
        let mut batch = Vec::new();
        for i in 2..total + 2 {
            batch.extend(syslog_frame(i, "never read my answers"));
            if batch.len() > 8192 {
                if stream.write_all(&batch).await.is_err() {
                    return;
                }
                batch.clear();
            }
        }
        let _ = stream.write_all(&batch).await;
        // Keep the connection open, still never reading.
        std::future::pending::<()>().await;
    });

    // Wait until the server stops taking messages.
    let mut last = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = seen.count();
        if now == last && now > 0 {
            break;
        }
        last = now;
    }
    let stalled = seen.count();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        seen.count(),
        stalled,
        "the server keeps reading a client that never reads"
    );
    // Unread responses sit in: the server's write buffer (16 KiB), the server's send buffer
    // and the client's receive buffer (a few KiB each, doubled by Linux). Each response is
    // at least 15 bytes ("NNNNN rsp 6 200 OK\n").
    let slack = (16 * 1024 + 4 * 4096 * 4) / 15;
    eprintln!("handler saw {stalled} of {total} messages (window {window}, slack bound {slack})");
    assert!(stalled <= window + slack, "{stalled} messages taken");
    assert!((stalled as u32) < total / 10);
    writer.abort();
}
