//! TLS for RELP (feature `tls`): rustls configurations for the server and the client, with
//! rsyslog's peer authentication modes ([`PeerAuth`]).
//!
//! rsyslog (`imrelp`/`omrelp` with `tls="on"`) authenticates the peer in one of four modes
//! (`tls.authMode`), mirrored here:
//!
//! | mode | the peer's certificate must… |
//! | --- | --- |
//! | [`PeerAuth::Anon`] | nothing (encryption only; the handshake signature is still checked) |
//! | [`PeerAuth::Fingerprint`] | have a SHA-256 fingerprint in the list (`SHA256:AA:BB:…`, as rsyslog prints it); the chain is not checked, so self-signed certificates work |
//! | [`PeerAuth::Name`] | chain to one of the CA certificates **and** present a permitted name (RFC 6125, see below) |
//! | [`PeerAuth::CertValid`] | chain to one of the CA certificates; the name is not checked |
//!
//! Names: a certificate presents its DNS subjectAltNames, or its common name when it has no DNS
//! subjectAltName. A left-most wildcard label stands for exactly one label: `*.example.com`
//! matches `a.example.com`, not `a.b.example.com` nor `example.com`. A permitted name may be a
//! wildcard too (rsyslog's `permittedPeer="*.example.com"`). On the client, an empty list of
//! permitted names means the host name connected to.
//!
//! On the server, client certificates are [`ClientCerts::NotRequested`], `Optional` or
//! `Required`; a certificate the client does send is checked with the server's [`PeerAuth`].
//!
//! ```no_run
//! # async fn run() -> Result<(), loggr_relp::RelpError> {
//! use loggr_relp::tls::{load_certs, load_key, ClientCerts, PeerAuth, TlsClientConfig, TlsClientOptions, TlsServerConfig, TlsServerOptions};
//! use loggr_relp::{Client, ClientConfig};
//!
//! let server = TlsServerConfig::new(TlsServerOptions {
//!     cert_chain: load_certs("server.pem")?,
//!     key: load_key("server.key")?,
//!     client_certs: ClientCerts::Required,
//!     peer_auth: PeerAuth::Name(vec!["*.clients.example.com".into()]),
//!     ca_certs: load_certs("ca.pem")?,
//! })?;
//! // per accepted TCP connection: serve(server.accept(socket).await?, handler, &config, token)
//!
//! let tls = TlsClientConfig::new(TlsClientOptions {
//!     peer_auth: PeerAuth::Fingerprint(vec!["SHA256:0A:1B:…".into()]),
//!     ..TlsClientOptions::default()
//! })?;
//! let client = Client::connect_tls("relp.example.com:2514", ClientConfig::default(), tls).await?;
//! # Ok(()) }
//! ```

mod names;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::RelpError;

/// How the peer's certificate is checked (rsyslog's `tls.authMode`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PeerAuth {
    /// No check of the certificate.
    #[default]
    Anon,
    /// The SHA-256 fingerprint of the peer's certificate (DER) must be one of these, written
    /// as rsyslog does: `SHA256:AA:BB:…` (case and colons do not matter).
    Fingerprint(Vec<String>),
    /// The chain must be valid and the certificate must present one of these names (wildcards
    /// allowed, see the [module docs](self)). Client: empty means the host connected to.
    Name(Vec<String>),
    /// The chain must be valid; names are not checked.
    CertValid,
}

/// Whether the server asks clients for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientCerts {
    /// Not asked for.
    #[default]
    NotRequested,
    /// Asked for; a client without one is accepted, one that sends one is checked.
    Optional,
    /// Required and checked.
    Required,
}

/// What [`TlsServerConfig::new`] needs.
#[derive(Debug)]
pub struct TlsServerOptions {
    /// The server's certificate, then its intermediates.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// The server's private key.
    pub key: PrivateKeyDer<'static>,
    /// Whether clients must present a certificate.
    pub client_certs: ClientCerts,
    /// How a client certificate is checked.
    pub peer_auth: PeerAuth,
    /// Trust anchors for [`PeerAuth::Name`] and [`PeerAuth::CertValid`].
    pub ca_certs: Vec<CertificateDer<'static>>,
}

