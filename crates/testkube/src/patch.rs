//! Patch semantics: JSON patch, JSON merge patch, the strategic-merge subset we need, and
//! server-side apply approximated as a merge.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The body encodings a PATCH request can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml`.
    Apply,
}

impl PatchKind {
    /// Maps a Content-Type (without parameters) to a patch kind.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Applies a patch document to `target`.
pub fn apply_patch(kind: PatchKind, target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    match kind {
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(target, &ops).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })
        }
        PatchKind::Merge | PatchKind::Apply => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "merge patch body must be a JSON object",
                ));
            }
            json_patch::merge(target, patch);
            Ok(())
        }
        PatchKind::Strategic => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "strategic merge patch body must be a JSON object",
                ));
            }
            strategic_merge(target, patch, "");
            Ok(())
        }
    }
}

/// Merge key of a list field, by field name, for the built-in types we serve.
fn merge_key(field: &str, sample: &Value) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "ownerReferences" => Some("uid"),
        "conditions" => Some("type"),
        "hostAliases" => Some("ip"),
        // Container ports merge on containerPort; service ports on port.
        "ports" => Some(if sample.get("containerPort").is_some() {
            "containerPort"
        } else {
            "port"
        }),
        _ => None,
    }
}

/// Primitive lists merged as sets rather than replaced.
fn is_set_list(field: &str) -> bool {
    field == "finalizers"
}

/// Strategic merge: a merge patch whose known lists merge by key and honour `$patch` directives.
pub fn strategic_merge(target: &mut Value, patch: &Value, _field: &str) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replaced = patch_map.clone();
        replaced.remove("$patch");
        *target = Value::Object(replaced);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else {
        return;
    };
    for (key, value) in patch_map {
        if key.starts_with('$') {
            // $setElementOrder/..., $retainKeys, $deleteFromPrimitiveList/...: ordering and
            // pruning hints; ignoring them keeps the merged content correct for our uses.
            continue;
        }
        match value {
            Value::Null => {
                target_map.remove(key);
            }
            Value::Array(items) => {
                let sample = items.first().cloned().unwrap_or(Value::Null);
                match (merge_key(key, &sample), target_map.get_mut(key)) {
                    (Some(mk), Some(Value::Array(existing))) if sample.is_object() => {
                        merge_list_by_key(existing, items, mk);
                    }
                    (None, Some(Value::Array(existing))) if is_set_list(key) => {
                        for item in items {
                            if !existing.contains(item) {
                                existing.push(item.clone());
                            }
                        }
                    }
                    _ => {
                        let cleaned: Vec<Value> = items
                            .iter()
                            .filter(|i| i.get("$patch").and_then(Value::as_str) != Some("delete"))
                            .cloned()
                            .collect();
                        target_map.insert(key.clone(), Value::Array(cleaned));
                    }
                }
            }
            Value::Object(_) => {
                let entry = target_map.entry(key.clone()).or_insert(Value::Null);
                strategic_merge(entry, value, key);
            }
            other => {
                target_map.insert(key.clone(), other.clone());
            }
        }
    }
}

/// Server-side apply's removal rule, reduced: a field the same manager applied last time and
/// no longer applies is removed. Maps recurse; lists and scalars are atomic.
pub fn prune_unapplied(current: &mut Value, previous: &Value, applied: &Value) {
    let (Value::Object(cur), Value::Object(prev)) = (current, previous) else {
        return;
    };
    for (key, prev_value) in prev {
        match applied.get(key) {
            None => {
                cur.remove(key);
            }
            Some(new_value) if prev_value.is_object() && new_value.is_object() => {
                if let Some(child) = cur.get_mut(key) {
                    prune_unapplied(child, prev_value, new_value);
                }
            }
            Some(_) => {}
        }
    }
}

fn merge_list_by_key(existing: &mut Vec<Value>, items: &[Value], key: &str) {
    for item in items {
        let id = item.get(key).cloned();
        let position = id
            .as_ref()
            .and_then(|id| existing.iter().position(|e| e.get(key) == Some(id)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => {
                existing.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut existing[i], item, ""),
            (None, false) => {
                let mut fresh = Value::Null;
                strategic_merge(&mut fresh, item, "");
                existing.push(fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "app", "image": "a:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "side", "image": "s:1"}
        ]}});
        let patch = json!({
            "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
            "spec": {"containers": [
                {"name": "app", "image": "a:2", "env": [{"name": "B", "value": "2"}]},
                {"name": "side", "$patch": "delete"},
                {"name": "new", "image": "n:1"}
            ]}
        });
        apply_patch(PatchKind::Strategic, &mut pod, &patch).expect("patched");
        let containers = pod["spec"]["containers"].as_array().expect("list");
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0]["image"], "a:2");
        assert_eq!(containers[0]["env"].as_array().map(Vec::len), Some(2));
        assert_eq!(containers[1]["name"], "new");
    }

    #[test]
    fn strategic_merge_replaces_unknown_lists_and_removes_nulls() {
        let mut obj = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x"]}, "rules": [1, 2]});
        let patch = json!({"metadata": {"labels": {"a": null}, "finalizers": ["y"]}, "rules": [3]});
        apply_patch(PatchKind::Strategic, &mut obj, &patch).expect("patched");
        assert_eq!(
            obj,
            json!({"metadata": {"labels": {"b": "2"}, "finalizers": ["x", "y"]}, "rules": [3]})
        );
    }

    #[test]
    fn apply_prunes_what_the_manager_stopped_applying() {
        let mut obj = json!({"metadata": {"name": "s", "labels": {"a": "1", "b": "2", "other": "x"}}, "data": {"k": "v"}});
        let previous =
            json!({"metadata": {"name": "s", "labels": {"a": "1", "b": "2"}}, "data": {"k": "v"}});
        let applied = json!({"metadata": {"name": "s", "labels": {"a": "1"}}});
        prune_unapplied(&mut obj, &previous, &applied);
        apply_patch(PatchKind::Apply, &mut obj, &applied).expect("apply");
        assert_eq!(
            obj,
            json!({"metadata": {"name": "s", "labels": {"a": "1", "other": "x"}}})
        );
    }

    #[test]
    fn merge_and_json_patches() {
        let mut obj = json!({"a": {"b": 1}, "l": [1, 2]});
        apply_patch(
            PatchKind::Merge,
            &mut obj,
            &json!({"a": {"c": 2}, "l": [3]}),
        )
        .expect("merge");
        assert_eq!(obj, json!({"a": {"b": 1, "c": 2}, "l": [3]}));
        let ops = json!([{"op": "add", "path": "/a/d", "value": 4}]);
        apply_patch(PatchKind::Json, &mut obj, &ops).expect("json patch");
        assert_eq!(obj["a"]["d"], 4);
        let bad = json!([{"op": "remove", "path": "/missing"}]);
        assert_eq!(
            apply_patch(PatchKind::Json, &mut obj, &bad).map_err(|e| e.code),
            Err(422)
        );
        assert_eq!(
            apply_patch(PatchKind::Json, &mut obj, &json!({"op": 1})).map_err(|e| e.code),
            Err(400)
        );
        assert_eq!(
            apply_patch(PatchKind::Merge, &mut obj, &json!([1])).map_err(|e| e.code),
            Err(400)
        );
    }
}
