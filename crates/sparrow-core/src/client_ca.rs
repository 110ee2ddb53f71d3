//! The CA whose client certificates the webhook accepts (`deploy --webhook-client-ca FILE`):
//! checked here once, before anything is written, and stored in a ConfigMap the controller
//! mounts. Only certificates are kept; a file that also holds a private key is refused, so
//! that no key ends up in the cluster (or in `--dry-run` output).

use base64::Engine as _;
use time::OffsetDateTime;
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Why a client CA file is not usable. Messages name the problem; the caller adds the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientCaError {
    /// No `-----BEGIN CERTIFICATE-----` block at all.
    #[error(
        "holds no PEM certificate (-----BEGIN CERTIFICATE-----): give the CA certificate that signs the API server's client certificate"
    )]
    NoCertificate,
    /// A PEM block is cut short or its base64 does not decode.
    #[error("is not valid PEM ({0}): give the CA certificate as PEM text")]
    BadPem(String),
    /// A private key next to the certificate.
    #[error(
        "holds a private key: give only the CA certificate (the key stays with whoever signs client certificates)"
    )]
    PrivateKey,
    /// A CERTIFICATE block that is not an X.509 certificate.
    #[error("holds a certificate that does not parse ({0}): give the CA certificate as PEM text")]
    NotX509(String),
    /// A certificate that is not a CA (no `basicConstraints CA:TRUE`).
    #[error(
        "holds {subject}, which is not a CA certificate (basicConstraints CA:TRUE): give the CA that signed it"
    )]
    NotCa {
        /// The certificate's subject.
        subject: String,
    },
    /// A CA past its `notAfter`: it can verify nothing.
    #[error("holds {subject}, which expired on {not_after}: give a current CA certificate")]
    Expired {
        /// The certificate's subject.
        subject: String,
        /// When it expired (RFC 3339).
        not_after: String,
    },
}

/// One or more CA certificates, as PEM text holding only `CERTIFICATE` blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookClientCa {
    pem: String,
    subjects: Vec<String>,
}

impl WebhookClientCa {
    /// Checks `text` at `now`: every PEM block is a CA certificate that has not expired, and
    /// there is at least one.
    pub fn parse(text: &str, now: OffsetDateTime) -> Result<Self, ClientCaError> {
        let mut pem = String::new();
        let mut subjects = Vec::new();
        for block in Pem::iter_from_buffer(text.as_bytes()) {
            let block = match block {
                Ok(block) => block,
                // Text after the last block (a comment, blank lines): nothing more to read.
                Err(x509_parser::error::PEMError::MissingHeader) => break,
                Err(error) => return Err(ClientCaError::BadPem(error.to_string())),
            };
            if block.label.contains("PRIVATE KEY") {
                return Err(ClientCaError::PrivateKey);
            }
            if block.label != "CERTIFICATE" {
                continue;
            }
            let subject = check_ca(&block.contents, now)?;
            subjects.push(subject);
            pem.push_str(&to_pem(&block.contents));
        }
        if subjects.is_empty() {
            return Err(ClientCaError::NoCertificate);
        }
        Ok(Self { pem, subjects })
    }

    /// The certificates as PEM text (what the ConfigMap holds and the controller reads).
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Each certificate's subject, for messages.
    pub fn subjects(&self) -> &[String] {
        &self.subjects
    }
}

/// The certificate's subject, when it is a CA valid at `now`.
fn check_ca(der: &[u8], now: OffsetDateTime) -> Result<String, ClientCaError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| ClientCaError::NotX509(e.to_string()))?;
    let subject = cert.subject().to_string();
    if !cert.is_ca() {
        return Err(ClientCaError::NotCa { subject });
    }
    let not_after = cert.validity().not_after.to_datetime();
    if not_after < now {
        let not_after = not_after
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| not_after.to_string());
        return Err(ClientCaError::Expired { subject, not_after });
    }
    Ok(subject)
}

fn to_pem(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// A fresh self-signed CA named `cn`, for tests of what renders it.
#[cfg(test)]
pub(crate) fn test_ca(cn: &str) -> WebhookClientCa {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let pem = params.self_signed(&key).expect("CA").pem();
    WebhookClientCa::parse(&pem, OffsetDateTime::now_utc()).expect("a CA")
}

#[cfg(test)]
mod tests;
