//! The API server's RBAC authorizer, which testkube does not have: a Role with `resourceNames`
//! grants exactly the named Secret, for a real request and for `kubectl auth can-i --as`.

use serde_json::json;
use sparrow_testnode::{Node, TestNamespace};

#[test]
fn a_role_with_resource_names_grants_only_the_named_secret() {
    let node = Node::require();
    let ns = TestNamespace::create(node, "rbac");
    ns.kubectl(&["create", "secret", "generic", "a", "--from-literal=k=va"]);
    ns.kubectl(&["create", "secret", "generic", "b", "--from-literal=k=vb"]);
    ns.kubectl(&["create", "serviceaccount", "reader"]);
    node.apply(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": { "name": "read-a", "namespace": ns.name },
        "rules": [{ "apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["a"] }]
    }));
    node.apply(&json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": { "name": "reader-reads-a", "namespace": ns.name },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-a" },
        "subjects": [{ "kind": "ServiceAccount", "name": "reader", "namespace": ns.name }]
    }));
    let user = format!("system:serviceaccount:{}:reader", ns.name);

    // The real request, authenticated by the ServiceAccount's own token.
    let token = ns.kubectl(&["create", "token", "reader"]);
    let kubeconfig = node.token_kubeconfig(token.trim());
    let as_reader = |secret: &str| {
        let path = kubeconfig.to_string_lossy().into_owned();
        node.kubectl_output(
            &[
                "--kubeconfig",
                &path,
                "-n",
                &ns.name,
                "get",
                "secret",
                secret,
                "-o",
                "name",
            ],
            None,
        )
        .expect("kubectl runs")
    };
    let a = as_reader("a");
    assert!(
        a.status.success(),
        "reader gets a: {}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&a.stdout).trim(), "secret/a");
    let b = as_reader("b");
    assert!(!b.status.success(), "reader must not get b");
    let stderr = String::from_utf8_lossy(&b.stderr);
    let forbidden = format!(
        "secrets \"b\" is forbidden: User \"{user}\" cannot get resource \"secrets\" in API group \"\" in the namespace \"{}\"",
        ns.name
    );
    assert!(stderr.contains(&forbidden), "{stderr}");

    // The same answers from the authorizer through impersonation.
    let can_i = |what: &str| {
        let out = node
            .kubectl_output(
                &["auth", "can-i", "get", what, "-n", &ns.name, "--as", &user],
                None,
            )
            .expect("kubectl runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        )
    };
    assert_eq!(can_i("secret/a"), (Some(0), "yes".to_owned()));
    assert_eq!(can_i("secret/b"), (Some(1), "no".to_owned()));
    assert_eq!(
        can_i("secrets"),
        (Some(1), "no".to_owned()),
        "no list of all secrets either"
    );
}
