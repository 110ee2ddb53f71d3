use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};
use sparrow_core::manifests::{injector_webhooks, source_pull_secret};
use sparrow_core::names::*;
use sparrow_core::ownership::CopyKey;
use sparrow_core::{MeshConfig, RegistryAuth, RegistryServer, dockerconfigjson};

use super::*;

/// When the healthy mesh is observed.
const AT: i64 = 1_800_000_000;

/// A CA and a serving certificate it signed, valid at [`AT`] for 90 days (made once).
fn pki() -> &'static (String, String) {
    static PKI: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    PKI.get_or_init(|| {
        let at = time::OffsetDateTime::from_unix_timestamp(AT).expect("time");
        let ca =
            sparrow_core::webhook_pki::Ca::generate(at, time::Duration::days(360)).expect("ca");
        let names = sparrow_core::tls::service_dns_names("sparrow-mesh");
        let leaf = ca
            .issue(&names, at, time::Duration::days(90))
            .expect("leaf");
        (ca.cert_pem, leaf.cert_pem)
    })
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn deployment(ready: i32) -> Deployment {
    Deployment {
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            ..DeploymentSpec::default()
        }),
        status: Some(DeploymentStatus {
            ready_replicas: Some(ready),
            ..DeploymentStatus::default()
        }),
        ..Deployment::default()
    }
}

fn webhook(mesh: &MeshConfig) -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        webhooks: Some(injector_webhooks(mesh, Some(&pki().0))),
        ..MutatingWebhookConfiguration::default()
    }
}

fn namespace(name: &str, labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(map(labels)),
        ..ObjectMeta::default()
    }
}

fn pod(ns: &str, name: &str, labels: &[(&str, &str)], injected: bool) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(ns.to_owned()),
        name: Some(name.to_owned()),
        labels: Some(map(labels)),
        annotations: injected.then(|| map(&[(INJECT_STATUS_ANNOTATION, INJECT_STATUS_INJECTED)])),
        ..ObjectMeta::default()
    }
}

fn key() -> CopyKey {
    CopyKey::from_bytes(&[3; CopyKey::LEN]).expect("32 bytes")
}

/// A Secret named like a copy in `ns`, holding `data`, with every label and annotation of a
/// genuine copy of `source`'s (its source-hash says it is current); `proven` when it also
/// carries the controller's proof for its uid.
fn copy(ns: &str, source: &Secret, data: &[u8], proven: bool) -> Secret {
    let uid = format!("uid-{ns}");
    let mut annotations = map(&[
        (SOURCE_ANNOTATION, "sparrow-mesh/sparrow-registry-key"),
        (SOURCE_HASH_ANNOTATION, &data_hash(source)),
    ]);
    if proven {
        let proof = key().proof("sparrow-mesh", ns, PULL_SECRET_NAME, &uid);
        annotations.insert(PROOF_ANNOTATION.to_owned(), proof);
    }
    Secret {
        metadata: ObjectMeta {
            namespace: Some(ns.to_owned()),
            name: Some(PULL_SECRET_NAME.to_owned()),
            uid: Some(uid),
            labels: Some(map(&[(USAGE_LABEL, USAGE_LABEL_VALUE)])),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            ".dockerconfigjson".to_owned(),
            ByteString(data.to_vec()),
        )])),
        ..Secret::default()
    }
}

/// A proven copy holding exactly what the source holds.
fn current_copy(observed: &Observed, ns: &str) -> Secret {
    let source = observed.source.as_ref().expect("source");
    let data = source
        .data
        .as_ref()
        .and_then(|d| d.get(".dockerconfigjson"))
        .map(|b| b.0.clone())
        .unwrap_or_default();
    copy(ns, source, &data, true)
}

fn source(auth: RegistryAuth) -> Secret {
    let server = RegistryServer::parse("registry.example.com:5000/mesh").expect("valid");
    source_pull_secret("sparrow-mesh", dockerconfigjson(&server, &auth))
}

/// A healthy mesh: controller ready, webhook matching, a source and no copies.
fn healthy() -> Observed {
    Observed {
        namespace: "sparrow-mesh".to_owned(),
        deployment: Some(deployment(1)),
        serving_cert: Some(pki().1.clone()),
        observed_at: AT,
        webhook: Some(webhook(&MeshConfig::default())),
        source: Some(source(
            RegistryAuth::user_password("robot", "hunter2").expect("valid"),
        )),
        copy_key: Some(key()),
        namespaces: vec![
            namespace("sparrow-mesh", &[]),
            namespace("kube-system", &[]),
            namespace("shop", &[(AUTO_INJECT_LABEL, "enabled")]),
            namespace("default", &[]),
            namespace("legacy", &[(AUTO_INJECT_LABEL, "disabled")]),
        ],
        ..Observed::default()
    }
}

