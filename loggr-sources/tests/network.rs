//! TCP, UDP and unix-datagram syslog sources over real sockets, with util-linux `logger` as a
//! real sender; the TCP listener's list of connected clients.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::sync::Arc;
use std::time::Duration;

use loggr_core::test_util::CollectingSink;
use loggr_core::{CancellationToken, Event, Metrics, Pipeline, Source};
use loggr_sources::tcp::Framing;
use loggr_sources::udp::UnixDatagramConfig;
use loggr_sources::{TcpConfig, TcpSource, UdpConfig, UdpSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// Runs a pipeline with one source into a collecting sink until `expected` events arrived.
struct Running {
    sink: CollectingSink,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), loggr_core::PipelineError>>,
}

impl Running {
    fn start(source: impl Source) -> Running {
        let sink = CollectingSink::new();
        let shutdown = CancellationToken::new();
        let pipeline = Pipeline::builder()
            .source("net", source)
            .sink("collect", sink.clone())
            .build()
            .unwrap();
        let metrics = pipeline.metrics().clone();
        let task = tokio::spawn(pipeline.run(shutdown.clone()));
        Running {
            sink,
            metrics,
            shutdown,
            task,
        }
    }

    async fn wait_for(&self, expected: usize) -> Vec<Event> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while self.sink.len() < expected {
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {expected} events arrived",
                self.sink.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.sink.events()
    }

