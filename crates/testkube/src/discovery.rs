//! Legacy discovery documents: `/version`, `/api`, `/apis`, `/api/v1`, `/apis/<g>/<v>`.
//! Aggregated-discovery requests get the legacy form, which clients accept as a fallback.

use serde_json::{Value, json};

use crate::resources::{RESOURCES, VERBS, group_versions};

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-testkube",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

/// `/apis`.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = group_versions()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, v)| api_group(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<g>`.
pub fn api_group(group: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [gv.clone()],
        "preferredVersion": gv
    })
}

/// `/api/v1` or `/apis/<g>/<v>`; `None` when no resource lives in that group version.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .map(|r| {
            let mut entry = json!({
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": VERBS,
            });
            if !r.short_names.is_empty() {
                entry["shortNames"] = json!(r.short_names);
            }
            entry
        })
        .collect();
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_list_has_short_names() {
        let list = api_resource_list("", "v1").expect("core");
        let resources = list["resources"].as_array().expect("array");
        let ns = resources
            .iter()
            .find(|r| r["name"] == "namespaces")
            .expect("namespaces");
        assert_eq!(ns["shortNames"], json!(["ns"]));
        assert_eq!(ns["namespaced"], false);
        assert!(api_resource_list("batch", "v1").is_none());
    }

    #[test]
    fn group_list_names_every_group() {
        let groups = api_group_list();
        let names: Vec<&str> = groups["groups"]
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|g| g["name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "apps",
                "rbac.authorization.k8s.io",
                "admissionregistration.k8s.io",
                "coordination.k8s.io",
                "events.k8s.io"
            ]
        );
    }
}
