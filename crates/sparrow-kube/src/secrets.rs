//! Ownership and content of pull secrets, and where pods carry the sidecar: shared by the
//! CLI's operations and the controller's runtime.

use std::time::Duration;

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::ListParams;
use sparrow_core::manifests::DOCKER_CONFIG_JSON_KEY;
use sparrow_core::names::{COPY_KEY_DATA_KEY, COPY_KEY_SECRET_NAME, PULL_SECRET_NAME};
use sparrow_core::ownership::{CopyIdentity, CopyKey, belongs_to, is_proven_copy};
use sparrow_core::{StoredCredential, carries_sidecar};

use crate::error::ClusterError;
use crate::timed;

/// The source Secret (in the mesh namespace, which tenants cannot write) is ours when it
/// carries `usage=sparrow-registry-key`; a copy elsewhere must be proven ([`is_proven`]).
pub fn is_ours(secret: &Secret) -> bool {
    sparrow_core::ownership::is_pull_secret(secret.metadata.labels.as_ref())
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

/// What is wrong with a Secret another tool keeps as the mesh's pull secret, in one line
/// (never its content): it must be a `kubernetes.io/dockerconfigjson` Secret whose
/// `.dockerconfigjson` has at least one registry under `auths`.
pub fn external_source_problem(secret: &Secret) -> Option<String> {
    let type_ = secret.type_.as_deref().unwrap_or("Opaque");
    if type_ != sparrow_core::manifests::DOCKER_CONFIG_JSON_TYPE {
        return Some(format!(
            "it is of type {type_}, not {}",
            sparrow_core::manifests::DOCKER_CONFIG_JSON_TYPE
        ));
    }
    stored_credential(secret)
        .err()
        .map(|e| format!("its {DOCKER_CONFIG_JSON_KEY} is unusable: {e}"))
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
    let pods = &pods;
    namespaces_of_pods(
        timeout,
        |params| async move { pods.list(&params).await },
        |pod: &Pod| {
            carries_sidecar(pod)
                .then(|| pod.metadata.namespace.clone())
                .flatten()
        },
    )
    .await
}

/// The namespaces (all) with a pod whose metadata says it carries the sidecar
/// ([`is_injected`]), from a paged list of pods' metadata.
pub async fn namespaces_with_injected_pods(
    client: &kube::Client,
    timeout: Duration,
) -> Result<BTreeSet<String>, ClusterError> {
    let pods: &Api<Pod> = &Api::all(client.clone());
    namespaces_of_pods(
        timeout,
        |params| async move { pods.list_metadata(&params).await },
        |pod: &kube::core::PartialObjectMeta<Pod>| {
            is_injected(&pod.metadata)
                .then(|| pod.metadata.namespace.clone())
                .flatten()
        },
    )
    .await
}

/// Lists pods a page at a time with `list` (pods or their metadata) and collects the
/// namespace `namespace_of` finds in each: a cluster's pods in full would not fit in memory.
async fn namespaces_of_pods<K, Listed>(
    timeout: Duration,
    list: impl Fn(ListParams) -> Listed,
    namespace_of: impl Fn(&K) -> Option<String>,
) -> Result<BTreeSet<String>, ClusterError>
where
    K: Clone,
    Listed: std::future::Future<Output = Result<kube::core::ObjectList<K>, kube::Error>>,
{
    let mut found = BTreeSet::new();
    let mut params = ListParams::default().limit(POD_PAGE);
    loop {
        let page = timed("listing pods", timeout, list(params.clone())).await?;
        found.extend(page.items.iter().filter_map(&namespace_of));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(found),
        }
    }
}

/// The key the mesh in `mesh` proves its copies with, from Secret `sparrow-copy-key` there;
/// `None` when there is none (the controller makes it at its first start) or it is not this
/// mesh's. A key of the wrong length is an error: nothing could be proven with it.
pub async fn read_copy_key(
    client: &kube::Client,
    mesh: &str,
    timeout: Duration,
) -> Result<Option<CopyKey>, ClusterError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), mesh);
    let action = format!("reading Secret {mesh}/{COPY_KEY_SECRET_NAME}");
    let Some(secret) = timed(&action, timeout, secrets.get_opt(COPY_KEY_SECRET_NAME)).await? else {
        return Ok(None);
    };
    copy_key_of(&secret, mesh).map_err(|detail| ClusterError::BadCopyKey {
        namespace: mesh.to_owned(),
        detail,
    })
}

