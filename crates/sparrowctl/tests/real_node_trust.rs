//! The trust boundary on the real node, tried as a tenant: a Secret named and labelled like a
//! copy (with every annotation of a genuine copy, or with a genuine copy's whole metadata moved
//! into another namespace, or a user's own docker-registry Secret in a meshed namespace) never
//! receives the registry credential and survives `registry update` and `remove`; a copy edited
//! by hand is repaired within seconds and `status` reads staleness from the data; a deleted
//! source makes `status` fail; `deploy` without credential flags keeps pulling with the stored
//! credential; after `remove` and `deploy` the copies come back where injected pods run.

mod real_node;

use std::time::{Duration, Instant};

use real_node::{LIMIT, Mesh, mesh_images, secret_user, sparrowctl, sparrowctl_ok};
use serde_json::{Value, json};
use sparrow_testnode::{Node, TestNamespace, wait_until};

const NAME: &str = "sparrow-registry-key";
/// How soon a copy edited by hand must hold the source's data again. The watch event makes
/// the leader rewrite it at once (well under a second on a quiet node); the margin is for a
/// two-core machine running the whole suite.
const REPAIR_LIMIT: Duration = Duration::from_secs(10);

/// Creates a pod that is admitted (and injected in a meshed namespace) but pinned to no node;
/// returns kubectl's output (its standard error carries the admission warnings).
fn pending_pod(ns: &TestNamespace, name: &str) -> std::process::Output {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": ns.name },
        "spec": {
            "nodeSelector": { "sparrow-mesh.io/test": "no-such-node" },
            "containers": [{ "name": "app", "image": "registry.invalid/app:1" }]
        }
    });
    let out = Node::require()
        .kubectl_output(&["create", "-f", "-"], Some(&pod.to_string()))
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "pod {}/{name} admitted: {}",
        ns.name,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn namespace(node: &'static Node, purpose: &str, switch: Option<&str>) -> TestNamespace {
    let ns = TestNamespace::create(node, purpose);
    if let Some(switch) = switch {
        ns.kubectl(&[
            "label",
            "namespace",
            &ns.name,
            &format!("injector.sparrow-mesh.io/auto-inject={switch}"),
        ]);
    }
    ns
}

