//! 2,000 forged reviews (pods that will never exist) for a namespace holding a Secret
//! `sparrow-registry-key` that is not ours, against a testkube API server: they cost one Event
//! write, and an API server answering 429 slows the recorder instead of multiplying its writes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use prometheus_client::registry::Registry;
use serde_json::json;
use sparrow_controller::{
    AdmissionMetrics, EventMetrics, EventRecorder, KubeCopies, KubeEventSink, NamespaceCache,
    NamespaceLabels, PullSecretCopies, Webhook, pull_secret_copier, without_retries,
};
use sparrow_core::names::{CONTROLLER_NAME, PULL_SECRET_NAME};
use sparrow_core::{MeshConfig, manifests};
use sparrow_inject::{InjectConfig, Injector};
use sparrow_kube::runtime::metrics::CopyMetrics;
use testkube::TestCluster;
use tokio::time::Instant;

const REVIEW: &str = include_str!("../../../testdata/reviews/review-replicaset-pod.json");

/// The forged-review mesh: a testkube API server with the pull secret deployed and namespace
/// `theirs` holding a Secret of that name that is not ours.
struct Forged {
    cluster: TestCluster,
    webhook: Webhook,
    events: EventRecorder,
}

async fn forged_mesh(foreign_namespaces: &[&str]) -> Forged {
    let cluster = TestCluster::start().await.expect("testkube");
    let mesh = MeshConfig::default();
    let client = cluster.client();
    let mut names = vec![mesh.namespace.as_str()];
    names.extend_from_slice(foreign_namespaces);
    for name in &names {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some((*name).to_owned()),
                labels: Some(BTreeMap::from([(
                    "kubernetes.io/metadata.name".to_owned(),
                    (*name).to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace");
    }
    let server = sparrow_core::RegistryServer::parse("127.0.0.1:5000/team/mesh").expect("server");
    let auth = sparrow_core::RegistryAuth::user_password("robot", "pw").expect("auth");
    let source = manifests::pull_secret(
        &mesh.namespace,
        sparrow_core::dockerconfigjson(&server, &auth),
    );
    Api::<Secret>::namespaced(client.clone(), &mesh.namespace)
        .create(&PostParams::default(), &source)
        .await
        .expect("source");
    for ns in foreign_namespaces {
        let theirs: Secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": PULL_SECRET_NAME, "namespace": ns },
            "stringData": { "token": "theirs" }
        }))
        .expect("secret");
        Api::<Secret>::namespaced(client.clone(), ns)
            .create(&PostParams::default(), &theirs)
            .await
            .expect("their secret");
    }
    let (namespaces, watch) = NamespaceCache::spawn(client.clone());
    tokio::spawn(watch);
    let mut registry = Registry::default();
    let copier = pull_secret_copier(
        client.clone(),
        &InjectConfig::from_mesh(&mesh),
        sparrow_kube::runtime::copies::SourceSecret::Own,
        Arc::new(namespaces.clone()),
        CopyMetrics::register(&mut registry),
    )
    .await
    .expect("copier");
    let watches = copier.clone();
    tokio::spawn(async move { watches.run_watches().await });
    tokio::time::timeout(Duration::from_secs(30), copier.synced())
        .await
        .expect("copier synced");
    tokio::time::timeout(Duration::from_secs(30), async {
        while foreign_namespaces
            .iter()
            .any(|ns| namespaces.labels(ns).is_none() || copier.cached_outcome(ns).is_none())
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the caches know the namespaces and their Secrets");

    // The recorder as the controller runs it: its own client, without kube's retries.
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(&cluster.kubeconfig()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    let sink = KubeEventSink::new(
        without_retries(config).expect("client"),
        CONTROLLER_NAME,
        "test",
    );
    let events = EventRecorder::new(EventMetrics::register(&mut registry));
    let worker = events.clone();
    tokio::spawn(async move { worker.run(sink).await });
    let copies: Arc<dyn PullSecretCopies> = Arc::new(KubeCopies::new(copier, events.clone()));
    let webhook = Webhook::new(
        Injector::new(InjectConfig::from_mesh(&mesh)).expect("injector"),
        Arc::new(namespaces),
        Some(copies),
        AdmissionMetrics::register(&mut registry),
    );
    Forged {
        cluster,
        webhook,
        events,
    }
}

fn forged_review(namespace: &str, n: usize) -> Vec<u8> {
    let mut review: serde_json::Value = serde_json::from_str(REVIEW).expect("review");
    review["request"]["uid"] = format!("forged-{n}").into();
    review["request"]["namespace"] = namespace.into();
    review["request"]["object"]["metadata"]["namespace"] = namespace.into();
    review["request"]["object"]["metadata"]["name"] = format!("forged-{n}").into();
    review.to_string().into_bytes()
}

fn event_writes(cluster: &TestCluster) -> u64 {
    ["create", "patch", "update"]
        .iter()
        .map(|verb| cluster.request_count(verb, "events"))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_forged_reviews_cost_one_event_write() {
    let forged = forged_mesh(&["theirs"]).await;
    forged.cluster.reset_requests();
    for n in 0..2000 {
        let outcome = forged
            .webhook
            .review(&forged_review("theirs", n))
            .await
            .expect("answered");
        assert_eq!(outcome.result, "injected");
        let body: serde_json::Value = serde_json::from_slice(&outcome.body).expect("JSON");
        assert!(
            body["response"]["warnings"]
                .to_string()
                .contains("is not Sparrow's"),
            "{body}"
        );
    }
    tokio::time::timeout(Duration::from_secs(10), async {
        while forged.events.metrics().writes() < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the Event is written");
    // The rest are aggregated for a minute: nothing else is written meanwhile.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        event_writes(&forged.cluster),
        1,
        "{:?}",
        forged.cluster.requests()
    );
    assert_eq!(forged.cluster.request_count("create", "secrets"), 0);
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(forged.cluster.client(), "theirs");
    let list = events.list(&Default::default()).await.expect("events");
    assert_eq!(list.items.len(), 1);
    let event = &list.items[0];
    assert_eq!(event.reason.as_deref(), Some("ForeignPullSecret"));
    assert_eq!(event.reporting_controller.as_deref(), Some(CONTROLLER_NAME));
    assert!(
        event
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("pod forged-0")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_answering_429_slows_the_recorder_down() {
    let namespaces: Vec<String> = (0..10).map(|n| format!("theirs-{n}")).collect();
    let names: Vec<&str> = namespaces.iter().map(String::as_str).collect();
    let forged = forged_mesh(&names).await;
    forged.cluster.fail_next("create", "events", 1000, 429);
    forged.cluster.reset_requests();
    let started = Instant::now();
    // Few enough to be reviewed in a fraction of the window, even in a debug build.
    for (n, ns) in names.iter().cycle().take(100).enumerate() {
        forged
            .webhook
            .review(&forged_review(ns, n))
            .await
            .expect("answered");
    }
    // Ten Events are owed; every write is refused. Paused 1 s after the first refusal and 2 s
    // after the second, the recorder makes at most two writes in its first 2.5 s (five a
    // second when the API server accepts), and never retries one.
    let window = Duration::from_millis(2500);
    tokio::time::sleep_until(started + window).await;
    let writes = event_writes(&forged.cluster);
    assert!(
        (1..=2).contains(&writes),
        "{writes} Event writes in {window:?} ({} sent by the recorder): {:?}",
        forged.events.metrics().writes(),
        forged.cluster.requests()
    );
    assert_eq!(forged.events.metrics().dropped("queue-full"), 0);
    assert!(forged.events.metrics().dropped("write-failed") >= writes);
}
