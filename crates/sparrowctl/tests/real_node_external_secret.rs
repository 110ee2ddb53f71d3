//! A registry Secret another tool keeps (`deploy --registry-secret`), on the real node: deploy
//! checks it once and refuses a wrong one with nothing written; the control plane and an
//! injected pod pull with it; rewritten by hand (as external-secrets would) with a new user
//! whose predecessor is then revoked, every copy follows byte for byte and a new pod pulls;
//! emptied or deleted, the copies keep what they hold and status, Events and the metric say
//! why; remove deletes the copies and leaves the Secret where it was.

mod real_node;

use std::time::{Duration, Instant};

use real_node::{LIMIT, Mesh, sparrowctl, sparrowctl_ok};
use serde_json::{Value, json};
use sparrow_testnode::{Credentials, Node, TestNamespace, pull_secret, wait_until};

const SECRET: &str = "ext-pull";

/// The external Secret in the mesh namespace holding `creds` (or, `None`, an empty `auths`).
fn write_external(node: &Node, creds: Option<&Credentials>) {
    let mut object = match creds {
        Some(creds) => pull_secret(SECRET, &node.registry, creds),
        None => {
            use base64::Engine as _;
            let empty = base64::engine::general_purpose::STANDARD.encode(r#"{"auths":{}}"#);
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": { "name": SECRET },
                "type": "kubernetes.io/dockerconfigjson",
                "data": { ".dockerconfigjson": empty }
            })
        }
    };
    object["metadata"]["namespace"] = "sparrow-mesh".into();
    node.apply(&object);
}

fn dockerconfig_of(node: &Node, ns: &str, name: &str) -> Option<String> {
    let out = node
        .kubectl_output(
            &[
                "-n",
                ns,
                "get",
                "secret",
                name,
                "-o",
                "jsonpath={.data.\\.dockerconfigjson}",
            ],
            None,
        )
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A pod that pulls `image` (always) and gets the sidecar; waits until it runs.
fn running_pod(ns: &TestNamespace, name: &str, image: &str) {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": ns.name },
        "spec": { "containers": [{ "name": "app", "image": image, "imagePullPolicy": "Always" }] }
    });
    Node::require().apply(&pod);
    wait_until(
        &format!("pod {name} running with the sidecar"),
        LIMIT,
        || {
            let pod = ns.get_json(&["pod", name]);
            let statuses = pod["status"]["containerStatuses"].as_array()?;
            let sidecar = pod["status"]["initContainerStatuses"].as_array()?;
            (statuses.iter().chain(sidecar).all(|c| c["ready"] == true)
                && pod["metadata"]["annotations"]["injector.sparrow-mesh.io/status"] == "injected")
                .then_some(())
        },
    );
}

fn warning_event(node: &Node, reason: &str) -> String {
    wait_until(
        &format!("a {reason} Event on Secret {SECRET}"),
        LIMIT,
        || {
            let events = node.get_json(&["-n", "sparrow-mesh", "events"]);
            events["items"].as_array()?.iter().find_map(|e| {
                (e["reason"] == reason && e["involvedObject"]["name"] == SECRET)
                    .then(|| e["message"].as_str().unwrap_or_default().to_owned())
            })
        },
    )
}

