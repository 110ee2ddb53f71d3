//! The preflight against a real registry: Debian's docker-registry with htpasswd users and TLS
//! from a CA generated per test, images pushed by skopeo. Missing binaries fail the tests with
//! the apt-get command that installs them.

use std::time::{Duration, Instant};

use sparrow_core::names::{CONTROLLER_IMAGE_NAME, INIT_IMAGE_NAME, PROXY_IMAGE_NAME};
use sparrow_core::{
    ControlPlane, ImageOverrides, Images, MeshConfig, Object, RegistryAuth, RegistryServer,
    dockerconfigjson,
};
use sparrow_registry::{CheckOptions, ImageCheck, Outcome, all_passed, check_images};
use sparrow_registry_fixture::LocalRegistry;

const USER: &str = "robot";
const PASSWORD: &str = "correct horse battery staple";
const TAG: &str = "0.1.0";
const NAMES: [&str; 3] = [CONTROLLER_IMAGE_NAME, PROXY_IMAGE_NAME, INIT_IMAGE_NAME];

async fn start(users: &[(&str, &str)]) -> LocalRegistry {
    LocalRegistry::start(users)
        .await
        .unwrap_or_else(|error| panic!("{error}"))
}

/// Pushes the mesh's three images under `path` (may be empty) and returns their digests.
async fn push_mesh(registry: &LocalRegistry, path: &str, creds: (&str, &str)) -> Vec<String> {
    let mut digests = Vec::new();
    for name in NAMES {
        let repository = if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}/{name}")
        };
        let digest = registry
            .push_image(&repository, TAG, Some(creds))
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        digests.push(digest);
    }
    digests
}

fn server(text: &str) -> RegistryServer {
    RegistryServer::parse(text).expect("valid registry server")
}

fn options(registry: &LocalRegistry) -> CheckOptions {
    CheckOptions {
        ca_pem: Some(registry.ca_pem().to_vec()),
        timeout: Duration::from_secs(10),
        ..CheckOptions::default()
    }
}

fn user(name: &str, password: &str) -> RegistryAuth {
    RegistryAuth::user_password(name, password).expect("valid credentials")
}

async fn check(
    server: &RegistryServer,
    auth: Option<&RegistryAuth>,
    tag: &str,
    overrides: &ImageOverrides,
    options: &CheckOptions,
) -> Vec<ImageCheck> {
    let images = Images::resolve(server, tag, overrides);
    check_images(server, auth, &images.all(), options)
        .await
        .expect("valid options")
}

