//! Object normalisation and validation the real API performs for the resources we serve.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::error::{ApiError, FieldError};
use crate::resources::{NameRule, ResourceDef};
use crate::store::meta_str;

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain check.
pub fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

fn name_error(def: &ResourceDef, name: &str) -> Option<String> {
    match def.name_rule {
        NameRule::Subdomain if !is_subdomain(name) => Some(SUBDOMAIN_MSG.to_string()),
        NameRule::Label if !is_label(name) => Some(LABEL_MSG.to_string()),
        NameRule::PathSegment if name == "." || name == ".." => {
            Some(format!("may not be '{name}'"))
        }
        NameRule::PathSegment if name.contains('/') || name.contains('%') => Some(format!(
            "may not contain '{}'",
            if name.contains('/') { "/" } else { "%" }
        )),
        _ => None,
    }
}

/// Checks the body's apiVersion/kind against the URL, filling them in when absent.
pub fn check_type(def: &ResourceDef, obj: &mut Value) -> Result<(), ApiError> {
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    };
    let expected_version = def.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != expected_version => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected_version})"
            )));
        }
        Some(_) => {}
        None => {
            map.insert("apiVersion".into(), json!(expected_version));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        Some(k) if k != def.kind => Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            def.kind
        ))),
        Some(_) => Ok(()),
        None => {
            map.insert("kind".into(), json!(def.kind));
            Ok(())
        }
    }
}

/// Conversions the API applies on decode: Secret `stringData` folds into `data`; namespaces get
/// their `kubernetes.io/metadata.name` label, finalizer and phase.
pub fn normalize(def: &ResourceDef, obj: &mut Value) {
    match def.kind {
        "Secret" => {
            if let Some(Value::Object(string_data)) =
                obj.as_object_mut().and_then(|m| m.remove("stringData"))
            {
                if !obj.get("data").is_some_and(Value::is_object) {
                    obj["data"] = json!({});
                }
                for (k, v) in string_data {
                    let text = v.as_str().unwrap_or_default();
                    obj["data"][k] = json!(STANDARD.encode(text));
                }
            }
            if obj
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                obj["type"] = json!("Opaque");
            }
        }
        "Namespace" => {
            if let Some(name) = meta_str(obj, "name").map(str::to_string) {
                if !obj
                    .pointer("/metadata/labels")
                    .is_some_and(Value::is_object)
                {
                    obj["metadata"]["labels"] = json!({});
                }
                obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
            }
            if obj.pointer("/spec/finalizers").is_none() {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
            }
            obj["status"] = json!({"phase": "Active"});
        }
        _ => {}
    }
}

/// Validates a (normalised) object about to be stored. `old` is the stored object on update.
pub fn validate(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let name = meta_str(obj, "name").unwrap_or_default();
    let mut causes = Vec::new();
    if old.is_none() {
        if name.is_empty() {
            if meta_str(obj, "generateName").is_none_or(str::is_empty) {
                causes.push(FieldError {
                    reason: "FieldValueRequired",
                    field: "metadata.name".into(),
                    value: None,
                    detail: "name or generateName is required".into(),
                });
            }
        } else if let Some(msg) = name_error(def, name) {
            causes.push(FieldError::invalid("metadata.name", name, msg));
        }
    }
    if let Some(labels) = obj.pointer("/metadata/labels") {
        match labels.as_object() {
            Some(map) => {
                for (k, v) in map {
                    if !v.is_string() {
                        return Err(ApiError::bad_request(format!(
                            "label {k:?} must be a string"
                        )));
                    }
                }
            }
            None if labels.is_null() => {}
            None => return Err(ApiError::bad_request("metadata.labels must be an object")),
        }
    }
    if def.kind == "Secret" {
        validate_secret(obj, old, &mut causes)?;
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(def.group, def.kind, name, &causes))
    }
}

fn decode_data(obj: &Value, key: &str) -> Result<Option<Vec<u8>>, ApiError> {
    match obj.get("data").and_then(|d| d.get(key)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => STANDARD.decode(s).map(Some).map_err(|e| {
            ApiError::bad_request(format!("Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data in data[{key}]: {e}"))
        }),
        Some(_) => Err(ApiError::bad_request(format!(
            "Secret in version \"v1\" cannot be handled as a Secret: data[{key}] must be a base64 string"
        ))),
    }
}

