//! `remove`: the webhook first (so no pod creation depends on a controller about to go),
//! then the control plane, then every Secret labelled `usage=sparrow-registry-key` in every
//! namespace, then the namespace. Idempotent: what is already gone is skipped.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use serde::de::DeserializeOwned;
use sparrow_core::manifests::pull_secret_selector;
use sparrow_core::names::*;

use crate::error::{ClusterError, is_not_found};
use crate::secrets::{foreign_pull_secrets, is_injected};
use crate::{timed, within};

/// Deletions run this many at a time (thousands of copies must go in seconds).
const DELETE_CONCURRENCY: usize = 16;

/// One step of `remove`, reported as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveStep {
    /// An object was deleted (`Kind ns/name`).
    Deleted(String),
    /// An object was already gone.
    AlreadyGone(String),
}

/// What `remove` found besides what it deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RemoveReport {
    /// Labelled pull secrets deleted (`ns/name`).
    pub secrets_deleted: Vec<String>,
    /// Secrets named `sparrow-registry-key` without our label, left untouched (`ns/name`).
    pub foreign_secrets: Vec<String>,
    /// Namespaces whose pods still carry the sidecar: they need a restart.
    pub injected_namespaces: Vec<String>,
    /// The namespace was not deleted because Sparrow did not create it.
    pub namespace_kept: bool,
}

/// Removes the mesh from `namespace`.
pub async fn remove(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
    mut on_step: impl FnMut(RemoveStep),
) -> Result<RemoveReport, ClusterError> {
    let mut report = RemoveReport::default();
    // The webhook first, so no pod creation waits on a controller about to go.
    delete(
        Api::<MutatingWebhookConfiguration>::all(client.clone()),
        WEBHOOK_CONFIG_NAME,
        timeout,
        &mut on_step,
    )
    .await?;
    delete(
        Api::<Deployment>::namespaced(client.clone(), namespace),
        CONTROLLER_NAME,
        timeout,
        &mut on_step,
    )
    .await?;
    delete(
        Api::<Service>::namespaced(client.clone(), namespace),
        CONTROLLER_NAME,
        timeout,
        &mut on_step,
    )
    .await?;
    delete(
        Api::<RoleBinding>::namespaced(client.clone(), namespace),
        CONTROLLER_NAME,
        timeout,
        &mut on_step,
    )
    .await?;
    delete(
        Api::<Role>::namespaced(client.clone(), namespace),
        CONTROLLER_NAME,
        timeout,
        &mut on_step,
    )
    .await?;
    delete(
        Api::<ClusterRoleBinding>::all(client.clone()),
        CONTROLLER_NAME,
        timeout,
        &mut on_step,
    )
    .await?;
    delete(
        Api::<ClusterRole>::all(client.clone()),
        CONTROLLER_NAME,
        timeout,
        &mut on_step,
    )
    .await?;
    delete(
        Api::<ServiceAccount>::namespaced(client.clone(), namespace),
        CONTROLLER_NAME,
        timeout,
        &mut on_step,
    )
    .await?;
    delete(
        Api::<Secret>::namespaced(client.clone(), namespace),
        TLS_SECRET_NAME,
        timeout,
        &mut on_step,
    )
    .await?;

    // Every labelled pull secret: exactly what `kubectl get secrets -l usage=sparrow-registry-key -A`
    // lists. The source goes first, so a controller still shutting down restores no copy; another
    // listing catches any copy made meanwhile.
    for _round in 0..3 {
        let deleted = delete_labelled_secrets(client, namespace, timeout, &mut on_step).await?;
        if deleted.is_empty() {
            break;
        }
        report.secrets_deleted.extend(deleted);
    }
    // Same-named secrets we do not own are reported, never touched.
    report.foreign_secrets = foreign_pull_secrets(client, timeout).await?;

    report.injected_namespaces = injected_namespaces(client, timeout).await?;

    // The namespace goes only if Sparrow created it (never `default` or a team's namespace).
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match timed(
        &format!("reading Namespace {namespace}"),
        timeout,
        namespaces.get_metadata_opt(namespace),
    )
    .await?
    {
        Some(meta) if meta.metadata.deletion_timestamp.is_some() => {
            // A second remove while the first one's namespace is still Terminating.
            on_step(RemoveStep::AlreadyGone(format!(
                "Namespace {namespace} (terminating)"
            )));
        }
        Some(meta)
            if meta
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(PART_OF_LABEL))
                .is_some_and(|v| v == PART_OF_VALUE) =>
        {
            delete(namespaces, namespace, timeout, &mut on_step).await?;
        }
        Some(_) => report.namespace_kept = true,
        None => on_step(RemoveStep::AlreadyGone(format!("Namespace {namespace}"))),
    }
    Ok(report)
}

