//! What only a real control plane does: the controller manager's namespace deletion and garbage
//! collection, the Deployment -> ReplicaSet -> Pod chain, the scheduler and the kubelet running pods.

use std::time::Duration;

use serde_json::{Value, json};
use sparrow_testnode::{Node, TestNamespace, wait_until};

const LIMIT: Duration = Duration::from_secs(300);

/// A Deployment of the node's sandbox image: present on the node, so no registry is involved.
fn pause_deployment(name: &str, replicas: u32) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{
                    "name": "pause",
                    "image": "sparrow-mesh.local/pause:1",
                    "imagePullPolicy": "Never"
                }] }
            }
        }
    })
}

fn owned_by<'a>(items: &'a Value, kind: &str, uid: &str) -> Vec<&'a Value> {
    items["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["kind"] == kind && r["uid"] == uid)
        })
        .collect()
}

#[test]
fn a_deployment_makes_a_replicaset_and_running_pods_that_are_collected_when_it_is_deleted() {
    let node = Node::require();
    let ns = TestNamespace::create(node, "gc");
    let mut deployment = pause_deployment("sleeper", 2);
    deployment["metadata"]["namespace"] = ns.name.clone().into();
    node.apply(&deployment);
    ns.kubectl(&[
        "wait",
        "--for=condition=Available",
        "deployment/sleeper",
        "--timeout=300s",
    ]);

    let uid = ns.get_json(&["deployment", "sleeper"])["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let sets = ns.get_json(&["replicasets"]);
    let owned = owned_by(&sets, "Deployment", &uid);
    assert_eq!(
        owned.len(),
        1,
        "one ReplicaSet owned by the Deployment: {sets}"
    );
    let set_uid = owned[0]["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let pods = ns.get_json(&["pods"]);
    let running: Vec<_> = owned_by(&pods, "ReplicaSet", &set_uid)
        .into_iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .collect();
    assert_eq!(
        running.len(),
        2,
        "two running pods owned by the ReplicaSet: {pods}"
    );
    assert!(
        running
            .iter()
            .all(|p| p["spec"]["nodeName"] == "sparrow-node"),
        "scheduled onto the node"
    );

    ns.kubectl(&["delete", "deployment", "sleeper", "--cascade=background"]);
    wait_until(
        "the ReplicaSet and its pods to be garbage-collected",
        LIMIT,
        || {
            let sets = ns.get_json(&["replicasets"]);
            let pods = ns.get_json(&["pods"]);
            (owned_by(&sets, "Deployment", &uid).is_empty()
                && owned_by(&pods, "ReplicaSet", &set_uid).is_empty())
            .then_some(())
        },
    );
}

#[test]
fn deleting_a_namespace_with_objects_in_it_completes() {
    let node = Node::require();
    let ns = TestNamespace::create(node, "nsdel");
    ns.kubectl(&["create", "configmap", "settings", "--from-literal=a=b"]);
    ns.kubectl(&["create", "secret", "generic", "token", "--from-literal=t=x"]);
    ns.kubectl(&["create", "serviceaccount", "worker"]);
    let mut deployment = pause_deployment("busy", 1);
    deployment["metadata"]["namespace"] = ns.name.clone().into();
    node.apply(&deployment);
    ns.kubectl(&[
        "wait",
        "--for=condition=Available",
        "deployment/busy",
        "--timeout=300s",
    ]);

    node.kubectl(&["delete", "namespace", &ns.name, "--wait=false"]);
    node.kubectl(&[
        "wait",
        "--for=delete",
        &format!("namespace/{}", ns.name),
        "--timeout=300s",
    ]);
    let out = node
        .kubectl_output(&["get", "namespace", &ns.name], None)
        .expect("kubectl runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("namespaces \"{}\" not found", ns.name)),
        "{stderr}"
    );
}
