use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};
use sparrow_core::manifests::{injector_webhooks, source_pull_secret};
use sparrow_core::names::*;
use sparrow_core::{MeshConfig, RegistryAuth, RegistryServer, dockerconfigjson};

use super::*;

const CA: &[u8] = b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";

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
        webhooks: Some(injector_webhooks(
            mesh,
            std::str::from_utf8(CA).expect("utf8"),
        )),
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

fn copy(ns: &str, source: &str, hash: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(ns.to_owned()),
        name: Some(PULL_SECRET_NAME.to_owned()),
        labels: Some(map(&[(USAGE_LABEL, USAGE_LABEL_VALUE)])),
        annotations: Some(map(&[
            (SOURCE_ANNOTATION, source),
            (SOURCE_HASH_ANNOTATION, hash),
        ])),
        ..ObjectMeta::default()
    }
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
        tls_ca: Some(CA.to_vec()),
        webhook: Some(webhook(&MeshConfig::default())),
        source: Some(source(
            RegistryAuth::user_password("robot", "hunter2").expect("valid"),
        )),
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
            credential: CredentialKind::UsernamePassword
        })
    );
    let json = serde_json::to_string(&report).expect("json");
    assert!(!json.contains("hunter2"), "{json}");
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
            |o| o.tls_ca = Some(b"other".to_vec()),
            "caBundle does not match",
        ),
        (
            "stale copy",
            |o| o.labelled_secrets = vec![copy("shop", "sparrow-mesh/sparrow-registry-key", "old")],
            "1 copy of the registry secret are stale",
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
fn only_copies_of_this_mesh_count_and_current_ones_are_not_stale() {
    let mut observed = healthy();
    let hash = data_hash(observed.source.as_ref().expect("source"));
    observed.labelled_secrets = vec![
        copy("shop", "sparrow-mesh/sparrow-registry-key", &hash),
        copy("other", "elsewhere/sparrow-registry-key", "x"),
    ];
    let report = evaluate(&observed);
    assert_eq!(report.copies, 1);
    assert!(report.stale_copies.is_empty());
    assert!(report.healthy(), "{:?}", report.problems);
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
    let hash = data_hash(observed.source.as_ref().expect("source"));
    observed.labelled_secrets = vec![copy("shop", "sparrow-mesh/sparrow-registry-key", &hash)];
    let report = evaluate(&observed);
    assert_eq!(report.pods_without_sidecar, ["default/plain"]);
    assert_eq!(report.warnings.len(), 1);
    assert!(
        report.healthy(),
        "a warning is not a problem: {:?}",
        report.problems
    );
}
