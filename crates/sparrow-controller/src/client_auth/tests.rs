//! The verifier in real TLS handshakes (rustls on both ends, over an in-memory pipe): who is
//! let in, who is refused, and what a changed or broken CA file does.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::*;
use crate::tls::ReloadingCert;

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let cert = params.self_signed(&key).expect("CA");
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A certificate and key signed by `ca`, for `usage` (client or server).
fn leaf(ca: &Ca, name: &str, usage: ExtendedKeyUsagePurpose) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec![name.to_owned()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, &ca.issuer).expect("leaf");
    (cert.pem(), key.serialize_pem())
}

/// The webhook's side: a serving certificate from its own CA, and the client CA file.
struct Webhook {
    dir: tempfile::TempDir,
    serving_ca: Ca,
    acceptor: TlsAcceptor,
}

const HOST: &str = "sparrow-controller.mesh.svc";

fn webhook(client_ca_pem: &str) -> Webhook {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let serving_ca = ca("webhook serving CA");
    let (cert, key) = leaf(&serving_ca, HOST, ExtendedKeyUsagePurpose::ServerAuth);
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_path, cert).expect("write");
    std::fs::write(&key_path, key).expect("write");
    let ca_path = dir.path().join("client-ca.crt");
    replace(&ca_path, client_ca_pem);
    let certs = ReloadingCert::load(&cert_path, &key_path).expect("serving certificate");
    let verifier = ReloadingClientCa::load(&ca_path).expect("client CA");
    let config = server_config_requiring_client_certs(Arc::new(certs), Arc::new(verifier))
        .expect("server config");
    Webhook {
        dir,
        serving_ca,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    }
}

/// Replaces the file the way a ConfigMap volume does: a new file renamed over the old.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

impl Webhook {
    fn ca_path(&self) -> std::path::PathBuf {
        self.dir.path().join("client-ca.crt")
    }

    /// One handshake with a caller presenting `client` (certificate and key PEM), or nothing;
    /// the server's verdict.
    async fn handshake(&self, client: Option<&(String, String)>) -> Result<(), String> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.serving_ca.pem.as_bytes()).expect("pem"))
            .expect("root");
        let builder = ClientConfig::builder().with_root_certificates(roots);
        let config = match client {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("cert")],
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key"),
                )
                .expect("client auth"),
            None => builder.with_no_client_auth(),
        };
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let connector = TlsConnector::from(Arc::new(config));
        let name = ServerName::try_from(HOST).expect("name");
        let (_, served) = tokio::join!(
            connector.connect(name, client_io),
            self.acceptor.accept(server_io)
        );
        served.map(drop).map_err(|e| e.to_string())
    }
}

fn client_of(ca: &Ca) -> (String, String) {
    leaf(
        ca,
        "kube-apiserver-webhook-client",
        ExtendedKeyUsagePurpose::ClientAuth,
    )
}

#[tokio::test]
async fn a_certificate_from_the_client_ca_is_let_in() {
    let apiserver_ca = ca("API server client CA");
    let hook = webhook(&apiserver_ca.pem);
    let outcome = hook.handshake(Some(&client_of(&apiserver_ca))).await;
    assert_eq!(outcome, Ok(()));
}

#[tokio::test]
async fn a_caller_without_a_certificate_is_refused_at_the_handshake() {
    let apiserver_ca = ca("API server client CA");
    let hook = webhook(&apiserver_ca.pem);
    let error = hook.handshake(None).await.expect_err("refused");
    assert!(
        error.contains("peer sent no certificates") || error.contains("NoCertificatesPresented"),
        "{error}"
    );
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_at_the_handshake() {
    let apiserver_ca = ca("API server client CA");
    let hook = webhook(&apiserver_ca.pem);
    let stranger = client_of(&ca("someone else's CA"));
    let error = hook.handshake(Some(&stranger)).await.expect_err("refused");
    assert!(error.contains("UnknownIssuer"), "{error}");
    // A server certificate of the trusted CA is no client certificate either.
    let serving = leaf(
        &apiserver_ca,
        "not-a-client",
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let error = hook.handshake(Some(&serving)).await.expect_err("refused");
    assert!(error.contains("certificate"), "{error}");
}

#[tokio::test]
async fn a_bundle_trusts_each_of_its_cas() {
    let (old, new) = (ca("old client CA"), ca("new client CA"));
    let hook = webhook(&format!("{}{}", old.pem, new.pem));
    assert_eq!(hook.handshake(Some(&client_of(&old))).await, Ok(()));
    assert_eq!(hook.handshake(Some(&client_of(&new))).await, Ok(()));
}

#[tokio::test]
async fn a_changed_file_takes_effect_without_a_restart_and_a_broken_one_keeps_the_old_ca() {
    let (first, second) = (ca("first client CA"), ca("second client CA"));
    let hook = webhook(&first.pem);
    assert_eq!(hook.handshake(Some(&client_of(&first))).await, Ok(()));

    replace(&hook.ca_path(), &second.pem);
    assert_eq!(hook.handshake(Some(&client_of(&second))).await, Ok(()));
    assert!(hook.handshake(Some(&client_of(&first))).await.is_err());

    replace(&hook.ca_path(), "not a certificate\n");
    assert_eq!(
        hook.handshake(Some(&client_of(&second))).await,
        Ok(()),
        "a broken file keeps the CA in use"
    );
    assert!(hook.handshake(None).await.is_err());
}

#[test]
fn files_that_are_no_ca_are_refused_with_the_file_named() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.crt");
    let error = ReloadingClientCa::load(&missing).expect_err("missing");
    assert!(
        error.to_string().starts_with(&format!(
            "cannot read the webhook client CA {}",
            missing.display()
        )),
        "{error}"
    );

    let key_only = dir.path().join("key.pem");
    std::fs::write(&key_only, KeyPair::generate().expect("key").serialize_pem()).expect("write");
    let error = ReloadingClientCa::load(&key_only).expect_err("no certificate");
    assert_eq!(
        error.to_string(),
        format!(
            "the webhook client CA {} holds no PEM certificate",
            key_only.display()
        )
    );

    let garbage = dir.path().join("garbage.crt");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let error = ReloadingClientCa::load(&garbage).expect_err("not PEM");
    assert!(
        error
            .to_string()
            .starts_with(&format!("the webhook client CA {}", garbage.display())),
        "{error}"
    );
}
