//! The serving certificate, re-read from disk when it changes so that rotation (a new Secret
//! projected into the volume) needs no restart. Each new connection checks the files' metadata
//! (two `stat`s); the PEMs are parsed only when that changed.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{path} holds no PEM certificate")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The PEM in a file does not parse.
    #[error("{path} is not valid PEM: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The key is not usable or does not belong to the certificate.
    #[error("the key in {key} does not fit the certificate in {cert}: {source}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// The crypto provider cannot serve the default protocol versions.
    #[error("unusable TLS configuration: {0}")]
    Config(#[source] rustls::Error),
    /// No rustls crypto provider is installed (the binary installs ring at start).
    #[error("no rustls crypto provider is installed")]
    NoProvider,
}

/// What identifies a version of the files on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint([(Option<SystemTime>, u64, u64); 2]);

fn fingerprint(cert: &Path, key: &Path) -> Option<Fingerprint> {
    let one = |p: &Path| {
        fs::metadata(p)
            .ok()
            .map(|m| (m.modified().ok(), m.len(), m.ino()))
    };
    Some(Fingerprint([one(cert)?, one(key)?]))
}

#[derive(Debug)]
struct Loaded {
    fingerprint: Option<Fingerprint>,
    key: Arc<CertifiedKey>,
}

/// A certificate resolver serving the certificate and key files as they are now.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    loaded: Mutex<Loaded>,
}

impl ReloadingCert {
    /// Loads the files; fails when they are not a usable certificate and key.
    pub fn load(
        cert_path: impl Into<PathBuf>,
        key_path: impl Into<PathBuf>,
    ) -> Result<Self, TlsError> {
        let cert_path = cert_path.into();
        let key_path = key_path.into();
        let provider = CryptoProvider::get_default()
            .cloned()
            .ok_or(TlsError::NoProvider)?;
        let fingerprint = fingerprint(&cert_path, &key_path);
        let key = Arc::new(load_pair(&cert_path, &key_path, &provider)?);
        Ok(Self {
            cert_path,
            key_path,
            provider,
            loaded: Mutex::new(Loaded { fingerprint, key }),
        })
    }

    /// The certificate to serve now, re-read when the files changed. A half-written pair
    /// (new certificate, old key) keeps the previous one until the files agree.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let now = fingerprint(&self.cert_path, &self.key_path);
        let mut loaded = match self.loaded.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if now.is_some() && now != loaded.fingerprint {
            match load_pair(&self.cert_path, &self.key_path, &self.provider) {
                Ok(key) => {
                    tracing::info!(cert = %self.cert_path.display(), "serving certificate reloaded");
                    loaded.key = Arc::new(key);
                    loaded.fingerprint = now;
                }
                Err(error) => {
                    tracing::warn!(%error, "new serving certificate not usable yet; keeping the previous one");
                }
            }
        }
        loaded.key.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(cert_path)?;
    let key_pem = read(key_path)?;
    certified_key((&cert_pem, cert_path), (&key_pem, key_path), provider)
}

/// A certificate chain and its key from PEM text; `path`s name where each came from in errors.
fn certified_key(
    (cert_pem, cert_path): (&[u8], &Path),
    (key_pem, key_path): (&[u8], &Path),
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: cert_path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|source| TlsError::Pem {
        path: key_path.to_owned(),
        source,
    })?;
    CertifiedKey::from_der(certs, key, provider).map_err(|source| TlsError::KeyMismatch {
        cert: cert_path.to_owned(),
        key: key_path.to_owned(),
        source,
    })
}

/// A rustls server configuration serving `cert`, offering HTTP/2 and HTTP/1.1.
pub fn server_config(cert: Arc<dyn ResolvesServerCert>) -> Result<ServerConfig, TlsError> {
    let provider = CryptoProvider::get_default()
        .cloned()
        .ok_or(TlsError::NoProvider)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The serving certificate the controller keeps in its Secret, as the replica's watch last
/// saw it: nothing is served (every handshake fails) until the first one arrives.
#[derive(Debug)]
pub struct SecretCert {
    provider: Arc<CryptoProvider>,
    current: std::sync::RwLock<Option<(String, Arc<CertifiedKey>)>>,
}

impl SecretCert {
    /// Nothing to serve yet.
    pub fn new() -> Result<Self, TlsError> {
        Ok(Self {
            provider: CryptoProvider::get_default()
                .cloned()
                .ok_or(TlsError::NoProvider)?,
            current: std::sync::RwLock::new(None),
        })
    }

    /// Serves `cert_pem` with `key_pem` from now on; an unusable pair keeps the previous one.
    pub fn set(&self, cert_pem: &str, key_pem: &str) -> Result<(), TlsError> {
        let secret = Path::new(sparrow_core::names::TLS_SECRET_NAME);
        let key = certified_key(
            (cert_pem.as_bytes(), secret),
            (key_pem.as_bytes(), secret),
            &self.provider,
        )?;
        let mut current = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *current = Some((cert_pem.to_owned(), Arc::new(key)));
        Ok(())
    }

    /// The certificate served now (PEM), if any.
    pub fn served_pem(&self) -> Option<String> {
        let current = match self.current.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        current.as_ref().map(|(pem, _)| pem.clone())
    }
}

impl ResolvesServerCert for SecretCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = match self.current.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        current.as_ref().map(|(_, key)| key.clone())
    }
}
