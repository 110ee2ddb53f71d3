//! Generated minimal OpenAPI v3 documents. kubectl apply/replace read them to decide on
//! server-side field validation: each object path needs a `patch` operation carrying
//! `x-kubernetes-group-version-kind` and a `fieldValidation` parameter. The parameter is
//! accepted and ignored: testkube checks no unknown fields (the real node does).

use serde_json::{Map, Value, json};

use crate::resources::{RESOURCES, ResourceDef, group_versions};

/// Stable per-build hash kubectl uses as a cache key.
const HASH: &str = "7E5F1B3C9A2D4E6F8091A2B3C4D5E6F708192A3B4C5D6E7F8091A2B3C4D5E6F7";

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: the index of group-version documents.
pub fn index() -> Value {
    let mut paths = Map::new();
    for (g, v) in group_versions() {
        let p = gv_path(g, v);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={HASH}")}),
        );
    }
    json!({"paths": paths})
}

fn schema_name(r: &ResourceDef) -> String {
    let group = match r.group {
        "" => "core",
        "rbac.authorization.k8s.io" => "rbac",
        "admissionregistration.k8s.io" => "admissionregistration",
        "coordination.k8s.io" => "coordination",
        "events.k8s.io" => "events",
        other => other,
    };
    format!("io.k8s.api.{group}.{}.{}", r.version, r.kind)
}

fn item_path(r: &ResourceDef) -> String {
    let base = format!("/{}", gv_path(r.group, r.version));
    if r.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
    } else {
        format!("{base}/{}/{{name}}", r.plural)
    }
}

fn collection_path(r: &ResourceDef) -> String {
    let base = format!("/{}", gv_path(r.group, r.version));
    if r.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{base}/{}", r.plural)
    }
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/<g>/<v>`; `None` for other paths.
pub fn document(path: &str) -> Option<Value> {
    let (group, version) = group_versions()
        .into_iter()
        .find(|(g, v)| gv_path(g, v) == path)?;
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let schema_ref = json!({"$ref": format!("#/components/schemas/{}", schema_name(r))});
        let params = json!([
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        ]);
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": schema_ref}}}});
        let op = |action: &str, content: &[&str]| {
            let mut media = Map::new();
            for c in content {
                media.insert((*c).to_string(), json!({"schema": {"type": "object"}}));
            }
            json!({
                "operationId": format!("{action}{}", r.kind),
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params,
                "requestBody": {"content": media, "required": true},
                "responses": ok,
            })
        };
        // The patch operation deliberately does not list strategic-merge-patch+json: kubectl
        // would then compute the patch from these schemas, which are too thin for that; without
        // it kubectl uses its compiled-in types, as it does for any server.
        paths.insert(
            item_path(r),
            json!({
                "get": {"operationId": format!("read{}", r.kind), "x-kubernetes-action": "get",
                        "x-kubernetes-group-version-kind": gvk, "responses": ok},
                "put": op("put", &["application/json"]),
                "patch": op("patch", &[
                    "application/apply-patch+yaml",
                    "application/json-patch+json",
                    "application/merge-patch+json",
                ]),
                "delete": {"operationId": format!("delete{}", r.kind), "x-kubernetes-action": "delete",
                           "x-kubernetes-group-version-kind": gvk, "responses": ok},
            }),
        );
        paths.insert(
            collection_path(r),
            json!({"post": op("post", &["application/json"])}),
        );
        schemas.insert(
            schema_name(r),
            json!({
                "type": "object",
                "x-kubernetes-group-version-kind": [gvk],
                "x-kubernetes-preserve-unknown-fields": true,
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_points_at_every_group_version() {
        let idx = index();
        assert!(
            idx["paths"]["api/v1"]["serverRelativeURL"]
                .as_str()
                .is_some_and(|u| u.starts_with("/openapi/v3/api/v1?hash="))
        );
        assert!(idx["paths"].get("apis/apps/v1").is_some());
    }

    #[test]
    fn patch_operations_carry_gvk_and_field_validation() {
        let doc = document("apis/apps/v1").expect("apps");
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .expect("params")
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(document("apis/batch/v1").is_none());
    }
}
