//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`): the `k8s\0` magic and the
//! `runtime.Unknown` envelope, decoded with k8s-pb's prost types and converted to JSON for the
//! kinds the product's tests create with kubectl (`kubectl create namespace|secret|configmap`).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

const MAGIC: &[u8] = b"k8s\0";

/// Decodes a protobuf-encoded object into the JSON the rest of the server works with.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let payload = body.strip_prefix(MAGIC).ok_or_else(|| {
        ApiError::bad_request("protobuf body does not start with the k8s magic prefix")
    })?;
    let unknown = Unknown::decode(payload).map_err(bad_proto)?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let raw = unknown.raw.unwrap_or_default();
    let mut obj = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => {
            namespace(core::Namespace::decode(raw.as_slice()).map_err(bad_proto)?)
        }
        ("v1", "Secret") => secret(core::Secret::decode(raw.as_slice()).map_err(bad_proto)?),
        ("v1", "ConfigMap") => {
            config_map(core::ConfigMap::decode(raw.as_slice()).map_err(bad_proto)?)
        }
        _ => {
            return Err(ApiError::unsupported_media_type(&format!(
                "application/vnd.kubernetes.protobuf for {api_version}/{kind} (testkube decodes Namespace, Secret and ConfigMap)"
            )));
        }
    };
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

fn bad_proto(e: prost::DecodeError) -> ApiError {
    ApiError::bad_request(format!("unable to decode protobuf body: {e}"))
}

/// Builds a JSON object, leaving out absent and empty fields as Go's omitempty does.
struct J(Map<String, Value>);

impl J {
    fn new() -> Self {
        Self(Map::new())
    }
    fn s(mut self, k: &str, v: &Option<String>) -> Self {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            self.0.insert(k.into(), json!(v));
        }
        self
    }
    fn b(mut self, k: &str, v: Option<bool>) -> Self {
        if let Some(v) = v {
            self.0.insert(k.into(), json!(v));
        }
        self
    }
    fn v(mut self, k: &str, v: Value) -> Self {
        let empty = match &v {
            Value::Null => true,
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if !empty {
            self.0.insert(k.into(), v);
        }
        self
    }
    fn strs(self, k: &str, v: &[String]) -> Self {
        self.v(k, json!(v))
    }
    fn map(self, k: &str, v: &BTreeMap<String, String>) -> Self {
        self.v(k, json!(v))
    }
    fn meta(self, m: Option<meta::ObjectMeta>) -> Self {
        let v = object_meta(m.unwrap_or_default());
        // metadata is always present, even when empty.
        let mut this = self;
        this.0.insert("metadata".into(), v);
        this
    }
    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

fn object_meta(m: meta::ObjectMeta) -> Value {
    J::new()
        .s("name", &m.name)
        .s("generateName", &m.generate_name)
        .s("namespace", &m.namespace)
        .s("resourceVersion", &m.resource_version)
        .map("labels", &m.labels)
        .map("annotations", &m.annotations)
        .strs("finalizers", &m.finalizers)
        .done()
}

fn namespace(n: core::Namespace) -> Value {
    let spec = n
        .spec
        .map(|s| J::new().strs("finalizers", &s.finalizers).done());
    J::new()
        .meta(n.metadata)
        .v("spec", spec.unwrap_or(Value::Null))
        .done()
}

fn secret(s: core::Secret) -> Value {
    let data: BTreeMap<String, String> = s
        .data
        .iter()
        .map(|(k, v)| (k.clone(), STANDARD.encode(v)))
        .collect();
    J::new()
        .meta(s.metadata)
        .b("immutable", s.immutable)
        .map("data", &data)
        .map("stringData", &s.string_data)
        .s("type", &s.r#type)
        .done()
}

fn config_map(c: core::ConfigMap) -> Value {
    let binary: BTreeMap<String, String> = c
        .binary_data
        .iter()
        .map(|(k, v)| (k.clone(), STANDARD.encode(v)))
        .collect();
    J::new()
        .meta(c.metadata)
        .b("immutable", c.immutable)
        .map("data", &c.data)
        .map("binaryData", &binary)
        .done()
}

/// Wraps an object in the envelope, as kubectl does; used by tests.
pub fn encode_envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: Some(api_version.to_string()),
            kind: Some(kind.to_string()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = MAGIC.to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_dockerconfigjson_secret() {
        let s = core::Secret {
            metadata: Some(meta::ObjectMeta {
                name: Some("key".into()),
                namespace: Some("shop".into()),
                labels: BTreeMap::from([("usage".to_string(), "sparrow-registry-key".to_string())]),
                ..Default::default()
            }),
            data: BTreeMap::from([(".dockerconfigjson".to_string(), br#"{"auths":{}}"#.to_vec())]),
            r#type: Some("kubernetes.io/dockerconfigjson".into()),
            ..Default::default()
        };
        let body = encode_envelope("v1", "Secret", s.encode_to_vec());
        let obj = decode(&body).expect("decoded");
        assert_eq!(obj["kind"], "Secret");
        assert_eq!(obj["metadata"]["name"], "key");
        assert_eq!(obj["metadata"]["labels"]["usage"], "sparrow-registry-key");
        assert_eq!(
            obj["data"][".dockerconfigjson"],
            STANDARD.encode(br#"{"auths":{}}"#)
        );
        assert_eq!(obj["type"], "kubernetes.io/dockerconfigjson");
    }

    #[test]
    fn rejects_garbage_and_unknown_kinds() {
        assert_eq!(decode(b"{}").map_err(|e| e.code), Err(400));
        assert_eq!(decode(b"k8s\0\xff\xff\xff").map_err(|e| e.code), Err(400));
        let body = encode_envelope("batch/v1", "Job", Vec::new());
        assert_eq!(decode(&body).map_err(|e| e.code), Err(415));
    }
}