#[test]
fn a_healthy_mesh_has_no_problems_and_blocks_nothing() {
    let report = evaluate(&healthy());
    assert!(report.healthy(), "{:?}", report.problems);
    assert!(!report.admission.blocked);
    assert_eq!(
        report.registry,
        Some(RegistryStatus {
            server: "registry.example.com:5000".to_owned(),
            secret: "sparrow-mesh/sparrow-registry-key".to_owned(),
            kept_by: SourceKind::Static,
            credential: CredentialKind::UsernamePassword,
            expiry: None,
            refresh: None,
        })
    );
    let json = serde_json::to_string(&report).expect("json");
    assert!(!json.contains("hunter2"), "{json}");
}

#[test]
fn a_secret_another_tool_keeps_is_judged_by_what_it_holds_and_never_shown() {
    let external = |type_: &str, config: &str| {
        let mut secret = source(RegistryAuth::user_password("robot", "hunter2").expect("valid"));
        secret.metadata.name = Some("ecr-pull".to_owned());
        secret.metadata.labels = None;
        secret.type_ = Some(type_.to_owned());
        if !config.is_empty() {
            secret.data = Some(BTreeMap::from([(
                ".dockerconfigjson".to_owned(),
                k8s_openapi::ByteString(config.as_bytes().to_vec()),
            )]));
        }
        secret
    };
    let mut observed = healthy();
    observed.registry_secret = Some("ecr-pull".to_owned());
    observed.source = Some(external("kubernetes.io/dockerconfigjson", ""));
    let report = evaluate(&observed);
    assert!(report.healthy(), "{:?}", report.problems);
    let registry = report.registry.expect("registry");
    assert_eq!(registry.secret, "sparrow-mesh/ecr-pull");
    assert_eq!(registry.kept_by, SourceKind::External);

    let cases = [
        (
            None,
            "Secret sparrow-mesh/ecr-pull, which another tool keeps (--registry-secret), is missing: the copies keep the credential they hold, but namespaces meshed from now on and the next controller pod cannot pull; check the tool that writes it",
        ),
        (
            Some(external(
                "kubernetes.io/dockerconfigjson",
                r#"{"auths":{}}"#,
            )),
            "Secret sparrow-mesh/ecr-pull, which another tool keeps (--registry-secret), cannot be copied: its .dockerconfigjson is unusable: \"auths\" is empty; the copies keep the credential they hold; fix the Secret or the tool that writes it",
        ),
        (
            Some(external("Opaque", "")),
            "Secret sparrow-mesh/ecr-pull, which another tool keeps (--registry-secret), cannot be copied: it is of type Opaque, not kubernetes.io/dockerconfigjson; the copies keep the credential they hold; fix the Secret or the tool that writes it",
        ),
    ];
    for (source, expected) in cases {
        observed.source = source;
        let report = evaluate(&observed);
        assert_eq!(report.problems, [expected]);
        assert_eq!(report.registry, None);
        let json = serde_json::to_string(&report).expect("json");
        assert!(!json.contains("hunter2"), "{json}");
    }
}

#[test]
fn credential_kind_comes_from_the_stored_username() {
    let mut observed = healthy();
    observed.source = Some(source(RegistryAuth::json_key("{\"k\":1}").expect("valid")));
    let report = evaluate(&observed);
    assert_eq!(
        report.registry.map(|r| r.credential),
        Some(CredentialKind::JsonKey)
    );
}