fn secret(ns: &TestNamespace) -> Option<Value> {
    let args = ["-n", &ns.name, "get", "secret", NAME, "-o", "json"];
    let out = Node::require().kubectl_output(&args, None).ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

/// A tenant's Secret in `ns`: a docker-registry Secret of its own user, carrying `labels` and
/// `annotations` (what a tenant can write).
fn tenant_secret(ns: &TestNamespace, user: &str, labels: &Value, annotations: &Value) -> Value {
    ns.kubectl(&[
        "create",
        "secret",
        "docker-registry",
        NAME,
        "--docker-server=registry.tenant.example:5000",
        &format!("--docker-username={user}"),
        "--docker-password=tenant-password",
    ]);
    let patch = json!({"metadata": {"labels": labels, "annotations": annotations}});
    ns.kubectl(&["patch", "secret", NAME, "-p", &patch.to_string()]);
    secret(ns).expect("the tenant's secret")
}

fn assert_untouched(ns: &TestNamespace, before: &Value, user: &str, when: &str) {
    let now = secret(ns).unwrap_or_else(|| panic!("{when}: {}/{NAME} was deleted", ns.name));
    assert_eq!(
        now["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"],
        "{when}: {}/{NAME} was written",
        ns.name
    );
    assert_eq!(
        secret_user(&now).as_deref(),
        Some(user),
        "{when}: {}",
        ns.name
    );
}

#[test]
fn a_tenant_cannot_obtain_the_credential_and_a_copy_edited_by_hand_is_repaired() {
    let node = Node::require();
    let mesh = Mesh::deploy(node, "trust", &[]);
    let meshed = namespace(node, "trust-meshed", Some("enabled"));
    pending_pod(&meshed, "app");
    let genuine = wait_until("the genuine copy", LIMIT, || secret(&meshed));
    assert_eq!(
        secret_user(&genuine).as_deref(),
        Some(mesh.creds.user.as_str())
    );

    // 1. Labelled and annotated like a copy (source, source-hash, a made-up proof), in a
    //    namespace nobody meshed.
    let plain = namespace(node, "trust-plain", None);
    let mut annotations = genuine["metadata"]["annotations"].clone();
    annotations["sparrow-mesh.io/proof"] = json!("00".repeat(32));
    let labels = genuine["metadata"]["labels"].clone();
    let plain_before = tenant_secret(&plain, "tenant-1", &labels, &annotations);
    // 2. A genuine copy's whole metadata (its proof included) moved into a namespace labelled
    //    disabled.
    let disabled = namespace(node, "trust-disabled", Some("disabled"));
    let moved_before = tenant_secret(
        &disabled,
        "tenant-2",
        &labels,
        &genuine["metadata"]["annotations"],
    );
    // 3. A user's own docker-registry Secret, labelled like a copy, in a meshed namespace
    //    before its first pod: the pod is admitted with a warning, the Secret is not written.
    let own = namespace(node, "trust-own", Some("enabled"));
    let own_before = tenant_secret(&own, "tenant-3", &labels, &annotations);
    let created = pending_pod(&own, "app");
    let warning = String::from_utf8_lossy(&created.stderr);
    assert!(
        warning.contains(&format!(
            "sparrow-mesh: Secret {}/{NAME} is not Sparrow's; mesh image pulls may fail",
            own.name
        )),
        "kubectl prints the admission warning: {warning}"
    );

    // A rotation reaches the genuine copy and none of the others.
    let rotated = mesh.rotate("robot-trust-2");
    wait_until("the genuine copy to be rotated", LIMIT, || {
        let now = secret(&meshed)?;
        (secret_user(&now).as_deref() == Some(rotated.user.as_str())).then_some(())
    });
    // The old controller wrote every labelled Secret within about 12 s of such a change; the
    // resync and the watch have had that long.
    std::thread::sleep(Duration::from_secs(15));
    assert_untouched(&plain, &plain_before, "tenant-1", "after the rotation");
    assert_untouched(&disabled, &moved_before, "tenant-2", "after the rotation");
    assert_untouched(&own, &own_before, "tenant-3", "after the rotation");

    // A copy edited by hand: its annotations still say current; its data says otherwise.
    let edited = json!({"data": {".dockerconfigjson": plain_before["data"][".dockerconfigjson"]}});
    meshed.kubectl(&["patch", "secret", NAME, "-p", &edited.to_string()]);
    let started = Instant::now();
    wait_until("the edited copy to be repaired", LIMIT, || {
        let now = secret(&meshed)?;
        (secret_user(&now).as_deref() == Some(rotated.user.as_str())).then_some(())
    });
    let repaired_in = started.elapsed();
    println!("trust: a copy edited by hand was repaired in {repaired_in:.2?}");
    assert!(repaired_in < REPAIR_LIMIT, "repaired after {repaired_in:?}");

    let out = sparrowctl(node, &["status"], None);
    let status = String::from_utf8_lossy(&out.stdout);
    // Other tests' namespaces may hold injected pods (and so copies) too: only staleness and
    // the lookalikes are this test's to judge.
    assert!(
        status
            .lines()
            .any(|l| l.contains("copies: ") && l.ends_with("(0 stale)")),
        "{status}"
    );
    for ns in [&plain, &disabled, &own] {
        assert!(
            status.contains(&format!(
                "Secret {}/{NAME} is not Sparrow's (it lacks the controller's proof): left untouched",
                ns.name
            )),
            "{status}"
        );
    }

    drop(mesh);
    assert!(secret(&meshed).is_none(), "the genuine copy is removed");
    assert_untouched(&plain, &plain_before, "tenant-1", "after remove");
    assert_untouched(&disabled, &moved_before, "tenant-2", "after remove");
    assert_untouched(&own, &own_before, "tenant-3", "after remove");
    let _ = node.delete_registry_user(&rotated.user);
}

/// The flags of a `deploy` again from the mesh's registry, without any credential flag.
fn deploy_again_without_credentials(mesh: &Mesh) -> String {
    let images = mesh_images();
    sparrowctl_ok(
        mesh.node,
        &[
            "deploy",
            "--images-from",
            &images.to_string_lossy(),
            "--registry-server",
            &mesh.registry,
            "--skip-registry-check",
        ],
        None,
    )
}

fn controller_pull_secrets(node: &Node) -> Value {
    let deployment = node.get_json(&["-n", "sparrow-mesh", "deployment", "sparrow-controller"]);
    deployment["spec"]["template"]["spec"]["imagePullSecrets"].clone()
}

#[test]
fn the_mesh_keeps_and_restores_what_an_operator_breaks() {
    let node = Node::require();
    let mesh = Mesh::deploy(node, "recover", &[]);
    let meshed = namespace(node, "recover", Some("enabled"));
    pending_pod(&meshed, "app");
    wait_until("the copy", LIMIT, || secret(&meshed));

    // deploy without credential flags keeps pulling with the stored credential.
    let out = deploy_again_without_credentials(&mesh);
    assert!(
        out.contains(
            "keeping the stored registry credential (Secret sparrow-mesh/sparrow-registry-key)"
        ),
        "{out}"
    );
    assert_eq!(
        controller_pull_secrets(node),
        json!([{ "name": NAME }]),
        "the controller still pulls with the pull secret"
    );

    // remove, then deploy: the pod still carries the sidecar, so its namespace gets its copy
    // back from the new controller without any new pod.
    drop(mesh);
    assert!(secret(&meshed).is_none(), "remove deleted the copy");
    let mesh = Mesh::deploy(node, "recover-2", &[]);
    let started = Instant::now();
    wait_until(
        "the copy to come back after remove and deploy",
        LIMIT,
        || {
            let copy = secret(&meshed)?;
            (secret_user(&copy).as_deref() == Some(mesh.creds.user.as_str())).then_some(())
        },
    );
    println!(
        "trust: after remove and deploy the copy came back in {:.2?}",
        started.elapsed()
    );

    // The source deleted: status fails and says what to do.
    node.kubectl(&["-n", "sparrow-mesh", "delete", "secret", NAME]);
    let out = sparrowctl(node, &["status"], None);
    let status = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{status}");
    assert!(
        status.contains(
            "problem: Secret sparrow-mesh/sparrow-registry-key is gone, yet the controller pulls its image with it"
        ),
        "{status}"
    );
    // The controller says it too, with an Event on the missing Secret.
    wait_until("the SourcePullSecretMissing Event", LIMIT, || {
        let events = node.get_json(&[
            "-n",
            "sparrow-mesh",
            "events",
            "--field-selector",
            "reason=SourcePullSecretMissing",
        ]);
        let note = events["items"].as_array()?.first()?["message"]
            .as_str()?
            .to_owned();
        note.contains("Secret sparrow-mesh/sparrow-registry-key was deleted")
            .then_some(())
    });
    drop(mesh);
}
