//! The status page and its live stream, the watched components, RabbitMQ queue depths
//! (feature `amqp`), Redis spool lengths (feature `redis`), and the frontend's own `/healthz`
//! and `/metrics`, over real HTTP against the frontend served on a local port.
//!
//! Services: PostgreSQL, RabbitMQ at `LOGGR_TEST_AMQP_URL` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`) and Redis at `LOGGR_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379/`); start them with `bash scripts/services.sh`.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use std::time::Duration;

use support::{Client, TestDb};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Serves a fake loggr daemon's `/metrics` on a local port; returns its URL.
async fn fake_daemon() -> String {
    const TEXT: &str = "# TYPE loggr_events_received_total counter\n\
        loggr_events_received_total{component_kind=\"source\",component=\"relp_in\"} 10\n\
        loggr_events_received_total{component_kind=\"sink\",component=\"pg\"} 2\n\
        # TYPE loggr_events_delivered_total counter\n\
        loggr_events_delivered_total{component_kind=\"sink\",component=\"pg\"} 9\n\
        # TYPE loggr_open_connections gauge\n\
        loggr_open_connections{component_kind=\"source\",component=\"relp_in\"} 3\n\
        loggr_open_connections{component_kind=\"sink\",component=\"pg\"} 1\n";
    let app = axum::Router::new().route("/metrics", axum::routing::get(|| async { TEXT }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/metrics")
}

/// A peer address as a hostile daemon (or proxy) could report it.
const HOSTILE_PEER: &str = "<script>alert(1)</script>:1";

/// A local URL nothing listens on.
async fn dead_url() -> String {
    format!("http://127.0.0.1:{}/metrics", dead_port().await)
}

/// A local port nothing listens on.
async fn dead_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// GETs `/status/stream` with the client's cookies; returns the status code, the headers
/// (lowercase) and the first `data:` snapshot (when the answer is a stream).
async fn first_snapshot(client: &Client) -> (u16, String, Option<serde_json::Value>) {
    let mut stream = tokio::net::TcpStream::connect(client.addr).await.unwrap();
    let jar: Vec<String> = client
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let request = format!(
        "GET /status/stream HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCookie: {}\r\n\r\n",
        client.addr,
        jar.join("; ")
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("no snapshot within 10 s")
            .unwrap();
        text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            assert!(n > 0, "connection closed before the header end: {text}");
            continue;
        };
        let head = head.to_ascii_lowercase();
        let code: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        if code != 200 {
            return (code, head, None);
        }
        // The body is chunked: find a complete `data:` line.
        if let Some(at) = body.find("data:") {
            if let Some(end) = body[at..].find('\n') {
                let json = body[at + "data:".len()..at + end].trim();
                return (code, head, Some(serde_json::from_str(json).unwrap()));
            }
        }
        assert!(n > 0, "stream closed before a snapshot: {text}");
    }
}

async fn status_page_shows_a_component_up_and_one_down(db: TestDb) {
    let up = fake_daemon().await;
    let down = dead_url().await;
    let extra = format!(
        "[status]\ncomponents = [\n  {{ name = \"syslog_server\", metrics_url = \"{up}\" }},\n  \
         {{ name = \"amqp_to_pg\", metrics_url = \"{down}\" }},\n]\nprobe_timeout_ms = 1000\n"
    );
    let addr = support::serve_with(&db.url(), 50, 100, &extra).await;
    let mut client = Client::logged_in(addr).await;
    let page = client.get("/status").await;
    assert_eq!(page.status, 200, "{page:?}");
    let body = &page.body;
    assert!(body.contains("reachable"), "{body}");
    assert!(body.contains("src=\"/static/status.js\""), "{body}");
    let row = |name: &str| {
        let at = body
            .find(&format!("<td>{name} "))
            .unwrap_or_else(|| panic!("{name}: {body}"));
        body[at..at + body[at..].find("</tr>").unwrap()].to_owned()
    };
    let syslog = row("syslog_server");
    assert!(syslog.contains("class=\"up\">up ("), "{syslog}");
    assert!(
        syslog.contains("received 12, delivered 9"),
        "counters summed over components: {syslog}"
    );
    assert!(
        syslog.contains("relp_in 3") && !syslog.contains("pg 1"),
        "open connections of sources only: {syslog}"
    );
    let amqp = row("amqp_to_pg");
    assert!(amqp.contains("class=\"error\">down: unreachable"), "{amqp}");
    assert!(
        body.contains("<td colspan=\"5\">none</td>"),
        "no daemon lists clients: {body}"
    );

    let js = client.get("/static/status.js").await;
    assert_eq!(js.status, 200);
    assert!(js
        .header("content-type")
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.body.contains("new EventSource('/status/stream')"));
}
both!(status_page_shows_a_component_up_and_one_down);

async fn status_stream_sends_json_snapshots_to_sessions_only(db: TestDb) {
    let up = fake_daemon().await;
    let extra =
        format!("[status]\ncomponents = [{{ name = \"relay\", metrics_url = \"{up}\" }}]\n");
    let addr = support::serve_with(&db.url(), 50, 100, &extra).await;

    let anonymous = Client::new(addr);
    let (code, _, _) = first_snapshot(&anonymous).await;
    assert_eq!(code, 401, "no session, no stream");
    let mut forged = Client::new(addr);
    forged
        .cookies
        .insert("loggr_session".into(), "00".repeat(32));
    assert_eq!(first_snapshot(&forged).await.0, 401);

    let client = Client::logged_in(addr).await;
    let (code, head, snapshot) = first_snapshot(&client).await;
    assert_eq!(code, 200);
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert!(
        head.contains("connect-src 'self'"),
        "EventSource needs connect-src: {head}"
    );
    let snapshot = snapshot.unwrap();
    for key in ["time", "store", "components", "queues", "spools"] {
        assert!(snapshot.get(key).is_some(), "{key} missing: {snapshot}");
    }
    let store = &snapshot["store"];
    assert_eq!(store["ok"], true, "{store}");
    for key in [
        "backend",
        "ms",
        "events",
        "recent",
        "rate",
        "newest",
        "window_minutes",
    ] {
        assert!(store.get(key).is_some(), "store.{key} missing: {store}");
    }
    let component = &snapshot["components"][0];
    assert_eq!(component["name"], "relay");
    assert_eq!(component["up"], true, "{component}");
    assert_eq!(component["listeners"][0]["name"], "relp_in");
    assert_eq!(component["listeners"][0]["value"], 3);
    // A daemon without `/connections` (older) lists nobody, and is not in error.
    assert_eq!(component["clients"], serde_json::json!([]), "{component}");
    assert_eq!(component["unlisted"], 0, "{component}");
    assert_eq!(component["error"], serde_json::Value::Null, "{component}");
}
both!(status_stream_sends_json_snapshots_to_sessions_only);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_lists_connected_clients_escaped_and_streams_them() {
    let db = TestDb::on(support::Backend::Sqlite, "clients").await;
    let relay = support::fake_daemon_with_clients(HOSTILE_PEER).await;
    let old = fake_daemon().await;
    let extra = format!(
        "[status]\ncomponents = [\n  {{ name = \"relay\", metrics_url = \"{relay}\" }},\n  \
         {{ name = \"old\", metrics_url = \"{old}\" }},\n]\n"
    );
    let addr = support::serve_with(&db.url(), 50, 100, &extra).await;
    let mut client = Client::logged_in(addr).await;

    let page = client.get("/status").await;
    assert_eq!(page.status, 200, "{page:?}");
    let body = &page.body;
    let at = body
        .find("<tbody id=\"clients\">")
        .unwrap_or_else(|| panic!("no clients table: {body}"));
    let table = &body[at..at + body[at..].find("</tbody>").unwrap()];
    let rows: Vec<&str> = table.split("<tr>").skip(1).map(str::trim).collect();
    assert_eq!(
        rows,
        [
            "<td>relay</td><td>relp_in</td><td>10.1.2.3:40000</td><td>relp</td>\
             <td>2026-11-21T10:00:00Z</td></tr>",
            "<td>relay</td><td>relp_in</td><td>[2001:db8::1]:40001</td><td>relp+tls</td>\
             <td>2026-11-21T10:05:00Z</td></tr>",
            "<td>relay</td><td>tcp_in</td>\
             <td>&lt;script&gt;alert(1)&lt;&#x2f;script&gt;:1</td><td>tcp</td>\
             <td>2026-11-21T10:06:00Z</td></tr>",
            "<td>relay</td><td colspan=\"4\">2 more, not listed</td></tr>",
        ],
        "{table}"
    );
    assert!(
        !body.contains("<script>alert"),
        "the peer is escaped: {body}"
    );

    let (code, head, snapshot) = first_snapshot(&client).await;
    assert_eq!(code, 200);
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    let snapshot = snapshot.unwrap();
    let relay = &snapshot["components"][0];
    assert_eq!(relay["unlisted"], 2, "{relay}");
    let clients = relay["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 3, "{relay}");
    assert_eq!(
        clients[2],
        serde_json::json!({"listener": "tcp_in", "peer": HOSTILE_PEER, "protocol": "tcp",
                           "since": "2026-11-21T10:06:00Z"}),
        "JSON carries the text as data (status.js sets it with textContent)"
    );
    assert_eq!(snapshot["components"][1]["clients"], serde_json::json!([]));

    let js = client.get("/static/status.js").await;
    assert!(
        js.body.contains("fillRows('clients'"),
        "status.js fills the clients table"
    );
}

#[tokio::test]
async fn healthz_and_metrics_answer_and_count_requests_by_route_template() {
    let db = TestDb::on(support::Backend::Sqlite, "metrics").await;
    let addr = support::serve(&db.url(), 50, 100).await;
    let mut anonymous = Client::new(addr);
    let health = anonymous.get("/healthz").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body.trim(), "ok");
    assert_eq!(anonymous.get("/events").await.status, 303);
    assert_eq!(anonymous.get("/no/such/page").await.status, 404);

    let mut client = Client::logged_in(addr).await;
    assert_eq!(client.get("/events/424242").await.status, 404);
    assert_eq!(client.get("/events/424243").await.status, 404);
    assert_eq!(client.get("/events").await.status, 200);

    let metrics = anonymous.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let text = &metrics.body;
    for line in [
        "loggr_web_http_requests_total{route=\"/healthz\",status=\"2xx\"} 1",
        "loggr_web_http_requests_total{route=\"/events\",status=\"3xx\"} 1",
        "loggr_web_http_requests_total{route=\"/events\",status=\"2xx\"} 1",
        "loggr_web_http_requests_total{route=\"/events/{id}\",status=\"4xx\"} 2",
        "loggr_web_http_requests_total{route=\"unmatched\",status=\"4xx\"} 1",
        "loggr_web_sessions_open 1",
        "loggr_web_store_query_duration_seconds_count{query=\"event\"} 2",
        "loggr_web_store_query_duration_seconds_count{query=\"events\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    assert!(
        !text.contains("424242"),
        "raw paths are never labels:\n{text}"
    );
    let again = anonymous.get("/metrics").await;
    assert!(
        again
            .body
            .contains("loggr_web_http_requests_total{route=\"/metrics\",status=\"2xx\"} 1"),
        "{}",
        again.body
    );
}

#[cfg(feature = "amqp")]
mod amqp {
    use lapin::options::{
        BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
    };
    use lapin::types::FieldTable;
    use lapin::BasicProperties;

    use super::*;

    fn url() -> String {
        std::env::var("LOGGR_TEST_AMQP_URL")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
    }

    #[tokio::test]
    async fn queue_depth_is_the_number_of_published_messages() {
        let queue = format!("loggr-web-status-{}", std::process::id());
        let missing = format!("{queue}-missing");
        let connection = lapin::Connection::connect(&url(), lapin::ConnectionProperties::default())
            .await
            .unwrap_or_else(|e| {
                panic!("cannot reach RabbitMQ ({e}): run `bash scripts/services.sh`")
            });
        let channel = connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        channel
            .queue_purge(queue.as_str().into(), Default::default())
            .await
            .unwrap();
        const N: u64 = 7;
        for i in 0..N {
            channel
                .basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    format!("message {i}").as_bytes(),
                    BasicProperties::default(),
                )
                .await
                .unwrap()
                .await
                .unwrap();
        }

        let db = TestDb::on(support::Backend::Sqlite, "amqp").await;
        let extra = format!(
            "[status]\namqp_url = \"{}\"\nqueues = [\"{queue}\", \"{missing}\"]\n",
            url()
        );
        let addr = support::serve_with(&db.url(), 50, 100, &extra).await;
        let client = Client::logged_in(addr).await;
        let snapshot = first_snapshot(&client).await.2.unwrap();
        let queues = &snapshot["queues"];
        assert_eq!(queues[0]["name"], queue.as_str(), "{queues}");
        assert_eq!(queues[0]["messages"], N, "{queues}");
        assert_eq!(queues[0]["error"], serde_json::Value::Null);
        assert_eq!(queues[1]["messages"], serde_json::Value::Null, "{queues}");
        assert_eq!(queues[1]["error"], "no such queue", "{queues}");
        // The probe never creates a queue.
        let mut page_client = Client::logged_in(addr).await;
        let page = page_client.get("/status").await;
        assert!(
            page.body
                .contains(&format!("<td>{queue}</td>\n<td>{N}</td>")),
            "{}",
            page.body
        );
        assert!(!page.body.contains("guest:guest"), "no secret on the page");
        let check = connection.create_channel().await.unwrap();
        let passive = check
            .queue_declare(
                missing.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await;
        assert!(passive.is_err(), "the missing queue stays missing");
        channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_broker_shows_unknown_depths_without_its_password() {
        let port = super::dead_port().await;
        let db = TestDb::on(support::Backend::Sqlite, "amqp_down").await;
        let extra = format!(
            "[status]\namqp_url = \"amqp://guest:s3cret@127.0.0.1:{port}/%2f\"\nqueues = [\"q\"]\nprobe_timeout_ms = 1000\n"
        );
        let addr = support::serve_with(&db.url(), 50, 100, &extra).await;
        let mut client = Client::logged_in(addr).await;
        let page = client.get("/status").await;
        assert!(
            page.body
                .contains("<td>q</td>\n<td class=\"error\">unknown: "),
            "{}",
            page.body
        );
        assert!(!page.body.contains("s3cret"));
    }
}

#[cfg(feature = "redis")]
mod redis_spool {
    use super::*;

    fn url() -> String {
        std::env::var("LOGGR_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into())
    }

    #[tokio::test]
    async fn spool_length_is_the_list_length() {
        let key = format!("loggr-web-status-{}", std::process::id());
        let string_key = format!("{key}-string");
        let missing = format!("{key}-missing");
        let mut conn = redis::Client::open(url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("cannot reach Redis ({e}): run `bash scripts/services.sh`"));
        let _: () = redis::cmd("DEL")
            .arg(&key)
            .arg(&string_key)
            .arg(&missing)
            .query_async(&mut conn)
            .await
            .unwrap();
        for i in 0..5 {
            let _: u64 = redis::cmd("RPUSH")
                .arg(&key)
                .arg(format!("item {i}"))
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        let _: () = redis::cmd("SET")
            .arg(&string_key)
            .arg("x")
            .query_async(&mut conn)
            .await
            .unwrap();

        let db = TestDb::on(support::Backend::Sqlite, "redis").await;
        let extra = format!(
            "[status]\nredis_url = \"{}\"\nspool_keys = [\"{key}\", \"{missing}\", \"{string_key}\"]\n",
            url()
        );
        let addr = support::serve_with(&db.url(), 50, 100, &extra).await;
        let client = Client::logged_in(addr).await;
        let snapshot = first_snapshot(&client).await.2.unwrap();
        let spools = &snapshot["spools"];
        assert_eq!(spools[0]["key"], key.as_str());
        assert_eq!(spools[0]["length"], 5, "{spools}");
        assert_eq!(spools[1]["length"], 0, "a missing list is empty: {spools}");
        assert_eq!(spools[2]["error"], "not a list", "{spools}");
        let _: () = redis::cmd("DEL")
            .arg(&key)
            .arg(&string_key)
            .query_async(&mut conn)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_redis_shows_unknown_lengths_without_its_password() {
        let port = super::dead_port().await;
        let db = TestDb::on(support::Backend::Sqlite, "redis_down").await;
        let extra = format!(
            "[status]\nredis_url = \"redis://:s3cret@127.0.0.1:{port}/\"\nspool_keys = [\"k\"]\nprobe_timeout_ms = 1000\n"
        );
        let addr = support::serve_with(&db.url(), 50, 100, &extra).await;
        let mut client = Client::logged_in(addr).await;
        let page = client.get("/status").await;
        assert!(
            page.body
                .contains("<td>k</td>\n<td class=\"error\">unknown: "),
            "{}",
            page.body
        );
        assert!(!page.body.contains("s3cret"));
    }
}
