//! The check itself: authenticate to each image's registry the way a kubelet would, then ask
//! for the manifest, every image concurrently, each within the timeout.

use std::time::Duration;

use futures::future::join_all;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth as OciAuth;
use oci_client::{Client, Reference, RegistryOperation};
use sparrow_core::{RegistryAuth, RegistryServer};

use crate::classify::{Context, classify};
use crate::options::{CheckError, CheckOptions};
use crate::outcome::{ImageCheck, Outcome};

/// Checks every `(label, image)` against its registry, concurrently, and returns one
/// [`ImageCheck`] per image in the order given.
///
/// `auth` is sent only to images whose registry has the same credential key as `server`
/// (`HOST[:PORT]`, Docker Hub under any of its names): an override image on another host is
/// checked anonymously, exactly as the kubelet would pull it with the rendered pull secret.
///
/// Fails only when the options are unusable (see [`CheckOptions::validate`]); everything the
/// registry says is an [`Outcome`]. Runs on the caller's Tokio runtime (one task per image).
pub async fn check_images(
    server: &RegistryServer,
    auth: Option<&RegistryAuth>,
    images: &[(&str, &str)],
    options: &CheckOptions,
) -> Result<Vec<ImageCheck>, CheckError> {
    let client = build_client(options)?;
    // One task per image: concurrent on any runtime, and a panic inside the HTTP client
    // (oci-client unwraps a token into a header) costs that image's line, not the process.
    let tasks = images.iter().map(|&(label, image)| {
        let (client, server, auth) = (client.clone(), server.clone(), auth.cloned());
        let (label, image, timeout) = (label.to_owned(), image.to_owned(), options.timeout);
        tokio::spawn(async move {
            check_image(&client, &server, auth.as_ref(), &label, &image, timeout).await
        })
    });
    let results = join_all(tasks).await;
    Ok(images
        .iter()
        .zip(results)
        .map(|(&(label, image), result)| {
            result.unwrap_or_else(|error| ImageCheck {
                label: label.to_owned(),
                image: image.to_owned(),
                outcome: Outcome::Other {
                    detail: format!("the check stopped unexpectedly: {error}"),
                }
                .redact(auth),
            })
        })
        .collect())
}