fn status(node: &Node) -> (bool, String) {
    let out = sparrowctl(node, &["status"], None);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn a_secret_another_tool_keeps_is_copied_followed_and_left_in_place() {
    let node = Node::require();
    let mesh = Mesh::deploy_from_secret(node, "external", SECRET, &["--pull-policy", "Always"]);
    let (healthy, report) = status(node);
    assert!(healthy, "{report}");
    assert!(
        report.contains("in Secret sparrow-mesh/ext-pull kept by another tool"),
        "{report}"
    );
    assert!(
        node.get_json(&[
            "-n",
            "sparrow-mesh",
            "secrets",
            "-l",
            "usage=sparrow-registry-key"
        ])["items"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "Sparrow stores no credential of its own"
    );

    // An injected pod pulls its app image and the sidecar with the copy.
    let ns = TestNamespace::create(node, "external");
    ns.kubectl(&[
        "label",
        "namespace",
        &ns.name,
        "injector.sparrow-mesh.io/auto-inject=enabled",
    ]);
    let image = node
        .push_image("httpecho", "t-external/app", &mesh.creds)
        .expect("push the app image");
    running_pod(&ns, "first", &image);
    let copy = dockerconfig_of(node, &ns.name, "sparrow-registry-key").expect("copy");
    assert_eq!(
        Some(copy),
        dockerconfig_of(node, "sparrow-mesh", SECRET),
        "byte for byte"
    );
    let annotation = ns.get_json(&["secret", "sparrow-registry-key"])["metadata"]["annotations"]
        ["sparrow-mesh.io/source"]
        .clone();
    assert_eq!(annotation, "sparrow-mesh/ext-pull");

    // Rewritten by hand with a new user; the old one is revoked once the copy follows.
    let next = Credentials::random("robot-external-next");
    node.registry_user(&next).expect("registry user");
    let rewritten = Instant::now();
    write_external(node, Some(&next));
    let wanted = dockerconfig_of(node, "sparrow-mesh", SECRET).expect("external");
    wait_until("the copy to follow the rewritten Secret", LIMIT, || {
        (dockerconfig_of(node, &ns.name, "sparrow-registry-key").as_deref()
            == Some(wanted.as_str()))
        .then_some(())
    });
    let followed = rewritten.elapsed();
    node.delete_registry_user(&mesh.creds.user)
        .expect("revoke the old user");
    running_pod(&ns, "second", &image);
    eprintln!("copy followed the rewritten Secret in {followed:?}");

    // Emptied: never copied as an empty credential; status, Event and metric say why.
    write_external(node, None);
    let event = warning_event(node, "SourcePullSecretUnusable");
    assert!(event.contains("\"auths\" is empty"), "{event}");
    assert!(!event.contains(&next.password), "{event}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        dockerconfig_of(node, &ns.name, "sparrow-registry-key").as_deref(),
        Some(wanted.as_str()),
        "the copy keeps the last credential"
    );
    let (healthy, report) = status(node);
    assert!(!healthy, "{report}");
    assert!(
        report.contains("Secret sparrow-mesh/ext-pull, which another tool keeps (--registry-secret), cannot be copied: its .dockerconfigjson is unusable: \"auths\" is empty"),
        "{report}"
    );

    // Deleted: the same, and said as such.
    node.kubectl(&["-n", "sparrow-mesh", "delete", "secret", SECRET]);
    warning_event(node, "SourcePullSecretMissing");
    let (healthy, report) = status(node);
    assert!(!healthy, "{report}");
    assert!(
        report.contains("is missing: the copies keep the credential they hold"),
        "{report}"
    );
    assert_eq!(
        dockerconfig_of(node, &ns.name, "sparrow-registry-key").as_deref(),
        Some(wanted.as_str())
    );

    // Back, then remove: the copies go, the Secret another tool keeps stays.
    write_external(node, Some(&next));
    wait_until("status healthy again", LIMIT, || {
        status(node).0.then_some(())
    });
    sparrowctl_ok(node, &["remove", "--yes"], None);
    assert_eq!(
        dockerconfig_of(node, "sparrow-mesh", SECRET).as_deref(),
        Some(wanted.as_str()),
        "remove left the Secret another tool keeps"
    );
    wait_until("the copy to be gone", LIMIT, || {
        dockerconfig_of(node, &ns.name, "sparrow-registry-key")
            .is_none()
            .then_some(())
    });
    let _ = node.delete_registry_user(&next.user);
    drop(mesh);
}

/// What deploy refuses about the Secret, each in one line with exit code 1 and nothing
/// written: in a namespace of the test's own (`-n`), so it runs beside a deployed mesh.
#[test]
fn deploy_refuses_a_secret_it_cannot_pull_with_and_writes_nothing() {
    let node = Node::require();
    let ns = TestNamespace::create(node, "extbad");
    let creds = Credentials::random("robot-extbad");
    let registry = format!("{}/t-extbad/mesh", node.registry);
    let mut other_registry = pull_secret("other-registry", "other.example:5000", &creds);
    other_registry["metadata"]["namespace"] = ns.name.clone().into();
    node.apply(&other_registry);
    ns.kubectl(&[
        "create",
        "secret",
        "generic",
        "opaque",
        "--from-literal=.dockerconfigjson={}",
    ]);
    let ca = node.registry_ca.to_string_lossy();
    for (name, needle) in [
        (
            "absent",
            format!(
                "--registry-secret: Secret {}/absent does not exist: have the tool that keeps it write it there first",
                ns.name
            ),
        ),
        (
            "opaque",
            format!(
                "--registry-secret: Secret {}/opaque cannot be used: it is of type Opaque, not kubernetes.io/dockerconfigjson; nothing was deployed",
                ns.name
            ),
        ),
        (
            "other-registry",
            format!(
                "--registry-secret: Secret {}/other-registry cannot be used: no entry under \"auths\" covers {registry} (it has \"other.example:5000\"); nothing was deployed",
                ns.name
            ),
        ),
    ] {
        let out = sparrowctl(
            node,
            &[
                "deploy",
                "-n",
                &ns.name,
                "--registry-server",
                &registry,
                "--registry-ca",
                &ca,
                "--registry-secret",
                name,
            ],
            None,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains(&needle), "{name}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(!stderr.contains(&creds.password));
    }
    let left: Value = ns.get_json(&["deployments,serviceaccounts,roles"]);
    let ours: Vec<&Value> = left["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["metadata"]["name"] != "default")
        .collect();
    assert!(ours.is_empty(), "nothing written: {ours:?}");
}

/// Deletes the external Secret when dropped: `remove` keeps a mesh namespace holding a Secret
/// that is not Sparrow's, so it must go first (declared after the mesh, it drops before it).
struct DeleteExternal(&'static Node);

impl Drop for DeleteExternal {
    fn drop(&mut self) {
        let delete = [
            "-n",
            "sparrow-mesh",
            "delete",
            "secret",
            SECRET,
            "--ignore-not-found",
        ];
        let _ = self.0.kubectl_output(&delete, None);
    }
}

/// Every 200 ms until `stop`, the copy in `ns`: how many reads, and those that found it
/// missing or empty.
fn watch_copy(
    node: &'static Node,
    ns: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    std::thread::spawn(move || {
        let (mut reads, mut gaps) = (0, Vec::new());
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            reads += 1;
            match dockerconfig_of(node, &ns, "sparrow-registry-key") {
                Some(copy) if !copy.is_empty() => {}
                Some(_) => gaps.push(format!("read {reads}: empty")),
                None => gaps.push(format!("read {reads}: missing")),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        (reads, gaps)
    })
}

/// `registry update --registry-secret` on a mesh deployed with Sparrow's own Secret, then
/// back with credential flags: the copy in a meshed namespace is never missing or empty, it
/// ends byte for byte the external Secret, Sparrow's own Secret goes once the new controller
/// runs, and coming back the external Secret is left as it was.
#[test]
fn registry_update_switches_to_a_secret_another_tool_keeps_and_back_with_no_copy_missing() {
    let node = Node::require();
    let mesh = Mesh::deploy(node, "switch", &["--pull-policy", "Always"]);
    let ns = TestNamespace::create(node, "switch");
    ns.kubectl(&[
        "label",
        "namespace",
        &ns.name,
        "injector.sparrow-mesh.io/auto-inject=enabled",
    ]);
    let image = node
        .push_image("httpecho", "t-switch/app", &mesh.creds)
        .expect("push the app image");
    running_pod(&ns, "first", &image);
    let external = Credentials::random("robot-switch-external");
    node.registry_user(&external).expect("registry user");
    write_external(node, Some(&external));
    let delete_external = DeleteExternal(node);
    let wanted = dockerconfig_of(node, "sparrow-mesh", SECRET).expect("external");

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = watch_copy(node, ns.name.clone(), stop.clone());
    let ca = node.registry_ca.to_string_lossy();
    let out = sparrowctl_ok(
        node,
        &[
            "registry",
            "update",
            "--registry-secret",
            SECRET,
            "--registry-ca",
            &ca,
        ],
        None,
    );
    assert!(
        out.contains("switched to Secret sparrow-mesh/ext-pull"),
        "{out}"
    );
    assert!(!out.contains(&external.password), "{out}");
    assert_eq!(
        dockerconfig_of(node, "sparrow-mesh", "sparrow-registry-key"),
        None,
        "Sparrow's own Secret is deleted"
    );
    wait_until("the copy to be the external Secret", LIMIT, || {
        (dockerconfig_of(node, &ns.name, "sparrow-registry-key").as_deref()
            == Some(wanted.as_str()))
        .then_some(())
    });
    wait_until("status healthy with the external Secret", LIMIT, || {
        let (healthy, report) = status(node);
        (healthy && report.contains("in Secret sparrow-mesh/ext-pull kept by another tool"))
            .then_some(())
    });
    // The deploy user revoked: a new pod pulls with the copy of the external Secret.
    node.delete_registry_user(&mesh.creds.user)
        .expect("revoke the deploy user");
    running_pod(&ns, "second", &image);

    // Back to Sparrow's own Secret; the external one is not touched.
    let back = mesh.rotate("robot-switch-back");
    wait_until("the copy to hold the credential given", LIMIT, || {
        let copy = ns.get_json(&["secret", "sparrow-registry-key"]);
        (real_node::secret_user(&copy).as_deref() == Some(back.user.as_str())).then_some(())
    });
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (reads, gaps) = watcher.join().expect("watcher");
    assert!(gaps.is_empty(), "the copy was missing or empty: {gaps:?}");
    assert!(reads >= 10, "{reads} reads");
    eprintln!("the copy was read {reads} times during both switches, always present");
    assert_eq!(
        dockerconfig_of(node, "sparrow-mesh", SECRET).as_deref(),
        Some(wanted.as_str()),
        "the Secret another tool keeps is left as it was"
    );
    node.delete_registry_user(&external.user)
        .expect("revoke the external user");
    running_pod(&ns, "third", &image);
    wait_until("status healthy with Sparrow's own Secret", LIMIT, || {
        status(node).0.then_some(())
    });
    let _ = node.delete_registry_user(&back.user);
    drop(delete_external);
    drop(mesh);
}