fn validate_secret(
    obj: &Value,
    old: Option<&Value>,
    causes: &mut Vec<FieldError>,
) -> Result<(), ApiError> {
    if let Some(data) = obj.get("data").filter(|d| !d.is_null()) {
        let Some(map) = data.as_object() else {
            return Err(ApiError::bad_request(
                "Secret in version \"v1\" cannot be handled as a Secret: data must be an object",
            ));
        };
        for key in map.keys() {
            decode_data(obj, key)?;
            let valid_key = !key.is_empty()
                && key.len() <= 253
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid_key {
                causes.push(FieldError::invalid(
                    format!("data[{key}]"),
                    key.clone(),
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
        }
    }
    let ty = obj.get("type").and_then(Value::as_str).unwrap_or("Opaque");
    match ty {
        "kubernetes.io/dockerconfigjson" => match decode_data(obj, ".dockerconfigjson")? {
            None => causes.push(FieldError::required("data[.dockerconfigjson]")),
            Some(bytes) => {
                if let Err(e) = serde_json::from_slice::<Value>(&bytes) {
                    causes.push(FieldError::invalid(
                        "data[.dockerconfigjson]",
                        "<secret contents redacted>",
                        e.to_string(),
                    ));
                }
            }
        },
        "kubernetes.io/dockercfg" => match decode_data(obj, ".dockercfg")? {
            None => causes.push(FieldError::required("data[.dockercfg]")),
            Some(bytes) => {
                if let Err(e) = serde_json::from_slice::<Value>(&bytes) {
                    causes.push(FieldError::invalid(
                        "data[.dockercfg]",
                        "<secret contents redacted>",
                        e.to_string(),
                    ));
                }
            }
        },
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if decode_data(obj, key)?.is_none() {
                    causes.push(FieldError::required(format!("data[{key}]")));
                }
            }
        }
        _ => {}
    }
    if let Some(old) = old {
        let old_ty = old.get("type").and_then(Value::as_str).unwrap_or("Opaque");
        if old_ty != ty {
            causes.push(FieldError::immutable("type", ty));
        }
        if old.get("immutable") == Some(&json!(true)) && old.get("data") != obj.get("data") {
            causes.push(FieldError::invalid(
                "data",
                "<secret contents redacted>",
                "field is immutable when `immutable` is set",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{RESOURCES, find};

    fn secret_def() -> &'static ResourceDef {
        &RESOURCES[find("", "v1", "secrets").expect("secrets")]
    }

    #[test]
    fn names_follow_the_resource_rule() {
        assert!(is_subdomain("registry.example-1"));
        assert!(!is_subdomain("Bad_Name"));
        assert!(!is_label("a.b"));
        let ns = &RESOURCES[crate::resources::NAMESPACES];
        assert!(name_error(ns, "a.b").is_some());
        let cr = &RESOURCES[find("rbac.authorization.k8s.io", "v1", "clusterroles").expect("cr")];
        assert!(name_error(cr, "system:controller:x").is_none());
        assert!(name_error(cr, "a/b").is_some());
    }

    #[test]
    fn string_data_folds_into_data() {
        let mut s =
            json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}, "data": {"a": "Yg=="}});
        normalize(secret_def(), &mut s);
        assert_eq!(s["data"], json!({"a": "Yg==", "k": "dg=="}));
        assert!(s.get("stringData").is_none());
        assert_eq!(s["type"], "Opaque");
    }

    #[test]
    fn dockerconfigjson_must_hold_json() {
        let def = secret_def();
        let missing = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/dockerconfigjson", "data": {}});
        let err = validate(def, &missing, None).expect_err("missing");
        assert_eq!(err.code, 422);
        assert!(
            err.message
                .contains("data[.dockerconfigjson]: Required value"),
            "{}",
            err.message
        );
        let not_json = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": STANDARD.encode("{not json")}});
        assert_eq!(validate(def, &not_json, None).map_err(|e| e.code), Err(422));
        let not_base64 = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": "!!!"}});
        assert_eq!(
            validate(def, &not_base64, None).map_err(|e| e.code),
            Err(400)
        );
        let good = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": STANDARD.encode(r#"{"auths":{}}"#)}});
        assert!(validate(def, &good, None).is_ok());
    }

    #[test]
    fn secret_type_is_immutable() {
        let old = json!({"metadata": {"name": "s"}, "type": "Opaque"});
        let new = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
        let err = validate(secret_def(), &new, Some(&old)).expect_err("immutable");
        assert!(
            err.message
                .contains("type: Invalid value: \"kubernetes.io/tls\": field is immutable"),
            "{}",
            err.message
        );
    }

    #[test]
    fn type_must_match_url() {
        let def = secret_def();
        let mut wrong = json!({"apiVersion": "v1", "kind": "ConfigMap"});
        assert_eq!(check_type(def, &mut wrong).map_err(|e| e.code), Err(400));
        let mut wrong = json!({"apiVersion": "apps/v1", "kind": "Secret"});
        assert_eq!(check_type(def, &mut wrong).map_err(|e| e.code), Err(400));
        let mut bare = json!({"metadata": {}});
        check_type(def, &mut bare).expect("filled in");
        assert_eq!(bare["kind"], "Secret");
        let mut not_object = json!([1]);
        assert!(check_type(def, &mut not_object).is_err());
    }
}
