//! Real pulls from the private registry: containerd pulls through the kubelet with the pod's
//! imagePullSecrets, and refuses without them or after the password changed, with Events that
//! name the authorization failure.

use std::time::Duration;

use serde_json::{Value, json};
use sparrow_testnode::{Credentials, Node, TestNamespace, pull_secret, wait_until};

const LIMIT: Duration = Duration::from_secs(300);

/// A pod spec that always pulls, so every pod proves its own credentials (no cached image).
fn pod_spec(image: &str, secret: Option<&str>) -> Value {
    let mut spec =
        json!({ "containers": [{ "name": "app", "image": image, "imagePullPolicy": "Always" }] });
    if let Some(secret) = secret {
        spec["imagePullSecrets"] = json!([{ "name": secret }]);
    }
    spec
}

fn pod(ns: &str, name: &str, image: &str, secret: Option<&str>) -> Value {
    json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": name, "namespace": ns }, "spec": pod_spec(image, secret) })
}

/// Waits for the kubelet's Events on `pod` to report a failed pull naming the registry's refusal,
/// and for the pod to wait in ErrImagePull or ImagePullBackOff; returns the failure message.
fn await_refused_pull(ns: &TestNamespace, pod: &str, image: &str) -> String {
    let selector = format!("involvedObject.kind=Pod,involvedObject.name={pod}");
    let message = wait_until(
        &format!("a failed pull of {image} in the Events of pod {pod}"),
        LIMIT,
        || {
            let events = ns.get_json(&["events", "--field-selector", &selector]);
            events["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|e| {
                    let message = e["message"].as_str()?;
                    (e["reason"] == "Failed" && message.contains(image)).then(|| message.to_owned())
                })
        },
    );
    let reason = wait_until(&format!("pod {pod} waiting on its image"), LIMIT, || {
        let status = ns.get_json(&["pod", pod]);
        let reason = status["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
            .as_str()?
            .to_owned();
        ["ErrImagePull", "ImagePullBackOff"]
            .contains(&reason.as_str())
            .then_some(reason)
    });
    assert!(!reason.is_empty());
    message
}

fn assert_names_authorization_failure(message: &str) {
    assert!(
        message.contains("401 Unauthorized"),
        "the Event names the registry's refusal: {message}"
    );
}

#[test]
fn pulls_from_the_private_registry_need_the_current_credentials() {
    let node = Node::require();
    let ns = TestNamespace::create(node, "pull");
    let creds = Credentials::random(&format!("u-{}", ns.name));
    node.registry_user(&creds).expect("registry user");
    let image = node
        .push_image("httpecho", &format!("{}/httpecho", ns.name), &creds)
        .expect("push");
    let mut secret = pull_secret("regcred", &node.registry, &creds);
    secret["metadata"]["namespace"] = ns.name.clone().into();
    node.apply(&secret);

    // With the secret: the Deployment becomes Available, so containerd pulled with the credentials.
    node.apply(&json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": "echo", "namespace": ns.name },
        "spec": {
            "selector": { "matchLabels": { "app": "echo" } },
            "template": { "metadata": { "labels": { "app": "echo" } }, "spec": pod_spec(&image, Some("regcred")) }
        }
    }));
    ns.kubectl(&[
        "wait",
        "--for=condition=Available",
        "deployment/echo",
        "--timeout=300s",
    ]);
    let pods = ns.get_json(&["pods", "-l", "app=echo"]);
    assert_eq!(
        pods["items"][0]["status"]["containerStatuses"][0]["image"],
        image.as_str(),
        "{pods}"
    );

    // Without it: refused, and the Events say why.
    node.apply(&pod(&ns.name, "no-secret", &image, None));
    assert_names_authorization_failure(&await_refused_pull(&ns, "no-secret", &image));

    // The password changes in the registry: the old secret no longer pulls.
    let changed = Credentials::random(&creds.user);
    node.registry_user(&changed).expect("password change");
    node.apply(&pod(&ns.name, "old-secret", &image, Some("regcred")));
    assert_names_authorization_failure(&await_refused_pull(&ns, "old-secret", &image));

    node.delete_registry_user(&creds.user)
        .expect("delete registry user");
}
