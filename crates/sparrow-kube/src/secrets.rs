//! Ownership and content of pull secrets, and where pods carry the sidecar: shared by the
//! CLI's operations and the controller's runtime.

use std::time::Duration;

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::ListParams;
use sparrow_core::manifests::DOCKER_CONFIG_JSON_KEY;
use sparrow_core::names::{PULL_SECRET_NAME, USAGE_LABEL, USAGE_LABEL_VALUE};
use sparrow_core::{StoredCredential, carries_sidecar};

use crate::error::ClusterError;
use crate::timed;

/// A Secret is ours when it carries `usage=sparrow-registry-key`; anything else named
/// `sparrow-registry-key` belongs to someone else and is never changed or deleted.
pub fn is_ours(secret: &Secret) -> bool {
    labels_are_ours(secret.metadata.labels.as_ref())
}

/// [`is_ours`] on a label map (metadata-only objects).
pub fn labels_are_ours(labels: Option<&std::collections::BTreeMap<String, String>>) -> bool {
    labels
        .and_then(|l| l.get(USAGE_LABEL))
        .is_some_and(|v| v == USAGE_LABEL_VALUE)
}

/// The source-hash of a Secret's data, as copies record it.
pub fn data_hash(secret: &Secret) -> String {
    let data = secret.data.clone().unwrap_or_default();
    sparrow_core::secret_data_hash(data.iter().map(|(k, v)| (k.as_str(), v.0.as_slice())))
}

/// The registry key and username stored in a `.dockerconfigjson` Secret: what `status`
/// may show (never the password).
pub fn registry_and_user(secret: &Secret) -> Result<(String, String), String> {
    let stored = stored_credential(secret)?;
    Ok((stored.registry, stored.username))
}

/// The credential a `.dockerconfigjson` Secret holds (registry, user, kind), or what is wrong
/// with it in one line (never its content).
pub fn stored_credential(secret: &Secret) -> Result<StoredCredential, String> {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(DOCKER_CONFIG_JSON_KEY))
        .ok_or_else(|| format!("no {DOCKER_CONFIG_JSON_KEY} key"))?;
    sparrow_core::stored_credential(&bytes.0).map_err(|e| e.to_string())
}

/// A pod's metadata shows it carries the sidecar: [`sparrow_core::pods::annotated_injected`]
/// (listing full pods, [`namespaces_with_sidecar`] also sees a `sparrow-proxy` container).
pub fn is_injected(meta: &ObjectMeta) -> bool {
    sparrow_core::pods::annotated_injected(meta)
}

/// Pods listed a page at a time: a cluster's pods in full would not fit in memory at once.
const POD_PAGE: u32 = 500;

/// The namespaces (all, or just `namespace`) with a pod that carries the sidecar
/// ([`sparrow_core::carries_sidecar`]), in order.
pub async fn namespaces_with_sidecar(
    client: &kube::Client,
    namespace: Option<&str>,
    timeout: Duration,
) -> Result<BTreeSet<String>, ClusterError> {
    let pods: Api<Pod> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut found = BTreeSet::new();
    let mut params = ListParams::default().limit(POD_PAGE);
    loop {
        let page = timed("listing pods", timeout, pods.list(&params)).await?;
        found.extend(
            page.items
                .iter()
                .filter(|pod| carries_sidecar(pod))
                .filter_map(|pod| pod.metadata.namespace.clone()),
        );
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(found),
        }
    }
}

/// Secrets named `sparrow-registry-key` that Sparrow does not own (`ns/name`), in every
/// namespace: reported, never touched.
pub async fn foreign_pull_secrets(
    client: &kube::Client,
    timeout: Duration,
) -> Result<Vec<String>, ClusterError> {
    let all: Api<Secret> = Api::all(client.clone());
    let same_named = timed(
        "listing Secrets named sparrow-registry-key",
        timeout,
        all.list_metadata(
            &ListParams::default().fields(&format!("metadata.name={PULL_SECRET_NAME}")),
        ),
    )
    .await?;
    Ok(same_named
        .items
        .iter()
        .filter(|m| !labels_are_ours(m.metadata.labels.as_ref()))
        .filter_map(|m| {
            Some(format!(
                "{}/{}",
                m.metadata.namespace.clone()?,
                m.metadata.name.clone()?
            ))
        })
        .collect())
}
