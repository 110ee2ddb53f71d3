//! Least privilege, proven by the real API server's RBAC authorizer: the controller's
//! ServiceAccount can create Secrets (the copies) and read only those named sparrow-registry-key;
//! every other Secret is 403 for get, list and watch, as a real request with the
//! ServiceAccount's token and as `kubectl auth can-i --as`.

mod real_node;

use real_node::Mesh;
use sparrow_testnode::{Node, TestNamespace};

fn can_i(node: &Node, user: &str, ns: &str, verb: &str, what: &str) -> String {
    let out = node
        .kubectl_output(&["auth", "can-i", verb, what, "-n", ns, "--as", user], None)
        .expect("kubectl runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn the_controller_can_create_copies_but_never_read_another_secret() {
    let node = Node::require();
    let mesh = Mesh::deploy(node, "rbac", &[]);
    let ns = TestNamespace::create(node, "rbac");
    ns.kubectl(&[
        "create",
        "secret",
        "generic",
        "foreign",
        "--from-literal=k=v",
    ]);
    let user = mesh.controller_user();

    for (verb, what, want) in [
        ("create", "secrets", "yes"),
        ("get", "secrets/sparrow-registry-key", "yes"),
        ("update", "secrets/sparrow-registry-key", "yes"),
        ("get", "secrets/foreign", "no"),
        ("get", "secrets", "no"),
        ("list", "secrets", "no"),
        ("watch", "secrets", "no"),
        ("update", "secrets/foreign", "no"),
        ("delete", "secrets/foreign", "no"),
        ("get", "secrets/sparrow-copy-key", "no"),
    ] {
        assert_eq!(
            can_i(node, user, &ns.name, verb, what),
            want,
            "can-i {verb} {what} as the controller"
        );
    }
    // The key copies are proven with: read in the mesh namespace only, never changed.
    for (verb, want) in [("get", "yes"), ("update", "no"), ("delete", "no")] {
        assert_eq!(
            can_i(node, user, "sparrow-mesh", verb, "secrets/sparrow-copy-key"),
            want,
            "can-i {verb} the copy key as the controller"
        );
    }

    let token = node.kubectl(&[
        "-n",
        "sparrow-mesh",
        "create",
        "token",
        "sparrow-controller",
    ]);
    let kubeconfig = node.token_kubeconfig(token.trim());
    let path = kubeconfig.to_string_lossy().into_owned();
    let as_controller = |args: &[&str]| {
        let mut all = vec!["--kubeconfig", path.as_str(), "-n", ns.name.as_str()];
        all.extend_from_slice(args);
        node.kubectl_output(&all, None).expect("kubectl runs")
    };
    let forbidden = |args: &[&str], verb: &str| {
        let out = as_controller(args);
        assert!(!out.status.success(), "{args:?} must be refused");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let want = format!("User \"{user}\" cannot {verb} resource \"secrets\"");
        assert!(stderr.contains(&want), "{args:?}: {stderr}");
    };
    forbidden(&["get", "secret", "foreign"], "get");
    forbidden(&["get", "secrets"], "list");
    forbidden(
        &["get", "secrets", "--watch", "--request-timeout=30s"],
        "list",
    );
    forbidden(
        &[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/{}/secrets?watch=true", ns.name),
        ],
        "watch",
    );

    // What the controller does need: its own list, limited to the one name, and creating a copy.
    let own = as_controller(&[
        "get",
        "secrets",
        "--field-selector",
        "metadata.name=sparrow-registry-key",
        "-o",
        "name",
    ]);
    assert!(
        own.status.success(),
        "the controller lists its own copies: {}",
        String::from_utf8_lossy(&own.stderr)
    );
    let created = as_controller(&[
        "create",
        "secret",
        "generic",
        "sparrow-registry-key",
        "--from-literal=k=v",
    ]);
    assert!(
        created.status.success(),
        "the controller creates a copy: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    drop(mesh);
}
