//! The client: against our server and against scripted raw servers: window, acks, refusals,
//! reconnection with resending in order, giving up.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures::{SinkExt, StreamExt};
use loggr_relp::{Client, ClientConfig, Command, Frame, FrameCodec, RelpError, Verdict};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

fn fast_config() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(5),
        reconnect_backoff: (Duration::from_millis(10), Duration::from_millis(100)),
        ..ClientConfig::default()
    }
}

fn msg(i: usize) -> Bytes {
    Bytes::from(format!("<13>1 - host app - - - message {i}"))
}

#[tokio::test]
async fn sends_flushes_and_closes() {
    let seen = Seen::default();
    let s = seen.clone();
    let server = TestServer::start(librelp_config(), move || accept_all(&s)).await;
    let mut client = Client::connect(&server.addr, fast_config()).await.unwrap();
    for i in 0..1000 {
        client.send(msg(i)).await.unwrap();
    }
    client.flush().await.unwrap();
    assert_eq!(client.stats().acked, 1000);
    assert_eq!(client.unacked(), 0);
    let stats = client.close().await.unwrap();
    assert_eq!(stats.sent, 1000);
    assert_eq!(stats.acked, 1000);
    assert_eq!((stats.refused, stats.resent, stats.reconnects), (0, 0, 0));
    assert_eq!(seen.messages(), (0..1000).map(msg).collect::<Vec<_>>());
    let session = server.session(0).await.unwrap();
    assert_eq!(session.accepted, 1000);
}

#[tokio::test]
async fn the_client_speaks_open_and_close_as_omrelp_does() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let mut framed = Framed::new(socket, FrameCodec::new(1 << 20));
        let open = framed.next().await.unwrap().unwrap();
        assert_eq!((open.txnr, &open.command), (1, &Command::Open));
        assert!(open.data.starts_with(b"relp_version=0\nrelp_software="));
        assert!(open.data.ends_with(b"\ncommands=syslog"));
        let rsp = &RSYSLOG_OPEN_RSP[9..RSYSLOG_OPEN_RSP.len() - 1];
        framed
            .send(Frame::new(1, Command::Rsp, rsp.to_vec()))
            .await
            .unwrap();
        let m = framed.next().await.unwrap().unwrap();
        assert_eq!(
            (m.txnr, &m.command, &m.data[..]),
            (2, &Command::Syslog, &b"hello"[..])
        );
        framed
            .send(Frame::new(2, Command::Rsp, "200 OK"))
            .await
            .unwrap();
        let close = framed.next().await.unwrap().unwrap();
        assert_eq!(
            (close.txnr, &close.command, close.data.len()),
            (3, &Command::Close, 0)
        );
        framed.send(Frame::new(3, Command::Rsp, "")).await.unwrap();
        framed
            .send(Frame::new(0, Command::ServerClose, ""))
            .await
            .unwrap();
    });
    let mut client = Client::connect(&addr, fast_config()).await.unwrap();
    client.send(Bytes::from_static(b"hello")).await.unwrap();
    let stats = client.close().await.unwrap();
    assert_eq!(stats.acked, 1);
    server.await.unwrap();
}

#[tokio::test]
async fn send_waits_while_the_window_is_full() {
    let (tx, mut acks) = tokio::sync::mpsc::unbounded_channel();
    let seen = Seen::default();
    let s = seen.clone();
    let server = TestServer::start(librelp_config(), move || Manual {
        seen: s.clone(),
        acks: tx.clone(),
    })
    .await;
    let config = ClientConfig {
        window: 4,
        ..fast_config()
    };
    let mut client = Client::connect(&server.addr, config).await.unwrap();
    let (progress_tx, mut progress) = tokio::sync::mpsc::unbounded_channel();
    let sender = tokio::spawn(async move {
        for i in 0..10 {
            client.send(msg(i)).await.unwrap();
            progress_tx.send(i).unwrap();
        }
        client.close().await.unwrap()
    });
    for expected in 0..4 {
        assert_eq!(progress.recv().await, Some(expected));
    }
    let blocked = tokio::time::timeout(Duration::from_millis(200), progress.recv()).await;
    assert!(blocked.is_err(), "the fifth send must wait for an ack");
    assert_eq!(seen.count(), 4);
    let (_, ack) = acks.recv().await.unwrap();
    ack.send(Verdict::Accepted).unwrap();
    assert_eq!(progress.recv().await, Some(4));
    tokio::spawn(async move {
        while let Some((_, ack)) = acks.recv().await {
            let _ = ack.send(Verdict::Accepted);
        }
    });
    let stats = sender.await.unwrap();
    assert_eq!((stats.sent, stats.acked), (10, 10));
}

