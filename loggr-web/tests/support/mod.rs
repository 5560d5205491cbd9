//! Shared test helpers: a database of the test's own on the machine's PostgreSQL (start it
//! with `bash scripts/services.sh`), the frontend served on a real port, and a small
//! HTTP/1.1 client with a cookie jar.

#![allow(clippy::unwrap_used, dead_code, unreachable_pub)] // test helpers fail loudly by design

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use argon2::password_hash::{PasswordHasher, SaltString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::types::ToSql;

pub const ALICE_PASSWORD: &str = "correct horse battery staple";
pub const BOB_PASSWORD: &str = "hunter2 but longer";

fn admin(sql: &str) {
    let output = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-h",
            "127.0.0.1",
            "-U",
            "root",
            "-d",
            "postgres",
            "-c",
            sql,
        ])
        .output()
        .unwrap_or_else(|e| panic!("psql is missing ({e}): run `bash scripts/services.sh`"));
    assert!(
        output.status.success(),
        "{sql}: {} (is PostgreSQL running? run `bash scripts/services.sh`)",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Which store a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A database of the test's own on the machine's PostgreSQL.
    Postgres,
    /// A temporary SQLite file (the embedded store).
    Sqlite,
}

/// Runs a check `async fn name(db: TestDb)` against both stores: `name::postgres` and
/// `name::sqlite`.
#[macro_export]
macro_rules! both {
    ($check:ident) => {
        mod $check {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = $crate::support::TestDb::on(
                    $crate::support::Backend::Postgres,
                    stringify!($check),
                )
                .await;
                super::$check(db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::support::TestDb::on(
                    $crate::support::Backend::Sqlite,
                    stringify!($check),
                )
                .await;
                super::$check(db).await;
            }
        }
    };
}

enum Store {
    Postgres(tokio_postgres::Client),
    Sqlite {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
        conn: std::sync::Mutex<rusqlite::Connection>,
    },
}

/// A store of the test's own with loggr's schema (a PostgreSQL database, dropped at the end,
/// or a temporary SQLite file), and a way to put known rows in it.
pub struct TestDb {
    pub name: String,
    store: Store,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    /// A PostgreSQL database.
    pub async fn new(tag: &str) -> TestDb {
        TestDb::on(Backend::Postgres, tag).await
    }

