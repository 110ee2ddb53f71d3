//! What else lives in the mesh namespace: `remove` deletes a namespace deploy created only
//! when it holds nothing Sparrow did not create.

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use sparrow_core::names::CONTROLLER_NAME;
use sparrow_core::ownership::belongs_to;

use crate::error::{ClusterError, is_not_found};
use crate::within;

/// The kinds looked at: what a team puts in a namespace. (group, version, kind, plural)
const KINDS: &[(&str, &str, &str, &str)] = &[
    ("", "v1", "Pod", "pods"),
    ("", "v1", "Service", "services"),
    ("", "v1", "ConfigMap", "configmaps"),
    ("", "v1", "Secret", "secrets"),
    ("", "v1", "ServiceAccount", "serviceaccounts"),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    ("apps", "v1", "Deployment", "deployments"),
    ("apps", "v1", "StatefulSet", "statefulsets"),
    ("apps", "v1", "DaemonSet", "daemonsets"),
    ("batch", "v1", "Job", "jobs"),
    ("batch", "v1", "CronJob", "cronjobs"),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
    ),
];

/// Objects Kubernetes itself puts in every namespace.
const BUILT_IN: &[(&str, &str)] = &[
    ("ConfigMap", "kube-root-ca.crt"),
    ("ServiceAccount", "default"),
];

/// Objects in `mesh` that carry no marker of this mesh (`Kind ns/name`), at most a page
/// per kind. A kind the server does not serve holds nothing.
pub async fn foreign_objects(
    client: &kube::Client,
    mesh: &str,
    timeout: Duration,
) -> Result<Vec<String>, ClusterError> {
    let mut foreign = Vec::new();
    for (group, version, kind, plural) in KINDS {
        let resource = ApiResource {
            group: (*group).to_owned(),
            version: (*version).to_owned(),
            api_version: if group.is_empty() {
                (*version).to_owned()
            } else {
                format!("{group}/{version}")
            },
            kind: (*kind).to_owned(),
            plural: (*plural).to_owned(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), mesh, &resource);
        let action = format!("listing {plural} in namespace {mesh}");
        let list = match within(
            &action,
            timeout,
            api.list_metadata(&ListParams::default().limit(100)),
        )
        .await?
        {
            Ok(list) => list,
            Err(error) if is_not_found(&error) => continue,
            Err(error) => return Err(ClusterError::api(action, error)),
        };
        for item in list.items {
            let meta = item.metadata;
            let name = meta.name.unwrap_or_default();
            let built_in = BUILT_IN.contains(&(*kind, name.as_str()))
                || (*kind == "Secret" && name.starts_with("default-token-"));
            // The controller's pods carry the template's marker; its Lease is not listed.
            let ours = belongs_to(meta.labels.as_ref(), mesh)
                || (*kind == "Secret" && name.starts_with(&format!("{CONTROLLER_NAME}-token-")));
            if !built_in && !ours {
                foreign.push(format!("{kind} {mesh}/{name}"));
            }
        }
    }
    Ok(foreign)
}