/// Serves one scripted connection: answers `open`, then hands every syslog frame to `script`
/// (`Some(verdict)`: answer it now), until `script` returns `Err(())` (drop the connection).
async fn scripted_connection(
    socket: TcpStream,
    mut script: impl FnMut(&Frame) -> Result<Option<&'static str>, ()>,
) {
    let mut framed = Framed::new(socket, FrameCodec::new(1 << 20));
    let open = framed
        .next()
        .await
        .expect("scripted server")
        .expect("scripted server");
    assert_eq!(open.command, Command::Open);
    let rsp = &RSYSLOG_OPEN_RSP[9..RSYSLOG_OPEN_RSP.len() - 1];
    framed
        .send(Frame::new(1, Command::Rsp, rsp.to_vec()))
        .await
        .expect("scripted server");
    while let Some(Ok(frame)) = framed.next().await {
        if frame.command == Command::Close {
            framed
                .send(Frame::new(frame.txnr, Command::Rsp, ""))
                .await
                .expect("scripted server");
            framed
                .send(Frame::new(0, Command::ServerClose, ""))
                .await
                .expect("scripted server");
            return;
        }
        match script(&frame) {
            Ok(Some(answer)) => framed
                .send(Frame::new(frame.txnr, Command::Rsp, answer))
                .await
                .expect("scripted server"),
            Ok(None) => {}
            Err(()) => return,
        }
    }
}

#[tokio::test]
async fn reconnects_and_resends_every_unacknowledged_message_in_order() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let second: Arc<Mutex<Vec<(u32, Bytes)>>> = Arc::default();
    let record = second.clone();
    let server = tokio::spawn(async move {
        // First connection: acknowledge messages 0 and 1, swallow 2..5, then die.
        let (socket, _) = listener.accept().await.unwrap();
        let mut n = 0;
        scripted_connection(socket, |_| {
            n += 1;
            match n {
                1 | 2 => Ok(Some("200 OK")),
                3..=5 => Ok(None),
                _ => Err(()),
            }
        })
        .await;
        // Second connection: acknowledge everything, recording what arrives.
        let (socket, _) = listener.accept().await.unwrap();
        scripted_connection(socket, |frame| {
            record
                .lock()
                .unwrap()
                .push((frame.txnr, frame.data.clone()));
            Ok(Some("200 OK"))
        })
        .await;
    });
    let mut client = Client::connect(&addr, fast_config()).await.unwrap();
    for i in 0..6 {
        client.send(msg(i)).await.unwrap();
    }
    for i in 6..8 {
        client.send(msg(i)).await.unwrap();
    }
    let stats = client.close().await.unwrap();
    server.await.unwrap();
    let second = second.lock().unwrap().clone();
    // 2..=5 were sent but never answered, 5 was the one that made the server drop the
    // connection; all are resent first, in order, with txnrs from 2 again, then 6 and 7.
    let data: Vec<Bytes> = second.iter().map(|(_, d)| d.clone()).collect();
    assert_eq!(data, (2..8).map(msg).collect::<Vec<_>>(), "{second:?}");
    let txnrs: Vec<u32> = second.iter().map(|(t, _)| *t).collect();
    assert_eq!(txnrs, (2..8).collect::<Vec<u32>>());
    assert_eq!(stats.sent, 8);
    assert_eq!(stats.acked, 8);
    assert_eq!(stats.reconnects, 1);
    assert!(stats.resent >= 3, "{stats:?}");
}

#[tokio::test]
async fn refused_messages_are_sent_again() {
    let refused_once: Arc<Mutex<HashSet<Bytes>>> = Arc::default();
    let seen = Seen::default();
    let s = seen.clone();
    let server = TestServer::start(librelp_config(), move || {
        let refused_once = refused_once.clone();
        Decide {
            seen: s.clone(),
            decide: move |m: &Bytes| {
                // Every third message is refused the first time it arrives.
                let every_third = m.ends_with(b"0") || m.ends_with(b"3") || m.ends_with(b"6");
                if every_third && refused_once.lock().unwrap().insert(m.clone()) {
                    return Verdict::Refused("try later".into());
                }
                Verdict::Accepted
            },
        }
    })
    .await;
    let mut client = Client::connect(&server.addr, fast_config()).await.unwrap();
    for i in 0..30 {
        client.send(msg(i)).await.unwrap();
    }
    let stats = client.close().await.unwrap();
    assert_eq!(stats.sent, 30);
    assert_eq!(stats.acked, 30);
    assert_eq!(stats.refused, 9);
    assert_eq!(stats.resent, 9);
    let got: HashSet<Bytes> = seen.messages().into_iter().collect();
    assert_eq!(got, (0..30).map(msg).collect::<HashSet<_>>());
    assert_eq!(seen.count(), 39);
}

#[tokio::test]
async fn refused_messages_are_dropped_when_resending_is_off() {
    let seen = Seen::default();
    let s = seen.clone();
    let server = TestServer::start(librelp_config(), move || Decide {
        seen: s.clone(),
        decide: |m: &Bytes| {
            if m.ends_with(b"7") {
                Verdict::Refused("no sevens".into())
            } else {
                Verdict::Accepted
            }
        },
    })
    .await;
    let config = ClientConfig {
        resend_refused: false,
        ..fast_config()
    };
    let mut client = Client::connect(&server.addr, config).await.unwrap();
    for i in 0..20 {
        client.send(msg(i)).await.unwrap();
    }
    let stats = client.close().await.unwrap();
    assert_eq!(
        (stats.sent, stats.acked, stats.refused, stats.resent),
        (20, 18, 2, 0)
    );
    assert_eq!(seen.count(), 20);
}

