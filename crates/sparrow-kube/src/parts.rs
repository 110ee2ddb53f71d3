//! The control plane's parts ([`sparrow_core::PARTS`]) as the API addresses them: one
//! dynamic API per kind, so apply, remove and status need no per-kind code.

use std::time::Duration;

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PartialObjectMeta, Preconditions};
use sparrow_core::{Kind, Part};

use crate::error::{ClusterError, is_not_found};
use crate::{timed, within};

/// The `ApiResource` of a kind.
pub fn api_resource(kind: Kind) -> ApiResource {
    ApiResource {
        group: kind.group().to_owned(),
        version: kind.version().to_owned(),
        api_version: kind.api_version(),
        kind: kind.name().to_owned(),
        plural: kind.plural().to_owned(),
    }
}

/// The API of `kind`, in `namespace` when the kind is namespaced.
pub fn api(client: &kube::Client, kind: Kind, namespace: Option<&str>) -> Api<DynamicObject> {
    let resource = api_resource(kind);
    match namespace {
        Some(ns) if kind.namespaced() => Api::namespaced_with(client.clone(), ns, &resource),
        _ => Api::all_with(client.clone(), &resource),
    }
}

/// The API of `part` for the mesh in `mesh`.
pub fn part_api(client: &kube::Client, part: &Part, mesh: &str) -> Api<DynamicObject> {
    api(client, part.kind, part.namespace(mesh))
}

/// The metadata of `part` as it is in the cluster, `None` when it does not exist.
pub async fn read_part(
    client: &kube::Client,
    part: &Part,
    mesh: &str,
    timeout: Duration,
) -> Result<Option<PartialObjectMeta<DynamicObject>>, ClusterError> {
    let api = part_api(client, part, mesh);
    let action = format!("reading {}", part.describe(mesh));
    timed(&action, timeout, api.get_metadata_opt(part.name(mesh))).await
}

/// Deletes `name` through `api`, only if it is still the object with `uid` (what was read
/// and judged ours). `Ok(false)` when it was already gone.
pub async fn delete_exact(
    api: &Api<DynamicObject>,
    name: &str,
    uid: Option<String>,
    action: &str,
    timeout: Duration,
) -> Result<bool, ClusterError> {
    let params = DeleteParams::background().preconditions(Preconditions {
        uid,
        resource_version: None,
    });
    match within(action, timeout, api.delete(name, &params)).await? {
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
