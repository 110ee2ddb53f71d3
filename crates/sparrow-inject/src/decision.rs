//! Whether a pod gets the sidecar. Agrees with the webhook selectors that
//! `sparrow_core::manifests::injector_webhooks` renders, so the API server's filtering and
//! ours never disagree: the pod label wins over the namespace label, a pod labelled
//! `disabled` never gets it, `--enabled-namespaces` wins over namespace labels, and the
//! system namespaces and the mesh namespace are never injected.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::Pod;
use sparrow_core::names::{AUTO_INJECT_LABEL, NAMESPACE_NAME_LABEL, SYSTEM_NAMESPACES};

use crate::InjectConfig;

/// What to do with a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Add the sidecar.
    Inject,
    /// Leave the pod as it is.
    Skip(SkipReason),
}

/// Why a pod is left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// The pod is in `kube-system`, `kube-public` or `kube-node-lease`.
    SystemNamespace,
    /// The pod is in the mesh's own namespace.
    MeshNamespace,
    /// The pod shares the node's network; redirecting it would redirect the node.
    HostNetwork,
    /// The pod already has `sparrow-proxy` or the injected status annotation.
    AlreadyInjected,
    /// The pod is labelled `injector.sparrow-mesh.io/auto-inject: disabled`.
    DisabledByPodLabel,
    /// The namespace is labelled `disabled` and the pod not `enabled`.
    DisabledByNamespaceLabel,
    /// Auto-injection is off and neither the namespace (label or `--enabled-namespaces`)
    /// nor the pod is enabled.
    NotEnabled,
}

impl SkipReason {
    /// A stable, short name (metrics labels, log fields).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SystemNamespace => "system-namespace",
            Self::MeshNamespace => "mesh-namespace",
            Self::HostNetwork => "host-network",
            Self::AlreadyInjected => "already-injected",
            Self::DisabledByPodLabel => "pod-disabled",
            Self::DisabledByNamespaceLabel => "namespace-disabled",
            Self::NotEnabled => "not-enabled",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::SystemNamespace => "system namespaces are never injected",
            Self::MeshNamespace => "the mesh's own namespace is never injected",
            Self::HostNetwork => "pods with hostNetwork are never injected",
            Self::AlreadyInjected => "the pod already has the sidecar",
            Self::DisabledByPodLabel => "the pod is labelled auto-inject=disabled",
            Self::DisabledByNamespaceLabel => "the namespace is labelled auto-inject=disabled",
            Self::NotEnabled => {
                "auto-injection is disabled and neither the namespace nor the pod is enabled"
            }
        };
        f.write_str(text)
    }
}

/// The pod has the sidecar already (one rule for the webhook and the controller:
/// [`sparrow_core::carries_sidecar`]).
pub fn has_sidecar(pod: &Pod) -> bool {
    sparrow_core::carries_sidecar(pod)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Switch {
    Enabled,
    Disabled,
    Unset,
}

fn switch(labels: Option<&BTreeMap<String, String>>) -> Switch {
    match labels
        .and_then(|l| l.get(AUTO_INJECT_LABEL))
        .map(String::as_str)
    {
        Some("enabled") => Switch::Enabled,
        Some("disabled") => Switch::Disabled,
        _ => Switch::Unset,
    }
}

/// Rules that hold whatever the namespace says, in the order they are checked.
fn namespace_name_and_pod_rules(
    pod: &Pod,
    namespace: Option<&str>,
    config: &InjectConfig,
) -> Option<SkipReason> {
    if let Some(ns) = namespace {
        if SYSTEM_NAMESPACES.contains(&ns) {
            return Some(SkipReason::SystemNamespace);
        }
        if ns == config.mesh_namespace {
            return Some(SkipReason::MeshNamespace);
        }
    }
    if pod
        .spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
    {
        return Some(SkipReason::HostNetwork);
    }
    if has_sidecar(pod) {
        return Some(SkipReason::AlreadyInjected);
    }
    if switch(pod.metadata.labels.as_ref()) == Switch::Disabled {
        return Some(SkipReason::DisabledByPodLabel);
    }
    None
}

/// Decides for a pod being admitted into a namespace with `namespace_labels`.
///
/// The namespace's name is its `kubernetes.io/metadata.name` label (which Kubernetes sets on
/// every namespace), or else the pod's `metadata.namespace`.
pub fn decide(
    pod: &Pod,
    namespace_labels: &BTreeMap<String, String>,
    config: &InjectConfig,
) -> Decision {
    let namespace = namespace_labels
        .get(NAMESPACE_NAME_LABEL)
        .map(String::as_str)
        .or(pod.metadata.namespace.as_deref());
    if let Some(reason) = namespace_name_and_pod_rules(pod, namespace, config) {
        return Decision::Skip(reason);
    }
    if switch(pod.metadata.labels.as_ref()) == Switch::Enabled {
        return Decision::Inject;
    }
    let namespace_switch = switch(Some(namespace_labels));
    if config.disable_auto_inject {
        let listed = namespace.is_some_and(|ns| config.enabled_namespaces.iter().any(|e| e == ns));
        if listed || namespace_switch == Switch::Enabled {
            Decision::Inject
        } else {
            Decision::Skip(SkipReason::NotEnabled)
        }
    } else if namespace_switch == Switch::Disabled {
        Decision::Skip(SkipReason::DisabledByNamespaceLabel)
    } else {
        Decision::Inject
    }
}

/// Decides for an explicit request (`sparrowctl inject`), where the namespace's labels are not
/// known and asking is the point: only the rules about the pod itself and the namespace's name
/// (when the manifest gives one) apply.
pub fn decide_manual(pod: &Pod, namespace: Option<&str>, config: &InjectConfig) -> Decision {
    match namespace_name_and_pod_rules(pod, namespace, config) {
        Some(reason) => Decision::Skip(reason),
        None => Decision::Inject,
    }
}

#[cfg(test)]
mod tests;
