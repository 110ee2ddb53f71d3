//! The webhook's serving certificate: a CA (its certificate goes in the webhook's
//! `caBundle`) and a serving certificate for the controller Service's DNS names.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use crate::names::CONTROLLER_NAME;

/// How long generated certificates are valid. Long, because an expired webhook
/// certificate with `failurePolicy: Fail` blocks every pod in meshed namespaces.
pub const VALIDITY: Duration = Duration::days(3650);

/// Certificate generation failed (a bug in parameters, not user input).
#[derive(Debug, thiserror::Error)]
#[error("could not generate the webhook certificate: {0}")]
pub struct TlsError(#[source] rcgen::Error);

/// PEM-encoded webhook TLS material.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookTls {
    /// The CA certificate (the webhook's `caBundle`, the TLS Secret's `ca.crt`).
    pub ca_pem: String,
    /// The serving certificate (`tls.crt`).
    pub cert_pem: String,
    /// The serving key (`tls.key`).
    pub key_pem: String,
}

impl std::fmt::Debug for WebhookTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTls")
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The DNS names the API server uses to reach the webhook Service.
pub fn service_dns_names(namespace: &str) -> Vec<String> {
    vec![
        format!("{CONTROLLER_NAME}.{namespace}.svc"),
        format!("{CONTROLLER_NAME}.{namespace}.svc.cluster.local"),
    ]
}

impl WebhookTls {
    /// A fresh CA and a serving certificate for `sparrow-controller.<namespace>.svc[.cluster.local]`,
    /// valid from `now` for [`VALIDITY`].
    pub fn generate(namespace: &str, now: OffsetDateTime) -> Result<Self, TlsError> {
        Self::generate_for(&service_dns_names(namespace), now)
    }

    /// Like [`WebhookTls::generate`], for any DNS names or IP addresses (tests serve on 127.0.0.1).
    pub fn generate_for(names: &[String], now: OffsetDateTime) -> Result<Self, TlsError> {
        let not_before = now - Duration::minutes(5); // tolerate clock skew between nodes
        let not_after = now + VALIDITY;

        let ca_key = KeyPair::generate().map_err(TlsError)?;
        let mut ca_params = CertificateParams::default();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "sparrow-mesh webhook CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.not_before = not_before;
        ca_params.not_after = not_after;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(TlsError)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().map_err(TlsError)?;
        let mut params = CertificateParams::new(names.to_vec()).map_err(TlsError)?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().map(String::as_str).unwrap_or(CONTROLLER_NAME),
        );
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.signed_by(&key, &issuer).map_err(TlsError)?;

        Ok(Self {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
