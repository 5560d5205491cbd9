//! TLS (feature `tls`): each of rsyslog's authentication modes with rcgen-generated CAs and
//! certificates, in both directions, including RFC 6125 wildcard corner cases.
#![cfg(feature = "tls")]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use loggr_relp::tls::{
    fingerprint, ClientCerts, PeerAuth, TlsClientConfig, TlsClientOptions, TlsServerConfig,
    TlsServerOptions,
};
use loggr_relp::{serve, Client, ClientConfig, ClientStats, RelpError, SessionStats};
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

#[derive(Clone)]
struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

impl Identity {
    fn cert(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }
    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()))
    }
    fn pair(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (self.chain.clone(), self.key())
    }
}

fn params(sans: &[&str], cn: Option<&str>) -> CertificateParams {
    let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("test setup");
    params.distinguished_name = DistinguishedName::new();
    if let Some(cn) = cn {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    params
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("test setup");
        let mut params = params(&[], Some(name));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("test setup");
        Ca { cert, key }
    }

    fn cert(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    fn issue(&self, sans: &[&str], cn: Option<&str>) -> Identity {
        let key = KeyPair::generate().expect("test setup");
        let cert = params(sans, cn)
            .signed_by(&key, &self.cert, &self.key)
            .expect("test setup");
        Identity {
            chain: vec![cert.der().clone()],
            key: key.serialize_der(),
        }
    }
}

fn self_signed(sans: &[&str]) -> Identity {
    let key = KeyPair::generate().expect("test setup");
    let cert = params(sans, Some(sans[0]))
        .self_signed(&key)
        .expect("test setup");
    Identity {
        chain: vec![cert.der().clone()],
        key: key.serialize_der(),
    }
}

struct TlsTestServer {
    addr: String,
    seen: Seen,
    results: mpsc::UnboundedReceiver<Result<SessionStats, RelpError>>,
    _shutdown: tokio_util::sync::DropGuard,
}

async fn tls_server(options: TlsServerOptions) -> TlsTestServer {
    let tls = TlsServerConfig::new(options).expect("test setup");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("test setup");
    let addr = listener.local_addr().expect("test setup").to_string();
    let seen = Seen::default();
    let (tx, results) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (tls, tx, token, handler) =
                (tls.clone(), tx.clone(), token.clone(), accept_all(&s));
            tokio::spawn(async move {
                let result = match tls.accept(socket).await {
                    Ok(stream) => serve(stream, handler, &librelp_config(), token).await,
                    Err(err) => Err(err),
                };
                let _ = tx.send(result);
            });
        }
    });
    TlsTestServer {
        addr,
        seen,
        results,
        _shutdown: shutdown.drop_guard(),
    }
}

fn client_config() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(5),
        max_reconnects: Some(0),
        ..ClientConfig::default()
    }
}

/// Connects, sends one message, closes.
async fn round_trip(
    server: &TlsTestServer,
    options: TlsClientOptions,
) -> Result<ClientStats, RelpError> {
    let tls = TlsClientConfig::new(options)?;
    let mut client = Client::connect_tls(&server.addr, client_config(), tls).await?;
    client
        .send(Bytes::from_static(b"<13>1 - h app - - - over tls"))
        .await?;
    client.close().await
}

fn server_options(id: &Identity) -> TlsServerOptions {
    TlsServerOptions {
        cert_chain: id.chain.clone(),
        key: id.key(),
        client_certs: ClientCerts::NotRequested,
        peer_auth: PeerAuth::Anon,
        ca_certs: Vec::new(),
    }
}

#[tokio::test]
async fn anon_encrypts_without_checking_the_certificate() {
    let server = tls_server(server_options(&self_signed(&["whatever.invalid"]))).await;
    let stats = round_trip(&server, TlsClientOptions::default())
        .await
        .unwrap();
    assert_eq!(stats.acked, 1);
    assert_eq!(
        server.seen.messages(),
        vec![Bytes::from_static(b"<13>1 - h app - - - over tls")]
    );
}

#[tokio::test]
async fn fingerprint_mode_pins_the_server_certificate() {
    let id = self_signed(&["relp.example.com"]);
    let fp = fingerprint(id.cert());
    assert!(fp.starts_with("SHA256:"));
    assert_eq!(fp.len(), "SHA256".len() + 32 * ":AB".len());
    assert!(fp[7..]
        .split(':')
        .all(|h| h.len() == 2 && h == h.to_uppercase()));
    let server = tls_server(server_options(&id)).await;

    let ok = round_trip(
        &server,
        TlsClientOptions {
            peer_auth: PeerAuth::Fingerprint(vec![
                fingerprint(self_signed(&["x.example.com"]).cert()),
                fp.to_lowercase(),
            ]),
            ..TlsClientOptions::default()
        },
    )
    .await;
    assert_eq!(ok.unwrap().acked, 1);

    let wrong = round_trip(
        &server,
        TlsClientOptions {
            peer_auth: PeerAuth::Fingerprint(vec![fingerprint(
                self_signed(&["x.example.com"]).cert(),
            )]),
            ..TlsClientOptions::default()
        },
    )
    .await;
    assert!(wrong.is_err());
    assert_eq!(server.seen.count(), 1);
}

