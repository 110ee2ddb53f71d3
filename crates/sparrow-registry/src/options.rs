//! How the registry is reached: extra trust, verification, and the time allowed.

use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// The default time allowed for each image's check.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the registry is contacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// `--registry-ca FILE`: PEM certificates trusted in addition to the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// `--insecure-skip-tls-verify`: accept any certificate the registry presents.
    pub insecure_skip_tls_verify: bool,
    /// The time allowed for each image, connection and authentication included (for a push:
    /// for each request).
    pub timeout: Duration,
    /// `--registry-server http://…`: plain HTTP instead of HTTPS (a kind or k3s local registry).
    pub plain_http: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            ca_pem: None,
            insecure_skip_tls_verify: false,
            timeout: DEFAULT_TIMEOUT,
            plain_http: false,
        }
    }
}

/// Why the check could not start. Per-image failures are [`crate::Outcome`]s, not errors.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// `--registry-ca` is not PEM.
    #[error(
        "--registry-ca is not a PEM certificate file ({reason}): give the registry's CA certificate, starting with -----BEGIN CERTIFICATE-----"
    )]
    CaNotPem {
        /// The PEM parser's complaint.
        reason: String,
    },
    /// `--registry-ca` parsed, but holds no certificate (for example only a private key).
    #[error(
        "--registry-ca holds no certificate: give the registry's CA certificate, starting with -----BEGIN CERTIFICATE-----"
    )]
    CaEmpty,
    /// `--timeout 0`.
    #[error("the registry check timeout must be greater than zero")]
    ZeroTimeout,
    /// The HTTPS client could not be built (for example a CA certificate that is not valid X.509).
    #[error("cannot set up the HTTPS client for the registry check: {source}")]
    Client {
        /// What the client builder refused.
        #[source]
        source: oci_client::errors::OciDistributionError,
    },
}

impl CheckOptions {
    /// Checks the options without contacting anything, so callers can fail before any write.
    pub fn validate(&self) -> Result<(), CheckError> {
        self.extra_roots().map(drop)
    }

    /// The `--registry-ca` certificates, DER-encoded for the client.
    pub(crate) fn extra_roots(&self) -> Result<Vec<Certificate>, CheckError> {
        if self.timeout.is_zero() {
            return Err(CheckError::ZeroTimeout);
        }
        let Some(pem) = &self.ca_pem else {
            return Ok(Vec::new());
        };
        let certs = CertificateDer::pem_slice_iter(pem)
            .map(|cert| {
                cert.map(|der| Certificate {
                    encoding: CertificateEncoding::Der,
                    data: der.to_vec(),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| CheckError::CaNotPem {
                reason: error.to_string(),
            })?;
        if certs.is_empty() {
            return Err(CheckError::CaEmpty);
        }
        Ok(certs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_ca(pem: &str) -> CheckOptions {
        CheckOptions {
            ca_pem: Some(pem.as_bytes().to_vec()),
            ..CheckOptions::default()
        }
    }

    #[test]
    fn no_ca_is_valid() {
        assert!(CheckOptions::default().validate().is_ok());
    }

    #[test]
    fn a_bundle_of_two_certificates_is_two_roots() {
        let pem = format!("{}{}", self_signed_pem("one"), self_signed_pem("two"));
        let roots = with_ca(&pem).extra_roots().expect("valid PEM");
        assert_eq!(roots.len(), 2);
        assert!(roots.iter().all(|root| !root.data.is_empty()));
    }

    #[test]
    fn text_without_certificate_is_refused() {
        let error = with_ca("just some text\n")
            .validate()
            .expect_err("no certificate");
        assert!(matches!(error, CheckError::CaEmpty), "{error}");
        assert!(error.to_string().contains("--registry-ca"));
    }

    #[test]
    fn broken_base64_is_refused() {
        let error = with_ca("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
            .validate()
            .expect_err("bad base64");
        assert!(matches!(error, CheckError::CaNotPem { .. }), "{error}");
    }

    #[test]
    fn zero_timeout_is_refused() {
        let options = CheckOptions {
            timeout: Duration::ZERO,
            ..CheckOptions::default()
        };
        assert!(matches!(options.validate(), Err(CheckError::ZeroTimeout)));
    }

    fn self_signed_pem(name: &str) -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
        params.self_signed(&key).expect("certificate").pem()
    }
}
