//! Helpers shared by the integration tests: handlers and a loopback server.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use loggr_relp::{serve, MessageHandler, RelpError, ServerConfig, SessionStats, Verdict};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The `open` omrelp (librelp 1.11.0) sends, from PEERS.md.
pub const RSYSLOG_OPEN: &[u8] = b"1 open 86 relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n";
/// imrelp's answer to it, from PEERS.md.
pub const RSYSLOG_OPEN_RSP: &[u8] = b"1 rsp 93 200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n";
/// The software string of librelp, to make our answers byte-identical to imrelp's.
pub const LIBRELP_SOFTWARE: &str = "librelp,1.11.0,http://librelp.adiscon.com";

pub type BoxAck = Pin<Box<dyn Future<Output = Verdict> + Send>>;
pub type Sessions = Arc<Mutex<Vec<JoinHandle<Result<SessionStats, RelpError>>>>>;

/// What a handler saw.
#[derive(Clone, Default)]
pub struct Seen {
    pub messages: Arc<Mutex<Vec<Bytes>>>,
    pub flushes: Arc<AtomicUsize>,
}

impl Seen {
    pub fn messages(&self) -> Vec<Bytes> {
        self.messages.lock().expect("poisoned lock").clone()
    }
    pub fn count(&self) -> usize {
        self.messages.lock().expect("poisoned lock").len()
    }
    pub fn flushes(&self) -> usize {
        self.flushes.load(Ordering::SeqCst)
    }
}

/// Answers each message with `decide(message)` at once.
pub struct Decide<F> {
    pub seen: Seen,
    pub decide: F,
}

impl<F: FnMut(&Bytes) -> Verdict + Send> MessageHandler for Decide<F> {
    type Ack = futures::future::Ready<Verdict>;
    fn on_message(&mut self, data: Bytes) -> Self::Ack {
        let verdict = (self.decide)(&data);
        self.seen.messages.lock().expect("poisoned lock").push(data);
        futures::future::ready(verdict)
    }
    async fn flush(&mut self) {
        self.seen.flushes.fetch_add(1, Ordering::SeqCst);
    }
}

/// Accepts everything.
pub fn accept_all(seen: &Seen) -> Decide<impl FnMut(&Bytes) -> Verdict + Send> {
    Decide {
        seen: seen.clone(),
        decide: |_: &Bytes| Verdict::Accepted,
    }
}

/// Hands every ack's sender to the test, which resolves them when it likes.
pub struct Manual {
    pub seen: Seen,
    pub acks: tokio::sync::mpsc::UnboundedSender<(Bytes, oneshot::Sender<Verdict>)>,
}

impl MessageHandler for Manual {
    type Ack = BoxAck;
    fn on_message(&mut self, data: Bytes) -> BoxAck {
        self.seen
            .messages
            .lock()
            .expect("poisoned lock")
            .push(data.clone());
        let (tx, rx) = oneshot::channel();
        let _ = self.acks.send((data, tx));
        Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Verdict::Refused("dropped".into()))
        })
    }
    async fn flush(&mut self) {
        self.seen.flushes.fetch_add(1, Ordering::SeqCst);
    }
}

/// A listener on 127.0.0.1 serving each connection with a fresh handler from `make`.
pub struct TestServer {
    pub addr: String,
    pub shutdown: CancellationToken,
    pub sessions: Sessions,
    accept: JoinHandle<()>,
}

impl TestServer {
    pub async fn start<H, M>(config: ServerConfig, make: M) -> TestServer
    where
        H: MessageHandler + 'static,
        M: FnMut() -> H + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("test helper");
        Self::start_on(listener, config, make)
    }

    pub fn start_on<H, M>(listener: TcpListener, config: ServerConfig, mut make: M) -> TestServer
    where
        H: MessageHandler + 'static,
        M: FnMut() -> H + Send + 'static,
    {
        let addr = listener.local_addr().expect("test helper").to_string();
        let shutdown = CancellationToken::new();
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let shutdown = shutdown.clone();
            let sessions = sessions.clone();
            let config = Arc::new(config);
            tokio::spawn(async move {
                loop {
                    let (socket, _) = match listener.accept().await {
                        Ok(accepted) => accepted,
                        Err(_) => return,
                    };
                    let handler = make();
                    let shutdown = shutdown.clone();
                    let config = config.clone();
                    let session =
                        tokio::spawn(
                            async move { serve(socket, handler, &config, shutdown).await },
                        );
                    sessions.lock().expect("poisoned lock").push(session);
                }
            })
        };
        TestServer {
            addr,
            shutdown,
            sessions,
            accept,
        }
    }

    /// Drops every session's connection without a word, like `kill -9` of the receiver
    /// (unanswered acks are lost; the listener keeps accepting).
    pub fn kill_sessions(&self) {
        for session in self.sessions.lock().expect("poisoned lock").iter() {
            session.abort();
        }
    }

    /// Stops accepting (existing sessions go on).
    pub fn stop_accepting(&self) {
        self.accept.abort();
    }

    /// The result of the `i`-th session.
    pub async fn session(&self, i: usize) -> Result<SessionStats, RelpError> {
        let handle = loop {
            {
                let mut sessions = self.sessions.lock().expect("poisoned lock");
                if sessions.len() > i {
                    break std::mem::replace(
                        &mut sessions[i],
                        tokio::spawn(async { Ok(SessionStats::default()) }),
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .expect("session did not end")
            .expect("session panicked")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.accept.abort();
        self.shutdown.cancel();
    }
}

/// Writes `input` to `addr` and reads everything until the server closes (at most 10 s).
pub async fn exchange(addr: &str, input: &[u8]) -> Vec<u8> {
    let mut socket = TcpStream::connect(addr).await.expect("test helper");
    socket.write_all(input).await.expect("test helper");
    read_to_close(&mut socket).await
}

pub async fn read_to_close(socket: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut out))
        .await
        .expect("server did not close the connection")
        .expect("test helper");
    out
}

/// Reads until `out` ends with `suffix` (at most 10 s).
pub async fn read_until(socket: &mut TcpStream, suffix: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(10), async {
        while !out.ends_with(suffix) {
            let n = socket.read(&mut buf).await.expect("test helper");
            assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&out));
            out.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out; got {:?}", String::from_utf8_lossy(&out)));
    out
}

pub fn syslog_frame(txnr: u32, msg: &str) -> Vec<u8> {
    format!("{txnr} syslog {} {msg}\n", msg.len()).into_bytes()
}

pub fn librelp_config() -> ServerConfig {
    ServerConfig {
        software: LIBRELP_SOFTWARE.to_owned(),
        ..ServerConfig::default()
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
