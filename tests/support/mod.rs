//! Test support shared by the integration tests that run loggr's daemons against private
//! servers: a RabbitMQ node, a PostgreSQL cluster and a Redis server of the test's own, on free
//! ports, that a test may stop, kill and restart without disturbing anything else on the
//! machine. Each panics with a clear message when its server's binaries are missing (install
//! them with `bash scripts/services.sh`): these tests never skip.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // each test file uses a part; failures are loud

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The ports [`free_port`] hands out: below Linux's ephemeral range (32768 and up).
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A port free for TCP and UDP on 127.0.0.1, for a daemon to bind later; each call in a test
/// process gives another one. It is taken below the kernel's ephemeral range, where the
/// operating system never puts the local end of an outgoing connection: a port the kernel
/// picked (`bind` to port 0) was taken, now and then, by a connection of a test running
/// beside, before the daemon started and bound it ("Address already in use").
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let span = TEST_PORTS.end - TEST_PORTS.start;
    // Test binaries running at once start from different places.
    let offset = (std::process::id() % u32::from(span)) as u16;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % span;
        let port = TEST_PORTS.start + (offset + n) % span;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
    panic!("no free port in {TEST_PORTS:?}");
}

/// Whether something accepts connections on `port`.
pub fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Waits until `port` accepts connections.
pub fn wait_port(port: u16, what: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !port_open(port) {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until nothing accepts connections on `port`.
pub fn wait_port_closed(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while port_open(port) {
        assert!(Instant::now() < deadline, "{what} still listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Builds an example with every feature (as CI's `cargo test --all-features` does, so nothing
/// is rebuilt) and returns its path.
pub fn example(name: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "--all-features", "--example", name]);
    // Not the variables cargo sets for this test: a build script that reads one (ring reads
    // CARGO_MANIFEST_DIR) would see it change between this build and the next `cargo test`,
    // and each would rebuild ring and everything above it (a minute per run).
    for (variable, _) in std::env::vars_os() {
        let variable = variable.to_string_lossy();
        if variable.starts_with("CARGO_PKG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
            ]
            .contains(&variable.as_ref())
        {
            build.env_remove(variable.as_ref());
        }
    }
    // `cargo test --release` (how the end-to-end speed is measured) runs release examples.
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    let status = build.status().unwrap();
    assert!(status.success(), "building example {name}");
    let deps = std::env::current_exe().unwrap();
    deps.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

fn require(binary: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(binary))
            .find(|path| path.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{binary}` is not installed (Debian package {package}): run `bash scripts/services.sh`")
    })
}

fn chown(path: &Path, user: &str) {
    let status = Command::new("chown")
        .arg("-R")
        .arg(user)
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "chown {user} {}", path.display());
}

/// A private RabbitMQ node (its own node name, port and data directory).
pub struct PrivateRabbit {
    dir: tempfile::TempDir,
    node: String,
    /// The AMQP port.
    pub port: u16,
    dist_port: u16,
    child: Option<Child>,
}

impl PrivateRabbit {
    /// Starts a node and waits until it accepts AMQP connections (about 10 s).
    pub fn start() -> PrivateRabbit {
        let server = require("rabbitmq-server", "rabbitmq-server");
        let _ = server;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut node = PrivateRabbit {
            node: format!("loggrtest{port}@localhost"),
            port,
            dist_port: free_port(),
            dir,
            child: None,
        };
        std::fs::write(node.dir.path().join("enabled_plugins"), "[].\n").unwrap();
        std::fs::write(
            node.dir.path().join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\nloopback_users = none\n"),
        )
        .unwrap();
        // rabbitmq-server runs as the `rabbitmq` user when started by root.
        chown(node.dir.path(), "rabbitmq:rabbitmq");
        node.launch();
        node
    }

    fn launch(&mut self) {
        let dir = self.dir.path();
        let child = Command::new("rabbitmq-server")
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_port(self.port, "the private RabbitMQ", Duration::from_secs(90));
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn beam_pid(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("pid"))
            .ok()
            .map(|pid| pid.trim().to_owned())
            .filter(|pid| !pid.is_empty())
    }

    /// `kill -9` of the broker: durable queues and persistent messages survive on disk.
    pub fn kill(&mut self) {
        if let Some(pid) = self.beam_pid() {
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.dir.path().join("pid"));
        wait_port_closed(self.port, "the killed RabbitMQ");
    }

    /// Starts the node again on the same port and data.
    pub fn restart(&mut self) {
        self.launch();
    }

    /// Runs `rabbitmqctl` against this node.
    pub fn ctl(&self, args: &[&str]) -> String {
        let output = Command::new("rabbitmqctl")
            .arg("-n")
            .arg(&self.node)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "rabbitmqctl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Messages in `queue` (ready + unacknowledged), or `None` if it does not exist.
    pub fn queue_depth(&self, queue: &str) -> Option<u64> {
        let listing = self.ctl(&[
            "list_queues",
            "-q",
            "--no-table-headers",
            "name",
            "messages",
        ]);
        listing.lines().find_map(|line| {
            let mut parts = line.split_whitespace();
            (parts.next() == Some(queue)).then(|| parts.next().unwrap().parse().unwrap())
        })
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A private PostgreSQL cluster (initdb in a temporary directory, trust auth, user `root`).
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    /// The port.
    pub port: u16,
    bin: PathBuf,
}

impl PrivatePostgres {
    /// Creates and starts a cluster (about 3 s).
    pub fn start() -> PrivatePostgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|entry| entry.path().join("bin"))
                    .filter(|bin| bin.join("initdb").is_file())
                    .max()
            })
            .unwrap_or_else(|| {
                panic!("PostgreSQL server binaries are missing: run `bash scripts/services.sh`")
            });
        let dir = tempfile::tempdir().unwrap();
        chown(dir.path(), "postgres");
        let data = dir.path().join("data");
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "root", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "initdb failed");
        let cluster = PrivatePostgres {
            dir,
            port: free_port(),
            bin,
        };
        cluster.pg_ctl(&["start", "-w"]);
        cluster
    }

    fn pg_ctl(&self, args: &[&str]) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-o")
            .arg(options)
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl {args:?} failed");
    }

    /// `postgresql://root@127.0.0.1:PORT/DB`.
    pub fn url(&self, database: &str) -> String {
        format!("postgresql://root@127.0.0.1:{}/{database}", self.port)
    }

    /// Stops the server at once (like a crash: `-m immediate`).
    pub fn crash(&self) {
        self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
    }

    /// Starts it again.
    pub fn restart(&self) {
        self.pg_ctl(&["start", "-w"]);
    }

    /// Runs SQL through `psql` and returns its unaligned output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let output = Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg(self.url(database))
            .arg("-c")
            .arg(sql)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.dir.path().join("data/postmaster.pid").exists() {
            self.pg_ctl(&["stop", "-m", "immediate", "-w"]);
        }
    }
}

/// A private `redis-server` on a free port, without persistence.
pub struct PrivateRedis {
    child: Option<Child>,
    /// The port.
    pub port: u16,
}

impl PrivateRedis {
    /// Starts a server on a free port.
    pub fn start() -> PrivateRedis {
        PrivateRedis::start_on(free_port())
    }

    /// Starts a server on `port`.
    pub fn start_on(port: u16) -> PrivateRedis {
        require("redis-server", "redis-server");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        wait_port(port, "the private redis-server", Duration::from_secs(10));
        PrivateRedis {
            child: Some(child),
            port,
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its data is gone: no persistence).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        wait_port_closed(self.port, "the killed redis-server");
    }

    /// Starts it again on the same port (empty).
    pub fn restart(&mut self) {
        *self = PrivateRedis::start_on(self.port);
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A daemon child process, killed when dropped.
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// What it is, for messages.
    pub name: String,
}

impl Daemon {
    /// Starts example `name` with `args`, logging to `log` (a file).
    pub fn spawn(binary: &Path, name: &str, args: &[&str], log: &Path) -> Daemon {
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(binary)
            .args(args)
            .env("RUST_LOG", "warn,loggr=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Daemon {
            child,
            name: name.to_owned(),
        }
    }

    /// Starts a prepared command (arguments and environment set), logging to `log`.
    pub fn spawn_command(mut command: Command, name: &str, log: &Path) -> Daemon {
        let log = std::fs::File::create(log).unwrap();
        let child = command
            .env("RUST_LOG", "warn,loggr=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Daemon {
            child,
            name: name.to_owned(),
        }
    }

    /// SIGTERM, then waits (up to 30 s) for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit after SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits until the daemon accepts connections on `port`; panics with the daemon's log if
    /// it exits first or `timeout` passes (the log is otherwise lost with the test's
    /// temporary directory).
    pub fn wait_port(&mut self, port: u16, log: &Path, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !port_open(port) {
            let exited = self.child.try_wait().unwrap();
            if exited.is_some() || Instant::now() >= deadline {
                panic!(
                    "{} did not listen on {port} within {timeout:?} (exit: {exited:?}); its log:\n{}",
                    self.name,
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs SQL as the administrator on the machine's PostgreSQL (127.0.0.1:5432, database
/// `postgres`), failing loudly when it is not there.
pub fn pg_admin(sql: &str) {
    let output = Command::new("psql")
        .args(["-X", "-q", "-h", "127.0.0.1", "-d", "postgres", "-c", sql])
        .output()
        .unwrap_or_else(|e| panic!("psql is missing ({e}): run `bash scripts/services.sh`"));
    assert!(
        output.status.success(),
        "{sql}: {} (is PostgreSQL running? `bash scripts/services.sh`)",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A database of the test's own on the machine's PostgreSQL, dropped at the end.
pub struct TestDb {
    /// Its name.
    pub name: String,
}

impl TestDb {
    /// A fresh, empty database named after `tag` and this process.
    pub fn new(tag: &str) -> TestDb {
        let name = format!("loggr_{tag}_{}", std::process::id());
        pg_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        pg_admin(&format!("CREATE DATABASE {name}"));
        TestDb { name }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("postgresql://root@127.0.0.1:5432/{}", self.name)
    }

    /// The output of one SQL statement (`psql -A -t`), trimmed.
    pub fn psql(&self, sql: &str) -> String {
        let output = Command::new("psql")
            .args(["-X", "-A", "-t", &self.url(), "-c", sql])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// A number one SQL statement gives.
    pub fn count(&self, sql: &str) -> u64 {
        let text = self.psql(sql);
        text.parse()
            .unwrap_or_else(|_| panic!("{sql} gave {text:?}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-X", "-q", "-h", "127.0.0.1", "-d", "postgres", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .status();
    }
}