/// What [`TlsClientConfig::new`] needs.
#[derive(Debug, Default)]
pub struct TlsClientOptions {
    /// How the server certificate is checked.
    pub peer_auth: PeerAuth,
    /// Trust anchors for [`PeerAuth::Name`] and [`PeerAuth::CertValid`].
    pub ca_certs: Vec<CertificateDer<'static>>,
    /// Our certificate chain and key, for servers that ask for one.
    pub client_cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    /// The name sent as SNI (and the default permitted name); default: the host of the
    /// address connected to.
    pub server_name: Option<String>,
}

/// A TLS server configuration: wrap each accepted connection with [`TlsServerConfig::accept`]
/// and hand the stream to [`serve`](crate::serve).
#[derive(Clone)]
pub struct TlsServerConfig {
    acceptor: tokio_rustls::TlsAcceptor,
}

impl fmt::Debug for TlsServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServerConfig").finish_non_exhaustive()
    }
}

impl TlsServerConfig {
    /// Builds the rustls configuration (ring provider, TLS 1.2 and 1.3).
    ///
    /// # Errors
    ///
    /// [`RelpError::Tls`]: a bad key or certificate, a bad fingerprint, or a mode that needs CA
    /// certificates (or permitted names) without them.
    pub fn new(options: TlsServerOptions) -> Result<TlsServerConfig, RelpError> {
        let provider = provider();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?;
        let builder = if options.client_certs == ClientCerts::NotRequested {
            builder.with_no_client_auth()
        } else {
            if matches!(&options.peer_auth, PeerAuth::Name(names) if names.is_empty()) {
                return Err(RelpError::Tls(
                    "the name mode needs permitted client names".to_owned(),
                ));
            }
            let check = PeerCheck::new(&options.peer_auth, &options.ca_certs, provider.clone())?;
            let chain = match &check.roots {
                Some(roots) => Some(
                    WebPkiClientVerifier::builder_with_provider(roots.clone(), provider)
                        .build()
                        .map_err(tls_error)?,
                ),
                None => None,
            };
            builder.with_client_cert_verifier(Arc::new(ClientVerifier {
                check,
                chain,
                mandatory: options.client_certs == ClientCerts::Required,
            }))
        };
        let config = builder
            .with_single_cert(options.cert_chain, options.key)
            .map_err(tls_error)?;
        Ok(TlsServerConfig {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Runs the TLS handshake on an accepted connection.
    ///
    /// # Errors
    ///
    /// [`RelpError::Io`]: the handshake failed, or the client's certificate was refused.
    pub async fn accept<IO>(&self, io: IO) -> Result<tokio_rustls::server::TlsStream<IO>, RelpError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        Ok(self.acceptor.accept(io).await?)
    }
}

/// A TLS client configuration, for [`Client::connect_tls`](crate::Client::connect_tls).
#[derive(Clone)]
pub struct TlsClientConfig {
    connector: tokio_rustls::TlsConnector,
    server_name: Option<ServerName<'static>>,
}

impl fmt::Debug for TlsClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClientConfig")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsClientConfig {
    /// Builds the rustls configuration (ring provider, TLS 1.2 and 1.3).
    ///
    /// # Errors
    ///
    /// [`RelpError::Tls`]: a bad key, certificate, fingerprint or server name, or a mode that
    /// needs CA certificates without them.
    pub fn new(options: TlsClientOptions) -> Result<TlsClientConfig, RelpError> {
        let provider = provider();
        let check = PeerCheck::new(&options.peer_auth, &options.ca_certs, provider.clone())?;
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ServerVerifier { check }));
        let config = match options.client_cert {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(tls_error)?,
            None => builder.with_no_client_auth(),
        };
        let server_name = options
            .server_name
            .map(|name| ServerName::try_from(name).map_err(tls_error))
            .transpose()?;
        Ok(TlsClientConfig {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    /// The TLS handshake over `tcp`, connected to `addr` (`host:port`; the host is the
    /// default server name), with the configured checks of the server. RELP's
    /// [`Client::connect_tls`](crate::Client::connect_tls) uses it; so can any other protocol
    /// over TLS (syslog over TLS, RFC 5425).
    ///
    /// # Errors
    ///
    /// [`RelpError::Tls`] for a host that is not a valid server name; an I/O error when the
    /// handshake or the server's certificate check fails.
    pub async fn connect(
        &self,
        addr: &str,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, RelpError> {
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => ServerName::try_from(host_of(addr).to_owned()).map_err(tls_error)?,
        };
        Ok(self.connector.connect(name, tcp).await?)
    }
}

/// The host part of `host:port` (`[v6]:port` too).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// The SHA-256 fingerprint of a certificate as rsyslog writes it: `SHA256:AA:BB:…`.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    let mut out = String::with_capacity(7 + 3 * digest.len());
    out.push_str("SHA256");
    for byte in digest {
        out.push_str(&format!(":{byte:02X}"));
    }
    out
}

fn parse_fingerprint(text: &str) -> Result<[u8; 32], RelpError> {
    let bad = || RelpError::Tls(format!("invalid SHA-256 fingerprint {text:?}"));
    let hex = match text.split_once(':') {
        // "SHA256:AA:…"; a first part of two hex digits is not an algorithm name.
        Some((algo, rest)) if !(algo.len() == 2 && algo.bytes().all(|b| b.is_ascii_hexdigit())) => {
            if !algo.eq_ignore_ascii_case("sha256") {
                return Err(RelpError::Tls(format!(
                    "unsupported fingerprint algorithm {algo}"
                )));
            }
            rest
        }
        _ => text,
    };
    let digits: Vec<u8> = hex.bytes().filter(|&b| b != b':').collect();
    if digits.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
        out[i] = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// Reads every certificate of a PEM file.
///
/// # Errors
///
/// [`RelpError::Tls`]: unreadable file, bad PEM, or no certificate in it.
pub fn load_certs(path: impl AsRef<Path>) -> Result<Vec<CertificateDer<'static>>, RelpError> {
    let path = path.as_ref();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| RelpError::Tls(format!("{}: {err}", path.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| RelpError::Tls(format!("{}: {err}", path.display())))?;
    if certs.is_empty() {
        return Err(RelpError::Tls(format!(
            "{}: no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
///
/// # Errors
///
/// [`RelpError::Tls`]: unreadable file, bad PEM, or no key in it.
pub fn load_key(path: impl AsRef<Path>) -> Result<PrivateKeyDer<'static>, RelpError> {
    let path = path.as_ref();
    PrivateKeyDer::from_pem_file(path)
        .map_err(|err| RelpError::Tls(format!("{}: {err}", path.display())))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(err: impl fmt::Display) -> RelpError {
    RelpError::Tls(err.to_string())
}

/// The authentication mode, ready to check certificates.
#[derive(Debug)]
enum Check {
    Anon,
    Fingerprint(Vec<[u8; 32]>),
    Name(Vec<String>),
    CertValid,
}

#[derive(Debug)]
struct PeerCheck {
    check: Check,
    roots: Option<Arc<RootCertStore>>,
    provider: Arc<CryptoProvider>,
}

impl PeerCheck {
    fn new(
        auth: &PeerAuth,
        ca_certs: &[CertificateDer<'static>],
        provider: Arc<CryptoProvider>,
    ) -> Result<PeerCheck, RelpError> {
        let check = match auth {
            PeerAuth::Anon => Check::Anon,
            PeerAuth::Fingerprint(list) => {
                if list.is_empty() {
                    return Err(RelpError::Tls(
                        "the fingerprint mode needs fingerprints".into(),
                    ));
                }
                Check::Fingerprint(
                    list.iter()
                        .map(|f| parse_fingerprint(f))
                        .collect::<Result<_, _>>()?,
                )
            }
            PeerAuth::Name(names) => Check::Name(names.clone()),
            PeerAuth::CertValid => Check::CertValid,
        };
        let roots = if matches!(check, Check::Name(_) | Check::CertValid) {
            if ca_certs.is_empty() {
                return Err(RelpError::Tls(
                    "the name and certvalid modes need CA certificates".to_owned(),
                ));
            }
            let mut roots = RootCertStore::empty();
            for cert in ca_certs {
                roots.add(cert.clone()).map_err(tls_error)?;
            }
            Some(Arc::new(roots))
        } else {
            None
        };
        Ok(PeerCheck {
            check,
            roots,
            provider,
        })
    }

    /// Checks the end-entity certificate; `chain` validates the chain (client or server usage).
    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        chain: impl FnOnce(&RootCertStore) -> Result<(), rustls::Error>,
        default_name: Option<&str>,
    ) -> Result<(), rustls::Error> {
        let chain_valid = || match &self.roots {
            Some(roots) => chain(roots),
            None => Err(rustls::Error::General("no trust anchors".to_owned())),
        };
        match &self.check {
            Check::Anon => Ok(()),
            Check::Fingerprint(allowed) => {
                let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
                if allowed.contains(&digest) {
                    Ok(())
                } else {
                    tracing::debug!(
                        fingerprint = %fingerprint(end_entity),
                        "TLS peer fingerprint not permitted"
                    );
                    Err(CertificateError::ApplicationVerificationFailure.into())
                }
            }
            Check::CertValid => chain_valid(),
            Check::Name(permitted) => {
                chain_valid()?;
                let presented = names::presented_names(end_entity.as_ref())
                    .ok_or(CertificateError::BadEncoding)?;
                let ok = if permitted.is_empty() {
                    default_name.is_some_and(|name| {
                        presented.iter().any(|p| names::wildcard_match(p, name))
                    })
                } else {
                    names::permitted(&presented, permitted)
                };
                if ok {
                    Ok(())
                } else {
                    tracing::debug!(?presented, "TLS peer name not permitted");
                    Err(CertificateError::NotValidForName.into())
                }
            }
        }
    }

    fn verify_tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The client's check of the server certificate.
#[derive(Debug)]
struct ServerVerifier {
    check: PeerCheck,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let default_name = match server_name {
            ServerName::DnsName(name) => Some(name.as_ref()),
            _ => None,
        };
        self.check.verify(
            end_entity,
            |roots| {
                let cert = ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_cert_signed_by_trust_anchor(
                    &cert,
                    roots,
                    intermediates,
                    now,
                    self.check.provider.signature_verification_algorithms.all,
                )
            },
            default_name,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check.verify_tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check.verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.check.schemes()
    }
}

/// The server's check of client certificates.
#[derive(Debug)]
struct ClientVerifier {
    check: PeerCheck,
    /// webpki's client verifier, for the chain (client usage).
    chain: Option<Arc<dyn ClientCertVerifier>>,
    mandatory: bool,
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check.verify(
            end_entity,
            |_| match &self.chain {
                Some(chain) => chain
                    .verify_client_cert(end_entity, intermediates, now)
                    .map(|_| ()),
                None => Err(rustls::Error::General("no trust anchors".to_owned())),
            },
            None,
        )?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check.verify_tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check.verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.check.schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_as_rsyslog_writes_them() {
        let text = format!("SHA256:{}", ["AB"; 32].join(":"));
        assert_eq!(parse_fingerprint(&text).unwrap(), [0xab; 32]);
        assert_eq!(parse_fingerprint(&text.to_lowercase()).unwrap(), [0xab; 32]);
        assert_eq!(parse_fingerprint(&"ab".repeat(32)).unwrap(), [0xab; 32]);
        assert!(parse_fingerprint("SHA256:AB:CD").is_err());
        assert!(parse_fingerprint(&format!("SHA1:{}", ["AB"; 20].join(":"))).is_err());
        assert!(parse_fingerprint(&format!("SHA256:{}", ["ZZ"; 32].join(":"))).is_err());
    }

    #[test]
    fn host_of_addresses() {
        assert_eq!(host_of("relp.example.com:2514"), "relp.example.com");
        assert_eq!(host_of("127.0.0.1:2514"), "127.0.0.1");
        assert_eq!(host_of("[::1]:2514"), "::1");
    }
}
