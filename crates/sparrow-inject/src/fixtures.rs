//! Builders for test pods.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, LocalObjectReference, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// A pod named `name` in `namespace` with one container per name in `containers`.
pub fn mk_pod(namespace: &str, name: &str, containers: &[&str]) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: containers
                .iter()
                .map(|c| Container {
                    name: (*c).to_owned(),
                    image: Some(format!("registry.example.com/{c}:1.0")),
                    ..Container::default()
                })
                .collect(),
            ..PodSpec::default()
        }),
        status: None,
    }
}

/// Builder-style changes to a fixture pod.
pub trait PodExt {
    /// Adds a label.
    fn label(self, key: &str, value: &str) -> Self;
    /// Adds an annotation.
    fn annotate(self, key: &str, value: &str) -> Self;
    /// Sets `hostNetwork`.
    fn host_network(self) -> Self;
    /// Sets `imagePullSecrets` to these names.
    fn pull_secrets(self, names: &[&str]) -> Self;
}

impl PodExt for Pod {
    fn label(mut self, key: &str, value: &str) -> Self {
        self.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value.to_owned());
        self
    }
    fn annotate(mut self, key: &str, value: &str) -> Self {
        self.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_owned(), value.to_owned());
        self
    }
    fn host_network(mut self) -> Self {
        if let Some(spec) = self.spec.as_mut() {
            spec.host_network = Some(true);
        }
        self
    }
    fn pull_secrets(mut self, names: &[&str]) -> Self {
        if let Some(spec) = self.spec.as_mut() {
            spec.image_pull_secrets = Some(
                names
                    .iter()
                    .map(|n| LocalObjectReference {
                        name: (*n).to_owned(),
                    })
                    .collect(),
            );
        }
        self
    }
}

/// Namespace labels as Kubernetes sets them, plus `extra`.
pub fn ns_labels(namespace: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([(
        sparrow_core::names::NAMESPACE_NAME_LABEL.to_owned(),
        namespace.to_owned(),
    )]);
    for (k, v) in extra {
        labels.insert((*k).to_owned(), (*v).to_owned());
    }
    labels
}
