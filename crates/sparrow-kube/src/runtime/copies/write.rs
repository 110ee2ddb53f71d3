//! The writes the index plans, performed against the API: one create (then its proof) or one
//! guarded update, and a read when the API refuses it. No decision is taken here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use sparrow_core::manifests::{DOCKER_CONFIG_JSON_TYPE, pull_secret_labels};
use sparrow_core::names::{
    PROOF_ANNOTATION, PULL_SECRET_NAME, SOURCE_ANNOTATION, SOURCE_HASH_ANNOTATION,
};
use sparrow_core::ownership::{CopyKey, source_of};

use super::CopyConfig;
use super::index::{PlannedWrite, WriteAction, WriteResult};
use crate::error::{ClusterError, is_already_exists, is_not_found};
use crate::{timed, within};

/// The copy `write` puts in its namespace; `proof` when its uid is known (an update).
pub(super) fn copy_of(write: &PlannedWrite, config: &CopyConfig, proof: Option<String>) -> Secret {
    let mesh_namespace = config.mesh_namespace.as_str();
    let mut secret = sparrow_core::manifests::pull_secret(&write.namespace, Vec::new());
    secret.data = Some(write.source.data.clone());
    secret.type_ = Some(DOCKER_CONFIG_JSON_TYPE.to_owned());
    secret.metadata.labels = Some(pull_secret_labels());
    let mut annotations = BTreeMap::from([
        (
            SOURCE_ANNOTATION.to_owned(),
            source_of(mesh_namespace, config.source.name()),
        ),
        (SOURCE_HASH_ANNOTATION.to_owned(), write.source.hash.clone()),
    ]);
    if let Some(proof) = proof {
        annotations.insert(PROOF_ANNOTATION.to_owned(), proof);
    }
    secret.metadata.annotations = Some(annotations);
    secret
}

