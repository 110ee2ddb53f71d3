//! `sparrowctl inject`: the pods and pod templates in multi-document YAML get the sidecar,
//! through the same decision rules and patch as the webhook.

use json_patch::Patch;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Map, Value};

use crate::{Decision, InjectConfig, InjectError, decide_manual, patch};

/// What happened to one pod or workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentOutcome {
    /// `kind` of the document (`Deployment`, `Pod`, ...).
    pub kind: String,
    /// `metadata.name`, empty when the document has none.
    pub name: String,
    /// Injected, or why not.
    pub decision: Decision,
}

/// The output YAML and an outcome per pod or workload found (in input order, `List`
/// items included; documents of other kinds have none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    /// The documents, injected where decided, as YAML.
    pub yaml: String,
    /// One per pod or workload.
    pub outcomes: Vec<DocumentOutcome>,
}

/// Injects every Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and CronJob in
/// `yaml` (also inside `List` documents); other documents pass through unchanged.
pub fn inject_documents(yaml: &str, config: &InjectConfig) -> Result<String, InjectError> {
    inject_documents_with_report(yaml, config).map(|i| i.yaml)
}

/// [`inject_documents`], also telling what happened to each pod or workload.
pub fn inject_documents_with_report(
    yaml: &str,
    config: &InjectConfig,
) -> Result<Injected, InjectError> {
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(yaml).map_err(InjectError::ParseYaml)?;
    let mut outcomes = Vec::new();
    let mut out = Vec::with_capacity(documents.len());
    for mut document in documents {
        // Empty documents (a trailing `---`) carry nothing; kubectl skips them too.
        if document.is_null() {
            continue;
        }
        inject_document(&mut document, config, &mut outcomes)?;
        out.push(document);
    }
    let yaml = serde_saphyr::to_string_multiple(&out).map_err(InjectError::WriteYaml)?;
    Ok(Injected { yaml, outcomes })
}

/// Where the pod template of each workload kind lives.
fn template_path(kind: &str) -> Option<&'static str> {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => Some("/spec/template"),
        "CronJob" => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

fn str_at<'a>(document: &'a Value, pointer: &str) -> Option<&'a str> {
    document.pointer(pointer).and_then(Value::as_str)
}

fn inject_document(
    document: &mut Value,
    config: &InjectConfig,
    outcomes: &mut Vec<DocumentOutcome>,
) -> Result<(), InjectError> {
    let kind = str_at(document, "/kind").unwrap_or_default().to_owned();
    let name = str_at(document, "/metadata/name")
        .unwrap_or_default()
        .to_owned();
    let namespace = str_at(document, "/metadata/namespace").map(str::to_owned);
    if kind == "Pod" {
        let decision = inject_pod_value(document, namespace.as_deref(), config, &kind, &name)?;
        outcomes.push(DocumentOutcome {
            kind,
            name,
            decision,
        });
    } else if let Some(path) = template_path(&kind) {
        let template = document
            .pointer_mut(path)
            .filter(|t| t.is_object())
            .ok_or_else(|| InjectError::MissingPodTemplate {
                kind: kind.clone(),
                name: name.clone(),
                path,
            })?;
        let decision = inject_pod_value(template, namespace.as_deref(), config, &kind, &name)?;
        outcomes.push(DocumentOutcome {
            kind,
            name,
            decision,
        });
    } else if kind.ends_with("List")
        && let Some(items) = document.get_mut("items").and_then(Value::as_array_mut)
    {
        for item in items {
            inject_document(item, config, outcomes)?;
        }
    }
    Ok(())
}

/// Injects a Pod document or a pod template (`metadata` + `spec`) in place.
fn inject_pod_value(
    value: &mut Value,
    namespace: Option<&str>,
    config: &InjectConfig,
    kind: &str,
    name: &str,
) -> Result<Decision, InjectError> {
    let Some(object) = value.as_object_mut() else {
        return Ok(Decision::Inject); // unreachable by construction: callers pass objects
    };
    // The patch adds under /metadata; a template may have none.
    if !object.get("metadata").is_some_and(Value::is_object) {
        object.insert("metadata".to_owned(), Value::Object(Map::new()));
    }
    let pod = as_pod(object, kind, name)?;
    let decision = decide_manual(&pod, namespace, config);
    if decision == Decision::Inject {
        let Patch(ops) = patch(&pod, config)?;
        json_patch::patch(value, &ops).map_err(InjectError::Patch)?;
    }
    Ok(decision)
}

/// The pod a template describes, typed, without the workload's other fields.
fn as_pod(object: &Map<String, Value>, kind: &str, name: &str) -> Result<Pod, InjectError> {
    let mut pod = Map::new();
    pod.insert("apiVersion".to_owned(), Value::from("v1"));
    pod.insert("kind".to_owned(), Value::from("Pod"));
    for field in ["metadata", "spec"] {
        if let Some(v) = object.get(field) {
            pod.insert(field.to_owned(), v.clone());
        }
    }
    serde_json::from_value(Value::Object(pod)).map_err(|source| InjectError::InvalidPodTemplate {
        kind: kind.to_owned(),
        name: name.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests;
