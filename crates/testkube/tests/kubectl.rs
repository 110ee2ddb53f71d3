//! Fidelity checks with the real kubectl binary.

mod common;

use common::Kubectl;
use serde_json::Value;
use testkube::TestCluster;

const SECRET_AND_DEPLOYMENT: &str = r#"apiVersion: v1
kind: Secret
metadata:
  name: sparrow-registry-key
  namespace: shop
  labels:
    usage: sparrow-registry-key
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths":{"registry.example.com":{"auth":"dTpw"}}}'
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: REPLICAS
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1
"#;

fn manifest(replicas: u32) -> String {
    SECRET_AND_DEPLOYMENT.replace("REPLICAS", &replicas.to_string())
}

fn replicas(cluster: &TestCluster) -> Option<i64> {
    cluster
        .object("deployments", "shop", "web")
        .and_then(|d| d.pointer("/spec/replicas").and_then(Value::as_i64))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_apply_creates_then_patches() {
    let cluster = TestCluster::start().await.expect("start");
    let kubectl = Kubectl::new(&cluster);
    kubectl.ok(&["create", "namespace", "shop"]).await;
    let out = kubectl.ok_stdin(&["apply", "-f", "-"], &manifest(1)).await;
    assert!(out.contains("secret/sparrow-registry-key created"), "{out}");
    assert!(out.contains("deployment.apps/web created"), "{out}");
    assert_eq!(replicas(&cluster), Some(1));
    let secret = cluster
        .object("secrets", "shop", "sparrow-registry-key")
        .expect("secret");
    assert!(
        secret.get("stringData").is_none(),
        "stringData folded into data"
    );
    assert!(secret["data"][".dockerconfigjson"].is_string());
    let out = kubectl.ok_stdin(&["apply", "-f", "-"], &manifest(3)).await;
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    assert_eq!(replicas(&cluster), Some(3));
    assert!(cluster.request_count("patch", "deployments") >= 1);
    let deploy = cluster
        .object("deployments", "shop", "web")
        .expect("deployment");
    assert!(
        deploy["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_dockerconfigjson_is_refused() {
    let cluster = TestCluster::start().await.expect("start");
    let kubectl = Kubectl::new(&cluster);
    kubectl.ok(&["create", "namespace", "shop"]).await;
    let bad = "apiVersion: v1\nkind: Secret\nmetadata: {name: bad, namespace: shop}\ntype: kubernetes.io/dockerconfigjson\nstringData: {.dockerconfigjson: 'not json'}\n";
    let out = kubectl
        .run_with_stdin(&["apply", "-f", "-"], Some(bad))
        .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("The Secret \"bad\" is invalid: data[.dockerconfigjson]"),
        "{stderr}"
    );
    let missing = "apiVersion: v1\nkind: Secret\nmetadata: {name: bad, namespace: shop}\ntype: kubernetes.io/dockerconfigjson\n";
    let out = kubectl
        .run_with_stdin(&["create", "-f", "-"], Some(missing))
        .await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("Required value"));
    assert!(cluster.object("secrets", "shop", "bad").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_family_sends_protobuf_bodies_we_decode() {
    let cluster = TestCluster::start().await.expect("start");
    let kubectl = Kubectl::new(&cluster);
    kubectl.ok(&["create", "namespace", "shop"]).await;
    kubectl
        .ok(&[
            "create",
            "configmap",
            "cfg",
            "-n",
            "shop",
            "--from-literal=a=b",
        ])
        .await;
    kubectl
        .ok(&[
            "create",
            "secret",
            "generic",
            "token",
            "-n",
            "shop",
            "--from-literal=t=x",
        ])
        .await;
    assert!(cluster.object("namespaces", "", "shop").is_some());
    assert_eq!(
        cluster.object("configmaps", "shop", "cfg").expect("cm")["data"]["a"],
        "b"
    );
    assert_eq!(
        cluster.object("secrets", "shop", "token").expect("secret")["data"]["t"],
        "eA=="
    );
    assert_eq!(cluster.request_count("create", "secrets"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_and_label_go_through_put_and_merge_patch() {
    let cluster = TestCluster::start().await.expect("start");
    let kubectl = Kubectl::new(&cluster);
    kubectl.ok(&["create", "namespace", "shop"]).await;
    kubectl
        .ok(&[
            "create",
            "configmap",
            "cfg",
            "-n",
            "shop",
            "--from-literal=a=b",
        ])
        .await;
    let yaml = kubectl
        .ok(&["get", "configmap", "cfg", "-n", "shop", "-o", "yaml"])
        .await;
    let replaced = yaml.replace("a: b", "a: c");
    kubectl.ok_stdin(&["replace", "-f", "-"], &replaced).await;
    assert_eq!(
        cluster.object("configmaps", "shop", "cfg").expect("cm")["data"]["a"],
        "c"
    );
    let stale = kubectl
        .run_with_stdin(&["replace", "-f", "-"], Some(&replaced))
        .await;
    assert!(String::from_utf8_lossy(&stale.stderr).contains("the object has been modified"));
    kubectl
        .ok(&["label", "configmap", "cfg", "-n", "shop", "tier=web"])
        .await;
    assert_eq!(
        cluster.object("configmaps", "shop", "cfg").expect("cm")["metadata"]["labels"]["tier"],
        "web"
    );
    assert_eq!(cluster.request_count("update", "configmaps"), 2);
}
