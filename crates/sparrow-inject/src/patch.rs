//! The JSON Patch that injects a pod. Every operation adds only what is missing, so the patch
//! of an injected pod is empty and injecting twice equals injecting once.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{Value, json};
use sparrow_core::names::{
    INIT_CONTAINER, INJECT_STATUS_ANNOTATION, INJECT_STATUS_INJECTED, PROXY_CONTAINER,
    PULL_SECRET_NAME,
};

use crate::containers::{init_container, proxy_container};
use crate::ports::{
    SKIP_INBOUND_PORTS_ANNOTATION, SKIP_OUTBOUND_PORTS_ANNOTATION, annotated_ranges,
};
use crate::{InjectConfig, InjectError};

/// An `add` at the path made of `tokens`; each token is escaped (`~` -> `~0`, `/` -> `~1`).
fn add(tokens: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(tokens.iter().copied()),
        value,
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, InjectError> {
    serde_json::to_value(value).map_err(InjectError::Json)
}

fn has_container(list: &[Container], name: &str) -> bool {
    list.iter().any(|c| c.name == name)
}

/// Injection with a fixed configuration: the containers' JSON is built once, not per pod
/// (the webhook's hot path). [`patch`] is the one-off form.
#[derive(Debug, Clone)]
pub struct Injector {
    config: InjectConfig,
    proxy: Value,
    /// The init container for pods without skip-port annotations (most of them).
    default_init: Value,
}

impl Injector {
    /// Prepares the containers of `config`.
    pub fn new(config: InjectConfig) -> Result<Self, InjectError> {
        let proxy = to_json(&proxy_container(&config))?;
        let default_init = to_json(&init_container(&config, &[], &[]))?;
        Ok(Self {
            config,
            proxy,
            default_init,
        })
    }

    /// The configuration injected with.
    pub fn config(&self) -> &InjectConfig {
        &self.config
    }

    /// The patch that gives `pod` the sidecar: the `sparrow-init` init container (appended:
    /// the user's init containers run before the redirect exists), the `sparrow-proxy`
    /// container, `sparrow-registry-key` in `imagePullSecrets` (list created when absent,
    /// never twice, the user's entries and those the ServiceAccount admission plugin added
    /// kept), and the `injector.sparrow-mesh.io/status: injected` annotation.
    ///
    /// It does not decide: call [`crate::decide`] first. It fails only on an invalid
    /// `config.sparrow-mesh.io/skip-*-ports` annotation.
    pub fn patch(&self, pod: &Pod) -> Result<Patch, InjectError> {
        let annotations = pod.metadata.annotations.as_ref();
        let skip_inbound = annotated_ranges(annotations, SKIP_INBOUND_PORTS_ANNOTATION)?;
        let skip_outbound = annotated_ranges(annotations, SKIP_OUTBOUND_PORTS_ANNOTATION)?;
        let init = if skip_inbound.is_empty() && skip_outbound.is_empty() {
            self.default_init.clone()
        } else {
            to_json(&init_container(&self.config, &skip_inbound, &skip_outbound))?
        };
        let proxy = self.proxy.clone();
        let pull_secret = json!({ "name": PULL_SECRET_NAME });

        let mut ops = Vec::new();
        match &pod.spec {
            None => ops.push(add(
                &["spec"],
                json!({
                    "initContainers": [init],
                    "containers": [proxy],
                    "imagePullSecrets": [pull_secret],
                }),
            )),
            Some(spec) => {
                match spec.init_containers.as_deref() {
                    None => ops.push(add(&["spec", "initContainers"], json!([init]))),
                    Some(list) if !has_container(list, INIT_CONTAINER) => {
                        ops.push(add(&["spec", "initContainers", "-"], init));
                    }
                    Some(_) => {}
                }
                if !has_container(&spec.containers, PROXY_CONTAINER) {
                    ops.push(add(&["spec", "containers", "-"], proxy));
                }
                match spec.image_pull_secrets.as_deref() {
                    None => ops.push(add(&["spec", "imagePullSecrets"], json!([pull_secret]))),
                    Some(list) if !list.iter().any(|r| r.name == PULL_SECRET_NAME) => {
                        ops.push(add(&["spec", "imagePullSecrets", "-"], pull_secret));
                    }
                    Some(_) => {}
                }
            }
        }
        match annotations {
            None => ops.push(add(
                &["metadata", "annotations"],
                json!({ INJECT_STATUS_ANNOTATION: INJECT_STATUS_INJECTED }),
            )),
            Some(map)
                if map.get(INJECT_STATUS_ANNOTATION).map(String::as_str)
                    != Some(INJECT_STATUS_INJECTED) =>
            {
                ops.push(add(
                    &["metadata", "annotations", INJECT_STATUS_ANNOTATION],
                    json!(INJECT_STATUS_INJECTED),
                ));
            }
            Some(_) => {}
        }
        Ok(Patch(ops))
    }
}

/// The patch that gives `pod` the sidecar (see [`Injector::patch`]); for many pods with one
/// configuration, an [`Injector`] saves rebuilding the containers each time.
pub fn patch(pod: &Pod, config: &InjectConfig) -> Result<Patch, InjectError> {
    Injector::new(config.clone())?.patch(pod)
}

/// `pod` with [`patch`] applied (for `sparrowctl inject`; does not decide either).
pub fn inject_pod(pod: &Pod, config: &InjectConfig) -> Result<Pod, InjectError> {
    let ops = patch(pod, config)?;
    let mut value = to_json(pod)?;
    json_patch::patch(&mut value, &ops).map_err(InjectError::Patch)?;
    serde_json::from_value(value).map_err(InjectError::Json)
}

#[cfg(test)]
mod tests;