    /// Waits until the source lists exactly `expected` (peer, protocol) connections, in order.
    async fn wait_for_clients(&self, expected: &[(String, &str)]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let list = self.metrics.connections();
            let listed: Vec<(String, &str)> = list
                .connections
                .iter()
                .map(|c| {
                    assert_eq!(c.listener, "net");
                    (c.peer.clone(), c.protocol)
                })
                .collect();
            if listed == expected {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "listed {listed:?}, expected {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

async fn tcp_source(configure: impl FnOnce(&mut TcpConfig)) -> (TcpSource, std::net::SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let mut config = TcpConfig::new(address);
    configure(&mut config);
    (TcpSource::with_listener(config, listener), address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_frames_lf_and_octet_counting_on_one_connection_and_skips_bad_frames() {
    let (source, address) = tcp_source(|c| c.max_frame_bytes = 200).await;
    let running = Running::start(source);
    let mut stream = TcpStream::connect(address).await.unwrap();
    let octet = "<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 - 'su root' failed\n";
    let mut wire = Vec::new();
    wire.extend_from_slice(b"<13>Nov 21 10:00:00 web1 app[1]: first\n");
    wire.extend_from_slice(format!("{} {octet}", octet.len()).as_bytes());
    wire.extend_from_slice(b"<13>Nov 21 10:00:01 web1 app[1]: caf\xe9\r\n");
    wire.extend_from_slice(&[b'x'; 500]);
    wire.extend_from_slice(b"\n<13>Nov 21 10:00:02 web1 app[1]: last\n");
    stream.write_all(&wire).await.unwrap();
    let events = running.wait_for(4).await;
    let messages: Vec<&str> = events.iter().map(Event::message_str).collect();
    assert_eq!(
        messages,
        ["first", "'su root' failed", "caf\u{fffd}", "last"]
    );
    assert_eq!(events[1].hostname.as_deref(), Some("mymachine"));
    assert_eq!(events[1].msgid.as_deref(), Some("ID47"));
    assert!(events[2].has_tag("_invalid_utf8"));
    assert_eq!(
        events[0].field("syslog_client_host").unwrap().to_string(),
        "127.0.0.1"
    );
    assert_eq!(
        events[0].field("syslog_server_port").unwrap().to_string(),
        address.port().to_string()
    );
    assert_eq!(
        events[0].field("syslog_protocol").unwrap().to_string(),
        "tcp"
    );
    drop(stream);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_closes_a_connection_whose_octet_count_is_garbage_but_keeps_serving_others() {
    let (source, address) = tcp_source(|c| c.framing = Framing::Octet).await;
    let running = Running::start(source);
    let mut bad = TcpStream::connect(address).await.unwrap();
    bad.write_all(b"5 <1>1 x12ab <1>1 y").await.unwrap();
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), bad.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the server closed the broken stream"
    );
    let mut good = TcpStream::connect(address).await.unwrap();
    good.write_all(b"9 <13>1 - -").await.unwrap();
    let events = running.wait_for(2).await;
    assert_eq!(
        events[0].message_str(),
        "<1>1 ",
        "the frame before the damage is kept (tagged)"
    );
    assert!(events[0].has_tag("_parse_failure"));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_refuses_connections_over_the_limit() {
    let (source, address) = tcp_source(|c| c.max_connections = 1).await;
    let running = Running::start(source);
    let mut first = TcpStream::connect(address).await.unwrap();
    first.write_all(b"<13>hello\n").await.unwrap();
    running.wait_for(1).await;
    let mut second = TcpStream::connect(address).await.unwrap();
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the second connection was closed"
    );
    first.write_all(b"<13>still served\n").await.unwrap();
    let events = running.wait_for(2).await;
    assert_eq!(events[1].message_str(), "still served");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_lists_each_connected_client_until_it_closes() {
    let (source, address) = tcp_source(|_| {}).await;
    let running = Running::start(source);
    let before = loggr_core::Timestamp::now();
    let first = TcpStream::connect(address).await.unwrap();
    let mut second = TcpStream::connect(address).await.unwrap();
    second.write_all(b"<13>hello\n").await.unwrap();
    running.wait_for(1).await;
    let (first_peer, second_peer) = (
        first.local_addr().unwrap().to_string(),
        second.local_addr().unwrap().to_string(),
    );
    running
        .wait_for_clients(&[(first_peer, "tcp"), (second_peer.clone(), "tcp")])
        .await;
    let list = running.metrics.connections();
    assert!(
        list.connections.iter().all(|c| c.since >= before),
        "{list:?}"
    );
    assert_eq!(
        (list.listeners[0].open, list.listeners[0].listed),
        (2, 2),
        "{list:?}"
    );

    drop(first);
    running.wait_for_clients(&[(second_peer, "tcp")]).await;
    drop(second);
    running.wait_for_clients(&[]).await;
    assert!(running.metrics.connections().listeners.is_empty());
    assert!(running
        .metrics
        .render_prometheus()
        .contains("loggr_open_connections{component_kind=\"source\",component=\"net\"} 0"));
    running.stop().await;
}

fn logger_binary() -> &'static str {
    let path = "/usr/bin/logger";
    assert!(
        std::path::Path::new(path).exists(),
        "util-linux `logger` is needed as a real peer: apt-get install bsdutils (scripts/test.sh installs it)"
    );
    path
}

async fn run_logger(args: &[&str], lines: &str) {
    let mut child = tokio::process::Command::new(logger_binary())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "logger failed: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logger_rfc5424_octet_counted_and_lf_framed_all_arrive_in_order() {
    let (source, address) = tcp_source(|_| {}).await;
    let running = Running::start(source);
    let port = address.port().to_string();
    let count = 1000;
    let lines: String = (0..count).map(|i| format!("octet message {i}\n")).collect();
    run_logger(
        &[
            "--tcp",
            "--octet-count",
            "--rfc5424",
            "-n",
            "127.0.0.1",
            "-P",
            &port,
            "-t",
            "myapp",
            "-p",
            "local0.notice",
            "--msgid",
            "ID47",
            "--sd-id",
            "test@32473",
            "--sd-param",
            "k=\"v\"",
        ],
        &lines,
    )
    .await;
    // Two connections are read concurrently: wait for the first sender's messages before the
    // second starts, so that the order checked below is each connection's own.
    running.wait_for(count).await;
    let lines: String = (0..count).map(|i| format!("lf message {i}\n")).collect();
    run_logger(
        &[
            "--tcp",
            "--rfc5424",
            "-n",
            "127.0.0.1",
            "-P",
            &port,
            "-t",
            "other",
            "--id=4242",
        ],
        &lines,
    )
    .await;
    let events = running.wait_for(2 * count).await;
    assert_eq!(events.len(), 2 * count, "nothing duplicated");
    for (i, event) in events[..count].iter().enumerate() {
        assert_eq!(event.message_str(), format!("octet message {i}"));
        assert_eq!(event.app_name.as_deref(), Some("myapp"));
        assert_eq!(event.msgid.as_deref(), Some("ID47"));
        assert_eq!(event.facility, loggr_core::Facility::Local0);
        assert_eq!(
            event
                .structured_data
                .get("test@32473")
                .unwrap()
                .values("k")
                .next()
                .unwrap()
                .as_ref() as &str,
            "v"
        );
    }
    for (i, event) in events[count..].iter().enumerate() {
        assert_eq!(event.message_str(), format!("lf message {i}"));
        assert_eq!(event.procid.as_deref(), Some("4242"));
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_datagrams_become_events() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    let running = Running::start(UdpSource::with_socket(UdpConfig::new(address), socket));
    let port = address.port().to_string();
    run_logger(
        &[
            "--udp",
            "--rfc3164",
            "-n",
            "127.0.0.1",
            "-P",
            &port,
            "-t",
            "udpapp",
        ],
        "over udp\n",
    )
    .await;
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sender
        .send_to(b"<11>1 - host app - - - raw datagram\n", address)
        .await
        .unwrap();
    let events = running.wait_for(2).await;
    assert_eq!(events[0].message_str(), "over udp");
    assert_eq!(events[0].app_name.as_deref(), Some("udpapp"));
    assert_eq!(
        events[1].message_str(),
        "raw datagram",
        "trailing LF trimmed"
    );
    assert_eq!(
        events[1].field("syslog_protocol").unwrap().to_string(),
        "udp"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_datagrams_become_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let config: UnixDatagramConfig = UnixDatagramConfig {
        path: path.clone(),
        format: Default::default(),
        syslog: Default::default(),
        batch_size: 16,
        on_parse_error: Default::default(),
    };
    let running = Running::start(UdpSource::unix(config));
    for _ in 0..100 {
        if path.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run_logger(
        &["-u", path.to_str().unwrap(), "-t", "local", "--rfc3164"],
        "via unix socket\n",
    )
    .await;
    let events = running.wait_for(1).await;
    assert_eq!(events[0].message_str(), "via unix socket");
    assert_eq!(events[0].app_name.as_deref(), Some("local"));
    running.stop().await;
}
