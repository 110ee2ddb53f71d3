//! Pull-secret copies against testkube: single flight, zero API calls when current, rotation
//! with one write per copy, restoring deleted copies, never touching a foreign Secret, and
//! convergence through 500s, cut watches and an API server restart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use sparrow_core::manifests::source_pull_secret;
use sparrow_core::{RegistryAuth, RegistryServer, dockerconfigjson};
use sparrow_kube::runtime::copies::{EnsureOutcome, PullSecretCopier};
use testkube::TestCluster;

mod support;

use support::{MESH, watching_copier};

fn source_secret(password: &str) -> Secret {
    let server = RegistryServer::parse("127.0.0.1:5000/team/mesh").expect("server");
    let auth = RegistryAuth::user_password("robot", password).expect("auth");
    source_pull_secret(MESH, dockerconfigjson(&server, &auth))
}

async fn create_namespace(client: &kube::Client, name: &str) {
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
}

struct Setup {
    cluster: TestCluster,
    copier: PullSecretCopier,
    leading: tokio::sync::watch::Sender<bool>,
}

async fn setup() -> Setup {
    let cluster = TestCluster::start().await.expect("testkube");
    let client = cluster.client();
    create_namespace(&client, MESH).await;
    Api::<Secret>::namespaced(client.clone(), MESH)
        .create(&PostParams::default(), &source_secret("pw1"))
        .await
        .expect("source");
    let copier = watching_copier(client, Duration::from_secs(2)).await;
    let (leading, _) = tokio::sync::watch::channel(false);
    Setup {
        cluster,
        copier,
        leading,
    }
}

impl Setup {
    fn start_sync(&self) {
        self.leading.send_replace(true);
        let copier = self.copier.clone();
        let leading = self.leading.subscribe();
        tokio::spawn(async move { copier.run_sync(leading).await });
    }

    fn copy(&self, ns: &str) -> Option<serde_json::Value> {
        self.cluster.object("secrets", ns, "sparrow-registry-key")
    }

    fn source_data(&self) -> serde_json::Value {
        self.copy(MESH).expect("source")["data"].clone()
    }
}