    /// A store of the given backend.
    pub async fn on(backend: Backend, tag: &str) -> TestDb {
        let short: String = tag.chars().take(30).collect();
        let name = format!(
            "loggr_web_{short}_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        if backend == Backend::Sqlite {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("loggr.db");
            // The store creates its schema.
            drop(loggr_store::SqliteStore::open(loggr_store::SqliteConfig::new(&path)).unwrap());
            let conn = std::sync::Mutex::new(rusqlite::Connection::open(&path).unwrap());
            return TestDb {
                name,
                store: Store::Sqlite {
                    _dir: dir,
                    path,
                    conn,
                },
            };
        }
        admin(&format!("DROP DATABASE IF EXISTS {name}"));
        admin(&format!("CREATE DATABASE {name}"));
        let (client, connection) = tokio_postgres::connect(
            &format!("postgresql://root@127.0.0.1:5432/{name}"),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap_or_else(|e| {
            panic!("cannot connect to PostgreSQL ({e}): run `bash scripts/services.sh`")
        });
        tokio::spawn(connection);
        loggr_sinks::postgres::migrate(&client).await.unwrap();
        TestDb {
            name,
            store: Store::Postgres(client),
        }
    }

    /// The `database_url` the frontend is configured with.
    pub fn url(&self) -> String {
        match &self.store {
            Store::Postgres(_) => format!("postgresql://root@127.0.0.1:5432/{}", self.name),
            Store::Sqlite { path, .. } => path.display().to_string(),
        }
    }

    /// The PostgreSQL connection (PostgreSQL-only tests).
    pub fn pg(&self) -> &tokio_postgres::Client {
        match &self.store {
            Store::Postgres(client) => client,
            Store::Sqlite { .. } => panic!("a PostgreSQL-only test ran on SQLite"),
        }
    }

    /// Inserts an event; returns its id.
    pub async fn insert(&self, event: &NewEvent<'_>) -> i64 {
        match &self.store {
            Store::Postgres(client) => insert_pg(client, event).await,
            Store::Sqlite { conn, .. } => insert_sqlite(&conn.lock().unwrap(), event),
        }
    }

    pub async fn count(&self) -> i64 {
        match &self.store {
            Store::Postgres(client) => client
                .query_one("SELECT count(*) FROM event", &[])
                .await
                .unwrap()
                .get(0),
            Store::Sqlite { conn, .. } => conn
                .lock()
                .unwrap()
                .query_row("SELECT count(*) FROM event", [], |r| r.get(0))
                .unwrap(),
        }
    }
}

async fn insert_pg(client: &tokio_postgres::Client, event: &NewEvent<'_>) -> i64 {
    let params: [&(dyn ToSql + Sync); 9] = [
        &event.logtime,
        &event.severity,
        &event.host,
        &event.program,
        &event.message,
        &event.raw,
        &event.structured,
        &event.seq,
        &event.userid,
    ];
    // The event's tags in its row (sorted, NULL when none), and a `tag` row each.
    let mut tags: Vec<&str> = event.tags.to_vec();
    tags.sort_unstable();
    let tags = (!tags.is_empty()).then_some(tags);
    let mut params = params.to_vec();
    params.push(&tags);
    let row = client
        .query_one(
            "INSERT INTO event (digest, logtime, received_at, facility, severity, hostname, \
             program, message, raw, structured_data, userid, tags) \
             VALUES (sha256($8::text::bytea), $1, $1, 1, $2, $3, $4, $5, $6, $7, $9, $10) \
             RETURNING id",
            &params,
        )
        .await
        .unwrap();
    let id: i64 = row.get(0);
    for tag in event.tags {
        client
            .execute("INSERT INTO tag (event, name) VALUES ($1, $2)", &[&id, tag])
            .await
            .unwrap();
    }
    for (name, val) in event.extra {
        client
            .execute(
                "INSERT INTO extra_info (event, name, val) VALUES ($1, $2, $3)",
                &[&id, name, val],
            )
            .await
            .unwrap();
    }
    id
}

fn insert_sqlite(conn: &rusqlite::Connection, event: &NewEvent<'_>) -> i64 {
    // A unique 32-byte digest per event of the test (the sequence number, padded).
    let digest = format!("{:0>32}", event.seq).into_bytes();
    let micros = event.logtime.as_microsecond();
    conn.execute(
        "INSERT INTO event (digest, logtime, received_at, facility, severity, hostname, \
         program, message, raw, structured_data, userid) \
         VALUES (?1, ?2, ?2, 1, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        rusqlite::params![
            digest,
            micros,
            event.severity,
            event.host,
            event.program,
            event.message,
            event.raw,
            event.structured.as_ref().map(|v| v.to_string()),
            event.userid,
        ],
    )
    .unwrap();
    let id = conn.last_insert_rowid();
    for tag in event.tags {
        conn.execute(
            "INSERT INTO tag (event, name) VALUES (?1, ?2)",
            rusqlite::params![id, tag],
        )
        .unwrap();
    }
    for (seq, (name, val)) in (0_i64..).zip(event.extra) {
        conn.execute(
            "INSERT INTO extra_info (event, seq, name, val) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![id, seq, name, val],
        )
        .unwrap();
    }
    id
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if matches!(self.store, Store::Postgres(_)) {
            admin(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// An event to insert.
pub struct NewEvent<'a> {
    pub seq: String,
    pub logtime: jiff::Timestamp,
    pub severity: i16,
    pub host: &'a str,
    pub program: &'a str,
    pub message: &'a str,
    pub raw: Option<Vec<u8>>,
    pub structured: Option<serde_json::Value>,
    pub userid: Option<&'a str>,
    pub tags: &'a [&'a str],
    pub extra: &'a [(&'a str, &'a str)],
}

impl<'a> NewEvent<'a> {
    pub fn new(seq: u32, logtime: &str, message: &'a str) -> NewEvent<'a> {
        NewEvent {
            seq: seq.to_string(),
            logtime: logtime.parse().unwrap(),
            severity: 6,
            host: "web1",
            program: "sshd",
            message,
            raw: None,
            structured: None,
            userid: None,
            tags: &[],
            extra: &[],
        }
    }
}

/// A cheap argon2id hash (tests only: 64 KiB, one pass).
fn cheap_hash(password: &str) -> String {
    let params = argon2::Params::new(64, 1, 1, None).unwrap();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"loggr-web-tests!").unwrap();
    argon
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

/// Serves the frontend over `db` on 127.0.0.1:0; users alice (admin) and bob (reader).
pub async fn serve(db_url: &str, page_size: u32, export_max_rows: u32) -> SocketAddr {
    serve_with(db_url, page_size, export_max_rows, "").await
}

/// [`serve`] with more configuration appended (a `[status]` table, say).
pub async fn serve_with(
    db_url: &str,
    page_size: u32,
    export_max_rows: u32,
    extra: &str,
) -> SocketAddr {
    let mut toml = format!(
        r#"
        database_url = "{db_url}"
        secure_cookies = false
        page_size = {page_size}
        export_max_rows = {export_max_rows}
        [[users]]
        name = "alice"
        password_hash = "{}"
        role = "admin"
        [[users]]
        name = "bob"
        password_hash = "{}"
        role = "reader"
        "#,
        cheap_hash(ALICE_PASSWORD),
        cheap_hash(BOB_PASSWORD)
    );
    toml.push_str(extra);
    let config = loggr_web::WebConfig::from_toml_str(&toml).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = loggr_web::router(loggr_web::AppState::new(config).unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of the hidden `csrf` field of the page.
    pub fn csrf_field(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let at = self.body.find(marker).expect("no csrf field") + marker.len();
        let end = self.body[at..].find('"').unwrap();
        self.body[at..at + end].to_owned()
    }
}

/// A client with a cookie jar, one connection per request.
pub struct Client {
    pub addr: SocketAddr,
    pub cookies: HashMap<String, String>,
}

/// Percent-encodes a form or query value.
pub fn enc(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client {
            addr,
            cookies: HashMap::new(),
        }
    }

    pub async fn request(&mut self, method: &str, target: &str, body: Option<&str>) -> Response {
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let mut head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            head.push_str(&format!("Cookie: {}\r\n", jar.join("; ")));
        }
        if let Some(body) = body {
            head.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        head.push_str(body.unwrap_or(""));
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await.unwrap();
        let text = String::from_utf8(bytes).expect("answer is not UTF-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("no header end");
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.trim().to_owned(), v.trim().to_owned())
            })
            .collect();
        let mut response = Response {
            status,
            headers,
            body: body.to_owned(),
        };
        if response
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            response.body = dechunk(&response.body);
        }
        for cookie in response.set_cookies() {
            let pair = cookie.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || cookie.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        response
    }