/// A JSON Patch path segment (RFC 6901: `~` and `/` escaped).
fn pointer_segment(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn patch_of(ops: Vec<serde_json::Value>) -> Result<json_patch::Patch, ClusterError> {
    serde_json::from_value(serde_json::Value::Array(ops))
        .map_err(|e| ClusterError::Internal(format!("building the copy patch: {e}")))
}

/// The update as one JSON Patch. The `test`s make it fail (422) if the Secret is not the
/// object the proof was made for (deleted and re-created by someone else: never
/// overwritten) or changed since the index saw it (a newer source may be there). Labels,
/// annotations and `data` are replaced whole, so keys the source dropped go too.
pub(super) fn update_patch(
    copy: &Secret,
    uid: &str,
    resource_version: Option<&str>,
) -> Result<json_patch::Patch, ClusterError> {
    let mut ops = vec![serde_json::json!(
        {"op": "test", "path": "/metadata/uid", "value": uid}
    )];
    if let Some(version) = resource_version {
        ops.push(serde_json::json!(
            {"op": "test", "path": "/metadata/resourceVersion", "value": version}
        ));
    }
    ops.push(serde_json::json!(
        {"op": "add", "path": "/metadata/labels", "value": copy.metadata.labels}
    ));
    ops.push(serde_json::json!(
        {"op": "add", "path": "/metadata/annotations", "value": copy.metadata.annotations}
    ));
    ops.push(serde_json::json!({"op": "add", "path": "/data", "value": copy.data}));
    patch_of(ops)
}

/// The proof added to a copy just created: guarded by its uid, so it lands on that object or
/// nowhere.
pub(super) fn proof_patch(uid: &str, proof: &str) -> Result<json_patch::Patch, ClusterError> {
    let path = format!(
        "/metadata/annotations/{}",
        pointer_segment(PROOF_ANNOTATION)
    );
    patch_of(vec![
        serde_json::json!({"op": "test", "path": "/metadata/uid", "value": uid}),
        serde_json::json!({"op": "add", "path": path, "value": proof}),
    ])
}

/// Performs `write`, proving copies with `key`; `count` is called once per API call.
pub(super) async fn perform(
    api: &Api<Secret>,
    write: &PlannedWrite,
    config: &CopyConfig,
    key: &CopyKey,
    count: &impl Fn(),
) -> Result<WriteResult, ClusterError> {
    let mesh = config.mesh_namespace.as_str();
    let ns = &write.namespace;
    let timeout = config.api_timeout;
    count();
    match &write.action {
        WriteAction::Create => {
            let copy = copy_of(write, config, None);
            let action = format!("creating Secret {ns}/{PULL_SECRET_NAME}");
            match within(&action, timeout, api.create(&PostParams::default(), &copy)).await? {
                Ok(created) => prove(api, write, &created, config, key, count).await,
                // Created meanwhile (another replica), or someone else's: look.
                Err(error) if is_already_exists(&error) => read(api, ns, config, count).await,
                Err(error) => Err(ClusterError::api(action, error)),
            }
        }
        WriteAction::Update {
            uid,
            resource_version,
        } => {
            let proof = key.proof(mesh, ns, PULL_SECRET_NAME, uid);
            let copy = copy_of(write, config, Some(proof));
            let action = format!("updating Secret {ns}/{PULL_SECRET_NAME}");
            let patch = Patch::Json::<()>(update_patch(&copy, uid, resource_version.as_deref())?);
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

/// Adds the proof to the copy just `created`. The uid exists only once the API server made
/// the object, so this is a second write; if it fails the unproven copy is deleted again
/// (by its uid), so nothing half-made stays behind that the controller could never manage.
async fn prove(
    api: &Api<Secret>,
    write: &PlannedWrite,
    created: &Secret,
    config: &CopyConfig,
    key: &CopyKey,
    count: &impl Fn(),
) -> Result<WriteResult, ClusterError> {
    let ns = &write.namespace;
    let Some(uid) = created.metadata.uid.clone() else {
        return Err(ClusterError::Internal(format!(
            "the API server created Secret {ns}/{PULL_SECRET_NAME} without a uid"
        )));
    };
    let proof = key.proof(&config.mesh_namespace, ns, PULL_SECRET_NAME, &uid);
    let patch = Patch::Json::<()>(proof_patch(&uid, &proof)?);
    let action = format!("proving Secret {ns}/{PULL_SECRET_NAME}");
    count();
    let proved = within(
        &action,
        config.api_timeout,
        api.patch(PULL_SECRET_NAME, &PatchParams::default(), &patch),
    )
    .await
    .and_then(|answer| answer.map_err(|e| ClusterError::api(&action, e)));
    match proved {
        Ok(proven) => Ok(written(&proven)),
        Err(error) => {
            undo_create(api, ns, &uid, config, count).await;
            Err(error)
        }
    }
}

/// Deletes the unproven copy made a moment ago, only if it is still that object.
async fn undo_create(
    api: &Api<Secret>,
    namespace: &str,
    uid: &str,
    config: &CopyConfig,
    count: &impl Fn(),
) {
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    count();
    let action = format!("deleting the unproven Secret {namespace}/{PULL_SECRET_NAME}");
    match timed(
        &action,
        config.api_timeout,
        api.delete(PULL_SECRET_NAME, &params),
    )
    .await
    {
        Ok(_) => tracing::warn!(%namespace, "the new copy could not be proven; deleted it again"),
        Err(error) => tracing::error!(
            %namespace, %error,
            "the new copy could not be proven nor deleted; it stays unproven (delete it so Sparrow can make it again)"
        ),
    }
}

fn written(secret: &Secret) -> WriteResult {
    WriteResult::Written {
        uid: secret.metadata.uid.clone(),
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
    Ok(WriteResult::Refused(found.map(Box::new)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::runtime::copies::index::Source;
    use sparrow_core::names::USAGE_LABEL_VALUE;

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
                credential_expires: None,
            }),
            action,
        }
    }

    #[test]
    fn the_copy_carries_the_labels_annotations_and_data_of_the_source() {
        let copy = copy_of(
            &planned(WriteAction::Create),
            &CopyConfig::new("mesh"),
            None,
        );
        assert_eq!(copy.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(copy.metadata.name.as_deref(), Some(PULL_SECRET_NAME));
        assert_eq!(copy.type_.as_deref(), Some(DOCKER_CONFIG_JSON_TYPE));
        let annotations = copy.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(annotations[SOURCE_ANNOTATION], "mesh/sparrow-registry-key");
        assert_eq!(annotations[SOURCE_HASH_ANNOTATION], "h2");
        assert!(!annotations.contains_key(PROOF_ANNOTATION), "no uid yet");
        assert_eq!(copy.metadata.labels, Some(pull_secret_labels()));
        let proven = copy_of(
            &planned(WriteAction::Create),
            &CopyConfig::new("mesh"),
            Some("p".to_owned()),
        );
        assert_eq!(
            proven.metadata.annotations.unwrap_or_default()[PROOF_ANNOTATION],
            "p"
        );
    }

    #[test]
    fn the_update_tests_the_object_and_the_version_it_was_planned_from() {
        let copy = copy_of(
            &planned(WriteAction::Create),
            &CopyConfig::new("mesh"),
            Some("p".to_owned()),
        );
        let patch = update_patch(&copy, "uid-1", Some("41")).expect("patch");
        let ops = serde_json::to_value(&patch).expect("json");
        assert_eq!(ops[0]["op"], "test");
        assert_eq!(ops[0]["path"], "/metadata/uid");
        assert_eq!(ops[0]["value"], "uid-1");
        assert_eq!(ops[1]["op"], "test");
        assert_eq!(ops[1]["path"], "/metadata/resourceVersion");
        assert_eq!(ops[1]["value"], "41");
        assert_eq!(ops[2]["path"], "/metadata/labels");
        assert_eq!(ops[2]["value"]["usage"], USAGE_LABEL_VALUE);
        assert_eq!(ops[3]["path"], "/metadata/annotations");
        assert_eq!(ops[3]["value"][PROOF_ANNOTATION], "p");
        assert_eq!(ops[4]["path"], "/data");
        let unversioned =
            serde_json::to_value(update_patch(&copy, "uid-1", None).expect("patch")).expect("json");
        assert_eq!(
            unversioned.as_array().map(Vec::len),
            Some(4),
            "{unversioned}"
        );
    }

    #[test]
    fn the_proof_lands_on_the_created_object_only() {
        let ops = serde_json::to_value(proof_patch("uid-9", "abc").expect("patch")).expect("json");
        assert_eq!(ops[0]["op"], "test");
        assert_eq!(ops[0]["path"], "/metadata/uid");
        assert_eq!(ops[0]["value"], "uid-9");
        assert_eq!(ops[1]["op"], "add");
        assert_eq!(
            ops[1]["path"],
            "/metadata/annotations/sparrow-mesh.io~1proof"
        );
        assert_eq!(ops[1]["value"], "abc");
    }
}
