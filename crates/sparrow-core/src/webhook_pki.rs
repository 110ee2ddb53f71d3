//! The webhook's certificates as the controller keeps them: a CA of its own (Secret
//! [`CA_SECRET_NAME`]), a serving certificate it signs (Secret `sparrow-controller-tls`) and the
//! webhook's `caBundle`. [`next_step`] is the whole policy: given what exists now, the one write
//! that brings it closer to what should be, or how long nothing needs doing. The controller's
//! driver reads, asks, writes and asks again; nothing here does I/O.
//!
//! The order of a CA rollover is what keeps every admission working through it:
//! 1. a new CA is made and the old one kept as `previous`;
//! 2. `caBundle` gets both;
//! 3. once the API server has had the new bundle for [`Lifetimes::settle`], the serving
//!    certificate is re-issued by the new CA (replicas serve it within their watch's lag);
//! 4. [`Lifetimes::settle`] after that, the old CA leaves the Secret and then the bundle.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData,
};
use time::{Duration, OffsetDateTime};
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::tls::WebhookTls;

pub use crate::names::CA_SECRET_NAME;
/// The key of [`CA_SECRET_NAME`]'s data holding the CA being replaced, during a rollover.
pub const PREVIOUS_CA_KEY: &str = "previous.crt";
/// The annotation of [`CA_SECRET_NAME`] saying from when the previous CA may be dropped.
pub const PREVIOUS_UNTIL_ANNOTATION: &str = "sparrow-mesh.io/previous-ca-until";
/// The field manager that owns `caBundle` and nothing else of the webhook configuration.
pub const CA_BUNDLE_FIELD_MANAGER: &str = "sparrow-controller-ca-bundle";
/// The shortest serving-certificate life accepted (for tests of rotation).
pub const MIN_LEAF_VALIDITY: std::time::Duration = std::time::Duration::from_secs(120);
/// The serving certificate's life unless told otherwise.
pub const DEFAULT_LEAF_VALIDITY: std::time::Duration =
    std::time::Duration::from_secs(90 * 24 * 3600);
/// How much longer than a serving certificate the CA lives.
pub const CA_LIFE_IN_LEAVES: u32 = 4;
/// Clock skew between nodes tolerated at the start of a certificate's validity: five minutes,
/// or a tenth of a short life (tests'), so that two thirds of the life still lie ahead.
fn backdate(validity: Duration) -> Duration {
    std::cmp::min(validity / 10_i32, Duration::minutes(5))
}

/// A certificate or key cannot be used, or cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The text holds no PEM certificate.
    #[error("holds no PEM certificate")]
    NoCertificate,
    /// The certificate does not parse.
    #[error("the certificate does not parse: {0}")]
    Parse(String),
    /// The key does not parse or does not belong to the certificate.
    #[error("the private key does not parse or does not belong to the certificate")]
    Key,
    /// rcgen refused the parameters (a bug, not input).
    #[error("could not make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// What the policy needs of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Its DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// Whether it is a CA.
    pub is_ca: bool,
}

impl CertFacts {
    /// When two thirds of its life have passed: the time to replace it.
    pub fn renew_at(&self) -> OffsetDateTime {
        self.not_before + (self.not_after - self.not_before) * 2 / 3
    }
}

fn first_pem(pem: &str) -> Result<Pem, PkiError> {
    Pem::iter_from_buffer(pem.as_bytes())
        .find_map(|p| p.ok().filter(|p| p.label == "CERTIFICATE"))
        .ok_or(PkiError::NoCertificate)
}

