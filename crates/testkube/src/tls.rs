//! Certificates: a generated CA signing a serving certificate, for the API server itself and
//! for webhook servers in tests.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::Error;

/// A CA and one serving certificate it signed.
#[derive(Clone)]
pub struct ServingCert {
    /// CA certificate, PEM (what goes in a kubeconfig or a webhook `caBundle`).
    pub ca_pem: String,
    /// CA certificate, DER.
    pub ca_der: Vec<u8>,
    /// Serving certificate, PEM.
    pub cert_pem: String,
    /// Serving certificate, DER.
    pub cert_der: Vec<u8>,
    /// Serving key, PKCS#8 PEM.
    pub key_pem: String,
    /// Serving key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

impl std::fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("ServingCert").finish_non_exhaustive()
    }
}

impl ServingCert {
    /// Generates a fresh CA and a serving certificate for `names` (DNS names or IP addresses).
    pub fn generate(names: &[&str]) -> Result<Self, Error> {
        let ca_key = KeyPair::generate().map_err(Error::Certificate)?;
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).map_err(Error::Certificate)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "testkube-ca");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(Error::Certificate)?;
        let issuer = Issuer::from_params(&ca_params, &ca_key);

        let key = KeyPair::generate().map_err(Error::Certificate)?;
        let names: Vec<String> = names.iter().map(|n| (*n).to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).map_err(Error::Certificate)?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_else(|| "testkube".into()),
        );
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(Error::Certificate)?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().to_vec(),
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        })
    }

    /// A rustls server configuration serving this certificate with the given ALPN protocols.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ServerConfig>, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(Error::Tls)?
            .with_no_client_auth()
            .with_single_cert(
                vec![
                    CertificateDer::from(self.cert_der.clone()),
                    CertificateDer::from(self.ca_der.clone()),
                ],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
            )
            .map_err(Error::Tls)?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_usable_server_config() {
        let cert = ServingCert::generate(&["localhost", "127.0.0.1"]).expect("generated");
        assert!(cert.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_ne!(cert.ca_der, cert.cert_der);
        let config = cert.server_config(&[b"h2", b"http/1.1"]).expect("config");
        assert_eq!(config.alpn_protocols.len(), 2);
        assert_eq!(format!("{cert:?}"), "ServingCert { .. }");
    }
}
