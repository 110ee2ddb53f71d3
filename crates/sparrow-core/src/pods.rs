//! Pod rules shared by the crates that build or read pods: which pods carry the sidecar (one
//! rule for the webhook, which never injects twice, and for the controller and `remove`, for
//! which such a namespace needs the pull-secret copy), and container resource quantities.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::names::{INJECT_STATUS_ANNOTATION, INJECT_STATUS_INJECTED, PROXY_CONTAINER};

/// True for a pod that carries the sidecar: annotated `injector.sparrow-mesh.io/status:
/// injected`, or with a `sparrow-proxy` container (a native sidecar sits among the init
/// containers). Either way it pulls the proxy image with the registry pull secret.
pub fn carries_sidecar(pod: &Pod) -> bool {
    let annotated = annotated_injected(&pod.metadata);
    let has_proxy = pod.spec.as_ref().is_some_and(|spec| {
        let init = spec.init_containers.iter().flatten();
        spec.containers
            .iter()
            .chain(init)
            .any(|c| c.name == PROXY_CONTAINER)
    });
    annotated || has_proxy
}

/// The half of [`carries_sidecar`] that metadata alone shows (for metadata-only lists): the
/// annotation `injector.sparrow-mesh.io/status: injected`, which injection always sets.
pub fn annotated_injected(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(INJECT_STATUS_ANNOTATION))
        .is_some_and(|v| v == INJECT_STATUS_INJECTED)
}

/// Resource requests or limits from `(resource, quantity)` pairs, e.g.
/// `quantities(&[("cpu", "100m"), ("memory", "20Mi")])`.
pub fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).expect("pod")
    }

    #[test]
    fn quantities_map_each_resource_to_its_quantity() {
        let q = quantities(&[("cpu", "100m"), ("memory", "20Mi")]);
        assert_eq!(q.len(), 2);
        assert_eq!(q["cpu"], Quantity("100m".to_owned()));
        assert_eq!(q["memory"], Quantity("20Mi".to_owned()));
        assert!(quantities(&[]).is_empty());
    }

    #[test]
    fn the_annotation_or_a_proxy_container_means_the_sidecar_is_there() {
        let cases = [
            (
                serde_json::json!({"spec": {"containers": [{"name": "web"}]}}),
                false,
            ),
            (serde_json::json!({}), false),
            (
                serde_json::json!({"metadata": {"annotations": {"injector.sparrow-mesh.io/status": "injected"}}}),
                true,
            ),
            (
                serde_json::json!({"metadata": {"annotations": {"injector.sparrow-mesh.io/status": "skipped"}}}),
                false,
            ),
            (
                serde_json::json!({"spec": {"containers": [{"name": "web"}, {"name": "sparrow-proxy"}]}}),
                true,
            ),
            (
                serde_json::json!({"spec": {"containers": [{"name": "web"}], "initContainers": [{"name": "sparrow-proxy", "restartPolicy": "Always"}]}}),
                true,
            ),
            (
                serde_json::json!({"spec": {"containers": [{"name": "web"}], "initContainers": [{"name": "sparrow-init"}]}}),
                false,
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(carries_sidecar(&pod(json.clone())), expected, "{json}");
        }
    }
}
