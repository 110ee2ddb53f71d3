//! The copies on the real node: 100 pods created at once in 20 new meshed namespaces give exactly
//! 20 copies; `registry update` reaches every copy; a deleted copy comes back with the next pod;
//! a Secret of the same name that Sparrow does not own is never touched; remove deletes every
//! copy and leaves that Secret. The pods are admitted (the webhook's work) but pinned to no node,
//! so the test costs the API server, not the kubelet.

mod real_node;

use std::collections::BTreeSet;

use real_node::{LIMIT, Mesh, secret_user};
use serde_json::{Value, json};
use sparrow_testnode::{Node, TestNamespace, wait_until};

const NAMESPACES: usize = 20;
const PODS_PER_NAMESPACE: usize = 5;

fn pods(ns: &str, first: usize, count: usize) -> String {
    let items: Vec<Value> = (first..first + count)
        .map(|i| {
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": { "name": format!("app-{i}"), "namespace": ns },
                "spec": {
                    "nodeSelector": { "sparrow-mesh.io/test": "no-such-node" },
                    "containers": [{ "name": "app", "image": "registry.invalid/app:1" }]
                }
            })
        })
        .collect();
    json!({ "apiVersion": "v1", "kind": "List", "items": items }).to_string()
}

fn meshed_namespace(node: &'static Node) -> TestNamespace {
    let ns = TestNamespace::create(node, "copies");
    ns.kubectl(&[
        "label",
        "namespace",
        &ns.name,
        "injector.sparrow-mesh.io/auto-inject=enabled",
    ]);
    ns
}

/// `namespace -> user` of every Secret labelled usage=sparrow-registry-key outside the mesh.
fn copies(node: &Node) -> Vec<(String, Option<String>)> {
    let list = node.get_json(&["secrets", "-A", "-l", "usage=sparrow-registry-key"]);
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["metadata"]["namespace"] != "sparrow-mesh")
        .map(|s| {
            let ns = s["metadata"]["namespace"].as_str().unwrap_or_default();
            (ns.to_owned(), secret_user(s))
        })
        .collect()
}

#[test]
fn copies_follow_pods_rotation_and_removal_and_never_touch_a_foreign_secret() {
    let node = Node::require();
    let mesh = Mesh::deploy(node, "copies", &[]);
    let namespaces: Vec<TestNamespace> = (0..NAMESPACES).map(|_| meshed_namespace(node)).collect();
    let names: BTreeSet<String> = namespaces.iter().map(|ns| ns.name.clone()).collect();

    // A Secret named like the copy, made by someone else, in a meshed namespace of its own.
    let foreign_ns = meshed_namespace(node);
    foreign_ns.kubectl(&[
        "create",
        "secret",
        "generic",
        "sparrow-registry-key",
        "--from-literal=owner=someone-else",
    ]);
    let foreign_before = foreign_ns.get_json(&["secret", "sparrow-registry-key"]);

    std::thread::scope(|scope| {
        for ns in &namespaces {
            scope.spawn(|| {
                node.kubectl_stdin(
                    &["create", "-f", "-"],
                    Some(&pods(&ns.name, 0, PODS_PER_NAMESPACE)),
                )
            });
        }
        scope.spawn(|| {
            node.kubectl_stdin(&["create", "-f", "-"], Some(&pods(&foreign_ns.name, 0, 1)))
        });
    });
    for ns in &namespaces {
        let pods = ns.get_json(&["pods"]);
        let items = pods["items"].as_array().expect("pods");
        assert_eq!(items.len(), PODS_PER_NAMESPACE, "pods in {}", ns.name);
        for pod in items {
            let secrets = pod["spec"]["imagePullSecrets"].to_string();
            assert!(
                secrets.contains("sparrow-registry-key"),
                "{}: {secrets}",
                ns.name
            );
        }
    }
    // A copy that took longer than the admission waits for is finished in the background.
    let made = wait_until("a copy in each meshed namespace", LIMIT, || {
        let made = copies(node);
        let made_in: BTreeSet<String> = made.iter().map(|(ns, _)| ns.clone()).collect();
        names.is_subset(&made_in).then_some(made)
    });
    let made_in: BTreeSet<String> = made.iter().map(|(ns, _)| ns.clone()).collect();
    assert_eq!(
        made_in, names,
        "one copy in each meshed namespace, none elsewhere"
    );
    assert_eq!(
        made.len(),
        NAMESPACES,
        "exactly one copy per namespace: {made:?}"
    );

    // Rotation reaches every copy.
    let rotated = mesh.rotate("robot-copies-2");
    wait_until("every copy to carry the rotated user", LIMIT, || {
        let now = copies(node);
        (now.len() == NAMESPACES
            && now
                .iter()
                .all(|(_, user)| user.as_deref() == Some(rotated.user.as_str())))
        .then_some(())
    });
    // Status: every copy current, and the foreign Secret named (a problem: the pods in its
    // namespace pull with credentials nobody manages, so status exits 1).
    let out = real_node::sparrowctl(node, &["status"], None);
    let status = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{status}");
    assert!(
        status.contains(&format!("copies: {NAMESPACES} (0 stale)")),
        "{status}"
    );
    assert!(
        status.contains(&format!("{}/sparrow-registry-key", foreign_ns.name)),
        "status names the foreign Secret: {status}"
    );

    // A deleted copy comes back, current: the leader restores it when the watch tells it, and
    // the next pod's admission makes it if the controller's cache has already seen the delete.
    let again = &namespaces[3];
    again.kubectl(&["delete", "secret", "sparrow-registry-key"]);
    node.kubectl_stdin(
        &["create", "-f", "-"],
        Some(&pods(&again.name, PODS_PER_NAMESPACE, 1)),
    );
    wait_until("the deleted copy to come back, current", LIMIT, || {
        let args = [
            "-n",
            &again.name,
            "get",
            "secret",
            "sparrow-registry-key",
            "-o",
            "json",
        ];
        let out = node.kubectl_output(&args, None).ok()?;
        let back: Value = serde_json::from_slice(&out.stdout).ok()?;
        (secret_user(&back).as_deref() == Some(rotated.user.as_str())).then_some(())
    });

    // The foreign Secret: never written, through admissions and a rotation.
    let foreign_after = foreign_ns.get_json(&["secret", "sparrow-registry-key"]);
    assert_eq!(
        foreign_after["metadata"]["resourceVersion"], foreign_before["metadata"]["resourceVersion"],
        "the foreign Secret was written"
    );

    drop(mesh);
    assert!(copies(node).is_empty(), "copies left after remove");
    let kept = foreign_ns.get_json(&["secret", "sparrow-registry-key"]);
    assert_eq!(
        kept["data"], foreign_before["data"],
        "remove touched the foreign Secret"
    );
    let _ = node.delete_registry_user(&rotated.user);
}
