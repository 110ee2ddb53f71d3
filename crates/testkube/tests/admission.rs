//! Mutating admission webhooks called over TLS: dry runs and side effects.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Webhook, encode_patch, raw};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use testkube::TestCluster;

fn webhook_config(name: &str, client_config: Value, extra: Value) -> Value {
    let mut hook = json!({
        "name": name,
        "clientConfig": client_config,
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
        "namespaceSelector": {"matchExpressions": [
            {"key": "injector.sparrow-mesh.io/auto-inject", "operator": "In", "values": ["enabled"]}
        ]},
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": "Fail",
        "timeoutSeconds": 5
    });
    if let (Some(h), Some(e)) = (hook.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            h.insert(k.clone(), v.clone());
        }
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [hook]
    })
}

async fn install(cluster: &TestCluster, config: &Value) {
    let (code, body, _) = raw(
        cluster,
        "POST",
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        "application/json",
        config.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, 201, "{body}");
}

fn service_ref(ca_bundle: &str) -> Value {
    json!({"service": {"namespace": "sparrow-mesh", "name": "sparrow-controller", "path": "/inject", "port": 443}, "caBundle": ca_bundle})
}

/// The injection the real webhook performs, reduced: add a sidecar and an annotation.
fn inject(request: &Value) -> Value {
    let patch = json!([
        {"op": "add", "path": "/spec/containers/-", "value": {"name": "sparrow-proxy", "image": "ghcr.io/sparrow-mesh/sparrow-proxy:0.1.0"}},
        {"op": "add", "path": "/metadata/annotations", "value": {"injector.sparrow-mesh.io/status": "injected"}}
    ]);
    assert_eq!(request["kind"]["kind"], "Pod");
    json!({"allowed": true, "patchType": "JSONPatch", "patch": encode_patch(&patch), "warnings": ["pod was injected"]})
}

#[tokio::test]
async fn dry_run_reaches_side_effect_free_webhooks_and_stores_nothing() {
    let cluster = TestCluster::start().await.expect("start");
    let saw_dry_run = Arc::new(AtomicUsize::new(0));
    let flag = saw_dry_run.clone();
    let hook = Webhook::start("sparrow-controller.sparrow-mesh.svc", move |req| {
        if req["dryRun"] == true {
            flag.fetch_add(1, Ordering::SeqCst);
        }
        inject(req)
    })
    .await;
    cluster.set_service_endpoint("sparrow-mesh", "sparrow-controller", hook.addr);
    install(
        &cluster,
        &webhook_config(
            "inject",
            service_ref(&hook.ca_bundle),
            json!({"namespaceSelector": {}}),
        ),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .expect("pod");
    let dry = pods
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &pod,
        )
        .await
        .expect("dry run");
    assert_eq!(
        dry.spec.map(|s| s.containers.len()),
        Some(2),
        "mutated in the dry-run answer"
    );
    assert_eq!(saw_dry_run.load(Ordering::SeqCst), 1);
    assert!(cluster.object("pods", "default", "p").is_none());
    // A webhook with side effects makes dry-run requests fail, as in the real API.
    let (code, _, _) = raw(
        &cluster,
        "DELETE",
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/inject",
        "application/json",
        Vec::new(),
    )
    .await;
    assert_eq!(code, 200);
    install(
        &cluster,
        &webhook_config(
            "effects",
            service_ref(&hook.ca_bundle),
            json!({"namespaceSelector": {}, "sideEffects": "Some"}),
        ),
    )
    .await;
    let err = pods
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &pod,
        )
        .await
        .expect_err("unsupported");
    assert!(
        err.to_string().contains("does not support dry run"),
        "{err}"
    );
}
