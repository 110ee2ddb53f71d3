//! The writes the index plans, performed against the API: one create or one guarded update,
//! and a read when the API refuses it. No decision is taken here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use sparrow_core::manifests::{DOCKER_CONFIG_JSON_TYPE, pull_secret_labels};
use sparrow_core::names::{
    PULL_SECRET_NAME, SOURCE_ANNOTATION, SOURCE_HASH_ANNOTATION, USAGE_LABEL_VALUE,
};

use super::CopyConfig;
use super::index::{Observed, PlannedWrite, WriteAction, WriteResult};
use crate::error::{ClusterError, is_already_exists, is_not_found};
use crate::{timed, within};

/// The copy `write` puts in its namespace.
pub(super) fn copy_of(write: &PlannedWrite, mesh_namespace: &str) -> Secret {
    let mut secret = sparrow_core::manifests::pull_secret(&write.namespace, Vec::new());
    secret.data = Some(write.source.data.clone());
    secret.type_ = Some(DOCKER_CONFIG_JSON_TYPE.to_owned());
    secret.metadata.labels = Some(pull_secret_labels());
    secret.metadata.annotations = Some(BTreeMap::from([
        (
            SOURCE_ANNOTATION.to_owned(),
            format!("{mesh_namespace}/{PULL_SECRET_NAME}"),
        ),
        (SOURCE_HASH_ANNOTATION.to_owned(), write.source.hash.clone()),
    ]));
    secret
}

/// The update as one JSON Patch. The `test`s make it fail (422) if the Secret lost our label
/// (someone else owns it now: never overwritten) or changed since the index saw it (a newer
/// source may be there). `data` and the annotations are replaced whole, so keys the source
/// dropped go too.
pub(super) fn update_patch(
    copy: &Secret,
    resource_version: Option<&str>,
) -> Result<json_patch::Patch, ClusterError> {
    let mut ops = vec![serde_json::json!(
        {"op": "test", "path": "/metadata/labels/usage", "value": USAGE_LABEL_VALUE}
    )];
    if let Some(version) = resource_version {
        ops.push(serde_json::json!(
            {"op": "test", "path": "/metadata/resourceVersion", "value": version}
        ));
    }
    ops.push(serde_json::json!(
        {"op": "add", "path": "/metadata/annotations", "value": copy.metadata.annotations}
    ));
    ops.push(serde_json::json!({"op": "add", "path": "/data", "value": copy.data}));
    serde_json::from_value(serde_json::Value::Array(ops))
        .map_err(|e| ClusterError::Internal(format!("building the copy patch: {e}")))
}

/// Performs `write`; `count` is called once per API call.
pub(super) async fn perform(
    api: &Api<Secret>,
    write: &PlannedWrite,
    config: &CopyConfig,
    count: &impl Fn(),
) -> Result<WriteResult, ClusterError> {
    let copy = copy_of(write, &config.mesh_namespace);
    let ns = &write.namespace;
    let timeout = config.api_timeout;
    count();
    match &write.action {
        WriteAction::Create => {
            let action = format!("creating Secret {ns}/{PULL_SECRET_NAME}");
            match within(&action, timeout, api.create(&PostParams::default(), &copy)).await? {
                Ok(created) => Ok(written(&created)),
                // Created meanwhile (another replica), or someone else's: look.
                Err(error) if is_already_exists(&error) => read(api, ns, config, count).await,
                Err(error) => Err(ClusterError::api(action, error)),
            }
        }
        WriteAction::Update { resource_version } => {
            let action = format!("updating Secret {ns}/{PULL_SECRET_NAME}");
            let patch = Patch::Json::<()>(update_patch(&copy, resource_version.as_deref())?);
            let params = PatchParams::default();
            let patched = api.patch(PULL_SECRET_NAME, &params, &patch);
            match within(&action, timeout, patched).await? {
                Ok(updated) => Ok(written(&updated)),
                Err(error) if is_not_found(&error) => Ok(WriteResult::Refused(None)),
                // A guard failed: see what is there now.
                Err(kube::Error::Api(status)) if status.code == 422 || status.code == 409 => {
                    read(api, ns, config, count).await
                }
                Err(error) => Err(ClusterError::api(action, error)),
            }
        }
    }
}

fn written(secret: &Secret) -> WriteResult {
    WriteResult::Written {
        resource_version: secret.metadata.resource_version.clone(),
    }
}

async fn read(
    api: &Api<Secret>,
    namespace: &str,
    config: &CopyConfig,
    count: &impl Fn(),
) -> Result<WriteResult, ClusterError> {
    count();
    let action = format!("reading Secret {namespace}/{PULL_SECRET_NAME}");
    let found = timed(&action, config.api_timeout, api.get_opt(PULL_SECRET_NAME)).await?;
    Ok(WriteResult::Refused(
        found.map(|secret| Observed::of(&secret.metadata)),
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::runtime::copies::index::Source;

    fn planned(action: WriteAction) -> PlannedWrite {
        let data = BTreeMap::from([(
            ".dockerconfigjson".to_owned(),
            k8s_openapi::ByteString(b"{}".to_vec()),
        )]);
        PlannedWrite {
            namespace: "shop".to_owned(),
            source: Arc::new(Source {
                data,
                hash: "h2".to_owned(),
            }),
            action,
        }
    }

    #[test]
    fn the_copy_carries_the_labels_annotations_and_data_of_the_source() {
        let copy = copy_of(&planned(WriteAction::Create), "mesh");
        assert_eq!(copy.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(copy.metadata.name.as_deref(), Some(PULL_SECRET_NAME));
        assert_eq!(copy.type_.as_deref(), Some(DOCKER_CONFIG_JSON_TYPE));
        let annotations = copy.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(annotations[SOURCE_ANNOTATION], "mesh/sparrow-registry-key");
        assert_eq!(annotations[SOURCE_HASH_ANNOTATION], "h2");
        assert_eq!(copy.metadata.labels, Some(pull_secret_labels()));
    }

    #[test]
    fn the_update_tests_ownership_and_the_version_it_was_planned_from() {
        let copy = copy_of(&planned(WriteAction::Create), "mesh");
        let patch = update_patch(&copy, Some("41")).expect("patch");
        let ops = serde_json::to_value(&patch).expect("json");
        assert_eq!(ops[0]["op"], "test");
        assert_eq!(ops[0]["path"], "/metadata/labels/usage");
        assert_eq!(ops[0]["value"], USAGE_LABEL_VALUE);
        assert_eq!(ops[1]["op"], "test");
        assert_eq!(ops[1]["path"], "/metadata/resourceVersion");
        assert_eq!(ops[1]["value"], "41");
        assert_eq!(ops[2]["path"], "/metadata/annotations");
        assert_eq!(ops[3]["path"], "/data");
        let unversioned =
            serde_json::to_value(update_patch(&copy, None).expect("patch")).expect("json");
        assert_eq!(
            unversioned.as_array().map(Vec::len),
            Some(3),
            "{unversioned}"
        );
    }
}