#[tokio::test]
async fn a_receiver_killed_mid_stream_loses_nothing() {
    let seen = Seen::default();
    let s = seen.clone();
    let server = TestServer::start(librelp_config(), move || accept_all(&s)).await;
    let client = Client::connect(&server.addr, fast_config()).await.unwrap();
    let total = 20_000;
    let sender = tokio::spawn(async move {
        let mut client = client;
        for i in 0..total {
            client.send(msg(i)).await.unwrap();
        }
        client.close().await.unwrap()
    });
    for kill_at in [total / 4, total / 2] {
        while seen.count() < kill_at {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        server.kill_sessions();
    }
    let stats = sender.await.unwrap();
    let messages = seen.messages();
    let unique: HashSet<&Bytes> = messages.iter().collect();
    assert_eq!(unique.len(), total, "every message arrived");
    let duplicates = messages.len() - total;
    let window = ClientConfig::default().window;
    assert!(stats.reconnects >= 1 && stats.reconnects <= 2, "{stats:?}");
    assert!(
        duplicates <= window * stats.reconnects as usize,
        "{duplicates} duplicates, {stats:?}"
    );
    assert_eq!(stats.acked as usize, total);
}

#[tokio::test]
async fn gives_up_after_max_reconnects() {
    let seen = Seen::default();
    let s = seen.clone();
    let server = TestServer::start(librelp_config(), move || accept_all(&s)).await;
    let config = ClientConfig {
        max_reconnects: Some(2),
        ..fast_config()
    };
    let mut client = Client::connect(&server.addr, config).await.unwrap();
    client.send(msg(0)).await.unwrap();
    client.flush().await.unwrap();
    // The receiver goes away for good: serverclose, and nobody listens any more.
    server.stop_accepting();
    server.shutdown.cancel();
    server.session(0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = async {
        client.send(msg(1)).await?;
        client.flush().await
    }
    .await
    .unwrap_err();
    match err {
        RelpError::ReconnectsExhausted { attempts, .. } => assert_eq!(attempts, 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        client.unacked(),
        1,
        "the message is kept for a later attempt"
    );
}

#[tokio::test]
async fn connect_errors() {
    // Nobody listening.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let err = Client::connect(&addr, fast_config()).await.unwrap_err();
    assert!(matches!(err, RelpError::Io(_)), "{err:?}");

    // A listener that never answers `open`.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let config = ClientConfig {
        connect_timeout: Duration::from_millis(200),
        ..fast_config()
    };
    let err = Client::connect(&addr, config).await.unwrap_err();
    assert!(matches!(err, RelpError::ConnectTimeout(_)), "{err:?}");

    // A server speaking a newer RELP.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut framed = Framed::new(&mut socket, FrameCodec::new(1 << 20));
        framed.next().await;
        framed
            .send(Frame::new(
                1,
                Command::Rsp,
                "200 OK\nrelp_version=1\ncommands=syslog",
            ))
            .await
            .unwrap();
        socket.shutdown().await.unwrap();
    });
    let err = Client::connect(&addr, fast_config()).await.unwrap_err();
    assert!(matches!(err, RelpError::Offer(_)), "{err:?}");
}

#[tokio::test]
async fn oversize_messages_are_refused_by_send() {
    let seen = Seen::default();
    let s = seen.clone();
    let server = TestServer::start(librelp_config(), move || accept_all(&s)).await;
    let config = ClientConfig {
        max_data_len: 10,
        ..fast_config()
    };
    let mut client = Client::connect(&server.addr, config).await.unwrap();
    let err = client
        .send(Bytes::from_static(b"01234567890"))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        RelpError::MessageTooLarge { len: 11, max: 10 }
    ));
    client
        .send(Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    assert_eq!(client.close().await.unwrap().acked, 1);
}

/// `cargo test --release -p loggr-relp --test client -- --ignored --nocapture throughput`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, run in release"]
async fn throughput_over_loopback() {
    let seen = Seen::default();
    let counter = seen.flushes.clone();
    let server = TestServer::start(librelp_config(), move || Decide {
        seen: Seen {
            messages: Default::default(),
            flushes: counter.clone(),
        },
        decide: |_: &Bytes| Verdict::Accepted,
    })
    .await;
    let total = 500_000;
    let payload = Bytes::from(vec![b'x'; 200]);
    let started = std::time::Instant::now();
    let mut client = Client::connect(&server.addr, ClientConfig::default())
        .await
        .unwrap();
    for _ in 0..total {
        client.send(payload.clone()).await.unwrap();
    }
    let stats = client.close().await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(stats.acked, total);
    eprintln!(
        "{total} x 200 bytes in {elapsed:?}: {:.0} msgs/s",
        total as f64 / elapsed.as_secs_f64()
    );
}