#[test]
fn problems_table() {
    type Edit = fn(&mut Observed);
    let table: &[(&str, Edit, &str)] = &[
        (
            "no deployment",
            |o| o.deployment = None,
            "does not exist: run sparrowctl deploy",
        ),
        (
            "not ready",
            |o| o.deployment = Some(deployment(0)),
            "0 of 1 replicas ready",
        ),
        ("no webhook", |o| o.webhook = None, "pods are not injected"),
        (
            "ca mismatch",
            |o| {
                let at = time::OffsetDateTime::from_unix_timestamp(AT).expect("time");
                let other = sparrow_core::WebhookTls::generate("sparrow-mesh", at).expect("tls");
                o.serving_cert = Some(other.cert_pem);
            },
            "caBundle does not verify the serving certificate",
        ),
        (
            "no serving certificate",
            |o| o.serving_cert = None,
            "holds no serving certificate: the controller makes it at start",
        ),
        (
            "expired",
            |o| o.observed_at = AT + 91 * 86_400,
            "has expired: the controller renews it",
        ),
        (
            "copy edited by hand",
            |o| {
                let source = o.source.clone().expect("source");
                // Its annotation still says current: only the data tells.
                o.same_named_secrets = vec![copy("shop", &source, b"{\"auths\":{}}", true)];
            },
            "1 copy of the registry secret hold other data than the source (the controller rewrites them): shop/sparrow-registry-key",
        ),
        (
            "source deleted",
            |o| {
                o.source = None;
                if let Some(spec) = o.deployment.as_mut().and_then(|d| d.spec.as_mut()) {
                    spec.template.spec = Some(k8s_openapi::api::core::v1::PodSpec {
                        image_pull_secrets: Some(vec![
                            k8s_openapi::api::core::v1::LocalObjectReference {
                                name: PULL_SECRET_NAME.to_owned(),
                            },
                        ]),
                        ..Default::default()
                    });
                }
            },
            "Secret sparrow-mesh/sparrow-registry-key is gone, yet the controller pulls its image with it",
        ),
        (
            "missing copy",
            |o| o.pods = vec![pod("shop", "web", &[], true)],
            "namespaces with injected pods but no registry secret: shop",
        ),
        (
            "bad source",
            |o| {
                if let Some(s) = o.source.as_mut() {
                    s.data = Some(BTreeMap::from([(
                        ".dockerconfigjson".to_owned(),
                        ByteString(b"{".to_vec()),
                    )]));
                }
            },
            "does not hold a valid .dockerconfigjson",
        ),
    ];
    for (name, edit, needle) in table {
        let mut observed = healthy();
        edit(&mut observed);
        let report = evaluate(&observed);
        assert!(
            report.problems.iter().any(|p| p.contains(needle)),
            "{name}: {:?}",
            report.problems
        );
    }
}

#[test]
fn only_proven_copies_count_and_current_ones_are_not_stale() {
    let mut observed = healthy();
    let source = observed.source.clone().expect("source");
    let genuine = current_copy(&observed, "shop");
    // A tenant's Secret with every label and annotation of a genuine copy, and one with a
    // genuine copy's metadata (its proof included) copied into another namespace.
    let forged = copy("tenant", &source, b"{}", false);
    let mut transplanted = genuine.clone();
    transplanted.metadata.namespace = Some("tenant-2".to_owned());
    transplanted.metadata.uid = Some("uid-tenant-2".to_owned());
    observed.same_named_secrets = vec![genuine, forged, transplanted];
    let report = evaluate(&observed);
    assert_eq!(report.copies, 1);
    assert!(report.stale_copies.is_empty());
    assert_eq!(
        report.foreign_secrets,
        [
            "tenant/sparrow-registry-key",
            "tenant-2/sparrow-registry-key"
        ]
    );
    assert!(report.healthy(), "{:?}", report.problems);
    // Without the key nothing is proven: no copy counts.
    observed.copy_key = None;
    assert_eq!(evaluate(&observed).copies, 0);
}

#[test]
fn a_mesh_deployed_without_credentials_needs_no_source() {
    let mut observed = healthy();
    observed.source = None;
    let report = evaluate(&observed);
    assert!(report.healthy(), "{:?}", report.problems);
    assert_eq!(report.registry, None);
}

#[test]
fn a_controller_that_is_down_blocks_only_explicit_opt_ins() {
    let mut observed = healthy();
    observed.deployment = Some(deployment(0));
    let report = evaluate(&observed);
    assert!(report.admission.blocked);
    assert_eq!(report.admission.blocked_namespaces, ["shop"]);
    assert!(report.admission.blocked_labelled_pods);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("pod creation is blocked in namespace(s) shop")),
        "{:?}",
        report.problems
    );
    // No webhook, nothing blocked, however down the controller is.
    observed.webhook = None;
    assert!(!evaluate(&observed).admission.blocked);
}