#[tokio::test]
async fn certvalid_mode_checks_the_chain_not_the_name() {
    let ca = Ca::new("test CA");
    let server = tls_server(server_options(&ca.issue(&["unrelated.example.org"], None))).await;
    let ok = round_trip(
        &server,
        TlsClientOptions {
            peer_auth: PeerAuth::CertValid,
            ca_certs: vec![ca.cert()],
            ..TlsClientOptions::default()
        },
    )
    .await;
    assert_eq!(ok.unwrap().acked, 1);

    let other_ca = Ca::new("other CA");
    let err = round_trip(
        &server,
        TlsClientOptions {
            peer_auth: PeerAuth::CertValid,
            ca_certs: vec![other_ca.cert()],
            ..TlsClientOptions::default()
        },
    )
    .await;
    assert!(err.is_err());
    // A self-signed server certificate is no valid chain either.
    let server = tls_server(server_options(&self_signed(&["relp.example.com"]))).await;
    assert!(round_trip(
        &server,
        TlsClientOptions {
            peer_auth: PeerAuth::CertValid,
            ca_certs: vec![ca.cert()],
            ..TlsClientOptions::default()
        },
    )
    .await
    .is_err());
}

#[tokio::test]
async fn name_mode_follows_rfc6125() {
    let ca = Ca::new("test CA");
    let other_ca = Ca::new("other CA");
    // (certificate SANs, certificate CN, issuing CA is ours, permitted names, SNI, accepted)
    type Case<'a> = (
        &'a [&'a str],
        Option<&'a str>,
        bool,
        &'a [&'a str],
        Option<&'a str>,
        bool,
    );
    let cases: &[Case] = &[
        (
            &["relp.example.com"],
            None,
            true,
            &["relp.example.com"],
            None,
            true,
        ),
        (
            &["relp.example.com"],
            None,
            true,
            &[],
            Some("relp.example.com"),
            true,
        ),
        (
            &["relp.example.com"],
            None,
            true,
            &[],
            Some("RELP.Example.com"),
            true,
        ),
        (
            &["relp.example.com"],
            None,
            true,
            &["other.example.com"],
            None,
            false,
        ),
        (&["relp.example.com"], None, true, &[], None, false), // SNI is 127.0.0.1
        (
            &["relp.example.com"],
            None,
            false,
            &["relp.example.com"],
            None,
            false,
        ),
        (
            &["x.example.com", "relp.example.com"],
            None,
            true,
            &["relp.example.com"],
            None,
            true,
        ),
        // Wildcard certificates: one label, left-most only.
        (
            &["*.example.com"],
            None,
            true,
            &["a.example.com"],
            None,
            true,
        ),
        (
            &["*.example.com"],
            None,
            true,
            &["a.b.example.com"],
            None,
            false,
        ),
        (
            &["*.example.com"],
            None,
            true,
            &["example.com"],
            None,
            false,
        ),
        (
            &["*.example.com"],
            None,
            true,
            &[],
            Some("a.example.com"),
            true,
        ),
        (
            &["*.example.com"],
            None,
            true,
            &[],
            Some("a.b.example.com"),
            false,
        ),
        // CN only when there is no DNS SAN.
        (
            &[],
            Some("relp.example.com"),
            true,
            &["relp.example.com"],
            None,
            true,
        ),
        (
            &["x.example.com"],
            Some("relp.example.com"),
            true,
            &["relp.example.com"],
            None,
            false,
        ),
        // Wildcard permitted names (rsyslog's permittedPeer="*.example.com").
        (
            &["relp.example.com"],
            None,
            true,
            &["*.example.com"],
            None,
            true,
        ),
        (
            &["a.relp.example.com"],
            None,
            true,
            &["*.example.com"],
            None,
            false,
        ),
    ];
    for (i, (sans, cn, ours, permitted, sni, accepted)) in cases.iter().enumerate() {
        let issuer = if *ours { &ca } else { &other_ca };
        let server = tls_server(server_options(&issuer.issue(sans, *cn))).await;
        let result = round_trip(
            &server,
            TlsClientOptions {
                peer_auth: PeerAuth::Name(permitted.iter().map(|s| s.to_string()).collect()),
                ca_certs: vec![ca.cert()],
                server_name: sni.map(str::to_owned),
                ..TlsClientOptions::default()
            },
        )
        .await;
        assert_eq!(
            result.is_ok(),
            *accepted,
            "case {i}: SANs {sans:?} CN {cn:?} permitted {permitted:?} SNI {sni:?}: {result:?}"
        );
        if let Err(err) = result {
            // Refused for the right reason: the name, or (other CA) the chain.
            let why = if *ours {
                "NotValidForName"
            } else {
                "UnknownIssuer"
            };
            assert!(format!("{err:?}").contains(why), "case {i}: {err:?}");
        }
    }
}

