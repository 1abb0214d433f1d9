//! TLS with rustls (aws-lc-rs provider): termination on the `https` listener with a certificate
//! that can be swapped live, and client configs for `https://` origins (system roots, or a
//! configured CA file).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use arc_swap::ArcSwap;
use rustls::ClientConfig;
use rustls::crypto::aws_lc_rs;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Install aws-lc-rs as the process-wide crypto provider, once. Mixing providers panics at
/// run time, so every TLS entry point calls this first.
pub fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = aws_lc_rs::default_provider().install_default();
    });
}

/// Why a certificate, key or CA file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Pem {
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("{}: no certificate found", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Rustls {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("{} and {} do not match: {source}", cert.display(), key.display())]
    KeyMismatch {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

fn pem(path: &Path) -> impl Fn(rustls_pki_types::pem::Error) -> TlsError + '_ {
    move |source| TlsError::Pem {
        path: path.to_path_buf(),
        source,
    }
}

/// Read a certificate chain and its private key from PEM files.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    install_provider();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(pem(cert))?
        .collect::<Result<_, _>>()
        .map_err(pem(cert))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_path_buf(),
        });
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(pem(key))?;
    let provider = aws_lc_rs::default_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|source| TlsError::Rustls {
            path: key.to_path_buf(),
            source,
        })?;
    let certified = CertifiedKey::new(certs, signing_key);
    certified
        .keys_match()
        .map_err(|source| TlsError::KeyMismatch {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            source,
        })?;
    Ok(certified)
}

/// The server certificate, swappable while connections stay open: new handshakes use the new
/// certificate, established sessions are untouched.
#[derive(Debug)]
pub struct CertResolver {
    current: ArcSwap<CertifiedKey>,
}

impl CertResolver {
    /// A resolver serving `key`.
    pub fn new(key: CertifiedKey) -> Arc<CertResolver> {
        Arc::new(CertResolver {
            current: ArcSwap::from_pointee(key),
        })
    }

    /// Serve `key` from now on.
    pub fn swap(&self, key: CertifiedKey) {
        self.current.store(Arc::new(key));
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// A server config offering h2 and http/1.1 by ALPN, with certificates from `resolver`.
pub fn server_config(resolver: Arc<CertResolver>) -> Arc<rustls::ServerConfig> {
    install_provider();
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A client config trusting `ca_file` when given, else the system roots.
pub fn client_config(ca_file: Option<&Path>) -> Result<ClientConfig, TlsError> {
    install_provider();
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path).map_err(pem(path))? {
                let cert = cert.map_err(pem(path))?;
                roots.add(cert).map_err(|source| TlsError::Rustls {
                    path: path.to_path_buf(),
                    source,
                })?;
            }
        }
        None => {
            // Missing or unreadable system certificates leave an empty store: https origins
            // then fail to connect with a clear TLS error rather than the gateway refusing to start.
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                let _ = roots.add(cert);
            }
        }
    }
    // ALPN is left empty: the hyper-rustls connector sets it from the enabled HTTP versions.
    Ok(ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}
