//! The webhook's certificates on the real node, kept by the controller: deploy renders none;
//! the controller makes its CA and serving certificate and fills `caBundle` in; a `caBundle`
//! emptied by hand comes back within seconds; pods created without pause through a renewal of
//! the serving certificate (`--webhook-cert-validity 2m`: renewed at about 80 s) are all
//! admitted and injected; with `deploy --webhook-client-ca` the webhook answers the API server
//! (which presents the client certificate of the node's admission configuration) and refuses, at
//! the TLS handshake, a caller from inside the cluster network without one or with another CA's.

mod real_node;

use std::path::Path;
use std::time::{Duration, Instant};

use real_node::{LIMIT, Mesh, sparrowctl_ok};
use serde_json::{Value, json};
use sparrow_testnode::{Node, TestNamespace, wait_until};

fn webhook(node: &Node) -> Value {
    let out = node.kubectl(&[
        "get",
        "mutatingwebhookconfiguration",
        "sparrow-sidecar-injector",
        "-o",
        "json",
    ]);
    serde_json::from_str(&out).expect("webhook json")
}

fn bundles(node: &Node) -> Vec<String> {
    webhook(node)["webhooks"]
        .as_array()
        .expect("webhooks")
        .iter()
        .map(|h| {
            h["clientConfig"]["caBundle"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

fn serving_cert(node: &Node) -> String {
    node.kubectl(&[
        "-n",
        "sparrow-mesh",
        "get",
        "secret",
        "sparrow-controller-tls",
        "-o",
        "jsonpath={.data.tls\\.crt}",
    ])
}

/// Creates a pod pinned to no node; returns whether it was admitted with the sidecar.
fn injected_pod(ns: &TestNamespace, name: &str) -> Result<(), String> {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": ns.name },
        "spec": {
            "nodeSelector": { "sparrow-mesh.io/test": "no-such-node" },
            "containers": [{ "name": "app", "image": "registry.invalid/app:1" }]
        }
    });
    let out = Node::require()
        .kubectl_output(&["create", "-f", "-", "-o", "json"], Some(&pod.to_string()))
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let created: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let injected =
        created["metadata"]["annotations"]["injector.sparrow-mesh.io/status"] == "injected";
    injected
        .then_some(())
        .ok_or_else(|| format!("pod {name} admitted without the sidecar"))
}

#[test]
fn the_controller_makes_repairs_and_renews_its_certificates_without_a_refused_pod() {
    let node = Node::require();
    let mesh = Mesh::deploy(node, "certs", &["--webhook-cert-validity", "2m"]);
    // Deploy rendered no certificate: the controller made both Secrets and the caBundle.
    let first = serving_cert(node);
    assert!(
        !first.is_empty(),
        "the controller made its serving certificate"
    );
    assert!(
        bundles(node).iter().all(|b| !b.is_empty()),
        "caBundle filled in"
    );
    let status = sparrowctl_ok(node, &["status"], None);
    assert!(
        status.contains("✓ webhook: present, its caBundle verifies the serving certificate"),
        "{status}"
    );
    assert!(status.contains("serving certificate: expires "), "{status}");

    // Drift: caBundle emptied by hand comes back.
    let wanted = bundles(node);
    let patch = json!([{ "op": "remove", "path": "/webhooks/0/clientConfig/caBundle" }]);
    node.kubectl(&[
        "patch",
        "mutatingwebhookconfiguration",
        "sparrow-sidecar-injector",
        "--type=json",
        "-p",
        &patch.to_string(),
    ]);
    let emptied = Instant::now();
    wait_until("caBundle written back", LIMIT, || {
        (bundles(node) == wanted).then_some(())
    });
    let repaired = emptied.elapsed();
    eprintln!("caBundle emptied by hand: repaired in {repaired:?}");
    assert!(repaired < Duration::from_secs(5), "{repaired:?}");

    // Pods without pause through a renewal of the serving certificate.
    let ns = TestNamespace::create(node, "certs");
    ns.kubectl(&[
        "label",
        "namespace",
        &ns.name,
        "injector.sparrow-mesh.io/auto-inject=enabled",
    ]);
    let start = Instant::now();
    let mut refused = Vec::new();
    let mut created = 0;
    while serving_cert(node) == first || start.elapsed() < Duration::from_secs(5) {
        assert!(
            start.elapsed() < Duration::from_secs(150),
            "the serving certificate was not renewed in 150 s"
        );
        if let Err(why) = injected_pod(&ns, &format!("p{created}")) {
            refused.push(why);
        }
        created += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    // And a few more once replicas serve the new one.
    for _ in 0..10 {
        if let Err(why) = injected_pod(&ns, &format!("p{created}")) {
            refused.push(why);
        }
        created += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!(
        "serving certificate renewed after {:?}; {created} pods created, {} refused",
        start.elapsed(),
        refused.len()
    );
    assert!(refused.is_empty(), "{refused:?}");
    drop(mesh);
}

/// `curl` POSTing an empty review straight to `ip:8443/inject` from the node's network
/// namespace, with the client certificate and key `cert` when given; the HTTP status it got
/// ("000" when the TLS handshake failed) and its exit code.
fn post_review(node: &Node, ip: &str, cert: Option<(&Path, &Path)>) -> (String, Option<i32>) {
    let url = format!("https://{ip}:8443/inject");
    let mut args: Vec<String> = [
        "netns",
        "exec",
        &node.netns,
        "curl",
        "-sk",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
        "-H",
        "Content-Type: application/json",
        "-d",
        "{}",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if let Some((cert, key)) = cert {
        args.extend(["--cert".to_owned(), cert.display().to_string()]);
        args.extend(["--key".to_owned(), key.display().to_string()]);
    }
    args.push(url);
    let out = std::process::Command::new("ip")
        .args(&args)
        .output()
        .expect("ip netns exec curl runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code(),
    )
}

#[test]
fn with_a_webhook_client_ca_only_the_api_server_is_answered() {
    let node = Node::require();
    let ca = node.webhook_client_ca.display().to_string();
    let mesh = Mesh::deploy(node, "callers", &["--webhook-client-ca", &ca]);
    let status = sparrowctl_ok(node, &["status"], None);
    assert!(
        status.contains("webhook callers: API server only (client certificate)"),
        "{status}"
    );
    // Through the API server, which presents the certificate its admission configuration names.
    let ns = TestNamespace::create(node, "callers");
    ns.kubectl(&[
        "label",
        "namespace",
        &ns.name,
        "injector.sparrow-mesh.io/auto-inject=enabled",
    ]);
    injected_pod(&ns, "through-the-api-server").expect("injected through the API server");

    // Straight to the controller's pod from inside the cluster network.
    let ip = node.kubectl(&[
        "-n",
        "sparrow-mesh",
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/name=sparrow-controller",
        "-o",
        "jsonpath={.items[0].status.podIP}",
    ]);
    let pki = node
        .webhook_client_ca
        .parent()
        .expect("the node's PKI directory");
    let (code, exit) = post_review(node, &ip, None);
    assert_eq!(
        code, "000",
        "no certificate: refused at the handshake ({exit:?})"
    );
    assert_ne!(exit, Some(0));
    // The node CA's admin certificate: a real client certificate, from another CA.
    let (code, exit) = post_review(
        node,
        &ip,
        Some((&pki.join("admin.crt"), &pki.join("admin.key"))),
    );
    assert_eq!(code, "000", "another CA's certificate: refused ({exit:?})");
    assert_ne!(exit, Some(0));
    // Positive control: the API server's own certificate gets an HTTP answer.
    let (code, exit) = post_review(
        node,
        &ip,
        Some((
            &pki.join("webhook-client.crt"),
            &pki.join("webhook-client.key"),
        )),
    );
    assert_ne!(
        code, "000",
        "the API server's certificate is answered ({exit:?})"
    );
    drop(mesh);
}

/// `deploy --dry-run`'s output, applied as it is by `kubectl apply -f`, is a working mesh:
/// the controller makes its certificates and caBundle, and pods are injected.
#[test]
fn the_dry_run_output_applied_with_kubectl_is_a_working_mesh() {
    let node = Node::require();
    let mesh = Mesh::apply_dry_run(node, "gitops");
    node.kubectl(&[
        "-n",
        "sparrow-mesh",
        "rollout",
        "status",
        "deployment/sparrow-controller",
        "--timeout=120s",
    ]);
    wait_until("the controller's caBundle", LIMIT, || {
        bundles(node).iter().all(|b| !b.is_empty()).then_some(())
    });
    let ns = TestNamespace::create(node, "gitops");
    ns.kubectl(&[
        "label",
        "namespace",
        &ns.name,
        "injector.sparrow-mesh.io/auto-inject=enabled",
    ]);
    // The API server may hold the new caBundle a moment after it is written.
    wait_until("a pod injected", LIMIT, || {
        injected_pod(&ns, &format!("p{}", rand_suffix())).ok()
    });
    let status = sparrowctl_ok(node, &["status"], None);
    assert!(
        status.contains("✓ webhook: present, its caBundle verifies the serving certificate"),
        "{status}"
    );
    drop(mesh);
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}
