//! The webhook client CA as `deploy` finds it: the ConfigMap an earlier
//! `deploy --webhook-client-ca` stored, kept by a deploy without the flag and dropped by
//! `--no-webhook-client-ca`. Only a ConfigMap carrying this mesh's marker is read or deleted.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use sparrow_core::Kind;
use sparrow_core::inventory::describe;
use sparrow_core::names::{WEBHOOK_CLIENT_CA_KEY, WEBHOOK_CLIENT_CA_NAME};
use sparrow_core::ownership::belongs_to;

use crate::error::ClusterError;
use crate::parts::delete_exact;
use crate::timed;

/// The client CA's ConfigMap in the mesh namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredClientCa {
    /// The PEM text it holds (empty when the key is missing).
    pub pem: String,
    /// Its uid, so that a delete removes exactly what was read.
    pub uid: Option<String>,
}

fn what(mesh: &str) -> String {
    describe(Kind::ConfigMap, Some(mesh), WEBHOOK_CLIENT_CA_NAME)
}

/// The stored client CA of the mesh in `mesh`, `None` when there is none. A ConfigMap of that
/// name without this mesh's marker is someone else's: an error, before anything is written.
pub async fn stored_client_ca(
    client: &kube::Client,
    mesh: &str,
    timeout: Duration,
) -> Result<Option<StoredClientCa>, ClusterError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), mesh);
    let action = format!("reading {}", what(mesh));
    let Some(map) = timed(&action, timeout, api.get_opt(WEBHOOK_CLIENT_CA_NAME)).await? else {
        return Ok(None);
    };
    if !belongs_to(map.metadata.labels.as_ref(), mesh) {
        return Err(ClusterError::ForeignObject { object: what(mesh) });
    }
    let pem = map
        .data
        .and_then(|mut d| d.remove(WEBHOOK_CLIENT_CA_KEY))
        .unwrap_or_default();
    Ok(Some(StoredClientCa {
        pem,
        uid: map.metadata.uid,
    }))
}

/// Deletes the stored client CA read as `stored` (only that object). `Ok(false)` when it was
/// gone already.
pub async fn delete_client_ca(
    client: &kube::Client,
    mesh: &str,
    stored: &StoredClientCa,
    timeout: Duration,
) -> Result<bool, ClusterError> {
    let api = crate::parts::api(client, Kind::ConfigMap, Some(mesh));
    let action = format!("deleting {}", what(mesh));
    delete_exact(
        &api,
        WEBHOOK_CLIENT_CA_NAME,
        stored.uid.clone(),
        &action,
        timeout,
    )
    .await
}
