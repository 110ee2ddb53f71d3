//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`): the `k8s\0` magic and the
//! `runtime.Unknown` envelope, decoded with k8s-pb's prost types and converted to JSON for the
//! kinds the `kubectl create <kind>` family sends.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::rbac::v1 as rbac;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
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
        ("v1", "ServiceAccount") => {
            service_account(core::ServiceAccount::decode(raw.as_slice()).map_err(bad_proto)?)
        }
        ("v1", "Service") => service(core::Service::decode(raw.as_slice()).map_err(bad_proto)?),
        ("apps/v1", "Deployment") => {
            deployment(apps::Deployment::decode(raw.as_slice()).map_err(bad_proto)?)
        }
        ("rbac.authorization.k8s.io/v1", "Role") => {
            let r = rbac::Role::decode(raw.as_slice()).map_err(bad_proto)?;
            J::new().meta(r.metadata).v("rules", rules(&r.rules)).done()
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            let r = rbac::ClusterRole::decode(raw.as_slice()).map_err(bad_proto)?;
            J::new().meta(r.metadata).v("rules", rules(&r.rules)).done()
        }
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
            let b = rbac::RoleBinding::decode(raw.as_slice()).map_err(bad_proto)?;
            binding(b.metadata, &b.subjects, b.role_ref)
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            let b = rbac::ClusterRoleBinding::decode(raw.as_slice()).map_err(bad_proto)?;
            binding(b.metadata, &b.subjects, b.role_ref)
        }
        _ => {
            return Err(ApiError::unsupported_media_type(&format!(
                "application/vnd.kubernetes.protobuf for {api_version}/{kind} (testkube decodes Namespace, Secret, ConfigMap, ServiceAccount, Service, Deployment and RBAC kinds)"
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
    fn i(mut self, k: &str, v: Option<i64>) -> Self {
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
    let owners: Vec<Value> = m
        .owner_references
        .iter()
        .map(|o| {
            J::new()
                .s("apiVersion", &o.api_version)
                .s("kind", &o.kind)
                .s("name", &o.name)
                .s("uid", &o.uid)
                .b("controller", o.controller)
                .b("blockOwnerDeletion", o.block_owner_deletion)
                .done()
        })
        .collect();
    J::new()
        .s("name", &m.name)
        .s("generateName", &m.generate_name)
        .s("namespace", &m.namespace)
        .s("resourceVersion", &m.resource_version)
        .map("labels", &m.labels)
        .map("annotations", &m.annotations)
        .v("ownerReferences", json!(owners))
        .strs("finalizers", &m.finalizers)
        .done()
}

fn label_selector(s: Option<meta::LabelSelector>) -> Value {
    let Some(s) = s else { return Value::Null };
    let exprs: Vec<Value> = s
        .match_expressions
        .iter()
        .map(|e| {
            J::new()
                .s("key", &e.key)
                .s("operator", &e.operator)
                .strs("values", &e.values)
                .done()
        })
        .collect();
    let mut out = J::new()
        .map("matchLabels", &s.match_labels)
        .v("matchExpressions", json!(exprs))
        .done();
    if out.is_null() {
        out = json!({});
    }
    out
}

fn int_or_string(v: &Option<IntOrString>) -> Value {
    match v {
        Some(IntOrString {
            r#type: Some(1),
            str_val,
            ..
        }) => json!(str_val.clone().unwrap_or_default()),
        Some(IntOrString { int_val, .. }) => json!(int_val.unwrap_or(0)),
        None => Value::Null,
    }
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

fn local_refs(refs: &[core::LocalObjectReference]) -> Value {
    json!(
        refs.iter()
            .map(|r| J::new().s("name", &r.name).done())
            .collect::<Vec<_>>()
    )
}

fn service_account(sa: core::ServiceAccount) -> Value {
    let secrets: Vec<Value> = sa
        .secrets
        .iter()
        .map(|r| {
            J::new()
                .s("kind", &r.kind)
                .s("namespace", &r.namespace)
                .s("name", &r.name)
                .done()
        })
        .collect();
    J::new()
        .meta(sa.metadata)
        .v("secrets", json!(secrets))
        .v("imagePullSecrets", local_refs(&sa.image_pull_secrets))
        .b(
            "automountServiceAccountToken",
            sa.automount_service_account_token,
        )
        .done()
}

fn service(s: core::Service) -> Value {
    let spec = s.spec.map(|spec| {
        let ports: Vec<Value> = spec
            .ports
            .iter()
            .map(|p| {
                J::new()
                    .s("name", &p.name)
                    .s("protocol", &p.protocol)
                    .s("appProtocol", &p.app_protocol)
                    .i("port", p.port.map(i64::from))
                    .v("targetPort", int_or_string(&p.target_port))
                    .i("nodePort", p.node_port.map(i64::from))
                    .done()
            })
            .collect();
        J::new()
            .v("ports", json!(ports))
            .map("selector", &spec.selector)
            .s("clusterIP", &spec.cluster_ip)
            .strs("clusterIPs", &spec.cluster_ips)
            .s("type", &spec.r#type)
            .strs("externalIPs", &spec.external_ips)
            .s("sessionAffinity", &spec.session_affinity)
            .s("externalName", &spec.external_name)
            .done()
    });
    J::new()
        .meta(s.metadata)
        .v("spec", spec.unwrap_or(Value::Null))
        .done()
}

fn resources(r: &Option<core::ResourceRequirements>) -> Value {
    let Some(r) = r else { return Value::Null };
    let q = |m: &BTreeMap<String, k8s_pb::apimachinery::pkg::api::resource::Quantity>| -> BTreeMap<String, String> {
        m.iter().map(|(k, v)| (k.clone(), v.string.clone().unwrap_or_default())).collect()
    };
    let out = J::new()
        .map("limits", &q(&r.limits))
        .map("requests", &q(&r.requests))
        .done();
    // kubectl create deployment sends an empty resources block; keep it as {}.
    if out.as_object().is_some_and(Map::is_empty) {
        json!({})
    } else {
        out
    }
}

fn container(c: &core::Container) -> Value {
    let ports: Vec<Value> = c
        .ports
        .iter()
        .map(|p| {
            J::new()
                .s("name", &p.name)
                .i("containerPort", p.container_port.map(i64::from))
                .s("protocol", &p.protocol)
                .i("hostPort", p.host_port.map(i64::from))
                .done()
        })
        .collect();
    let env: Vec<Value> = c
        .env
        .iter()
        .map(|e| J::new().s("name", &e.name).s("value", &e.value).done())
        .collect();
    J::new()
        .s("name", &c.name)
        .s("image", &c.image)
        .strs("command", &c.command)
        .strs("args", &c.args)
        .s("workingDir", &c.working_dir)
        .v("ports", json!(ports))
        .v("env", json!(env))
        .v("resources", resources(&c.resources))
        .s("imagePullPolicy", &c.image_pull_policy)
        .done()
}

fn pod_spec(p: core::PodSpec) -> Value {
    J::new()
        .v(
            "initContainers",
            json!(p.init_containers.iter().map(container).collect::<Vec<_>>()),
        )
        .v(
            "containers",
            json!(p.containers.iter().map(container).collect::<Vec<_>>()),
        )
        .s("restartPolicy", &p.restart_policy)
        .map("nodeSelector", &p.node_selector)
        .s("serviceAccountName", &p.service_account_name)
        .v("imagePullSecrets", local_refs(&p.image_pull_secrets))
        .done()
}

fn deployment(d: apps::Deployment) -> Value {
    let spec = d.spec.map(|spec| {
        let template = spec.template.map(|t| {
            let mut tj = J::new().meta(t.metadata);
            tj = tj.v("spec", t.spec.map(pod_spec).unwrap_or(json!({})));
            tj.done()
        });
        let strategy = spec.strategy.map(|s| J::new().s("type", &s.r#type).done());
        let mut out = J::new()
            .i("replicas", spec.replicas.map(i64::from))
            .v("selector", label_selector(spec.selector))
            .v("template", template.unwrap_or(Value::Null))
            .i("minReadySeconds", spec.min_ready_seconds.map(i64::from))
            .i(
                "revisionHistoryLimit",
                spec.revision_history_limit.map(i64::from),
            )
            .b("paused", spec.paused)
            .done();
        if let Some(strategy) = strategy {
            out["strategy"] = strategy;
        }
        out
    });
    J::new()
        .meta(d.metadata)
        .v("spec", spec.unwrap_or(Value::Null))
        .done()
}

fn rules(rules: &[rbac::PolicyRule]) -> Value {
    json!(
        rules
            .iter()
            .map(|r| {
                let mut j = J::new().strs("verbs", &r.verbs);
                if !r.resources.is_empty() || !r.api_groups.is_empty() {
                    // apiGroups [""] must survive: it means the core group.
                    j = j.v("apiGroups", json!(r.api_groups));
                }
                j.strs("resources", &r.resources)
                    .strs("resourceNames", &r.resource_names)
                    .strs("nonResourceURLs", &r.non_resource_ur_ls)
                    .done()
            })
            .collect::<Vec<_>>()
    )
}

fn binding(
    m: Option<meta::ObjectMeta>,
    subjects: &[rbac::Subject],
    role_ref: Option<rbac::RoleRef>,
) -> Value {
    let subjects: Vec<Value> = subjects
        .iter()
        .map(|s| {
            J::new()
                .s("kind", &s.kind)
                .s("apiGroup", &s.api_group)
                .s("name", &s.name)
                .s("namespace", &s.namespace)
                .done()
        })
        .collect();
    let role_ref = role_ref.map(|r| {
        let mut j = J::new().s("kind", &r.kind).s("name", &r.name).done();
        j["apiGroup"] = json!(r.api_group.unwrap_or_default());
        j
    });
    J::new()
        .meta(m)
        .v("subjects", json!(subjects))
        .v("roleRef", role_ref.unwrap_or(Value::Null))
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
    fn decodes_a_deployment_and_service() {
        let d = apps::Deployment {
            metadata: Some(meta::ObjectMeta {
                name: Some("web".into()),
                ..Default::default()
            }),
            spec: Some(apps::DeploymentSpec {
                replicas: Some(2),
                selector: Some(meta::LabelSelector {
                    match_labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
                    ..Default::default()
                }),
                template: Some(core::PodTemplateSpec {
                    metadata: None,
                    spec: Some(core::PodSpec {
                        containers: vec![core::Container {
                            name: Some("nginx".into()),
                            image: Some("nginx:1".into()),
                            resources: Some(Default::default()),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }),
            status: None,
        };
        let obj =
            decode(&encode_envelope("apps/v1", "Deployment", d.encode_to_vec())).expect("decoded");
        assert_eq!(obj["spec"]["replicas"], 2);
        assert_eq!(obj["spec"]["selector"]["matchLabels"]["app"], "web");
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1"
        );
        let svc = core::Service {
            metadata: Some(meta::ObjectMeta {
                name: Some("web".into()),
                ..Default::default()
            }),
            spec: Some(core::ServiceSpec {
                ports: vec![core::ServicePort {
                    port: Some(80),
                    target_port: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(8080),
                        str_val: None,
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: None,
        };
        let obj = decode(&encode_envelope("v1", "Service", svc.encode_to_vec())).expect("decoded");
        assert_eq!(obj["spec"]["ports"][0]["targetPort"], 8080);
    }

    #[test]
    fn rejects_garbage_and_unknown_kinds() {
        assert_eq!(decode(b"{}").map_err(|e| e.code), Err(400));
        assert_eq!(decode(b"k8s\0\xff\xff\xff").map_err(|e| e.code), Err(400));
        let body = encode_envelope("batch/v1", "Job", Vec::new());
        assert_eq!(decode(&body).map_err(|e| e.code), Err(415));
    }
}
