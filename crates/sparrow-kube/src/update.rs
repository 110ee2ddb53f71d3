//! `registry update`: replace the source pull secret (rotation); the controller refreshes
//! every copy from it.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use sparrow_core::names::{FIELD_MANAGER, PULL_SECRET_NAME};

use crate::connect::is_transient;
use crate::error::ClusterError;
use crate::secrets::{is_ours, is_proven, read_copy_key, registry_and_user};
use crate::timed;

/// The stored registry key (`HOST[:PORT]` or Docker Hub's URL), for an update that names no server.
pub async fn stored_registry_key(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
) -> Result<String, ClusterError> {
    let source = read_source(client, namespace, timeout).await?;
    registry_and_user(&source)
        .map(|(key, _)| key)
        .map_err(|detail| ClusterError::BadPullSecret {
            namespace: namespace.to_owned(),
            name: PULL_SECRET_NAME.to_owned(),
            detail,
        })
}

async fn read_source(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
) -> Result<Secret, ClusterError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let action = format!("reading Secret {namespace}/{PULL_SECRET_NAME}");
    match retrying(&action, timeout, || secrets.get_opt(PULL_SECRET_NAME)).await? {
        Some(secret) if is_ours(&secret) => Ok(secret),
        Some(_) => Err(ClusterError::ForeignSecret {
            namespace: namespace.to_owned(),
            name: PULL_SECRET_NAME.to_owned(),
        }),
        None => Err(ClusterError::NotDeployed {
            namespace: namespace.to_owned(),
        }),
    }
}

/// Replaces the source secret with `secret` and returns how many copies the controller proves
/// it made (which it will refresh; Secrets merely labelled like copies are not counted and
/// never refreshed). Fails, writing nothing, when Sparrow is not deployed.
pub async fn update_source(
    client: &kube::Client,
    namespace: &str,
    secret: &Secret,
    timeout: Duration,
) -> Result<usize, ClusterError> {
    read_source(client, namespace, timeout).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let action = format!("updating Secret {namespace}/{PULL_SECRET_NAME}");
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let patch = Patch::Apply(secret);
    retrying(&action, timeout, || {
        secrets.patch(PULL_SECRET_NAME, &params, &patch)
    })
    .await?;
    let key = read_copy_key(client, namespace, timeout).await?;
    let all: Api<Secret> = Api::all(client.clone());
    let copies = timed(
        "counting copies",
        timeout,
        all.list_metadata(
            &ListParams::default().fields(&format!("metadata.name={PULL_SECRET_NAME}")),
        ),
    )
    .await?;
    Ok(copies
        .items
        .iter()
        .filter(|m| is_proven(key.as_ref(), namespace, &m.metadata))
        .count())
}

/// Runs one API call until it succeeds, fails for good, or `timeout` has passed: an API
/// server that restarts meanwhile (connection refused, 5xx, 429) is asked again.
pub(crate) async fn retrying<T, F, Fut>(
    action: &str,
    timeout: Duration,
    mut call: F,
) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    const PAUSE: Duration = Duration::from_millis(500);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, call()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error))
                if is_transient(&error) && tokio::time::Instant::now() + PAUSE < deadline =>
            {
                tokio::time::sleep(PAUSE).await;
            }
            Ok(Err(error)) => return Err(ClusterError::api(action, error)),
            Err(_) => {
                return Err(ClusterError::Timeout {
                    action: action.to_owned(),
                    seconds: timeout.as_secs().max(1),
                });
            }
        }
    }
}

/// The images the deployed control plane uses (controller image, and the sidecar and init
/// images it injects), read from the controller Deployment; `None` when it does not exist.
pub async fn deployed_images(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
) -> Result<Option<sparrow_core::Images>, ClusterError> {
    use k8s_openapi::api::apps::v1::Deployment;
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let action = format!(
        "reading Deployment {namespace}/{}",
        sparrow_core::names::CONTROLLER_NAME
    );
    let Some(deployment) = retrying(&action, timeout, || {
        api.get_opt(sparrow_core::names::CONTROLLER_NAME)
    })
    .await?
    else {
        return Ok(None);
    };
    Ok(images_of(&deployment))
}

/// The images a controller Deployment runs and injects: its image, and its `--sidecar-image`
/// and `--init-image`; `None` when it lacks one.
pub fn images_of(
    deployment: &k8s_openapi::api::apps::v1::Deployment,
) -> Option<sparrow_core::Images> {
    let (_, container) = sparrow_core::manifests::controller_container(deployment)?;
    let flag = |name: &str| sparrow_core::manifests::controller_arg(deployment, name);
    Some(sparrow_core::Images {
        controller: container.image.clone()?,
        proxy: flag("--sidecar-image")?,
        init: flag("--init-image")?,
    })
}
