//! TLS for the `tcp` (RFC 5425) and `relp` listeners (feature `tls`): the `tls` table of their
//! configuration, with rsyslog's peer authentication modes.
//!
//! ```toml
//! [[sources]]
//! type = "relp"
//! address = "0.0.0.0:2514"
//! tls = { cert = "/etc/loggr/server.pem", key = "/etc/loggr/server.key", ca = "/etc/loggr/ca.pem",
//!         client_certs = "required", auth_mode = "name", permitted_peers = ["*.clients.example.com"] }
//! ```

use std::path::PathBuf;

use serde::Deserialize;

use loggr_core::BoxError;
use loggr_relp::tls::{
    load_certs, load_key, ClientCerts, PeerAuth, TlsServerConfig, TlsServerOptions,
};

/// Whether clients must present a certificate.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ClientCertPolicy {
    /// Not asked for (default).
    #[default]
    None,
    /// Asked for; checked when sent.
    Optional,
    /// Required and checked.
    Required,
}

/// How a client certificate is checked (rsyslog's `tls.authMode`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// No check (encryption only).
    #[default]
    Anon,
    /// The certificate's SHA-256 fingerprint must be in `permitted_peers` (`SHA256:AA:BB:…`).
    Fingerprint,
    /// The chain must lead to `ca` and the certificate name match `permitted_peers` (RFC 6125,
    /// left-most single-label wildcards).
    Name,
    /// The chain must lead to `ca`; the name is not checked.
    Certvalid,
}

/// The `tls` table of a listener.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsListenerConfig {
    /// PEM file with the server certificate (then its intermediates).
    pub cert: PathBuf,
    /// PEM file with the server's private key.
    pub key: PathBuf,
    /// PEM file with the CA certificates trusted for client certificates.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// `none` (default), `optional` or `required`.
    #[serde(default)]
    pub client_certs: ClientCertPolicy,
    /// `anon` (default), `fingerprint`, `name` or `certvalid`.
    #[serde(default)]
    pub auth_mode: AuthMode,
    /// Fingerprints (`fingerprint` mode) or names (`name` mode) of permitted clients.
    #[serde(default)]
    pub permitted_peers: Vec<String>,
}

impl TlsListenerConfig {
    /// Loads the files and builds the rustls configuration.
    ///
    /// # Errors
    ///
    /// An unreadable or invalid file, or a mode that lacks what it needs.
    pub fn build(&self) -> Result<TlsServerConfig, BoxError> {
        let ca_certs = match &self.ca {
            Some(path) => load_certs(path)?,
            None => Vec::new(),
        };
        let peer_auth = match self.auth_mode {
            AuthMode::Anon => PeerAuth::Anon,
            AuthMode::Fingerprint => PeerAuth::Fingerprint(self.permitted_peers.clone()),
            AuthMode::Name => PeerAuth::Name(self.permitted_peers.clone()),
            AuthMode::Certvalid => PeerAuth::CertValid,
        };
        let client_certs = match self.client_certs {
            ClientCertPolicy::None => ClientCerts::NotRequested,
            ClientCertPolicy::Optional => ClientCerts::Optional,
            ClientCertPolicy::Required => ClientCerts::Required,
        };
        Ok(TlsServerConfig::new(TlsServerOptions {
            cert_chain: load_certs(&self.cert)?,
            key: load_key(&self.key)?,
            client_certs,
            peer_auth,
            ca_certs,
        })?)
    }
}

/// Builds a listener's optional TLS configuration; the error names the protocol.
pub(crate) fn server_config(
    config: Option<&TlsListenerConfig>,
    protocol: &str,
) -> Result<Option<TlsServerConfig>, loggr_core::SourceError> {
    config
        .map(|tls| tls.build())
        .transpose()
        .map_err(|error| loggr_core::SourceError::other(format!("{protocol} tls: {error}")))
}
