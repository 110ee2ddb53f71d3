//! Only the API server is answered: with `--webhook-client-ca FILE`, the HTTPS listener asks
//! every caller for a client certificate and completes the handshake only for one that chains
//! to a CA in FILE (what `kube-apiserver --admission-control-config-file` presents). Without a
//! certificate, or with one from another CA, the connection fails at the TLS handshake, before
//! any request is read.
//!
//! FILE is re-read when it changes (a ConfigMap volume swaps its files), as the serving
//! certificate is ([`crate::ReloadingCert`]): a new CA takes effect without a restart. A file
//! that is not usable keeps the previous CA.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};

/// The client CA file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientCaError {
    /// The file cannot be read.
    #[error("cannot read the webhook client CA {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The PEM in the file does not parse.
    #[error("the webhook client CA {path} is not valid PEM: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The file holds no PEM certificate.
    #[error("the webhook client CA {path} holds no PEM certificate")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate in the file cannot be a trust anchor.
    #[error("the webhook client CA {path} holds a certificate that cannot be trusted: {source}")]
    Unusable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// The verifier cannot be built from the certificates.
    #[error("the webhook client CA {path} cannot verify client certificates: {source}")]
    Verifier {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    /// The crypto provider cannot serve the default protocol versions.
    #[error("unusable TLS configuration: {0}")]
    Config(#[source] rustls::Error),
    /// No rustls crypto provider is installed (the binary installs ring at start).
    #[error("no rustls crypto provider is installed")]
    NoProvider,
}

/// What identifies a version of the file on disk (`stat` follows the volume's symlinks).
type Fingerprint = (Option<SystemTime>, u64, u64);

fn fingerprint(path: &Path) -> Option<Fingerprint> {
    fs::metadata(path)
        .ok()
        .map(|m| (m.modified().ok(), m.len(), m.ino()))
}

#[derive(Debug)]
struct Loaded {
    fingerprint: Option<Fingerprint>,
    verifier: Arc<dyn ClientCertVerifier>,
}

/// A client-certificate verifier trusting the CAs in a PEM file as it is now.
#[derive(Debug)]
pub struct ReloadingClientCa {
    path: PathBuf,
    provider: Arc<CryptoProvider>,
    loaded: Mutex<Loaded>,
}

impl ReloadingClientCa {
    /// Loads the file; fails when it holds no usable CA certificate.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, ClientCaError> {
        let path = path.into();
        let provider = CryptoProvider::get_default()
            .cloned()
            .ok_or(ClientCaError::NoProvider)?;
        let fingerprint = fingerprint(&path);
        let verifier = load_verifier(&path, &provider)?;
        Ok(Self {
            path,
            provider,
            loaded: Mutex::new(Loaded {
                fingerprint,
                verifier,
            }),
        })
    }

    /// The verifier for the file as it is now, re-read when the file changed.
    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        let now = fingerprint(&self.path);
        let mut loaded = match self.loaded.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if now.is_some() && now != loaded.fingerprint {
            match load_verifier(&self.path, &self.provider) {
                Ok(verifier) => {
                    tracing::info!(ca = %self.path.display(), "webhook client CA reloaded");
                    loaded.verifier = verifier;
                    loaded.fingerprint = now;
                }
                Err(error) => {
                    tracing::warn!(%error, "new webhook client CA not usable; keeping the previous one");
                }
            }
        }
        loaded.verifier.clone()
    }
}

fn load_verifier(
    path: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, ClientCaError> {
    let pem = fs::read(path).map_err(|source| ClientCaError::Read {
        path: path.to_owned(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| ClientCaError::Pem {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(ClientCaError::NoCertificate {
            path: path.to_owned(),
        });
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|source| ClientCaError::Unusable {
            path: path.to_owned(),
            source,
        })?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|source| ClientCaError::Verifier {
            path: path.to_owned(),
            source,
        })
}

impl ClientCertVerifier for ReloadingClientCa {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    /// No hints: they would have to outlive a reload. An empty list lets the client send any
    /// certificate it has (RFC 8446 4.2.4, RFC 5246 7.4.4); Go's client, the API server's,
    /// sends the one its kubeconfig names.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .current()
            .verify_client_cert(end_entity, intermediates, now);
        if let Err(error) = &verified {
            tracing::debug!(%error, "webhook caller's client certificate refused");
        }
        verified
    }

    fn verify_tls12_signature(
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

    fn verify_tls13_signature(
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

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A rustls server configuration serving `certs` only to clients holding a certificate that
/// `client_ca` verifies; HTTP/2 and HTTP/1.1, as [`crate::server_config`] offers.
pub fn server_config_requiring_client_certs(
    certs: Arc<dyn ResolvesServerCert>,
    client_ca: Arc<ReloadingClientCa>,
) -> Result<ServerConfig, ClientCaError> {
    let provider = client_ca.provider.clone();
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ClientCaError::Config)?
        .with_client_cert_verifier(client_ca)
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests;
