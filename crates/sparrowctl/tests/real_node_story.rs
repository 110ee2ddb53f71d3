//! The README's main job, `scripts/quickstart.sh`, on the real node: the mesh's images pushed to
//! the private registry, registry check, deploy (the controller's image pulled by the kubelet),
//! injected server and client pods that pull with the copy, run and talk through both proxies,
//! rotation, and remove leaving the application alone. The script checks every step; this test
//! runs it with this build's sparrowctl and asserts the checks a user reads.

mod real_node;

use std::process::Command;

use real_node::{mesh_images, repo_root, sparrowctl_bin};
use sparrow_testnode::Node;

#[test]
fn the_quickstart_story_passes_every_step_on_the_real_node() {
    let node = Node::require();
    let namespace = format!("t-story-{}", std::process::id());
    let bin_dir = sparrowctl_bin().parent().expect("target dir").to_path_buf();
    let output = Command::new("bash")
        .arg(repo_root().join("scripts/quickstart.sh"))
        .env("SPARROW_BIN_DIR", bin_dir)
        .env("SPARROW_IMAGES", mesh_images())
        .env("SPARROW_STORY_NAMESPACE", &namespace)
        .env("SPARROW_CLUSTER_NETNS", &node.netns)
        .output()
        .expect("run quickstart.sh");
    let _ = node.kubectl_output(&["delete", "namespace", &namespace, "--wait=false"], None);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "quickstart failed\n{stdout}\n{stderr}"
    );
    for expected in [
        "registry check",
        "the kubelet pulled sparrow-controller with sparrow-registry-key",
        "sparrow-init, then sparrow-proxy as a native sidecar",
        "the call went out through the client's proxy and in through the server's proxy",
        "job shop-once completed",
        "now authenticates as robot-2",
        "the old password is refused",
        "pulled with the rotated copy",
        "status: every copy current",
        "no Secret labelled usage=sparrow-registry-key in any namespace",
        &format!("namespace {namespace} and its Deployments and Service left as they were"),
        "quickstart: every step passed",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
    for password_file in ["robot.password", "robot-2.password"] {
        assert!(stdout.contains(password_file), "{password_file} not named");
    }
}