/// Waits for `condition`, polling the store; fails after `limit`.
async fn eventually(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_admissions_create_each_copy_exactly_once() {
    let s = setup().await;
    let namespaces: Vec<String> = (0..20).map(|i| format!("team-{i}")).collect();
    for ns in &namespaces {
        create_namespace(&s.cluster.client(), ns).await;
    }
    s.cluster.reset_requests();
    let copier = Arc::new(s.copier.clone());
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let copier = copier.clone();
            let ns = namespaces[i % 20].clone();
            tokio::spawn(async move { copier.ensure_copy(&ns).await })
        })
        .collect();
    for task in tasks {
        let outcome = task.await.expect("join").expect("no error");
        assert!(
            matches!(outcome, EnsureOutcome::Created | EnsureOutcome::Current),
            "{outcome:?}"
        );
    }
    assert_eq!(
        s.cluster.request_count("create", "secrets"),
        20,
        "{:?}",
        s.cluster.requests()
    );
    assert_eq!(
        s.cluster.request_count("patch", "secrets"),
        20,
        "each copy proven once: {:?}",
        s.cluster.requests()
    );
    assert_eq!(
        s.cluster.total_requests(),
        40,
        "no other call: {:?}",
        s.cluster.requests()
    );
    let source = s.source_data();
    for ns in &namespaces {
        let copy = s.copy(ns).expect("copy");
        assert_eq!(copy["data"], source);
        assert_eq!(copy["type"], "kubernetes.io/dockerconfigjson");
        assert_eq!(copy["metadata"]["labels"]["usage"], "sparrow-registry-key");
        assert_eq!(
            copy["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "sparrowctl"
        );
        assert_eq!(
            copy["metadata"]["annotations"]["sparrow-mesh.io/source"],
            "sparrow-mesh/sparrow-registry-key"
        );
        assert_eq!(
            copy["metadata"]["annotations"]["sparrow-mesh.io/source-hash"]
                .as_str()
                .map(str::len),
            Some(64)
        );
        assert_eq!(
            copy["metadata"]["annotations"]["sparrow-mesh.io/proof"]
                .as_str()
                .map(str::len),
            Some(64),
            "every copy carries its proof"
        );
    }
    assert_eq!(s.copier.metrics().copies_created.get(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_current_copy_costs_no_api_call() {
    let s = setup().await;
    create_namespace(&s.cluster.client(), "shop").await;
    assert_eq!(
        s.copier.ensure_copy("shop").await.expect("ok"),
        EnsureOutcome::Created
    );
    s.cluster.reset_requests();
    for _ in 0..50 {
        assert_eq!(
            s.copier.ensure_copy("shop").await.expect("ok"),
            EnsureOutcome::Current
        );
    }
    assert_eq!(
        s.copier.ensure_copy(MESH).await.expect("ok"),
        EnsureOutcome::SourceNamespace
    );
    assert_eq!(s.cluster.total_requests(), 0, "{:?}", s.cluster.requests());
    assert_eq!(
        s.copier.metrics().admission_api_calls.get(),
        2,
        "only the create and its proof"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_updates_every_copy_with_one_write_each() {
    let s = setup().await;
    let client = s.cluster.client();
    for i in 0..50 {
        let ns = format!("app-{i}");
        create_namespace(&client, &ns).await;
        s.copier.ensure_copy(&ns).await.expect("copy");
    }
    s.start_sync();
    s.cluster.reset_requests();
    let rotated = source_secret("pw2");
    Api::<Secret>::namespaced(client.clone(), MESH)
        .patch(
            "sparrow-registry-key",
            &PatchParams::apply("sparrowctl").force(),
            &Patch::Apply(&rotated),
        )
        .await
        .expect("rotate");
    let source = s.source_data();
    eventually("every copy rotated", Duration::from_secs(20), || {
        (0..50).all(|i| {
            s.copy(&format!("app-{i}"))
                .is_some_and(|c| c["data"] == source)
        })
    })
    .await;
    // The store changes before the client sees the answer: wait for the counter too.
    eventually("every update counted", Duration::from_secs(5), || {
        s.copier.metrics().copies_updated.get() == 50
    })
    .await;
    assert_eq!(
        s.cluster.request_count("patch", "secrets"),
        51,
        "one write per copy plus the rotation: {:?}",
        s.cluster.requests()
    );
    assert_eq!(s.cluster.request_count("create", "secrets"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_copy_comes_back_where_pods_carry_the_sidecar() {
    let s = setup().await;
    let client = s.cluster.client();
    create_namespace(&client, "shop").await;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop", "annotations": {"injector.sparrow-mesh.io/status": "injected"}},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]}
    }))
    .expect("pod");
    Api::<Pod>::namespaced(client.clone(), "shop")
        .create(&PostParams::default(), &pod)
        .await
        .expect("pod");
    s.copier.ensure_copy("shop").await.expect("copy");
    s.start_sync();
    Api::<Secret>::namespaced(client.clone(), "shop")
        .delete("sparrow-registry-key", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the copy restored", Duration::from_secs(10), || {
        s.copy("shop").is_some()
    })
    .await;
    assert_eq!(s.copy("shop").expect("copy")["data"], s.source_data());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_we_do_not_own_is_never_touched() {
    let s = setup().await;
    let client = s.cluster.client();
    create_namespace(&client, "shop").await;
    let theirs = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("sparrow-registry-key".into()),
            labels: Some(BTreeMap::from([("team".into(), "shop".into())])),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([("token".into(), "theirs".into())])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), "shop")
        .create(&PostParams::default(), &theirs)
        .await
        .expect("theirs");
    let before = s.copy("shop").expect("theirs");
    assert_eq!(
        s.copier.ensure_copy("shop").await.expect("ok"),
        EnsureOutcome::Foreign
    );
    s.start_sync();
    let before_rotation = s.copier.source_hash();
    let rotated = source_secret("pw2");
    Api::<Secret>::namespaced(client.clone(), MESH)
        .patch(
            "sparrow-registry-key",
            &PatchParams::apply("sparrowctl").force(),
            &Patch::Apply(&rotated),
        )
        .await
        .expect("rotate");
    eventually(
        "the copier saw the rotation",
        Duration::from_secs(10),
        || s.copier.source_hash() != before_rotation,
    )
    .await;
    assert_eq!(
        s.copier.ensure_copy("shop").await.expect("ok"),
        EnsureOutcome::Foreign
    );
    let report = s.copier.sync_all().await;
    assert_eq!((report.written, report.failed), (0, 0));
    assert_eq!(
        s.copy("shop").expect("theirs"),
        before,
        "unchanged, same resourceVersion"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_through_errors_cut_watches_and_a_restart() {
    let s = setup().await;
    let client = s.cluster.client();
    for ns in ["a", "b", "c"] {
        create_namespace(&client, ns).await;
    }
    // A 500 on the admission path is an error the webhook turns into a warning; the next try works.
    s.cluster.fail_next("create", "secrets", 1, 500);
    let error = s.copier.ensure_copy("a").await.expect_err("500");
    assert!(
        error
            .to_string()
            .contains("creating Secret a/sparrow-registry-key"),
        "{error}"
    );
    assert_eq!(
        s.copier.ensure_copy("a").await.expect("ok"),
        EnsureOutcome::Created
    );
    s.copier.ensure_copy("b").await.expect("ok");

    // Sync retries through 500s (the rotation is a PUT, so only copy writes fail).
    s.start_sync();
    s.cluster.fail_next("patch", "secrets", 2, 500);
    let sources = Api::<Secret>::namespaced(client.clone(), MESH);
    let mut current = sources.get("sparrow-registry-key").await.expect("source");
    current.data = source_secret("pw2").data;
    sources
        .replace("sparrow-registry-key", &PostParams::default(), &current)
        .await
        .expect("rotate");
    let source = s.source_data();
    eventually("rotation despite 500s", Duration::from_secs(20), || {
        ["a", "b"]
            .iter()
            .all(|ns| s.copy(ns).is_some_and(|c| c["data"] == source))
    })
    .await;

    // Cut watches: the watcher re-watches and still sees changes.
    s.cluster.cut_watches();
    Api::<Secret>::namespaced(client.clone(), MESH)
        .patch(
            "sparrow-registry-key",
            &PatchParams::apply("sparrowctl").force(),
            &Patch::Apply(&source_secret("pw3")),
        )
        .await
        .expect("rotate");
    let source = s.source_data();
    eventually(
        "rotation after cut watches",
        Duration::from_secs(20),
        || {
            ["a", "b"]
                .iter()
                .all(|ns| s.copy(ns).is_some_and(|c| c["data"] == source))
        },
    )
    .await;

    // Restart the API server: watches relist and rotation still reaches every copy.
    s.cluster.restart().await.expect("restart");
    // The test's own pooled connection died with the server: its first request may fail.
    let sources = Api::<Secret>::namespaced(client.clone(), MESH);
    let mut attempts = 0;
    while let Err(error) = sources
        .patch(
            "sparrow-registry-key",
            &PatchParams::apply("sparrowctl").force(),
            &Patch::Apply(&source_secret("pw4")),
        )
        .await
    {
        attempts += 1;
        assert!(attempts < 3, "rotate after restart: {error}");
    }
    let source = s.source_data();
    eventually("rotation after restart", Duration::from_secs(30), || {
        ["a", "b"]
            .iter()
            .all(|ns| s.copy(ns).is_some_and(|c| c["data"] == source))
    })
    .await;
    assert_eq!(
        s.copier.ensure_copy("c").await.expect("ok"),
        EnsureOutcome::Created
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_leaves_no_copy_even_while_a_controller_still_syncs() {
    let s = setup().await;
    let client = s.cluster.client();
    for ns in ["shop", "cart"] {
        create_namespace(&client, ns).await;
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": ns, "annotations": {"injector.sparrow-mesh.io/status": "injected"}},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]}
        }))
        .expect("pod");
        Api::<Pod>::namespaced(client.clone(), ns)
            .create(&PostParams::default(), &pod)
            .await
            .expect("pod");
        s.copier.ensure_copy(ns).await.expect("copy");
    }
    s.start_sync();
    let report = sparrow_kube::remove::remove(
        &client,
        MESH,
        sparrow_kube::remove::Unmarked::Leave,
        Duration::from_secs(5),
        |_| {},
    )
    .await
    .expect("remove");
    assert_eq!(report.secrets_deleted.len(), 3, "{report:?}");
    assert_eq!(report.injected_namespaces, ["cart", "shop"]);
    // The running copier sees the source go and restores nothing.
    eventually(
        "the copier saw the source deleted",
        Duration::from_secs(10),
        || !s.copier.has_source(),
    )
    .await;
    let left: Vec<_> = s
        .cluster
        .objects("secrets", None)
        .into_iter()
        .filter(|o| o["metadata"]["labels"]["usage"] == "sparrow-registry-key")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