#[test]
fn a_legacy_fail_closed_webhook_is_reported_as_blocking_everywhere() {
    let mut observed = healthy();
    observed.deployment = None;
    if let Some(hooks) = observed.webhook.as_mut().and_then(|w| w.webhooks.as_mut()) {
        for hook in hooks {
            hook.failure_policy = None; // the API server's default: Fail
        }
    }
    let admission = evaluate(&observed).admission;
    assert_eq!(admission.blocked_namespaces, ["default", "shop"]);
}

#[test]
fn pods_admitted_without_the_sidecar_are_named() {
    let mut observed = healthy();
    observed.pods = vec![
        pod("default", "plain", &[], false),
        pod(
            "default",
            "opted-out",
            &[(AUTO_INJECT_LABEL, "disabled")],
            false,
        ),
        pod("shop", "meshed", &[], true),
        pod("legacy", "off", &[], false),
        pod("kube-system", "dns", &[], false),
        pod("sparrow-mesh", "controller", &[], false),
    ];
    observed.same_named_secrets = vec![current_copy(&observed, "shop")];
    let report = evaluate(&observed);
    assert_eq!(report.pods_without_sidecar, ["default/plain"]);
    assert_eq!(report.warnings.len(), 1);
    assert!(
        report.healthy(),
        "a warning is not a problem: {:?}",
        report.problems
    );
}

#[test]
fn the_webhook_answers_only_the_api_server_when_the_controller_has_a_client_ca() {
    let with_args = |args: &[&str]| {
        let mut d = deployment(1);
        if let Some(spec) = d.spec.as_mut() {
            spec.template.spec = Some(k8s_openapi::api::core::v1::PodSpec {
                containers: vec![k8s_openapi::api::core::v1::Container {
                    name: "sparrow-controller".to_owned(),
                    args: Some(args.iter().map(|a| (*a).to_owned()).collect()),
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        d
    };
    let required = controller_status(Some(&with_args(&[
        "--addr=0.0.0.0:8443",
        "--webhook-client-ca=/var/run/sparrow/webhook-client-ca/ca.crt",
    ])));
    assert_eq!(required.webhook_callers, WebhookCallers::ApiServerOnly);
    assert_eq!(
        serde_json::to_value(&required).expect("json")["webhookCallers"],
        "apiServerOnly"
    );
    let open = controller_status(Some(&with_args(&["--addr=0.0.0.0:8443"])));
    assert_eq!(open.webhook_callers, WebhookCallers::Anyone);
    assert_eq!(
        controller_status(None).webhook_callers,
        WebhookCallers::Anyone
    );
}

/// The source in `healthy()` recording an expiry `left` seconds after the reading.
fn expiring_in(left: i64) -> Observed {
    let mut observed = healthy();
    observed.expiry_warning_seconds = 7 * 86_400;
    let source = observed.source.as_mut().expect("source");
    source.metadata.annotations = Some(
        sparrow_core::CredentialExpiry {
            at: AT + left,
            source: sparrow_core::ExpirySource::Flag,
        }
        .annotations(),
    );
    observed
}

#[test]
fn a_credential_far_from_its_expiry_is_reported_and_fine() {
    let report = evaluate(&expiring_in(83 * 86_400));
    assert!(report.healthy(), "{:?}", report.problems);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let expiry = report.registry.and_then(|r| r.expiry).expect("expiry");
    assert_eq!(expiry.state, sparrow_core::ExpiryState::Ok);
    assert_eq!(expiry.expires_in_seconds, 83 * 86_400);
}

#[test]
fn a_credential_within_the_window_warns_without_failing() {
    let report = evaluate(&expiring_in(3 * 86_400));
    assert!(report.healthy(), "{:?}", report.problems);
    assert_eq!(
        report.warnings,
        [format!(
            "the registry credential in Secret sparrow-mesh/sparrow-registry-key expires {} (in 3d 0h): give a new one with sparrowctl registry update before then",
            sparrow_core::expiry::rfc3339(AT + 3 * 86_400)
        )]
    );
}

#[test]
fn an_expired_credential_is_a_problem_naming_the_fix() {
    let report = evaluate(&expiring_in(-3_600));
    assert_eq!(
        report.problems,
        [format!(
            "the registry credential in Secret sparrow-mesh/sparrow-registry-key expired {} (1h 0m ago): new meshed pods and controller pods cannot pull; give a new one with sparrowctl registry update",
            sparrow_core::expiry::rfc3339(AT - 3_600)
        )]
    );
    let json = serde_json::to_string(&report).expect("json");
    assert!(json.contains(r#""state":"expired""#), "{json}");
    assert!(!json.contains("hunter2"), "{json}");
}
