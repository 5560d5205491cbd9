//! The `syslog_server` daemon as an operator runs it: RELP acknowledgements mean "on disk",
//! SIGTERM drains and exits cleanly, `/metrics` counts per listener, `/connections` lists the
//! connected clients.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use loggr::relp::{Client, ClientConfig};

mod support;

use support::{example, free_port, wait_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relp_acks_mean_stored_and_sigterm_drains_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.jsonl");
    let (relp, metrics) = (free_port(), free_port());
    let mut daemon = Command::new(example("syslog_server"))
        .args([
            "--relp",
            &format!("127.0.0.1:{relp}"),
            "--metrics",
            &format!("127.0.0.1:{metrics}"),
            "--out",
        ])
        .arg(&out)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(
        relp,
        "syslog_server's RELP listener",
        Duration::from_secs(20),
    );
    wait_port(metrics, "syslog_server's /metrics", Duration::from_secs(20));

    let mut client = Client::connect(&format!("127.0.0.1:{relp}"), ClientConfig::default())
        .await
        .unwrap();
    for i in 0..1000 {
        client
            .send(format!("<134>1 2026-11-21T10:00:00Z host app - - - drain {i}").into())
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    let stored = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        stored.lines().count(),
        1000,
        "every acknowledged message is already in the file"
    );

    let text = http_get(metrics, "/metrics").await;
    let listener = format!("component=\"relp:127.0.0.1:{relp}\"");
    assert!(
        text.contains(&format!(
            "loggr_events_delivered_total{{component_kind=\"source\",{listener}}} 1000"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "loggr_open_connections{{component_kind=\"source\",{listener}}} 1"
        )),
        "{text}"
    );
    assert_eq!(http_get(metrics, "/healthz").await.trim_end(), "ok");

    let json: serde_json::Value =
        serde_json::from_str(&http_get(metrics, "/connections").await).unwrap();
    let rows = json["connections"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{json}");
    assert_eq!(
        rows[0]["listener"],
        format!("relp:127.0.0.1:{relp}"),
        "{json}"
    );
    assert_eq!(rows[0]["protocol"], "relp", "{json}");
    assert!(
        rows[0]["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{json}"
    );
    assert!(
        rows[0]["since"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .is_ok(),
        "{json}"
    );
    assert_eq!(json["listeners"][0]["open"], 1, "{json}");

    // SIGTERM with the session open: the daemon answers what is outstanding, sends
    // serverclose and exits 0 well within its grace period.
    let pid = daemon.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = daemon.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "syslog_server did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "clean exit: {status}");
    let stats = client.stats();
    assert_eq!(stats.acked, 1000);
}

/// A minimal HTTP GET (the tests need no HTTP client dependency for two requests).
async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}
