//! TLS on the `tcp` (RFC 5425) and `relp` listeners, with generated certificates.

#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use loggr_core::test_util::CollectingSink;
use loggr_core::{CancellationToken, Pipeline, Source};
use loggr_relp::tls::{
    fingerprint, load_certs, load_key, PeerAuth, TlsClientConfig, TlsClientOptions,
};
use loggr_relp::{Client, ClientConfig};
use loggr_sources::tls::{AuthMode, ClientCertPolicy, TlsListenerConfig};
use loggr_sources::{RelpConfig, RelpSource, TcpConfig, TcpSource};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// Writes a self-signed certificate for `name` and its key; returns their paths.
fn certificate(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let generated = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, generated.cert.pem()).unwrap();
    std::fs::write(&key, generated.key_pair.serialize_pem()).unwrap();
    (cert, key)
}

fn run(
    source: impl Source,
) -> (
    CollectingSink,
    Arc<loggr_core::Metrics>,
    CancellationToken,
    tokio::task::JoinHandle<Result<(), loggr_core::PipelineError>>,
) {
    let sink = CollectingSink::new();
    let shutdown = CancellationToken::new();
    let pipeline = Pipeline::builder()
        .source("tls", source)
        .sink("collect", sink.clone())
        .build()
        .unwrap();
    let metrics = pipeline.metrics().clone();
    let task = tokio::spawn(pipeline.run(shutdown.clone()));
    (sink, metrics, shutdown, task)
}

/// The (peer, protocol) pairs the listener lists now.
fn clients(metrics: &loggr_core::Metrics) -> Vec<(String, &'static str)> {
    metrics
        .connections()
        .connections
        .into_iter()
        .map(|c| (c.peer, c.protocol))
        .collect()
}

async fn wait_for(sink: &CollectingSink, count: usize) {
    for _ in 0..500 {
        if sink.len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("only {} of {count} events arrived", sink.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_over_tls_on_the_tcp_listener() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path(), "localhost");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let tls = TlsListenerConfig {
        cert: cert.clone(),
        key,
        ca: None,
        client_certs: ClientCertPolicy::None,
        auth_mode: AuthMode::Anon,
        permitted_peers: vec![],
    };
    let config = TcpConfig {
        tls: Some(tls),
        ..TcpConfig::new(address)
    };
    let (sink, metrics, shutdown, task) = run(TcpSource::with_listener(config, listener));

    let mut roots = rustls::RootCertStore::empty();
    for c in load_certs(&cert).unwrap() {
        roots.add(c).unwrap();
    }
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut stream = connector.connect(name, tcp).await.unwrap();
    let octet = "<13>1 - host app - - - octet tls";
    let wire = format!("<13>1 - host app - - - over tls\n{} {octet}", octet.len());
    stream.write_all(wire.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    wait_for(&sink, 2).await;
    let events = sink.events();
    assert_eq!(events[0].message_str(), "over tls");
    assert_eq!(events[1].message_str(), "octet tls");
    assert_eq!(
        events[0].field("syslog_protocol").unwrap().to_string(),
        "tls"
    );
    let peer = stream.get_ref().0.local_addr().unwrap().to_string();
    assert_eq!(clients(&metrics), [(peer, "tcp+tls")]);

    // A plaintext sender gets nothing in.
    let mut plain = TcpStream::connect(address).await.unwrap();
    let _ = plain.write_all(b"<13>1 - host app - - - plaintext\n").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.len(), 2, "plaintext is not accepted on a TLS listener");
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relp_over_tls_with_mutual_fingerprint_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let (server_cert, server_key) = certificate(dir.path(), "relp.example.com");
    let (client_cert, client_key) = certificate(dir.path(), "client.example.com");
    let client_fingerprint = fingerprint(&load_certs(&client_cert).unwrap()[0]);
    let server_fingerprint = fingerprint(&load_certs(&server_cert).unwrap()[0]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let tls = TlsListenerConfig {
        cert: server_cert,
        key: server_key,
        ca: None,
        client_certs: ClientCertPolicy::Required,
        auth_mode: AuthMode::Fingerprint,
        permitted_peers: vec![client_fingerprint],
    };
    let config = RelpConfig {
        tls: Some(tls),
        ..RelpConfig::new(address)
    };
    let (sink, metrics, shutdown, task) = run(RelpSource::with_listener(config, listener));

    let options = |with_cert: bool| TlsClientOptions {
        peer_auth: PeerAuth::Fingerprint(vec![server_fingerprint.clone()]),
        client_cert: with_cert.then(|| {
            (
                load_certs(&client_cert).unwrap(),
                load_key(&client_key).unwrap(),
            )
        }),
        server_name: Some("relp.example.com".into()),
        ..TlsClientOptions::default()
    };
    let tls = TlsClientConfig::new(options(true)).unwrap();
    let mut client = Client::connect_tls(&address.to_string(), ClientConfig::default(), tls)
        .await
        .unwrap();
    for i in 0..100 {
        client
            .send(format!("<13>1 - host app - - - secret {i}").into())
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    let listed = clients(&metrics);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].1, "relp+tls");
    let stats = client.close().await.unwrap();
    assert_eq!(stats.acked, 100);
    assert_eq!(sink.len(), 100, "acknowledged means stored");
    assert_eq!(
        sink.events()[0]
            .field("syslog_protocol")
            .unwrap()
            .to_string(),
        "relp+tls"
    );

    // Without a client certificate the session never opens.
    let tls = TlsClientConfig::new(options(false)).unwrap();
    let refused = async {
        let mut client = Client::connect_tls(
            &address.to_string(),
            ClientConfig {
                max_reconnects: Some(0),
                ..ClientConfig::default()
            },
            tls,
        )
        .await?;
        client
            .send("<13>1 - host app - - - intruder".into())
            .await?;
        client.flush().await
    };
    let outcome = tokio::time::timeout(Duration::from_secs(5), refused).await;
    assert!(
        !matches!(outcome, Ok(Ok(()))),
        "a client without certificate is refused"
    );
    assert_eq!(sink.len(), 100);
    shutdown.cancel();
    task.await.unwrap().unwrap();
}