fn all_pems(pem: &[u8]) -> Vec<Pem> {
    Pem::iter_from_buffer(pem)
        .filter_map(|p| p.ok().filter(|p| p.label == "CERTIFICATE"))
        .collect()
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, PkiError> {
    X509Certificate::from_der(der)
        .map(|(_, cert)| cert)
        .map_err(|e| PkiError::Parse(e.to_string()))
}

fn facts_of(cert: &X509Certificate<'_>) -> Result<CertFacts, PkiError> {
    let time = |t: x509_parser::time::ASN1Time| {
        OffsetDateTime::from_unix_timestamp(t.timestamp())
            .map_err(|e| PkiError::Parse(e.to_string()))
    };
    let dns_names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(name) => Some((*name).to_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(CertFacts {
        not_before: time(cert.validity().not_before)?,
        not_after: time(cert.validity().not_after)?,
        dns_names,
        is_ca: cert.is_ca(),
    })
}

/// The facts of the first certificate in `pem`.
pub fn facts(pem: &str) -> Result<CertFacts, PkiError> {
    let pem = first_pem(pem)?;
    facts_of(&parse(&pem.contents)?)
}

/// Whether the first certificate of `leaf_pem` is signed by the first of `ca_pem`.
pub fn signed_by(leaf_pem: &str, ca_pem: &str) -> bool {
    let (Ok(leaf), Ok(ca)) = (first_pem(leaf_pem), first_pem(ca_pem)) else {
        return false;
    };
    signed_by_der(&leaf.contents, &ca.contents)
}

fn signed_by_der(leaf: &[u8], ca: &[u8]) -> bool {
    let (Ok(leaf), Ok(ca)) = (parse(leaf), parse(ca)) else {
        return false;
    };
    leaf.issuer() == ca.subject() && leaf.verify_signature(Some(ca.public_key())).is_ok()
}

/// Whether some CA of `bundle` (PEM, one or more certificates) signed the first certificate of
/// `leaf_pem`, and both are valid at `now`: what the API server's check of the controller comes
/// down to for a certificate the controller made.
pub fn bundle_verifies(bundle: &[u8], leaf_pem: &str, now: OffsetDateTime) -> bool {
    let Ok(leaf) = first_pem(leaf_pem) else {
        return false;
    };
    let valid = |der: &[u8]| {
        parse(der)
            .is_ok_and(|c| facts_of(&c).is_ok_and(|f| f.not_before <= now && now < f.not_after))
    };
    valid(&leaf.contents)
        && all_pems(bundle)
            .iter()
            .any(|ca| valid(&ca.contents) && signed_by_der(&leaf.contents, &ca.contents))
}

/// Whether `key_pem` is the private key of the first certificate in `cert_pem`.
pub fn key_fits(cert_pem: &str, key_pem: &str) -> bool {
    let (Ok(cert), Ok(key)) = (first_pem(cert_pem), KeyPair::from_pem(key_pem)) else {
        return false;
    };
    parse(&cert.contents).is_ok_and(|c| c.public_key().raw == key.subject_public_key_info())
}

/// A CA certificate and its key.
#[derive(Clone, PartialEq, Eq)]
pub struct Ca {
    /// The CA certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PEM).
    pub key_pem: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// A new CA valid from `now` (back-dated for clock skew) for `validity`.
    pub fn generate(now: OffsetDateTime, validity: Duration) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "sparrow-mesh webhook CA");
        // Serial numbers tell one CA from the next, which share a name.
        params.serial_number = Some(rcgen::SerialNumber::from_slice(
            &now.unix_timestamp_nanos().to_be_bytes(),
        ));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - backdate(validity);
        params.not_after = now + validity;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A serving certificate for `names` signed by this CA, valid from `now` for `validity` but
    /// never past the CA's own end.
    pub fn issue(
        &self,
        names: &[String],
        now: OffsetDateTime,
        validity: Duration,
    ) -> Result<WebhookTls, PkiError> {
        let ca_key = KeyPair::from_pem(&self.key_pem).map_err(|_| PkiError::Key)?;
        let ca_end = facts(&self.cert_pem)?.not_after;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, ca_key)?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names.to_vec())?;
        params.distinguished_name.push(
            DnType::CommonName,
            names
                .first()
                .map(String::as_str)
                .unwrap_or("sparrow-controller"),
        );
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - backdate(validity);
        params.not_after = (now + validity).min(ca_end);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(WebhookTls {
            ca_pem: self.cert_pem.clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Whether this is a usable CA at `now`: parses, is a CA, its key fits, not yet expired.
    fn usable(&self, now: OffsetDateTime) -> Option<CertFacts> {
        let facts = facts(&self.cert_pem).ok()?;
        (facts.is_ca && now < facts.not_after && key_fits(&self.cert_pem, &self.key_pem))
            .then_some(facts)
    }
}

/// What the CA Secret holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCa {
    /// The CA that signs serving certificates.
    pub current: Ca,
    /// The CA being replaced, still in `caBundle` until dropped.
    pub previous_pem: Option<String>,
    /// From when the previous CA may be dropped (set once the serving certificate is the new
    /// CA's).
    pub previous_until: Option<OffsetDateTime>,
}

impl StoredCa {
    /// The `caBundle` these CAs call for: the current CA, then the previous one if kept.
    pub fn bundle(&self) -> String {
        let mut bundle = self.current.cert_pem.clone();
        if let Some(previous) = &self.previous_pem {
            if !bundle.ends_with('\n') {
                bundle.push('\n');
            }
            bundle.push_str(previous);
        }
        bundle
    }
}

/// How long certificates live, and how long a change takes to reach every reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// The serving certificate's life.
    pub leaf: Duration,
    /// The CA's life.
    pub ca: Duration,
    /// How long after writing `caBundle` the API server is taken to use it, and after writing
    /// the serving certificate every replica is taken to serve it.
    pub settle: Duration,
}