/// The OCI client for `options`: HTTPS with the extra roots, or plain HTTP.
pub(crate) fn build_client(options: &CheckOptions) -> Result<Client, CheckError> {
    let extra_root_certificates = options.extra_roots()?;
    ensure_crypto_provider();
    let config = ClientConfig {
        protocol: if options.plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        // One PUT per blob: the OCI distribution spec's monolithic upload, which every
        // registry must accept, in fewer round trips than chunks.
        use_monolithic_push: true,
        accept_invalid_certificates: options.insecure_skip_tls_verify,
        extra_root_certificates,
        connect_timeout: Some(options.timeout),
        read_timeout: Some(options.timeout),
        user_agent: concat!("sparrow-registry/", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    };
    Client::try_from(config).map_err(|source| CheckError::Client { source })
}

/// reqwest is built without a crypto provider of its own (that would be aws-lc-rs): it uses
/// the process default, which Sparrow's binaries set to ring. Libraries and tests that did not
/// get ring installed here.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

async fn check_image(
    client: &Client,
    server: &RegistryServer,
    auth: Option<&RegistryAuth>,
    label: &str,
    image: &str,
    timeout: Duration,
) -> ImageCheck {
    let outcome = match Reference::try_from(image) {
        Err(error) => Outcome::InvalidReference {
            detail: error.to_string(),
        },
        Ok(reference) => {
            let credentials = auth.filter(|_| same_credential_key(&reference, server));
            let version = reference
                .digest()
                .or(reference.tag())
                .unwrap_or("latest")
                .to_owned();
            let ctx = Context {
                registry: reference.registry(),
                repository: reference.repository(),
                version: &version,
                credentials_sent: credentials.is_some(),
                timeout,
            };
            tracing::debug!(
                label,
                image,
                registry = ctx.registry,
                credentials_sent = ctx.credentials_sent,
                "checking image"
            );
            let oci_auth = match credentials {
                Some(auth) => {
                    OciAuth::Basic(auth.username().to_owned(), auth.password().to_owned())
                }
                None => OciAuth::Anonymous,
            };
            match tokio::time::timeout(timeout, manifest_digest(client, &reference, &oci_auth))
                .await
            {
                Err(_elapsed) => ctx.timed_out(),
                Ok(Ok(digest)) => Outcome::Found { digest },
                Ok(Err(error)) => classify(&error, &ctx),
            }
        }
    };
    let outcome = outcome.redact(auth);
    tracing::debug!(label, image, outcome = %outcome, "image checked");
    ImageCheck {
        label: label.to_owned(),
        image: image.to_owned(),
        outcome,
    }
}

/// `GET /v2/` (answering a Basic or Bearer challenge; a Bearer token is fetched from the
/// challenge's realm with the credentials), then `HEAD` of the manifest for its digest, or
/// `GET` and sha256 over the body when the registry sends no `Docker-Content-Digest`.
async fn manifest_digest(
    client: &Client,
    reference: &Reference,
    auth: &OciAuth,
) -> Result<String, OciDistributionError> {
    client
        .auth(reference, auth, RegistryOperation::Pull)
        .await?;
    client.fetch_manifest_digest(reference, auth).await
}

/// True when `reference` lives on the registry the credentials are for: the same key under
/// `auths` in the pull secret, which is what the kubelet matches on.
fn same_credential_key(reference: &Reference, server: &RegistryServer) -> bool {
    RegistryServer::parse(reference.registry())
        .is_ok_and(|registry| registry.auth_key() == server.auth_key())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(text: &str) -> RegistryServer {
        RegistryServer::parse(text).expect("valid server")
    }

    fn reference(text: &str) -> Reference {
        Reference::try_from(text).expect("valid reference")
    }

    #[test]
    fn images_under_the_server_path_get_the_credentials() {
        let server = server("127.0.0.1:5000/team/mesh");
        assert!(same_credential_key(
            &reference("127.0.0.1:5000/team/mesh/sparrow-proxy:0.1.0"),
            &server
        ));
        // Only the authority counts, as in the pull secret.
        assert!(same_credential_key(
            &reference("127.0.0.1:5000/elsewhere/proxy:1"),
            &server
        ));
    }

    #[test]
    fn images_on_another_host_or_port_are_anonymous() {
        let server = server("127.0.0.1:5000/team/mesh");
        assert!(!same_credential_key(
            &reference("127.0.0.1:5001/team/mesh/sparrow-proxy:0.1.0"),
            &server
        ));
        assert!(!same_credential_key(
            &reference("quay.io/team/proxy:1"),
            &server
        ));
    }

    #[test]
    fn docker_hub_matches_under_any_name() {
        let hub = server("docker.io/sparrow");
        assert!(same_credential_key(&reference("sparrow/proxy:1"), &hub));
        assert!(same_credential_key(
            &reference("index.docker.io/sparrow/proxy:1"),
            &hub
        ));
        assert!(same_credential_key(
            &reference("registry-1.docker.io/sparrow/proxy:1"),
            &hub
        ));
        assert!(!same_credential_key(
            &reference("ghcr.io/sparrow/proxy:1"),
            &hub
        ));
    }

    #[tokio::test]
    async fn an_unparsable_override_is_reported_without_contacting_anything() {
        let server = server("127.0.0.1:5000");
        let checks = check_images(
            &server,
            None,
            &[("proxy", "Not A/Valid::Reference")],
            &CheckOptions::default(),
        )
        .await
        .expect("options are valid");
        assert!(
            matches!(checks[0].outcome, Outcome::InvalidReference { .. }),
            "{}",
            checks[0]
        );
    }

    #[tokio::test]
    async fn bad_options_fail_before_any_image() {
        let options = CheckOptions {
            ca_pem: Some(b"not pem".to_vec()),
            ..CheckOptions::default()
        };
        let result = check_images(&server("127.0.0.1:5000"), None, &[], &options).await;
        assert!(matches!(result, Err(CheckError::CaEmpty)), "{result:?}");
    }
}
