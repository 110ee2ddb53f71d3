use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use time::{Duration, OffsetDateTime};

use super::*;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A self-signed certificate named `cn`; a CA when `ca`, valid until `not_after`.
fn cert(cn: &str, ca: bool, not_after: OffsetDateTime) -> (String, KeyPair, CertificateParams) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    params.not_before = now() - Duration::days(2);
    params.not_after = not_after;
    let pem = params.self_signed(&key).expect("cert").pem();
    (pem, key, params)
}

fn ca_pem(cn: &str) -> String {
    cert(cn, true, now() + Duration::days(30)).0
}

#[test]
fn a_ca_certificate_is_kept_as_pem_and_named_by_its_subject() {
    let pem = ca_pem("apiserver client CA");
    let ca = WebhookClientCa::parse(&pem, now()).expect("a CA");
    assert_eq!(ca.pem(), pem, "rcgen writes the same PEM shape");
    assert_eq!(ca.subjects(), ["CN=apiserver client CA"]);
}

#[test]
fn a_bundle_keeps_every_ca_and_drops_what_is_not_a_certificate() {
    let (a, b) = (ca_pem("first"), ca_pem("second"));
    let text = format!("# the API server's client CAs\n{a}\nsome comment\n{b}\n\n");
    let ca = WebhookClientCa::parse(&text, now()).expect("two CAs");
    assert_eq!(ca.pem(), format!("{a}{b}"));
    assert_eq!(ca.subjects(), ["CN=first", "CN=second"]);
}

#[test]
fn inputs_that_are_no_usable_ca_are_refused_with_what_to_do() {
    let leaf = cert("kube-apiserver", false, now() + Duration::days(30)).0;
    let expired = cert("old CA", true, now() - Duration::days(1)).0;
    let key = KeyPair::generate().expect("key").serialize_pem();
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty", String::new(), "holds no PEM certificate"),
        (
            "JSON",
            "{\"not\": \"pem\"}".to_owned(),
            "holds no PEM certificate",
        ),
        ("a key alone", key.clone(), "holds a private key"),
        (
            "a certificate with its key",
            format!("{}{key}", ca_pem("ca")),
            "holds a private key: give only the CA certificate",
        ),
        (
            "cut short",
            "-----BEGIN CERTIFICATE-----\nMIIB\n".to_owned(),
            "is not valid PEM",
        ),
        (
            "not base64",
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n".to_owned(),
            "is not valid PEM",
        ),
        (
            "not X.509",
            "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n".to_owned(),
            "holds a certificate that does not parse",
        ),
        (
            "a leaf",
            leaf,
            "holds CN=kube-apiserver, which is not a CA certificate",
        ),
        ("expired", expired, "holds CN=old CA, which expired on "),
    ];
    for (what, text, want) in cases {
        let error = WebhookClientCa::parse(&text, now()).expect_err(what);
        assert!(error.to_string().contains(want), "{what}: {error}");
        assert!(!error.to_string().contains("PRIVATE KEY-----"), "{what}");
    }
}

#[test]
fn a_ca_signed_by_another_is_a_ca_too() {
    let (_, root_key, root_params) = cert("root", true, now() + Duration::days(30));
    let issuer = Issuer::new(root_params, root_key);
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "intermediate");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let pem = params.signed_by(&key, &issuer).expect("cert").pem();
    let ca = WebhookClientCa::parse(&pem, now()).expect("an intermediate CA");
    assert_eq!(ca.subjects(), ["CN=intermediate"]);
}
