//! The controller registered as the mutating webhook of a testkube API server: pods created
//! through kube-rs and through kubectl come back injected; a namespace or pod labelled
//! `disabled` does not. The namespace labels come from the real watch-fed cache, and the
//! pull-secret copies from the real copier: the copy exists before the pod is admitted, a
//! current copy costs no API call, a Secret we do not own gets a warning and an Event.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use prometheus_client::registry::Registry;
use serde_json::json;
use sparrow_controller::{
    AdmissionMetrics, AppState, KubeCopies, NamespaceCache, NamespaceLabels, PullSecretCopies,
    Readiness, ReloadingCert, Webhook, pull_secret_copier, router, serve, server_config,
};
use sparrow_core::names::{
    AUTO_INJECT_LABEL, CONTROLLER_NAME, INIT_CONTAINER, INJECT_STATUS_ANNOTATION,
    NAMESPACE_NAME_LABEL, PROXY_CONTAINER, PULL_SECRET_NAME, WEBHOOK_CONFIG_NAME,
};
use sparrow_core::{MeshConfig, WebhookTls, manifests};
use sparrow_inject::{InjectConfig, Injector};
use sparrow_kube::runtime::metrics::CopyMetrics;
use testkube::TestCluster;
use tokio::net::TcpListener;

struct Mesh {
    cluster: TestCluster,
    /// The copier's metrics (shared with the copier it counts for).
    copy_metrics: CopyMetrics,
    _dir: tempfile::TempDir,
}

async fn start_mesh() -> Mesh {
    start_mesh_with_source(false).await
}

