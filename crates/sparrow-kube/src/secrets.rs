//! Ownership and content of pull secrets.

use k8s_openapi::api::core::v1::Secret;
use sparrow_core::manifests::DOCKER_CONFIG_JSON_KEY;
use sparrow_core::names::{USAGE_LABEL, USAGE_LABEL_VALUE};

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
