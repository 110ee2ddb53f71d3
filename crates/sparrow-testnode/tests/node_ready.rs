//! The node itself: Ready, at the pinned version on every side (API server, kubelet, kubectl),
//! reachable by kube-rs through the fixture the other crates use.

use sparrow_testnode::Node;

#[test]
fn the_node_is_ready_at_the_pinned_version() {
    let node = Node::require();
    let pinned = Node::pinned_version();
    let status = &node.get_json(&["node", "sparrow-node"])["status"];
    let ready = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .map(|c| c["status"].clone());
    assert_eq!(
        ready,
        Some("True".into()),
        "node conditions: {}",
        status["conditions"]
    );
    assert_eq!(status["nodeInfo"]["kubeletVersion"], pinned.as_str());
    let runtime = status["nodeInfo"]["containerRuntimeVersion"]
        .as_str()
        .unwrap_or_default();
    assert!(runtime.starts_with("containerd://"), "runtime: {runtime}");

    let version: serde_json::Value =
        serde_json::from_str(&node.kubectl(&["version", "-o", "json"]))
            .expect("kubectl version prints JSON");
    assert_eq!(
        version["clientVersion"]["gitVersion"],
        pinned.as_str(),
        "{version}"
    );
    assert_eq!(
        version["serverVersion"]["gitVersion"],
        pinned.as_str(),
        "{version}"
    );
}

#[tokio::test]
async fn kube_rs_reaches_the_node_with_the_admin_kubeconfig() {
    let node = Node::require();
    let client = node.client().await.expect("a kube client");
    let info = client
        .apiserver_version()
        .await
        .expect("the API server's /version");
    assert_eq!(info.git_version, Node::pinned_version());
}
