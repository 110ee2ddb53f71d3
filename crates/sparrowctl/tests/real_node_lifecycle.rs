//! The mesh's lifecycle on the real node, where testkube cannot go: server-side apply ownership
//! against another field manager, deploy again with a new pod template, remove while a meshed
//! namespace is terminating, a controller stopped during a rotation, the API server restarted
//! mid-story, and two replicas sharing one Lease through the leader's death.

mod real_node;

use real_node::{LIMIT, Mesh, secret_user, sparrowctl_ok};
use serde_json::{Value, json};
use sparrow_testnode::{Node, TestNamespace, wait_until};

const WEBHOOKS: &str = "mutatingwebhookconfiguration/sparrow-sidecar-injector";

fn meshed_namespace(node: &'static Node, purpose: &str) -> TestNamespace {
    let ns = TestNamespace::create(node, purpose);
    ns.kubectl(&[
        "label",
        "namespace",
        &ns.name,
        "injector.sparrow-mesh.io/auto-inject=enabled",
    ]);
    ns
}

/// A pod that is admitted (and injected) but pinned to no node.
fn pending_pod(ns: &str, name: &str, finalizer: Option<&str>) -> String {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": ns },
        "spec": {
            "nodeSelector": { "sparrow-mesh.io/test": "no-such-node" },
            "containers": [{ "name": "app", "image": "registry.invalid/app:1" }]
        }
    });
    if let Some(f) = finalizer {
        pod["metadata"]["finalizers"] = json!([f]);
    }
    pod.to_string()
}

/// Creates the pending pod `name` (see [`pending_pod`]); the API server must admit it.
fn create_pending(node: &Node, ns: &str, name: &str, finalizer: Option<&str>) {
    node.kubectl_stdin(
        &["create", "-f", "-"],
        Some(&pending_pod(ns, name, finalizer)),
    );
}

/// Scales the controller Deployment to `replicas`.
fn scale_controller(node: &Node, replicas: u32) {
    let replicas = format!("--replicas={replicas}");
    node.kubectl(&[
        "-n",
        "sparrow-mesh",
        "scale",
        "deployment/sparrow-controller",
        &replicas,
    ]);
}

/// Waits until the controller Deployment has rolled out.
fn await_controller_rollout(node: &Node) {
    node.kubectl(&[
        "-n",
        "sparrow-mesh",
        "rollout",
        "status",
        "deployment/sparrow-controller",
        "--timeout=300s",
    ]);
}

/// Creates the pending pod `name`, retrying while the API server refuses it (a webhook not
/// reachable yet: with failurePolicy Fail it is never admitted without the sidecar).
fn create_once_admitted(node: &Node, ns: &str, name: &str) {
    wait_until(&format!("pod {ns}/{name} admitted"), LIMIT, || {
        let pod = pending_pod(ns, name, None);
        let out = node
            .kubectl_output(&["create", "-f", "-"], Some(&pod))
            .ok()?;
        out.status.success().then_some(())
    });
}

/// Whether the webhook injected the pod: the sidecar as a native sidecar (an init container
/// with `restartPolicy: Always`, the node being >= 1.29) and the status annotation.
fn injected(node: &Node, ns: &str, pod: &str) -> bool {
    let pod = node.get_json(&["-n", ns, "pod", pod]);
    let native = pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["name"] == "sparrow-proxy" && c["restartPolicy"] == "Always");
    native && pod["metadata"]["annotations"]["injector.sparrow-mesh.io/status"] == "injected"
}

