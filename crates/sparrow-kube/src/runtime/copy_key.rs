//! The key copies are proven with ([`sparrow_core::ownership`]): Secret `sparrow-copy-key` in
//! the mesh namespace, made by the first replica that starts without one and read by every
//! other. It is never replaced: a new key would disown every copy made with the old one.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use sparrow_core::manifests::owned_labels;
use sparrow_core::names::{CONTROLLER_NAME, COPY_KEY_DATA_KEY, COPY_KEY_SECRET_NAME};
use sparrow_core::ownership::CopyKey;

use crate::error::{ClusterError, is_already_exists};
use crate::secrets::read_copy_key;
use crate::within;

/// The Secret holding `key` for the mesh in `mesh`, labelled as the mesh's (so `remove`
/// deletes it and counts it as the mesh's own in the namespace).
pub fn copy_key_secret(mesh: &str, key: &CopyKey) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(COPY_KEY_SECRET_NAME.to_owned()),
            namespace: Some(mesh.to_owned()),
            labels: Some(owned_labels(mesh, CONTROLLER_NAME)),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            COPY_KEY_DATA_KEY.to_owned(),
            ByteString(key.bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

/// A new random key.
fn random_key() -> Result<CopyKey, ClusterError> {
    let mut bytes = [0u8; CopyKey::LEN];
    getrandom::fill(&mut bytes)
        .map_err(|e| ClusterError::Internal(format!("no randomness for the copy key: {e}")))?;
    CopyKey::from_bytes(&bytes).map_err(|e| ClusterError::Internal(e.to_string()))
}

/// The mesh's copy key: read, or made when there is none. Two replicas starting at once both
/// try to create it; the loser reads the winner's.
pub async fn ensure_copy_key(
    client: &kube::Client,
    mesh: &str,
    timeout: Duration,
) -> Result<CopyKey, ClusterError> {
    if let Some(key) = read_copy_key(client, mesh, timeout).await? {
        return Ok(key);
    }
    let key = random_key()?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), mesh);
    let action = format!("creating Secret {mesh}/{COPY_KEY_SECRET_NAME}");
    let secret = copy_key_secret(mesh, &key);
    match within(
        &action,
        timeout,
        secrets.create(&PostParams::default(), &secret),
    )
    .await?
    {
        Ok(_) => {
            tracing::info!(%mesh, "made the key pull-secret copies are proven with");
            Ok(key)
        }
        Err(error) if is_already_exists(&error) => read_copy_key(client, mesh, timeout)
            .await?
            .ok_or_else(|| ClusterError::BadCopyKey {
                namespace: mesh.to_owned(),
                detail: "it is not this mesh's (no sparrow-mesh.io/mesh label)".to_owned(),
            }),
        Err(error) => Err(ClusterError::api(action, error)),
    }
}
