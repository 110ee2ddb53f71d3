//! `registry update` switching the mesh's registry credential between Sparrow's own Secret and
//! one another tool keeps, on a running control plane: read the controller Deployment, write
//! the own source, apply the controller's Role, patch the Deployment (guarded by its
//! resourceVersion). The order, the wait for the rollout and the deletion of the old own
//! source are the verb's ([`crate::secrets::delete_own_source`], [`crate::wait`]).

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::Role;
use kube::Api;
use kube::api::{Patch, PatchParams};
use sparrow_core::Object;
use sparrow_core::credential_switch::pull_secret_switch_patch;
use sparrow_core::names::{CONTROLLER_NAME, FIELD_MANAGER, PULL_SECRET_NAME};

use crate::error::ClusterError;
use crate::secrets::is_ours;
use crate::update::retrying;

/// The controller Deployment of the mesh in `namespace`, `None` when it does not exist.
pub async fn read_controller(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
) -> Result<Option<Deployment>, ClusterError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let action = format!("reading Deployment {namespace}/{CONTROLLER_NAME}");
    retrying(&action, timeout, || api.get_opt(CONTROLLER_NAME)).await
}

/// Writes the own source `secret` (server-side apply), whether it exists or not; a
/// `sparrow-registry-key` that Sparrow did not create is refused, untouched.
pub async fn write_own_source(
    client: &kube::Client,
    namespace: &str,
    secret: &Secret,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let action = format!("reading Secret {namespace}/{PULL_SECRET_NAME}");
    if let Some(found) = retrying(&action, timeout, || secrets.get_opt(PULL_SECRET_NAME)).await?
        && !is_ours(&found)
    {
        return Err(ClusterError::ForeignSecret {
            namespace: namespace.to_owned(),
            name: PULL_SECRET_NAME.to_owned(),
        });
    }
    let action = format!("writing Secret {namespace}/{PULL_SECRET_NAME}");
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let patch = Patch::Apply(secret);
    retrying(&action, timeout, || {
        secrets.patch(PULL_SECRET_NAME, &params, &patch)
    })
    .await?;
    Ok(())
}

/// Applies the controller's Role as rendered ([`sparrow_core::manifests::controller_role`]).
pub async fn apply_role(
    client: &kube::Client,
    role: Role,
    timeout: Duration,
) -> Result<(), ClusterError> {
    crate::apply::apply_object(client, &Object::Role(role), timeout).await
}

/// Patches the controller Deployment, as read in `deployment`, to copy and pull with
/// `registry_secret` (a Secret another tool keeps) or Sparrow's own Secret (`None`): its
/// arguments and imagePullSecrets only, and only if it is unchanged since it was read.
pub async fn patch_controller(
    client: &kube::Client,
    namespace: &str,
    deployment: &Deployment,
    registry_secret: Option<&str>,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let ops = pull_secret_switch_patch(deployment, registry_secret)?;
    let ops: json_patch::Patch = serde_json::from_value(ops)
        .map_err(|e| ClusterError::Internal(format!("the switch patch: {e}")))?;
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    // The fields stay sparrowctl's, so a later deploy's apply owns them as before.
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let action = format!("patching Deployment {namespace}/{CONTROLLER_NAME}");
    match crate::within(
        &action,
        timeout,
        api.patch(CONTROLLER_NAME, &params, &Patch::<()>::Json(ops)),
    )
    .await?
    {
        Ok(_) => Ok(()),
        // A failed `test` (the resourceVersion moved on) is 422; a conflict 409.
        Err(kube::Error::Api(status)) if status.code == 422 || status.code == 409 => {
            Err(ClusterError::ChangedMeanwhile {
                namespace: namespace.to_owned(),
            })
        }
        Err(error) => Err(ClusterError::api(action, error)),
    }
}