    pub async fn get(&mut self, target: &str) -> Response {
        self.request("GET", target, None).await
    }

    pub async fn post(&mut self, target: &str, body: &str) -> Response {
        self.request("POST", target, Some(body)).await
    }

    /// Logs in; returns the login POST's answer.
    pub async fn login(&mut self, user: &str, password: &str) -> Response {
        let page = self.get("/login").await;
        assert_eq!(page.status, 200);
        let csrf = page.csrf_field();
        self.post(
            "/login",
            &format!(
                "csrf={csrf}&username={}&password={}",
                enc(user),
                enc(password)
            ),
        )
        .await
    }

    /// A logged-in client (alice).
    pub async fn logged_in(addr: SocketAddr) -> Client {
        let mut client = Client::new(addr);
        let answer = client.login("alice", ALICE_PASSWORD).await;
        assert_eq!(answer.status, 303, "{answer:?}");
        client
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// The event ids linked from a query page, in page order.
pub fn listed_ids(body: &str) -> Vec<i64> {
    body.split("href=\"/events/")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
        .collect()
}

/// The target of the page's `next` link, HTML-unescaped.
pub fn next_link(body: &str) -> Option<String> {
    let marker = "rel=\"next\" href=\"";
    let at = body.find(marker)? + marker.len();
    let end = body[at..].find('"').unwrap();
    Some(body[at..at + end].replace("&amp;", "&"))
}

/// Serves a fake loggr daemon's `/metrics` and `/connections` under `/relay/` on a local port;
/// returns its metrics URL. It lists three clients (the last one's peer is `hostile_peer`) of
/// five open connections: `relp_in` has 4 open, 2 listed; `tcp_in` 1 open, 1 listed.
pub async fn fake_daemon_with_clients(hostile_peer: &str) -> String {
    const TEXT: &str = "# TYPE loggr_open_connections gauge\n\
        loggr_open_connections{component_kind=\"source\",component=\"relp_in\"} 4\n\
        loggr_open_connections{component_kind=\"source\",component=\"tcp_in\"} 1\n";
    let connections = serde_json::json!({
        "connections": [
            {"listener": "relp_in", "peer": "10.1.2.3:40000", "protocol": "relp",
             "since": "2026-11-21T10:00:00.123456789Z"},
            {"listener": "relp_in", "peer": "[2001:db8::1]:40001", "protocol": "relp+tls",
             "since": "2026-11-21T10:05:00Z"},
            {"listener": "tcp_in", "peer": hostile_peer, "protocol": "tcp",
             "since": "2026-11-21T10:06:00Z"},
        ],
        "listeners": [
            {"listener": "relp_in", "open": 4, "listed": 2},
            {"listener": "tcp_in", "open": 1, "listed": 1},
        ],
    })
    .to_string();
    let app = axum::Router::new()
        .route("/relay/metrics", axum::routing::get(|| async { TEXT }))
        .route(
            "/relay/connections",
            axum::routing::get(move || async move { connections }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/relay/metrics")
}