fn lines(checks: &[ImageCheck]) -> String {
    checks
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_no_secret(checks: &[ImageCheck], secret: &str) {
    let shown = format!("{}\n{checks:?}", lines(checks));
    assert!(!shown.contains(secret), "the credential leaked:\n{shown}");
}

#[tokio::test]
async fn good_credentials_find_every_image_with_its_digest() {
    let registry = start(&[(USER, PASSWORD)]).await;
    let pushed = push_mesh(&registry, "", (USER, PASSWORD)).await;
    let server = server(&registry.authority());
    let auth = user(USER, PASSWORD);

    let checks = check(
        &server,
        Some(&auth),
        TAG,
        &ImageOverrides::default(),
        &options(&registry),
    )
    .await;

    let found: Vec<Option<&str>> = checks.iter().map(|c| c.outcome.digest()).collect();
    let expected: Vec<Option<&str>> = pushed.iter().map(|d| Some(d.as_str())).collect();
    assert_eq!(found, expected, "{}", lines(&checks));
    assert!(all_passed(&checks));
    let labels: Vec<&str> = checks.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(labels, ["controller", "proxy", "init"]);
    let first = checks[0].to_string();
    assert_eq!(
        first,
        format!(
            "✓ controller  {}/sparrow-controller:{TAG}  found {}",
            registry.authority(),
            pushed[0]
        )
    );
    assert_no_secret(&checks, PASSWORD);
}

#[tokio::test]
async fn a_server_path_selects_the_repositories_while_credentials_go_to_the_authority() {
    let registry = start(&[(USER, PASSWORD)]).await;
    let pushed = push_mesh(&registry, "team/mesh", (USER, PASSWORD)).await;
    let auth = user(USER, PASSWORD);
    let with_path = server(&format!("{}/team/mesh", registry.authority()));

    let checks = check(
        &with_path,
        Some(&auth),
        TAG,
        &ImageOverrides::default(),
        &options(&registry),
    )
    .await;
    assert!(all_passed(&checks), "{}", lines(&checks));
    assert_eq!(checks[1].outcome.digest(), Some(pushed[1].as_str()));
    assert!(checks[1].image.ends_with("/team/mesh/sparrow-proxy:0.1.0"));

    // Without the path the same credentials are accepted, but the repositories are not there.
    let without_path = server(&registry.authority());
    let checks = check(
        &without_path,
        Some(&auth),
        TAG,
        &ImageOverrides::default(),
        &options(&registry),
    )
    .await;
    for (check, name) in checks.iter().zip(NAMES) {
        // distribution v2 answers MANIFEST_UNKNOWN (not NAME_UNKNOWN) for unknown repositories.
        assert_eq!(
            check.outcome,
            Outcome::NotFound {
                detail: format!("{} has no manifest {TAG} in {name}", registry.authority())
            },
            "{check}"
        );
    }
}

#[tokio::test]
async fn a_wrong_password_is_unauthorized_and_never_shown() {
    let registry = start(&[(USER, PASSWORD)]).await;
    push_mesh(&registry, "", (USER, PASSWORD)).await;
    let server = server(&registry.authority());
    let wrong = "not-the-password-4242";

    let checks = check(
        &server,
        Some(&user(USER, wrong)),
        TAG,
        &ImageOverrides::default(),
        &options(&registry),
    )
    .await;

    assert!(!all_passed(&checks));
    for check in &checks {
        assert_eq!(
            check.outcome,
            Outcome::Unauthorized {
                registry: registry.authority(),
                credentials_sent: true
            },
            "{check}"
        );
        assert!(
            check.to_string().starts_with("✗ ")
                && check.to_string().ends_with(&format!(
                    "unauthorized: the registry refused the credentials for {}",
                    registry.authority()
                )),
            "{check}"
        );
    }
    assert_no_secret(&checks, wrong);
}

#[tokio::test]
async fn an_unknown_user_is_unauthorized() {
    let registry = start(&[(USER, PASSWORD)]).await;
    push_mesh(&registry, "", (USER, PASSWORD)).await;
    let server = server(&registry.authority());

    assert_all_unauthorized(&registry, &server, Some(&user("nobody", PASSWORD)), true).await;

    // And no credentials at all: the registry asks for them.
    assert_all_unauthorized(&registry, &server, None, false).await;
}

#[tokio::test]
async fn a_missing_image_fails_only_that_image() {
    let registry = start(&[(USER, PASSWORD)]).await;
    for name in [CONTROLLER_IMAGE_NAME, PROXY_IMAGE_NAME] {
        registry
            .push_image(name, TAG, Some((USER, PASSWORD)))
            .await
            .unwrap_or_else(|error| panic!("{error}"));
    }
    let server = server(&registry.authority());

    let checks = check(
        &server,
        Some(&user(USER, PASSWORD)),
        TAG,
        &ImageOverrides::default(),
        &options(&registry),
    )
    .await;

    assert!(
        checks[0].passed() && checks[1].passed(),
        "{}",
        lines(&checks)
    );
    assert_eq!(
        checks[2].outcome,
        Outcome::NotFound {
            detail: format!(
                "{} has no manifest {TAG} in sparrow-init",
                registry.authority()
            )
        }
    );
    assert!(checks[2].to_string().starts_with("✗ init"));
    assert!(!all_passed(&checks));
}

#[tokio::test]
async fn a_wrong_tag_is_not_found() {
    let registry = start(&[(USER, PASSWORD)]).await;
    push_mesh(&registry, "", (USER, PASSWORD)).await;
    let server = server(&registry.authority());

    let checks = check(
        &server,
        Some(&user(USER, PASSWORD)),
        "9.9.9",
        &ImageOverrides::default(),
        &options(&registry),
    )
    .await;

    for (check, name) in checks.iter().zip(NAMES) {
        assert_eq!(
            check.outcome,
            Outcome::NotFound {
                detail: format!("{} has no manifest 9.9.9 in {name}", registry.authority())
            }
        );
    }
}

/// A service-account key as Artifact Registry issues them: pretty-printed, ~2 KB.
fn json_key(project: &str) -> String {
    let private_key = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC".repeat(30);
    format!(
        "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"{project}\",\n  \"private_key_id\": \"0123456789abcdef\",\n  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{private_key}\\n-----END PRIVATE KEY-----\\n\",\n  \"client_email\": \"mesh-puller@{project}.iam.gserviceaccount.com\",\n  \"client_id\": \"104857600000000000000\"\n}}\n"
    )
}

#[tokio::test]
async fn a_json_key_authenticates_as_the_json_key_user() {
    let key = json_key("sparrow-test");
    assert!(key.len() > 1500, "a realistic key is long: {}", key.len());
    let auth = RegistryAuth::json_key(&key).expect("a JSON object");
    // The registry's user holds the key text (trailing newline trimmed) as its password.
    let registry = start(&[("_json_key", auth.password())]).await;
    push_mesh(&registry, "team/mesh", ("_json_key", auth.password())).await;
    let server = server(&format!("{}/team/mesh", registry.authority()));

    let checks = check(
        &server,
        Some(&auth),
        TAG,
        &ImageOverrides::default(),
        &options(&registry),
    )
    .await;
    assert!(all_passed(&checks), "{}", lines(&checks));
    assert_no_secret(&checks, auth.password());

    // Another project's key differs within bcrypt's first 72 bytes: refused.
    let other = RegistryAuth::json_key(&json_key("another-project")).expect("a JSON object");
    assert_all_unauthorized(&registry, &server, Some(&other), true).await;
}

#[tokio::test]
async fn an_untrusted_ca_is_a_tls_failure_with_the_registry_ca_hint() {
    let registry = start(&[(USER, PASSWORD)]).await;
    push_mesh(&registry, "", (USER, PASSWORD)).await;
    let server = server(&registry.authority());
    let auth = user(USER, PASSWORD);

    let untrusted = CheckOptions {
        timeout: Duration::from_secs(10),
        ..CheckOptions::default()
    };
    let checks = check(
        &server,
        Some(&auth),
        TAG,
        &ImageOverrides::default(),
        &untrusted,
    )
    .await;
    for check in &checks {
        assert!(matches!(check.outcome, Outcome::Tls { .. }), "{check}");
        let line = check.to_string();
        assert!(
            line.contains("unknown certificate authority")
                && line.contains("pass --registry-ca FILE with the registry's CA certificate"),
            "{line}"
        );
    }

    // Another registry's CA does not help either.
    let stranger = start(&[]).await;
    let checks = check(
        &server,
        Some(&auth),
        TAG,
        &ImageOverrides::default(),
        &options(&stranger),
    )
    .await;
    assert!(
        checks
            .iter()
            .all(|c| matches!(c.outcome, Outcome::Tls { .. })),
        "{}",
        lines(&checks)
    );

    // --insecure-skip-tls-verify gets through.
    let insecure = CheckOptions {
        insecure_skip_tls_verify: true,
        ..untrusted
    };
    let checks = check(
        &server,
        Some(&auth),
        TAG,
        &ImageOverrides::default(),
        &insecure,
    )
    .await;
    assert!(all_passed(&checks), "{}", lines(&checks));
}

#[tokio::test]
async fn a_stopped_registry_is_unreachable_within_the_timeout() {
    let mut registry = start(&[(USER, PASSWORD)]).await;
    push_mesh(&registry, "", (USER, PASSWORD)).await;
    let server = server(&registry.authority());
    registry.stop();
    let timeout = Duration::from_secs(2);
    let options = CheckOptions {
        timeout,
        ..options(&registry)
    };

    let started = Instant::now();
    let checks = check(
        &server,
        Some(&user(USER, PASSWORD)),
        TAG,
        &ImageOverrides::default(),
        &options,
    )
    .await;
    let elapsed = started.elapsed();

    assert!(elapsed < timeout, "took {elapsed:?}");
    for check in &checks {
        assert_eq!(
            check.outcome,
            Outcome::Unreachable {
                detail: format!("connection to {} refused", registry.authority())
            }
        );
    }
}

#[tokio::test]
async fn a_registry_that_never_answers_is_unreachable_after_the_timeout() {
    // Accepts connections and never says a word: the TLS handshake waits forever.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let authority = listener.local_addr().expect("address").to_string();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let timeout = Duration::from_millis(700);
    let options = CheckOptions {
        timeout,
        ..CheckOptions::default()
    };

    let started = Instant::now();
    let checks = check(
        &server(&authority),
        None,
        TAG,
        &ImageOverrides::default(),
        &options,
    )
    .await;
    let elapsed = started.elapsed();
    silent.abort();

    assert!(
        elapsed >= timeout && elapsed < timeout * 3,
        "took {elapsed:?}"
    );
    for check in &checks {
        assert_eq!(
            check.outcome,
            Outcome::Unreachable {
                detail: format!("no answer from {authority} within 700ms")
            }
        );
    }
}

#[tokio::test]
async fn override_images_on_another_registry_get_no_credentials() {
    let registry = start(&[(USER, PASSWORD)]).await;
    push_mesh(&registry, "", (USER, PASSWORD)).await;
    // Same user and password on a second registry: were the credentials sent, it would pass.
    let other = start(&[(USER, PASSWORD)]).await;
    other
        .push_image("vendor/proxy", "1.0", Some((USER, PASSWORD)))
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let server = server(&registry.authority());
    let overrides = ImageOverrides {
        proxy: Some(format!("{}/vendor/proxy:1.0", other.authority())),
        ..ImageOverrides::default()
    };
    // One CA bundle trusting both registries.
    let mut bundle = registry.ca_pem().to_vec();
    bundle.extend_from_slice(other.ca_pem());
    let options = CheckOptions {
        ca_pem: Some(bundle),
        ..options(&registry)
    };

    let checks = check(
        &server,
        Some(&user(USER, PASSWORD)),
        TAG,
        &overrides,
        &options,
    )
    .await;

    assert!(
        checks[0].passed() && checks[2].passed(),
        "{}",
        lines(&checks)
    );
    assert_eq!(
        checks[1].outcome,
        Outcome::Unauthorized {
            registry: other.authority(),
            credentials_sent: false
        },
        "{}",
        checks[1]
    );
}

#[tokio::test]
async fn the_rendered_pull_secret_lets_skopeo_read_the_image_and_nothing_else_does() {
    let registry = start(&[(USER, PASSWORD)]).await;
    let pushed = push_mesh(&registry, "team/mesh", (USER, PASSWORD)).await;
    let server = server(&format!("{}/team/mesh", registry.authority()));
    let auth = user(USER, PASSWORD);

    // The Secret exactly as `deploy --dry-run` renders it.
    let config = MeshConfig {
        images: Images::resolve(&server, TAG, &ImageOverrides::default()),
        registry: server.clone(),
        auth: Some(auth.clone()),
        ..MeshConfig::default()
    };
    let rendered = ControlPlane::render(&config)
        .objects
        .into_iter()
        .find_map(|object| match object {
            Object::Secret(secret)
                if secret.metadata.name.as_deref() == Some("sparrow-registry-key") =>
            {
                secret
                    .data
                    .and_then(|mut data| data.remove(".dockerconfigjson"))
            }
            _ => None,
        })
        .expect("the pull secret is rendered")
        .0;
    assert_eq!(rendered, dockerconfigjson(&server, &auth));
    let dir = tempfile::tempdir().expect("tempdir");
    let authfile = dir.path().join("config.json");
    std::fs::write(&authfile, &rendered).expect("write authfile");

    let image = config.images.controller.clone();
    let with_secret = registry
        .skopeo_inspect(&image, Some(&authfile))
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let stdout = String::from_utf8_lossy(&with_secret.stdout);
    assert!(
        with_secret.status.success(),
        "skopeo with the secret failed: {}",
        String::from_utf8_lossy(&with_secret.stderr)
    );
    let inspected: serde_json::Value = serde_json::from_str(&stdout).expect("skopeo prints JSON");
    assert_eq!(inspected["Digest"], pushed[0].as_str());

    let without = registry
        .skopeo_inspect(&image, None)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let stderr = String::from_utf8_lossy(&without.stderr).to_lowercase();
    assert!(
        !without.status.success(),
        "skopeo without credentials read the image"
    );
    assert!(
        stderr.contains("unauthorized") || stderr.contains("authentication required"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_bearer_token_flow_works_like_ghcr_and_harbor() {
    let registry = LocalRegistry::start_with_token_auth(&[(USER, PASSWORD)])
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let pushed = push_mesh(&registry, "team/mesh", (USER, PASSWORD)).await;
    let server = server(&format!("{}/team/mesh", registry.authority()));

    let checks = check(
        &server,
        Some(&user(USER, PASSWORD)),
        TAG,
        &ImageOverrides::default(),
        &options(&registry),
    )
    .await;
    let found: Vec<Option<&str>> = checks.iter().map(|c| c.outcome.digest()).collect();
    let expected: Vec<Option<&str>> = pushed.iter().map(|d| Some(d.as_str())).collect();
    assert_eq!(found, expected, "{}", lines(&checks));

    // The token endpoint refuses a wrong password.
    assert_all_unauthorized(&registry, &server, Some(&user(USER, "wrong")), true).await;

    // An anonymous token grants nothing.
    assert_all_unauthorized(&registry, &server, None, false).await;
}

/// Checks the mesh images as `auth` and asserts every one is refused as unauthorized, with
/// credentials sent to the registry (`sent`) or not.
async fn assert_all_unauthorized(
    registry: &LocalRegistry,
    server: &RegistryServer,
    auth: Option<&RegistryAuth>,
    sent: bool,
) {
    let checks = check(
        server,
        auth,
        TAG,
        &ImageOverrides::default(),
        &options(registry),
    )
    .await;
    assert!(
        checks.iter().all(|c| matches!(
            c.outcome,
            Outcome::Unauthorized { credentials_sent, .. } if credentials_sent == sent
        )),
        "{}",
        lines(&checks)
    );
}