impl Lifetimes {
    /// The lifetimes for a serving certificate of `leaf`: the CA lives [`CA_LIFE_IN_LEAVES`]
    /// times as long.
    pub fn for_leaf(leaf: std::time::Duration, settle: std::time::Duration) -> Self {
        let leaf = Duration::try_from(leaf).unwrap_or(Duration::days(90));
        Self {
            leaf,
            ca: leaf * CA_LIFE_IN_LEAVES,
            settle: Duration::try_from(settle).unwrap_or(Duration::seconds(10)),
        }
    }
}

/// What the driver found.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// The CA Secret, when it exists and parses.
    pub ca: Option<&'a StoredCa>,
    /// The serving certificate's Secret, when it exists and parses.
    pub leaf: Option<&'a WebhookTls>,
    /// The webhook configuration's `caBundle` (every webhook of it agreeing; `Some(empty)` when
    /// they disagree or have none); `None` when there is no webhook configuration.
    pub bundle: Option<&'a [u8]>,
    /// Since when the driver has seen `bundle` equal to what the CAs call for.
    pub bundle_settled_since: Option<OffsetDateTime>,
}

/// Why nothing is written now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// A new `caBundle` is reaching the API server before the serving certificate changes.
    BundleSettling,
    /// The new serving certificate is reaching every replica before the old CA goes.
    LeafSettling,
    /// Everything is as it should be until the next renewal.
    UpToDate,
}

/// The one thing to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write the CA Secret as this.
    WriteCa(StoredCa),
    /// Set every webhook's `caBundle` to this.
    WriteBundle(String),
    /// Write the serving certificate's Secret as this.
    WriteLeaf(WebhookTls),
    /// Nothing until this time (or until something changes).
    Wait {
        /// When to look again.
        until: OffsetDateTime,
        /// Why.
        why: Waiting,
    },
}

/// Why a step is taken, for logs and Events (never key material).
impl Step {
    /// A short description of the step.
    pub fn describe(&self) -> &'static str {
        match self {
            Step::WriteCa(ca) if ca.previous_pem.is_none() => "writing the webhook CA",
            Step::WriteCa(ca) if ca.previous_until.is_some() => {
                "marking when the previous webhook CA may go"
            }
            Step::WriteCa(_) => "rolling the webhook CA over (the old one kept in caBundle)",
            Step::WriteBundle(_) => "setting the webhook's caBundle",
            Step::WriteLeaf(_) => "issuing the serving certificate",
            Step::Wait { .. } => "waiting",
        }
    }
}

