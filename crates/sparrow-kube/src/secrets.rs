//! Ownership and content of pull secrets.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::ListParams;
use sparrow_core::manifests::DOCKER_CONFIG_JSON_KEY;
use sparrow_core::names::{
    INJECT_STATUS_ANNOTATION, INJECT_STATUS_INJECTED, PULL_SECRET_NAME, USAGE_LABEL,
    USAGE_LABEL_VALUE,
};

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
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(DOCKER_CONFIG_JSON_KEY))
        .ok_or_else(|| format!("no {DOCKER_CONFIG_JSON_KEY} key"))?;
    let config: serde_json::Value = serde_json::from_slice(&bytes.0)
        .map_err(|e| format!("invalid JSON at line {} column {}", e.line(), e.column()))?;
    let auths = config
        .get("auths")
        .and_then(|a| a.as_object())
        .ok_or("no \"auths\" object")?;
    let (key, entry) = auths.iter().next().ok_or("\"auths\" is empty")?;
    let user = entry
        .get("username")
        .and_then(|u| u.as_str())
        .unwrap_or_default()
        .to_owned();
    Ok((key.clone(), user))
}

/// True for a pod that carries the sidecar (`injector.sparrow-mesh.io/status: injected`).
pub fn is_injected(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(INJECT_STATUS_ANNOTATION))
        .is_some_and(|v| v == INJECT_STATUS_INJECTED)
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