/// The key Secret `secret` holds, if it is the mesh's (its label); what is wrong otherwise.
pub fn copy_key_of(secret: &Secret, mesh: &str) -> Result<Option<CopyKey>, String> {
    if !belongs_to(secret.metadata.labels.as_ref(), mesh) {
        return Ok(None);
    }
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(COPY_KEY_DATA_KEY))
        .ok_or_else(|| format!("no {COPY_KEY_DATA_KEY} key"))?;
    CopyKey::from_bytes(&bytes.0)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// [`is_proven_copy`] on a Secret's metadata.
pub fn is_proven(key: Option<&CopyKey>, mesh: &str, meta: &ObjectMeta) -> bool {
    is_proven_copy(
        key,
        mesh,
        CopyIdentity {
            namespace: meta.namespace.as_deref().unwrap_or_default(),
            name: meta.name.as_deref().unwrap_or_default(),
            uid: meta.uid.as_deref(),
            annotations: meta.annotations.as_ref(),
        },
    )
}

/// Secrets named `sparrow-registry-key` outside the mesh namespace that the mesh cannot
/// prove it made (`ns/name`), in every namespace: reported, never touched.
pub async fn foreign_pull_secrets(
    client: &kube::Client,
    mesh: &str,
    key: Option<&CopyKey>,
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
        .filter(|m| m.metadata.namespace.as_deref() != Some(mesh))
        .filter(|m| !is_proven(key, mesh, &m.metadata))
        .filter_map(|m| {
            Some(format!(
                "{}/{}",
                m.metadata.namespace.clone()?,
                m.metadata.name.clone()?
            ))
        })
        .collect())
}

/// Removes the expiry annotations from the source pull secret in `mesh` when it carries any:
/// a new credential whose expiry nobody knows must not inherit the old one's. (Server-side
/// apply drops what the CLI applied before, but not a date written by hand.) True when it
/// removed them.
pub async fn drop_stale_credential_expiry(
    client: &kube::Client,
    mesh: &str,
    timeout: Duration,
) -> Result<bool, ClusterError> {
    use sparrow_core::names::{
        CREDENTIAL_EXPIRES_ANNOTATION, CREDENTIAL_EXPIRES_SOURCE_ANNOTATION,
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), mesh);
    let action = format!("reading Secret {mesh}/{PULL_SECRET_NAME}");
    let Some(source) = timed(&action, timeout, secrets.get_opt(PULL_SECRET_NAME)).await? else {
        return Ok(false);
    };
    let annotations = source.metadata.annotations.unwrap_or_default();
    let stale = [
        CREDENTIAL_EXPIRES_ANNOTATION,
        CREDENTIAL_EXPIRES_SOURCE_ANNOTATION,
    ]
    .into_iter()
    .filter(|key| annotations.contains_key(*key))
    .map(|key| (key.to_owned(), serde_json::Value::Null))
    .collect::<serde_json::Map<_, _>>();
    if stale.is_empty() {
        return Ok(false);
    }
    let patch = serde_json::json!({ "metadata": { "annotations": stale } });
    let action = format!("removing the stale expiry from Secret {mesh}/{PULL_SECRET_NAME}");
    timed(
        &action,
        timeout,
        secrets.patch(
            PULL_SECRET_NAME,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        ),
    )
    .await?;
    Ok(true)
}

/// Deletes the mesh's own source `sparrow-registry-key` (a deploy that switched to a Secret
/// another tool keeps): only if it carries our label, and only that very object (its uid as
/// a precondition). Gone already is fine.
pub async fn delete_own_source(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let action = format!("reading Secret {namespace}/{PULL_SECRET_NAME}");
    let Some(secret) = timed(&action, timeout, secrets.get_opt(PULL_SECRET_NAME)).await? else {
        return Ok(());
    };
    if !is_ours(&secret) {
        return Ok(());
    }
    let params = kube::api::DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: secret.metadata.uid.clone(),
            resource_version: None,
        }),
        ..kube::api::DeleteParams::default()
    };
    let action = format!("deleting Secret {namespace}/{PULL_SECRET_NAME}");
    match crate::within(&action, timeout, secrets.delete(PULL_SECRET_NAME, &params)).await? {
        Ok(_) => Ok(()),
        Err(error) if crate::error::is_not_found(&error) => Ok(()),
        Err(error) => Err(ClusterError::api(action, error)),
    }
}