/// The mesh; with `source`, deployed with credentials (the pull secret exists).
async fn start_mesh_with_source(source: bool) -> Mesh {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cluster = TestCluster::start().await.expect("testkube starts");
    let mesh = MeshConfig::default();
    // The control plane's namespace exists wherever a controller runs (it keeps its key there).
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(mesh.namespace.clone()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(cluster.client())
        .create(&PostParams::default(), &ns)
        .await
        .expect("mesh namespace");
    if source {
        let server =
            sparrow_core::RegistryServer::parse("127.0.0.1:5000/team/mesh").expect("server");
        let auth = sparrow_core::RegistryAuth::user_password("robot", "pw").expect("auth");
        let secret = manifests::pull_secret(
            &mesh.namespace,
            sparrow_core::dockerconfigjson(&server, &auth),
        );
        Api::<Secret>::namespaced(cluster.client(), &mesh.namespace)
            .create(&PostParams::default(), &secret)
            .await
            .expect("source secret");
    }
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
    let copy_metrics = CopyMetrics::register(&mut registry);
    let copier = pull_secret_copier(
        cluster.client(),
        &InjectConfig::from_mesh(&mesh),
        sparrow_kube::runtime::copies::SourceSecret::Own,
        namespaces.clone(),
        copy_metrics.clone(),
    )
    .await
    .expect("copier");
    let watches = copier.clone();
    tokio::spawn(async move { watches.run_watches().await });
    tokio::time::timeout(Duration::from_secs(10), copier.synced())
        .await
        .expect("copier synced");
    let kube_copies = Arc::new(KubeCopies::new(
        copier,
        recorder_for(cluster.client(), "test"),
    ));
    tokio::spawn({
        let (copies, ns) = (kube_copies.clone(), mesh.namespace.clone());
        async move {
            copies
                .report_credential_expiry(&ns, Duration::from_secs(7 * 86_400))
                .await
        }
    });
    let copies: Arc<dyn PullSecretCopies> = kube_copies;
    let webhook = Webhook::new(
        Injector::new(InjectConfig::from_mesh(&mesh)).expect("injector"),
        namespaces,
        Some(copies),
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
        webhooks: Some(manifests::injector_webhooks(&mesh, Some(&tls.ca_pem))),
    };
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .create(&PostParams::default(), &configuration)
        .await
        .expect("webhook registered");
    for (name, switch) in [
        ("shop", None),
        ("legacy", Some("disabled")),
        ("theirs", None),
    ] {
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
    Mesh {
        cluster,
        copy_metrics,
        _dir: dir,
    }
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
    // testkube reports 1.33: the proxy is a native sidecar, after sparrow-init.
    assert_eq!(container_names(pod), ["web", "worker", "metrics"]);
    let spec = pod.spec.as_ref().expect("spec");
    let inits: Vec<_> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(inits, [INIT_CONTAINER, PROXY_CONTAINER]);
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

async fn kubectl(mesh: &Mesh, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, mesh.cluster.kubeconfig()).expect("kubeconfig");
    tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .env("HOME", dir.path())
            .args(args)
            .output(),
    )
    .await
    .expect("kubectl finishes")
    .expect("kubectl not found: apt-get install -y kubernetes-client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_exists_before_the_pod_is_admitted_and_then_costs_nothing() {
    let mesh = start_mesh_with_source(true).await;
    let client = mesh.cluster.client();
    let shop: Api<Pod> = Api::namespaced(client.clone(), "shop");
    shop.create(&PostParams::default(), &pod("first", &[]))
        .await
        .expect("pod");
    // The create has returned: the copy must already be there.
    let copy = mesh
        .cluster
        .object("secrets", "shop", PULL_SECRET_NAME)
        .expect("copy made before the answer");
    let source = mesh
        .cluster
        .object("secrets", "sparrow-mesh", PULL_SECRET_NAME)
        .expect("source");
    assert_eq!(copy["data"], source["data"]);

    // A server-side dry run makes no copy.
    let dry = kubectl(
        &mesh,
        &[
            "-n",
            "legacy",
            "run",
            "dry",
            "--image=nginx",
            "--dry-run=server",
            "--labels=injector.sparrow-mesh.io/auto-inject=enabled",
        ],
    )
    .await;
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(
        mesh.cluster
            .object("secrets", "legacy", PULL_SECRET_NAME)
            .is_none(),
        "dry run made a copy"
    );

    // The next pod in that namespace: no API call for the copy.
    mesh.cluster.reset_requests();
    shop.create(&PostParams::default(), &pod("second", &[]))
        .await
        .expect("pod");
    let secret_calls: u64 = mesh
        .cluster
        .requests()
        .iter()
        .filter(|((_, resource), _)| resource == "secrets")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(secret_calls, 0, "{:?}", mesh.cluster.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_we_do_not_own_gets_a_warning_and_an_event_and_stays_as_it_is() {
    let mesh = start_mesh_with_source(true).await;
    let theirs = Secret {
        metadata: ObjectMeta {
            name: Some(PULL_SECRET_NAME.to_owned()),
            ..ObjectMeta::default()
        },
        string_data: Some(BTreeMap::from([("token".to_owned(), "theirs".to_owned())])),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(mesh.cluster.client(), "theirs")
        .create(&PostParams::default(), &theirs)
        .await
        .expect("theirs");
    let before = mesh
        .cluster
        .object("secrets", "theirs", PULL_SECRET_NAME)
        .expect("theirs");

    let output = kubectl(&mesh, &["-n", "theirs", "run", "web", "--image=nginx"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .contains("Warning: sparrow-mesh: Secret theirs/sparrow-registry-key is not Sparrow's"),
        "{stderr}"
    );
    assert_eq!(
        mesh.cluster
            .object("secrets", "theirs", PULL_SECRET_NAME)
            .expect("theirs"),
        before,
        "untouched"
    );

    // The Event is recorded off the admission path: wait for it.
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(mesh.cluster.client(), "theirs");
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let list = events.list(&Default::default()).await.expect("events");
            if let Some(event) = list
                .items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("ForeignPullSecret"))
            {
                return event;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("an Event about the foreign Secret");
    assert_eq!(
        found.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some(PULL_SECRET_NAME)
    );
    assert!(found.note.unwrap_or_default().contains("pod web"));
}

/// The bounded Event recorder, its worker writing to `client` as `instance`.
fn recorder_for(client: kube::Client, instance: &str) -> sparrow_controller::EventRecorder {
    let events =
        sparrow_controller::EventRecorder::new(sparrow_controller::EventMetrics::default());
    let sink = sparrow_controller::KubeEventSink::new(client, "sparrow-controller", instance);
    let worker = events.clone();
    tokio::spawn(async move { worker.run(sink).await });
    events
}

/// Waits for an Event with `reason` in `namespace` and returns it.
async fn event_with_reason(
    mesh: &Mesh,
    namespace: &str,
    reason: &str,
) -> k8s_openapi::api::events::v1::Event {
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(mesh.cluster.client(), namespace);
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let list = events.list(&Default::default()).await.expect("events");
            if let Some(event) = list
                .items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some(reason))
            {
                return event;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("an Event {reason} in {namespace}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_entering_the_window_and_expiring_gets_a_warning_event_each_and_the_gauge_follows()
 {
    let mesh = start_mesh_with_source(true).await;
    let secrets: Api<Secret> = Api::namespaced(mesh.cluster.client(), "sparrow-mesh");
    let annotate = |at: i64| {
        let annotations = sparrow_core::CredentialExpiry {
            at,
            source: sparrow_core::ExpirySource::Flag,
        }
        .annotations();
        json!({ "metadata": { "annotations": annotations } })
    };
    assert_eq!(
        mesh.copy_metrics.credential_expiry.get(),
        0,
        "no expiry recorded yet"
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    secrets
        .patch(
            PULL_SECRET_NAME,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(annotate(now + 86_400)),
        )
        .await
        .expect("expiry within the window");
    let expiring = event_with_reason(&mesh, "sparrow-mesh", "CredentialExpiring").await;
    assert_eq!(mesh.copy_metrics.credential_expiry.get(), now + 86_400);
    assert_eq!(expiring.type_.as_deref(), Some("Warning"));
    assert_eq!(
        expiring.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some(PULL_SECRET_NAME)
    );
    let note = expiring.note.unwrap_or_default();
    assert!(
        note.contains(&format!(
            "expires {}: give a new one with sparrowctl registry update",
            sparrow_core::expiry::rfc3339(now + 86_400)
        )),
        "{note}"
    );

    secrets
        .patch(
            PULL_SECRET_NAME,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(annotate(now - 60)),
        )
        .await
        .expect("expired");
    let expired = event_with_reason(&mesh, "sparrow-mesh", "CredentialExpired").await;
    let note = expired.note.unwrap_or_default();
    assert!(
        note.contains("new meshed pods and the next controller pod cannot pull the mesh images; give a new one with sparrowctl registry update"),
        "{note}"
    );
    // Neither note carries the credential ("pw", user "robot" and their base64).
    assert!(
        !note.contains("cm9ib3Q6cHc") && !note.contains("robot"),
        "{note}"
    );
}