/// Deletes every Secret labelled `usage=sparrow-registry-key`, the mesh namespace's source
/// first; returns what was deleted (`ns/name`), empty when there was nothing.
async fn delete_labelled_secrets(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
    on_step: &mut impl FnMut(RemoveStep),
) -> Result<Vec<String>, ClusterError> {
    let all_secrets: Api<Secret> = Api::all(client.clone());
    let labelled = timed(
        "listing Secrets labelled usage=sparrow-registry-key",
        timeout,
        all_secrets.list_metadata(&ListParams::default().labels(&pull_secret_selector())),
    )
    .await?;
    let (sources, copies): (Vec<_>, Vec<_>) = labelled
        .items
        .iter()
        .filter_map(|m| Some((m.metadata.namespace.clone()?, m.metadata.name.clone()?)))
        .partition(|(ns, _)| ns == namespace);
    let mut deleted = Vec::new();
    for batch in [sources, copies] {
        let mut results: Vec<(String, bool)> = futures::stream::iter(batch)
            .map(|(ns, name)| {
                let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
                async move {
                    let gone = delete_quietly(
                        &api,
                        &name,
                        &format!("deleting Secret {ns}/{name}"),
                        timeout,
                    )
                    .await?;
                    Ok::<_, ClusterError>((format!("{ns}/{name}"), gone))
                }
            })
            .buffer_unordered(DELETE_CONCURRENCY)
            .try_collect()
            .await?;
        results.sort();
        for (id, existed) in results {
            if existed {
                on_step(RemoveStep::Deleted(format!("Secret {id}")));
                deleted.push(id);
            } else {
                on_step(RemoveStep::AlreadyGone(format!("Secret {id}")));
            }
        }
    }
    Ok(deleted)
}

/// Namespaces with pods annotated `injector.sparrow-mesh.io/status: injected` (metadata only).
pub async fn injected_namespaces(
    client: &kube::Client,
    timeout: Duration,
) -> Result<Vec<String>, ClusterError> {
    let pods: Api<Pod> = Api::all(client.clone());
    let list = timed(
        "listing pods",
        timeout,
        pods.list_metadata(&ListParams::default()),
    )
    .await?;
    let namespaces: BTreeSet<String> = list
        .items
        .iter()
        .filter(|p| is_injected(&p.metadata))
        .filter_map(|p| p.metadata.namespace.clone())
        .collect();
    Ok(namespaces.into_iter().collect())
}

/// Deletes one object and reports it (`Kind ns/name`), or that it was already gone.
async fn delete<K>(
    api: Api<K>,
    name: &str,
    timeout: Duration,
    on_step: &mut impl FnMut(RemoveStep),
) -> Result<(), ClusterError>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let kind = K::kind(&());
    let id = match api.namespace() {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    };
    let existed = delete_quietly(&api, name, &format!("deleting {id}"), timeout).await?;
    on_step(if existed {
        RemoveStep::Deleted(id)
    } else {
        RemoveStep::AlreadyGone(id)
    });
    Ok(())
}

/// Deletes `name`; `Ok(false)` when it was already gone.
async fn delete_quietly<K>(
    api: &Api<K>,
    name: &str,
    action: &str,
    timeout: Duration,
) -> Result<bool, ClusterError>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match within(
        action,
        timeout,
        api.delete(name, &DeleteParams::background()),
    )
    .await?
    {
        Ok(_) => Ok(true),
        Err(error) if is_not_found(&error) => Ok(false),
        // A namespace already Terminating answers 409: it is on its way out.
        Err(kube::Error::Api(status))
            if status.code == 409 && api.resource_url() == "/api/v1/namespaces" =>
        {
            Ok(false)
        }
        Err(error) => Err(ClusterError::api(action, error)),
    }
}