#[tokio::test]
async fn client_certificates_required_by_fingerprint() {
    let server_id = self_signed(&["relp.example.com"]);
    let client_id = self_signed(&["client.example.com"]);
    let mut options = server_options(&server_id);
    options.client_certs = ClientCerts::Required;
    options.peer_auth = PeerAuth::Fingerprint(vec![fingerprint(client_id.cert())]);
    let mut server = tls_server(options).await;

    let with_cert = |id: Option<&Identity>| TlsClientOptions {
        peer_auth: PeerAuth::Fingerprint(vec![fingerprint(server_id.cert())]),
        client_cert: id.map(Identity::pair),
        ..TlsClientOptions::default()
    };
    assert_eq!(
        round_trip(&server, with_cert(Some(&client_id)))
            .await
            .unwrap()
            .acked,
        1
    );
    assert!(server.results.recv().await.unwrap().is_ok());

    assert!(round_trip(&server, with_cert(None)).await.is_err());
    assert!(
        server.results.recv().await.unwrap().is_err(),
        "the server refused the handshake"
    );

    let stranger = self_signed(&["client.example.com"]);
    assert!(round_trip(&server, with_cert(Some(&stranger)))
        .await
        .is_err());
    assert!(server.results.recv().await.unwrap().is_err());
    assert_eq!(server.seen.count(), 1);
}

#[tokio::test]
async fn optional_client_certificates_are_checked_when_sent() {
    let ca = Ca::new("client CA");
    let other_ca = Ca::new("other CA");
    let mut options = server_options(&self_signed(&["relp.example.com"]));
    options.client_certs = ClientCerts::Optional;
    options.peer_auth = PeerAuth::CertValid;
    options.ca_certs = vec![ca.cert()];
    let server = tls_server(options).await;
    let client = |id: Option<Identity>| TlsClientOptions {
        client_cert: id.as_ref().map(Identity::pair),
        ..TlsClientOptions::default()
    };
    assert!(
        round_trip(&server, client(None)).await.is_ok(),
        "no certificate is fine"
    );
    assert!(
        round_trip(&server, client(Some(ca.issue(&["c.example.com"], None))))
            .await
            .is_ok()
    );
    assert!(round_trip(
        &server,
        client(Some(other_ca.issue(&["c.example.com"], None)))
    )
    .await
    .is_err());
    assert_eq!(server.seen.count(), 2);
}

#[tokio::test]
async fn client_certificates_checked_by_name() {
    let ca = Ca::new("client CA");
    let mut options = server_options(&self_signed(&["relp.example.com"]));
    options.client_certs = ClientCerts::Required;
    options.peer_auth = PeerAuth::Name(vec![
        "*.clients.example.com".into(),
        "admin.example.com".into(),
    ]);
    options.ca_certs = vec![ca.cert()];
    let server = tls_server(options).await;
    let cases: &[(&[&str], Option<&str>, bool)] = &[
        (&["c1.clients.example.com"], None, true),
        (&["admin.example.com"], None, true),
        (&[], Some("admin.example.com"), true),
        (&["c1.other.example.com"], None, false),
        (&["a.b.clients.example.com"], None, false),
        (&["clients.example.com"], None, false),
        (&["c1.other.example.com"], Some("admin.example.com"), false),
    ];
    for (sans, cn, accepted) in cases {
        let result = round_trip(
            &server,
            TlsClientOptions {
                client_cert: Some(ca.issue(sans, *cn).pair()),
                ..TlsClientOptions::default()
            },
        )
        .await;
        assert_eq!(
            result.is_ok(),
            *accepted,
            "SANs {sans:?} CN {cn:?}: {result:?}"
        );
    }
}

#[test]
fn configurations_that_cannot_work_are_refused() {
    let id = self_signed(&["relp.example.com"]);
    for auth in [
        PeerAuth::CertValid,
        PeerAuth::Name(vec!["a.example.com".into()]),
    ] {
        let err = TlsClientConfig::new(TlsClientOptions {
            peer_auth: auth,
            ..TlsClientOptions::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("CA certificates"), "{err}");
    }
    assert!(TlsClientConfig::new(TlsClientOptions {
        peer_auth: PeerAuth::Fingerprint(vec!["SHA256:12:34".into()]),
        ..TlsClientOptions::default()
    })
    .is_err());
    let mut options = server_options(&id);
    options.client_certs = ClientCerts::Required;
    options.peer_auth = PeerAuth::Name(Vec::new());
    options.ca_certs = vec![id.cert().clone()];
    assert!(TlsServerConfig::new(options).is_err());
}
