//! `deploy` right after `remove`, on the real node: the mesh namespace is still terminating,
//! and the API server refuses anything created in it ("is being terminated", HTTP 403).
//! deploy waits for it to be gone, within --timeout. A finalizer of the test's own holds the
//! namespace in Terminating for as long as the test needs, so no timing decides the outcome.

mod real_node;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use real_node::{LIMIT, sparrowctl_bin, sparrowctl_ok};
use sparrow_testnode::{Node, wait_until};

const HOLD: &str = "sparrow-mesh.io/test-hold";

/// Releases the namespace however the test ends, so a failure never leaves it held.
struct Hold(&'static Node);

impl Hold {
    fn release(&self) -> Option<std::process::Output> {
        self.0
            .kubectl_output(
                &[
                    "patch",
                    "namespace",
                    "sparrow-mesh",
                    "--type=json",
                    "-p",
                    r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
                ],
                None,
            )
            .ok()
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.release();
        }
    }
}

fn namespace_exists(node: &Node) -> bool {
    node.kubectl_output(&["get", "namespace", "sparrow-mesh", "-o", "name"], None)
        .is_ok_and(|out| out.status.success())
}

#[test]
fn deploy_right_after_remove_waits_for_the_namespace_to_go() {
    let node = Node::require();
    wait_until("namespace sparrow-mesh to be gone", LIMIT, || {
        (!namespace_exists(node)).then_some(())
    });
    let deploy = ["deploy", "--skip-registry-check", "--wait=false"];
    sparrowctl_ok(node, &deploy, None);
    let hold = Hold(node);
    node.kubectl(&[
        "patch",
        "namespace",
        "sparrow-mesh",
        "--type=merge",
        "-p",
        &format!(r#"{{"metadata":{{"finalizers":["{HOLD}"]}}}}"#),
    ]);
    sparrowctl_ok(node, &["remove", "--yes"], None);
    assert!(namespace_exists(node), "the finalizer holds the namespace");

    let mut child = Command::new(sparrowctl_bin())
        .env("KUBECONFIG", &node.kubeconfig)
        .args(deploy)
        .args(["--timeout", "5m"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sparrowctl runs");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let read = stdout.read_line(&mut line).expect("read stdout");
        seen.push_str(&line);
        if line.contains("waiting for Namespace sparrow-mesh to finish terminating") {
            break;
        }
        if read == 0 {
            let out = child.wait_with_output().expect("sparrowctl ends");
            panic!(
                "deploy ended without waiting for the terminating namespace:\n{seen}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // Release the namespace: Kubernetes finishes deleting it, and deploy goes on.
    let released = hold.release().expect("kubectl runs");
    assert!(
        released.status.success(),
        "{}",
        String::from_utf8_lossy(&released.stderr)
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).expect("read stdout");
    let out = child.wait_with_output().expect("sparrowctl ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{seen}{rest}\n{stderr}");
    assert!(rest.contains("Namespace sparrow-mesh is gone"), "{rest}");
    assert!(rest.contains("Sparrow Mesh deployed"), "{rest}");
    assert!(!stderr.contains("being terminated"), "{stderr}");
    sparrowctl_ok(node, &["remove", "--yes"], None);
}
