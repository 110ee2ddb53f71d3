//! The controller registered as the mutating webhook of a testkube API server: pods created
//! through kube-rs and through kubectl come back injected; a namespace or pod labelled
//! `disabled` does not. The namespace labels come from the real watch-fed cache.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use prometheus_client::registry::Registry;
use serde_json::json;
use sparrow_controller::{
    AdmissionMetrics, AppState, NamespaceCache, NamespaceLabels, Readiness, ReloadingCert, Webhook,
    router, serve, server_config,
};
use sparrow_core::names::{
    AUTO_INJECT_LABEL, CONTROLLER_NAME, INIT_CONTAINER, INJECT_STATUS_ANNOTATION,
    NAMESPACE_NAME_LABEL, PROXY_CONTAINER, PULL_SECRET_NAME, WEBHOOK_CONFIG_NAME,
};
use sparrow_core::{MeshConfig, WebhookTls, manifests};
use sparrow_inject::{InjectConfig, Injector};
use testkube::TestCluster;
use tokio::net::TcpListener;

struct Mesh {
    cluster: TestCluster,
    _dir: tempfile::TempDir,
}

async fn start_mesh() -> Mesh {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cluster = TestCluster::start().await.expect("testkube starts");
    let mesh = MeshConfig::default();
    let tls = WebhookTls::generate(&mesh.namespace, time::OffsetDateTime::now_utc())
        .expect("certificate");
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, &tls.cert_pem).expect("write cert");
    std::fs::write(&key, &tls.key_pem).expect("write key");

    let (namespaces, _watch) = NamespaceCache::spawn(cluster.client());
    let namespaces: Arc<dyn NamespaceLabels> = Arc::new(namespaces);
    let mut registry = Registry::default();
    let metrics = AdmissionMetrics::register(&mut registry);
    let webhook = Webhook::new(
        Injector::new(InjectConfig::from_mesh(&mesh)).expect("injector"),
        namespaces,
        None,
        metrics,
    );
    let state = Arc::new(AppState {
        webhook,
        registry,
        readiness: Readiness::new(),
    });
    let resolver = ReloadingCert::load(&cert, &key).expect("certificate loads");
    let config = server_config(Arc::new(resolver)).expect("TLS config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve(
        listener,
        Arc::new(config),
        router(state),
        std::future::pending(),
    ));
    cluster.set_service_endpoint(&mesh.namespace, CONTROLLER_NAME, addr);

    let client = cluster.client();
    let configuration = MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(WEBHOOK_CONFIG_NAME.to_owned()),
            ..ObjectMeta::default()
        },
        webhooks: Some(manifests::injector_webhooks(&mesh, &tls.ca_pem)),
    };
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &configuration)
        .await
        .expect("webhook registered");
    for (name, switch) in [("shop", None), ("legacy", Some("disabled"))] {
        let mut labels = BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned())]);
        if let Some(s) = switch {
            labels.insert(AUTO_INJECT_LABEL.to_owned(), s.to_owned());
        }
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace created");
    }
    Mesh { cluster, _dir: dir }
}

fn pod(name: &str, labels: &[(&str, &str)]) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        },
        "spec": {
            "containers": [
                {"name": "web", "image": "registry.example.com/web:1"},
                {"name": "worker", "image": "registry.example.com/worker:1"},
                {"name": "metrics", "image": "registry.example.com/exporter:1"}
            ],
            "imagePullSecrets": [{"name": "user-secret"}]
        }
    }))
    .expect("pod")
}

fn container_names(pod: &Pod) -> Vec<String> {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
        .collect()
}

fn assert_injected(pod: &Pod) {
    assert_eq!(
        container_names(pod),
        ["web", "worker", "metrics", PROXY_CONTAINER]
    );
    let spec = pod.spec.as_ref().expect("spec");
    let inits: Vec<_> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(inits, [INIT_CONTAINER]);
    let secrets: Vec<_> = spec
        .image_pull_secrets
        .iter()
        .flatten()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(secrets, ["user-secret", PULL_SECRET_NAME]);
    let status = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(INJECT_STATUS_ANNOTATION));
    assert_eq!(status.map(String::as_str), Some("injected"));
}

#[tokio::test]
async fn pods_created_with_kube_rs_are_injected_unless_disabled() {
    let mesh = start_mesh().await;
    let client = mesh.cluster.client();
    let shop: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let created = shop
        .create(&PostParams::default(), &pod("web", &[]))
        .await
        .expect("pod created");
    assert_injected(&created);
    let stored = shop.get("web").await.expect("pod stored");
    assert_injected(&stored);

    let disabled = shop
        .create(
            &PostParams::default(),
            &pod("opted-out", &[(AUTO_INJECT_LABEL, "disabled")]),
        )
        .await
        .expect("pod created");
    assert_eq!(container_names(&disabled), ["web", "worker", "metrics"]);

    let legacy: Api<Pod> = Api::namespaced(client, "legacy");
    let plain = legacy
        .create(&PostParams::default(), &pod("web", &[]))
        .await
        .expect("pod created");
    assert_eq!(container_names(&plain), ["web", "worker", "metrics"]);
    assert!(
        plain
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.as_ref())
            .is_none()
    );
}

#[tokio::test]
async fn pod_applied_with_kubectl_is_injected() {
    let mesh = start_mesh().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, mesh.cluster.kubeconfig()).expect("kubeconfig");
    let manifest = dir.path().join("pod.json");
    std::fs::write(
        &manifest,
        serde_json::to_vec(&pod("from-kubectl", &[])).expect("json"),
    )
    .expect("manifest");
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["-n", "shop", "create", "-o", "json", "-f"])
            .arg(&manifest)
            .output(),
    )
    .await
    .expect("kubectl finishes")
    .expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created: Pod = serde_json::from_slice(&output.stdout).expect("kubectl prints the pod");
    assert_injected(&created);
}