fn deploy_args(mesh: &Mesh) -> Vec<String> {
    let images = real_node::mesh_images();
    [
        "deploy",
        "--images-from",
        &images.to_string_lossy(),
        "--registry-server",
        &mesh.registry,
        "--registry-username",
        &mesh.creds.user,
        "--registry-password-stdin",
        "--registry-ca",
        &mesh.node.registry_ca.to_string_lossy(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Waits until the copy in `ns` carries `user`. An admission makes the copy before it answers
/// when the controller already knows the namespace, and owes it (made moments later) when the
/// namespace is newer than the controller's cache.
fn await_copy_user(ns: &TestNamespace, user: &str) {
    wait_until(
        &format!("the copy in {} to carry {user}", ns.name),
        LIMIT,
        || (copy_user(ns).as_deref() == Some(user)).then_some(()),
    );
}

fn copy_user(ns: &TestNamespace) -> Option<String> {
    let args = [
        "-n",
        ns.name.as_str(),
        "get",
        "secret",
        "sparrow-registry-key",
        "-o",
        "json",
    ];
    let out = Node::require().kubectl_output(&args, None).ok()?;
    let secret: Value = serde_json::from_slice(&out.stdout).ok()?;
    secret_user(&secret)
}

#[test]
fn deploy_takes_back_its_fields_from_another_manager_and_keeps_theirs() {
    let node = Node::require();
    let mesh = Mesh::deploy(node, "ssa", &[]);
    let intruder = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": { "name": "sparrow-sidecar-injector", "labels": { "team": "intruder" } },
        "webhooks": [{
            "name": "namespaces.injector.sparrow-mesh.io",
            "failurePolicy": "Ignore",
            "sideEffects": "NoneOnDryRun",
            "admissionReviewVersions": ["v1"],
            "clientConfig": { "service": { "namespace": "sparrow-mesh", "name": "sparrow-controller" } }
        }]
    });
    node.kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=intruder",
            "--force-conflicts",
            "-f",
            "-",
        ],
        Some(&intruder.to_string()),
    );
    let policy = |node: &Node| {
        let config = node.get_json(&[WEBHOOKS]);
        config["webhooks"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|w| w["name"] == "namespaces.injector.sparrow-mesh.io")
            .map(|w| w["failurePolicy"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(
        policy(node).as_deref(),
        Some("Ignore"),
        "the intruder's change applied"
    );

    let args = deploy_args(&mesh);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sparrowctl_ok(node, &args, Some(&mesh.creds.password));
    let config = node.get_json(&[WEBHOOKS, "--show-managed-fields"]);
    assert_eq!(
        policy(node).as_deref(),
        Some("Fail"),
        "deploy took failurePolicy back"
    );
    assert_eq!(
        config["metadata"]["labels"]["team"], "intruder",
        "deploy keeps fields it does not own"
    );
    let managers: Vec<&str> = config["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["operation"] == "Apply")
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"sparrowctl"), "{managers:?}");
    let intruder_fields = config["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["manager"] == "intruder")
        .map(|m| m["fieldsV1"].to_string())
        .unwrap_or_default();
    assert!(
        !intruder_fields.contains("f:failurePolicy"),
        "the intruder still owns failurePolicy: {intruder_fields}"
    );
    drop(mesh);
}

/// The controller's pods, terminating ones included.
fn controller_pods(node: &Node) -> Vec<Value> {
    let pods = node.get_json(&[
        "-n",
        "sparrow-mesh",
        "pods",
        "-l",
        "app.kubernetes.io/name=sparrow-controller",
    ]);
    pods["items"].as_array().cloned().unwrap_or_default()
}

/// The controller pods that are not terminating: name and whether they run with `flag`.
fn live_controllers(node: &Node, flag: &str) -> Vec<(String, bool)> {
    controller_pods(node)
        .into_iter()
        .filter(|pod| pod["metadata"]["deletionTimestamp"].is_null())
        .map(|pod| {
            let args = pod["spec"]["containers"][0]["args"].to_string();
            let name = pod["metadata"]["name"].as_str().unwrap_or_default();
            (name.to_owned(), args.contains(flag))
        })
        .collect()
}

#[test]
fn deploy_again_with_a_changed_setting_returns_once_every_controller_runs_it() {
    let node = Node::require();
    let mesh = Mesh::deploy(node, "redeploy", &[]);
    let flag = "--disable-auto-inject";
    let before = live_controllers(node, flag);
    assert!(
        before.iter().all(|(_, runs)| !runs),
        "no controller runs {flag} yet: {before:?}"
    );
    // A new pod template: the Deployment's status still reads "rolled out" (the previous
    // rollout's) until its controller has seen the change.
    let mut args = deploy_args(&mesh);
    args.push(flag.to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sparrowctl_ok(node, &args, Some(&mesh.creds.password));
    let after = live_controllers(node, flag);
    assert!(
        !after.is_empty() && after.iter().all(|(_, runs)| *runs),
        "when deploy returns, every live controller runs {flag}: {after:?}"
    );
    assert!(
        after
            .iter()
            .all(|(name, _)| !before.iter().any(|(old, _)| old == name)),
        "the old controller is gone or terminating: before {before:?}, after {after:?}"
    );
    drop(mesh);
}

#[test]
fn remove_succeeds_while_a_meshed_namespace_is_terminating() {
    let node = Node::require();
    let mesh = Mesh::deploy(node, "terminating", &[]);
    let ns = meshed_namespace(node, "terminating");
    let finalizer = "sparrow-mesh.io/test-hold";
    create_pending(node, &ns.name, "held", Some(finalizer));
    assert!(injected(node, &ns.name, "held"));
    await_copy_user(&ns, &mesh.creds.user);
    node.kubectl(&["delete", "namespace", &ns.name, "--wait=false"]);
    wait_until("the namespace to be Terminating", LIMIT, || {
        let n = node.get_json(&["namespace", &ns.name]);
        (n["status"]["phase"] == "Terminating").then_some(())
    });

    let out = real_node::sparrowctl(node, &["remove", "--yes"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "remove: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("no labelled Secret left anywhere", LIMIT, || {
        let left = node.kubectl(&[
            "get",
            "secrets",
            "-A",
            "-l",
            "usage=sparrow-registry-key",
            "-o",
            "name",
        ]);
        left.trim().is_empty().then_some(())
    });
    let patch = r#"{"metadata":{"finalizers":null}}"#;
    node.kubectl(&[
        "-n",
        &ns.name,
        "patch",
        "pod",
        "held",
        "--type=merge",
        "-p",
        patch,
    ]);
    wait_until("the namespace to be gone", LIMIT, || {
        let out = node
            .kubectl_output(&["get", "namespace", &ns.name], None)
            .ok()?;
        (!out.status.success()).then_some(())
    });
    drop(mesh);
}

#[test]
fn a_rotation_while_the_controller_is_stopped_reaches_the_copies_when_it_is_back() {
    let node = Node::require();
    let mesh = Mesh::deploy(node, "restart", &[]);
    let ns = meshed_namespace(node, "restart");
    create_pending(node, &ns.name, "before", None);
    await_copy_user(&ns, &mesh.creds.user);

    scale_controller(node, 0);
    wait_until("no controller pod", LIMIT, || {
        controller_pods(node).is_empty().then_some(())
    });
    let rotated = mesh.rotate("robot-restart-2");
    assert_eq!(
        copy_user(&ns).as_deref(),
        Some(mesh.creds.user.as_str()),
        "nobody refreshes a copy while the controller is stopped"
    );
    scale_controller(node, 1);
    wait_until("the copy to carry the rotated user", LIMIT, || {
        (copy_user(&ns).as_deref() == Some(rotated.user.as_str())).then_some(())
    });
    await_controller_rollout(node);
    // Ready is not yet reachable: until the Service's endpoints and the node's rules catch up,
    // the API server refuses the pod (failurePolicy Fail: never admitted without the sidecar).
    create_once_admitted(node, &ns.name, "after");
    assert!(
        injected(node, &ns.name, "after"),
        "the restarted controller injects"
    );
    drop(mesh);
    let _ = node.delete_registry_user(&rotated.user);
}

#[test]
fn after_the_api_server_restarts_the_controller_keeps_injecting_copying_and_rotating() {
    let node = Node::require();
    let mesh = Mesh::deploy(node, "apiserver", &[]);
    let before = meshed_namespace(node, "apiserver-before");
    create_pending(node, &before.name, "before", None);
    await_copy_user(&before, &mesh.creds.user);

    node.restart("kube-apiserver")
        .expect("restart kube-apiserver");

    // The controller's watches come back on their own: a namespace created after the restart
    // is meshed from its first pod, and a rotation reaches the copies made before and after.
    let after = meshed_namespace(node, "apiserver-after");
    create_once_admitted(node, &after.name, "after");
    assert!(
        injected(node, &after.name, "after"),
        "injected after the restart"
    );
    // Admitted while the controller's namespace watch was still relisting, the pod's copy is
    // owed, and made once the controller learns the namespace.
    await_copy_user(&after, &mesh.creds.user);

    let rotated = mesh.rotate("robot-apiserver-2");
    wait_until("both copies to carry the rotated user", LIMIT, || {
        (copy_user(&before).as_deref() == Some(rotated.user.as_str())
            && copy_user(&after).as_deref() == Some(rotated.user.as_str()))
        .then_some(())
    });
    drop(mesh);
    let _ = node.delete_registry_user(&rotated.user);
}

/// How many ready endpoints the controller's Service has.
fn ready_endpoints(node: &Node) -> usize {
    let slices = node.get_json(&[
        "-n",
        "sparrow-mesh",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=sparrow-controller",
    ]);
    slices["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|slice| slice["endpoints"].as_array().into_iter().flatten())
        .filter(|endpoint| endpoint["conditions"]["ready"] == true)
        .count()
}

fn lease_holder(node: &Node) -> Option<String> {
    let lease = node.get_json(&["-n", "sparrow-mesh", "lease", "sparrow-controller"]);
    lease["spec"]["holderIdentity"].as_str().map(str::to_owned)
}

#[test]
fn with_two_replicas_the_survivor_takes_the_lease_and_admissions_keep_being_answered() {
    let node = Node::require();
    let mesh = Mesh::deploy(node, "failover", &[]);
    scale_controller(node, 2);
    await_controller_rollout(node);
    // Both replicas behind the Service before one goes: Ready pods are not yet endpoints.
    wait_until(
        "two ready endpoints behind the controller's Service",
        LIMIT,
        || (ready_endpoints(node) == 2).then_some(()),
    );
    let leader = wait_until("a Lease holder", LIMIT, || lease_holder(node));
    let ns = meshed_namespace(node, "failover");

    node.kubectl(&[
        "-n",
        "sparrow-mesh",
        "delete",
        "pod",
        &leader,
        "--wait=false",
    ]);
    // Admissions go on through the old leader's whole termination, past the moment its pod
    // (and its network namespace) is gone, while the Service's endpoints and kube-proxy's
    // rules catch up: every pod is admitted, and injected.
    let mut admitted = 0;
    let new_leader = wait_until(
        "another replica to hold the Lease and the old leader's pod to be gone",
        LIMIT,
        || {
            let name = format!("during-{admitted}");
            create_pending(node, &ns.name, &name, None);
            assert!(
                injected(node, &ns.name, &name),
                "{name} was admitted without the sidecar"
            );
            admitted += 1;
            let gone = node
                .kubectl_output(&["-n", "sparrow-mesh", "get", "pod", &leader], None)
                .is_ok_and(|out| String::from_utf8_lossy(&out.stderr).contains("NotFound"));
            lease_holder(node).filter(|holder| gone && *holder != leader)
        },
    );
    // The pod outlives its shutdown delay (5 s), longer than one round of the loop.
    assert!(
        admitted >= 2,
        "only {admitted} admission(s) during the failover"
    );
    let rotated = mesh.rotate("robot-failover-2");
    wait_until("the new leader to refresh the copy", LIMIT, || {
        (copy_user(&ns).as_deref() == Some(rotated.user.as_str())).then_some(())
    });
    assert_ne!(new_leader, leader);
    drop(mesh);
    let _ = node.delete_registry_user(&rotated.user);
}
