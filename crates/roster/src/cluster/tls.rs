//! TLS for peer links (feature `tls`): mutual TLS with a cluster certificate authority.
//!
//! Every node presents a certificate signed by the cluster CA and checks the peer's against
//! it, in both directions; the authenticated handshake then runs inside the encrypted
//! stream. rustls with the `ring` provider (no C toolchain beyond a C compiler, no aws-lc).

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::handshake::HandshakeError;

/// TLS could not be configured.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A CA certificate could not be used as a trust root.
    #[error("invalid CA certificate: {0}")]
    Ca(String),
    /// The node certificate or key was refused.
    #[error("invalid node certificate or key: {0}")]
    Certificate(String),
    /// The server name is not a valid DNS name.
    #[error("invalid server name {0:?}: use the DNS name every node certificate carries")]
    ServerName(String),
}

/// Mutual-TLS settings for a node's links; pass them to
/// [`crate::ClusterConfig::tls`].
///
/// # Examples
///
/// ```
/// # fn certs() -> (Vec<rustls::pki_types::CertificateDer<'static>>, rustls::pki_types::PrivateKeyDer<'static>, Vec<rustls::pki_types::CertificateDer<'static>>) {
/// #   let ca_key = rcgen::KeyPair::generate().unwrap();
/// #   let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
/// #   ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
/// #   let ca = ca_params.self_signed(&ca_key).unwrap();
/// #   let issuer = rcgen::Issuer::new(ca_params, ca_key);
/// #   let key = rcgen::KeyPair::generate().unwrap();
/// #   let cert = rcgen::CertificateParams::new(vec!["roster".to_string()]).unwrap().signed_by(&key, &issuer).unwrap();
/// #   (vec![cert.der().clone()], rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()), vec![ca.der().clone()])
/// # }
/// let (chain, key, ca) = certs();
/// let tls = roster::TlsConfig::new(chain, key, ca, "roster").unwrap();
/// let config = roster::ClusterConfig::new("127.0.0.1:0".parse().unwrap(), "secret").tls(tls);
/// # let _ = config;
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl TlsConfig {
    /// Builds the TLS settings from this node's certificate chain and private key, the
    /// cluster CA certificates, and the DNS name that every node certificate carries
    /// (peers are verified against it, not against their IP address).
    ///
    /// # Errors
    ///
    /// [`TlsError`] when a certificate, the key or the name is unusable.
    pub fn new(
        cert_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        ca: Vec<CertificateDer<'static>>,
        server_name: &str,
    ) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in ca {
            roots.add(cert).map_err(|e| TlsError::Ca(e.to_string()))?;
        }
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| TlsError::Ca(e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Certificate(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(cert_chain.clone(), key.clone_key())
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Certificate(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(cert_chain, key)
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| TlsError::ServerName(server_name.to_owned()))?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            server_name,
        })
    }

    pub(crate) async fn connect(
        &self,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, HandshakeError> {
        self.connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| HandshakeError::Tls(e.to_string()))
    }

    pub(crate) async fn accept(
        &self,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::server::TlsStream<TcpStream>, HandshakeError> {
        self.acceptor
            .accept(tcp)
            .await
            .map_err(|e| HandshakeError::Tls(e.to_string()))
    }
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}
