//! AdmissionReview -> the webhook's answer -> the JSON Patch applied to the reviewed object.
//!
//! Whatever the body, the webhook answers without panicking; when it answers with a patch,
//! the patch applies to the request's object with json-patch and leaves a Pod that still
//! deserialises, with the sidecar. The input is taken two ways (first byte even: the whole
//! body; odd: the Pod object, wrapped in a valid review), so both the review's envelope and
//! the pod's shape get explored.

#![no_main]

use std::sync::{Arc, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::Pod;
use libfuzzer_sys::fuzz_target;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use sparrow_controller::{AdmissionMetrics, StaticNamespaceLabels, Webhook};
use sparrow_inject::{InjectConfig, Injector};

fn webhook() -> &'static Webhook {
    static WEBHOOK: OnceLock<Webhook> = OnceLock::new();
    WEBHOOK.get_or_init(|| {
        let namespaces =
            StaticNamespaceLabels::with_switches(&[("shop", None), ("legacy", Some("disabled"))]);
        Webhook::new(
            Injector::new(InjectConfig::default()).expect("the default injector"),
            Arc::new(namespaces),
            None,
            AdmissionMetrics::register(&mut Registry::default()),
        )
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
    })
}

/// The odd-byte mode: `object` as the Pod of a valid CREATE review in `shop`.
fn wrap(object: &[u8]) -> Option<Vec<u8>> {
    let object: Value = serde_json::from_slice(object).ok()?;
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "fuzz",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "shop",
            "operation": "CREATE",
            "object": object,
        }
    }))
    .ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let body = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        match wrap(rest) {
            Some(body) => body,
            None => return,
        }
    };
    let Ok(outcome) = runtime().block_on(webhook().review(&body)) else {
        return; // an unreadable review: HTTP 400, nothing to apply
    };
    let answer: Value = serde_json::from_slice(&outcome.body).expect("the answer is JSON");
    let response = &answer["response"];
    assert!(response["allowed"].is_boolean(), "{answer}");
    let Some(patch) = response["patch"].as_str() else {
        return;
    };
    assert_eq!(outcome.result, "injected");
    let patch = STANDARD.decode(patch).expect("the patch is base64");
    let patch: json_patch::Patch = serde_json::from_slice(&patch).expect("the patch is a JSON Patch");
    let review: Value = serde_json::from_slice(&body).expect("an answered review is JSON");
    let mut object = review["request"]["object"].clone();
    json_patch::patch(&mut object, &patch)
        .unwrap_or_else(|e| panic!("the patch does not apply: {e}\nobject: {}", review["request"]["object"]));
    let pod: Pod = serde_json::from_value(object.clone())
        .unwrap_or_else(|e| panic!("the patched object is not a Pod: {e}\n{object}"));
    assert!(
        sparrow_inject::has_sidecar(&pod),
        "the patched pod has no sidecar: {object}"
    );
});