/// The next step for the certificates, given what was `observed` at `now`, for a serving
/// certificate valid for `names`.
pub fn next_step(
    observed: Observed<'_>,
    names: &[String],
    lifetimes: Lifetimes,
    now: OffsetDateTime,
) -> Result<Step, PkiError> {
    // 1. A usable CA, rolled over at two thirds of its life (one rollover at a time).
    let ca = match observed
        .ca
        .and_then(|ca| Some((ca, ca.current.usable(now)?)))
    {
        None => {
            // A serving certificate signed by a CA whose key we do not hold (deploy made it
            // before the controller kept its own): its CA stays trusted through the switch.
            let previous_pem = observed
                .leaf
                .filter(|leaf| leaf_usable(leaf, names, now))
                .map(|leaf| leaf.ca_pem.clone());
            return Ok(Step::WriteCa(StoredCa {
                current: Ca::generate(now, lifetimes.ca)?,
                previous_pem,
                previous_until: None,
            }));
        }
        Some((ca, facts)) => {
            if ca.previous_pem.is_none() && now >= facts.renew_at() {
                return Ok(Step::WriteCa(StoredCa {
                    current: Ca::generate(now, lifetimes.ca)?,
                    previous_pem: Some(ca.current.cert_pem.clone()),
                    previous_until: None,
                }));
            }
            ca
        }
    };

    // 2. caBundle: what the CAs call for.
    let bundle = ca.bundle();
    let settled_since = match observed.bundle {
        Some(seen) if seen != bundle.as_bytes() => return Ok(Step::WriteBundle(bundle)),
        // No webhook configuration: no API server calls the webhook, nothing to wait for.
        None => None,
        Some(_) => Some(observed.bundle_settled_since.unwrap_or(now)),
    };

    // 3. A serving certificate of the current CA, renewed at two thirds of its life.
    let leaf_current = observed.leaf.is_some_and(|leaf| {
        leaf_usable(leaf, names, now)
            && leaf.ca_pem == ca.current.cert_pem
            && signed_by(&leaf.cert_pem, &ca.current.cert_pem)
            && facts(&leaf.cert_pem).is_ok_and(|f| now < f.renew_at())
    });
    if !leaf_current {
        if let Some(since) = settled_since {
            let until = since + lifetimes.settle;
            // A renewal by the same CA needs no wait: the bundle already trusts it.
            let same_ca = observed
                .leaf
                .is_some_and(|leaf| leaf.ca_pem == ca.current.cert_pem);
            if now < until && !same_ca {
                return Ok(Step::Wait {
                    until,
                    why: Waiting::BundleSettling,
                });
            }
        }
        return Ok(Step::WriteLeaf(ca.current.issue(
            names,
            now,
            lifetimes.leaf,
        )?));
    }

    // 4. The previous CA goes once every replica has had the new serving certificate.
    if ca.previous_pem.is_some() {
        return Ok(match ca.previous_until {
            None => Step::WriteCa(StoredCa {
                previous_until: Some(now + lifetimes.settle),
                ..ca.clone()
            }),
            Some(until) if now >= until => Step::WriteCa(StoredCa {
                previous_pem: None,
                previous_until: None,
                current: ca.current.clone(),
            }),
            Some(until) => Step::Wait {
                until,
                why: Waiting::LeafSettling,
            },
        });
    }

    let leaf_renew = observed
        .leaf
        .and_then(|leaf| facts(&leaf.cert_pem).ok())
        .map(|f| f.renew_at());
    let ca_renew = facts(&ca.current.cert_pem)?.renew_at();
    Ok(Step::Wait {
        until: leaf_renew.map_or(ca_renew, |l| l.min(ca_renew)),
        why: Waiting::UpToDate,
    })
}

/// Whether a serving certificate parses, fits its key, names `names` and is valid at `now`.
fn leaf_usable(leaf: &WebhookTls, names: &[String], now: OffsetDateTime) -> bool {
    facts(&leaf.cert_pem).is_ok_and(|f| {
        f.not_before <= now && now < f.not_after && names.iter().all(|n| f.dns_names.contains(n))
    }) && key_fits(&leaf.cert_pem, &leaf.key_pem)
}

#[cfg(test)]
mod tests;
