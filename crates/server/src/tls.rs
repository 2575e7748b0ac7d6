//! HTTPS: the server's certificate and key, loaded once into a rustls
//! configuration (TLS 1.2 and 1.3, ring's cryptography, HTTP/2 or HTTP/1.1 by ALPN).
//!
//! The paper's pumps talk plain HTTP, which is how tokens, passwords and
//! doses were read off the air in the attacks on real pumps; serving TLS
//! here (or behind a TLS-terminating proxy) is what a hospital network
//! review expects. The pump side verifies the certificate against the
//! authority it was provisioned with.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing, unreadable or holds no certificate.
    #[error("certificate {path}: {reason}")]
    Certificate {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The key file is missing, unreadable or holds no private key.
    #[error("private key {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The key does not belong to the certificate, or rustls refused them.
    #[error("certificate and key: {0}")]
    Config(String),
}

/// Loads a PEM certificate chain (leaf first) and its PEM private key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certificate = |reason: String| TlsError::Certificate {
        path: cert.display().to_string(),
        reason,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| certificate(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| certificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(certificate("no certificate in the file".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    // HTTP/2 first: a browser then multiplexes every page, script and
    // live stream of the site over one connection (over HTTP/1.1 it
    // opens six per host at most, and open live streams used them up).
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Makes ring the process's rustls provider. Every HTTPS client in the
/// process (reqwest, built without a provider of its own so that only
/// ring's cryptography is compiled in) needs one before it is built, even
/// for plain HTTP; binaries and tests call this first. Calling it again
/// changes nothing.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
