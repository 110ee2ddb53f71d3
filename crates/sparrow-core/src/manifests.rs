//! The control plane as typed Kubernetes objects, in apply order.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    WebhookClientConfig,
};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    LocalObjectReference, Namespace, ObjectFieldSelector, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, Secret, SecretVolumeSource,
    SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::auth::dockerconfigjson;
use crate::config::MeshConfig;
use crate::names::*;
use crate::tls::WebhookTls;

/// Secret type of the pull secret.
pub const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
/// Data key of the pull secret.
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
/// Where the controller finds its TLS secret.
pub const TLS_MOUNT_PATH: &str = "/var/run/sparrow/tls";

/// One object of the control plane. (A deploy holds a dozen: variant sizes do not matter.)
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Object {
    /// The mesh namespace.
    Namespace(Namespace),
    /// The pull secret or the TLS secret.
    Secret(Secret),
    /// The controller's identity.
    ServiceAccount(ServiceAccount),
    /// Cluster-wide permissions of the controller.
    ClusterRole(ClusterRole),
    /// Binds [`Object::ClusterRole`].
    ClusterRoleBinding(ClusterRoleBinding),
    /// Lease permissions in the mesh namespace.
    Role(Role),
    /// Binds [`Object::Role`].
    RoleBinding(RoleBinding),
    /// The controller.
    Deployment(Deployment),
    /// The webhook's Service.
    Service(Service),
    /// The sidecar-injection webhook.
    MutatingWebhookConfiguration(MutatingWebhookConfiguration),
}

impl Object {
    /// The object's metadata.
    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Self::Namespace(o) => &o.metadata,
            Self::Secret(o) => &o.metadata,
            Self::ServiceAccount(o) => &o.metadata,
            Self::ClusterRole(o) => &o.metadata,
            Self::ClusterRoleBinding(o) => &o.metadata,
            Self::Role(o) => &o.metadata,
            Self::RoleBinding(o) => &o.metadata,
            Self::Deployment(o) => &o.metadata,
            Self::Service(o) => &o.metadata,
            Self::MutatingWebhookConfiguration(o) => &o.metadata,
        }
    }

    /// The object's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Namespace(_) => "Namespace",
            Self::Secret(_) => "Secret",
            Self::ServiceAccount(_) => "ServiceAccount",
            Self::ClusterRole(_) => "ClusterRole",
            Self::ClusterRoleBinding(_) => "ClusterRoleBinding",
            Self::Role(_) => "Role",
            Self::RoleBinding(_) => "RoleBinding",
            Self::Deployment(_) => "Deployment",
            Self::Service(_) => "Service",
            Self::MutatingWebhookConfiguration(_) => "MutatingWebhookConfiguration",
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or_default()
    }

    /// `Kind/name`, or `Kind namespace/name`, for progress lines.
    pub fn describe(&self) -> String {
        match &self.meta().namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind(), self.name()),
            None => format!("{} {}", self.kind(), self.name()),
        }
    }

    /// The object as JSON with `apiVersion` and `kind`.
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            Self::Namespace(o) => serde_json::to_value(o),
            Self::Secret(o) => serde_json::to_value(o),
            Self::ServiceAccount(o) => serde_json::to_value(o),
            Self::ClusterRole(o) => serde_json::to_value(o),
            Self::ClusterRoleBinding(o) => serde_json::to_value(o),
            Self::Role(o) => serde_json::to_value(o),
            Self::RoleBinding(o) => serde_json::to_value(o),
            Self::Deployment(o) => serde_json::to_value(o),
            Self::Service(o) => serde_json::to_value(o),
            Self::MutatingWebhookConfiguration(o) => serde_json::to_value(o),
        };
        // k8s-openapi types only hold strings, maps and numbers: serialisation cannot fail.
        value.unwrap_or_default()
    }
}

/// The control plane in apply order.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlPlane {
    /// Every object, in the order `deploy` applies them.
    pub objects: Vec<Object>,
}

/// Labels on everything we create.
pub fn common_labels(component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (PART_OF_LABEL.to_owned(), PART_OF_VALUE.to_owned()),
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (NAME_LABEL.to_owned(), component.to_owned()),
    ])
}

/// Labels of the pull secret and of every copy: [`common_labels`] plus `usage=sparrow-registry-key`.
pub fn pull_secret_labels() -> BTreeMap<String, String> {
    let mut labels = common_labels(PULL_SECRET_NAME);
    labels.insert(USAGE_LABEL.to_owned(), USAGE_LABEL_VALUE.to_owned());
    labels
}

/// `usage=sparrow-registry-key`: the selector that finds the source and every copy.
pub fn pull_secret_selector() -> String {
    format!("{USAGE_LABEL}={USAGE_LABEL_VALUE}")
}

fn meta(name: &str, namespace: Option<&str>, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

/// The pull secret in `namespace`, holding `dockerconfigjson` bytes.
pub fn pull_secret(namespace: &str, dockerconfigjson: Vec<u8>) -> Secret {
    Secret {
        metadata: meta(PULL_SECRET_NAME, Some(namespace), pull_secret_labels()),
        type_: Some(DOCKER_CONFIG_JSON_TYPE.to_owned()),
        data: Some(BTreeMap::from([(
            DOCKER_CONFIG_JSON_KEY.to_owned(),
            ByteString(dockerconfigjson),
        )])),
        ..Secret::default()
    }
}

impl ControlPlane {
    /// Renders the control plane for `config`, serving the webhook with `tls`.
    pub fn render(config: &MeshConfig, tls: &WebhookTls) -> Self {
        let ns = config.namespace.as_str();
        let mut objects = vec![Object::Namespace(Namespace {
            metadata: meta(ns, None, common_labels(PART_OF_VALUE)),
            ..Namespace::default()
        })];
        if let Some(auth) = &config.auth {
            objects.push(Object::Secret(pull_secret(
                ns,
                dockerconfigjson(&config.registry, auth),
            )));
        }
        objects.push(Object::Secret(tls_secret(ns, tls)));
        objects.push(Object::ServiceAccount(ServiceAccount {
            metadata: meta(CONTROLLER_NAME, Some(ns), common_labels(CONTROLLER_NAME)),
            ..ServiceAccount::default()
        }));
        objects.push(Object::ClusterRole(cluster_role()));
        objects.push(Object::ClusterRoleBinding(ClusterRoleBinding {
            metadata: meta(CONTROLLER_NAME, None, common_labels(CONTROLLER_NAME)),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".to_owned(),
                kind: "ClusterRole".to_owned(),
                name: CONTROLLER_NAME.to_owned(),
            },
            subjects: Some(vec![controller_subject(ns)]),
        }));
        objects.push(Object::Role(Role {
            metadata: meta(CONTROLLER_NAME, Some(ns), common_labels(CONTROLLER_NAME)),
            rules: Some(vec![rule(
                "coordination.k8s.io",
                "leases",
                &["get", "create", "update"],
                &[],
            )]),
        }));
        objects.push(Object::RoleBinding(RoleBinding {
            metadata: meta(CONTROLLER_NAME, Some(ns), common_labels(CONTROLLER_NAME)),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".to_owned(),
                kind: "Role".to_owned(),
                name: CONTROLLER_NAME.to_owned(),
            },
            subjects: Some(vec![controller_subject(ns)]),
        }));
        objects.push(Object::Deployment(deployment(config)));
        objects.push(Object::Service(service(ns)));
        objects.push(Object::MutatingWebhookConfiguration(webhook(config, tls)));
        Self { objects }
    }

    /// Multi-document YAML, one document per object, in apply order.
    pub fn to_yaml(&self) -> Result<String, serde_saphyr::ser::Error> {
        let documents: Vec<_> = self.objects.iter().map(Object::to_json).collect();
        to_yaml_documents(&documents)
    }

    /// One `v1` `List` holding every object, in apply order.
    pub fn to_json_list(&self) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "List",
            "metadata": {},
            "items": self.objects.iter().map(Object::to_json).collect::<Vec<_>>(),
        })
    }
}

/// Multi-document YAML, each document opened by `---`. Long single-line values (base64)
/// stay on one line rather than being folded, as kubectl prints them.
pub fn to_yaml_documents(
    documents: &[serde_json::Value],
) -> Result<String, serde_saphyr::ser::Error> {
    let options = serde_saphyr::ser_options! { folded_wrap_chars: usize::MAX };
    let mut out = String::from("---\n");
    out.push_str(&serde_saphyr::to_string_multiple_with_options(
        documents, options,
    )?);
    Ok(out)
}

fn controller_subject(ns: &str) -> Subject {
    Subject {
        kind: "ServiceAccount".to_owned(),
        name: CONTROLLER_NAME.to_owned(),
        namespace: Some(ns.to_owned()),
        api_group: None,
    }
}

fn tls_secret(ns: &str, tls: &WebhookTls) -> Secret {
    Secret {
        metadata: meta(TLS_SECRET_NAME, Some(ns), common_labels(CONTROLLER_NAME)),
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(BTreeMap::from([
            (
                "ca.crt".to_owned(),
                ByteString(tls.ca_pem.clone().into_bytes()),
            ),
            (
                "tls.crt".to_owned(),
                ByteString(tls.cert_pem.clone().into_bytes()),
            ),
            (
                "tls.key".to_owned(),
                ByteString(tls.key_pem.clone().into_bytes()),
            ),
        ])),
        ..Secret::default()
    }
}

fn rule(group: &str, resource: &str, verbs: &[&str], names: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(vec![resource.to_owned()]),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        resource_names: (!names.is_empty())
            .then(|| names.iter().map(|n| (*n).to_owned()).collect()),
        non_resource_urls: None,
    }
}

/// Least privilege: the controller can create secrets anywhere (create cannot be limited by
/// name), but read, list, watch, change and delete only secrets named `sparrow-registry-key`.
/// list/watch with `resourceNames` are allowed only with `fieldSelector=metadata.name=...`,
/// so the controller can never read another secret.
pub fn cluster_role() -> ClusterRole {
    ClusterRole {
        metadata: meta(CONTROLLER_NAME, None, common_labels(CONTROLLER_NAME)),
        rules: Some(vec![
            rule("", "secrets", &["create"], &[]),
            rule(
                "",
                "secrets",
                &["get", "update", "patch", "delete"],
                &[PULL_SECRET_NAME],
            ),
            rule("", "secrets", &["list", "watch"], &[PULL_SECRET_NAME]),
            rule("", "namespaces", &["get", "list", "watch"], &[]),
            rule("", "pods", &["get", "list", "watch"], &[]),
            rule("", "events", &["create", "patch"], &[]),
            rule("events.k8s.io", "events", &["create", "patch"], &[]),
        ]),
        aggregation_rule: None,
    }
}

fn selector_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(NAME_LABEL.to_owned(), CONTROLLER_NAME.to_owned())])
}

/// The controller's command-line, which `sparrow-controller` parses.
pub fn controller_args(config: &MeshConfig) -> Vec<String> {
    let mut args = vec![
        format!("--addr=0.0.0.0:{CONTAINER_PORT}"),
        format!("--tls-cert={TLS_MOUNT_PATH}/tls.crt"),
        format!("--tls-key={TLS_MOUNT_PATH}/tls.key"),
        format!("--mesh-namespace={}", config.namespace),
        format!("--sidecar-image={}", config.images.proxy),
        format!("--init-image={}", config.images.init),
        format!("--pull-policy={}", config.pull_policy),
        "--log-format=json".to_owned(),
    ];
    if config.injection.disable_auto_inject {
        args.push("--disable-auto-inject".to_owned());
    }
    if !config.injection.enabled_namespaces.is_empty() {
        args.push(format!(
            "--enabled-namespaces={}",
            config.injection.enabled_namespaces.join(",")
        ));
    }
    args
}

fn https_probe(path: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(CONTAINER_PORT),
            scheme: Some("HTTPS".to_owned()),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(1),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
        .collect()
}

fn deployment(config: &MeshConfig) -> Deployment {
    let ns = config.namespace.as_str();
    let mut pod_labels = common_labels(CONTROLLER_NAME);
    // The control plane is never injected into itself.
    pod_labels.insert(AUTO_INJECT_LABEL.to_owned(), "disabled".to_owned());
    let container = Container {
        name: CONTROLLER_NAME.to_owned(),
        image: Some(config.images.controller.clone()),
        image_pull_policy: Some(config.pull_policy.as_str().to_owned()),
        args: Some(controller_args(config)),
        ports: Some(vec![ContainerPort {
            name: Some("https".to_owned()),
            container_port: CONTAINER_PORT,
            protocol: Some("TCP".to_owned()),
            ..ContainerPort::default()
        }]),
        env: Some(vec![
            EnvVar {
                name: "RUST_LOG".to_owned(),
                value: Some("info".to_owned()),
                value_from: None,
            },
            // The Lease holder's identity.
            EnvVar {
                name: "POD_NAME".to_owned(),
                value: None,
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "metadata.name".to_owned(),
                        api_version: None,
                    }),
                    ..EnvVarSource::default()
                }),
            },
        ]),
        liveness_probe: Some(https_probe("/healthz", 10)),
        readiness_probe: Some(https_probe("/readyz", 5)),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&[("cpu", "50m"), ("memory", "32Mi")])),
            limits: Some(quantities(&[("cpu", "500m"), ("memory", "128Mi")])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(65532),
            run_as_group: Some(65532),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                add: None,
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "tls".to_owned(),
            mount_path: TLS_MOUNT_PATH.to_owned(),
            read_only: Some(true),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    };
    Deployment {
        metadata: meta(CONTROLLER_NAME, Some(ns), common_labels(CONTROLLER_NAME)),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(selector_labels()),
                match_expressions: None,
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::Int(1)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(CONTROLLER_NAME.to_owned()),
                    image_pull_secrets: config.auth.as_ref().map(|_| {
                        vec![LocalObjectReference {
                            name: PULL_SECRET_NAME.to_owned(),
                        }]
                    }),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".to_owned(),
                            localhost_profile: None,
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![container],
                    volumes: Some(vec![Volume {
                        name: "tls".to_owned(),
                        secret: Some(SecretVolumeSource {
                            secret_name: Some(TLS_SECRET_NAME.to_owned()),
                            ..SecretVolumeSource::default()
                        }),
                        ..Volume::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

fn service(ns: &str) -> Service {
    Service {
        metadata: meta(CONTROLLER_NAME, Some(ns), common_labels(CONTROLLER_NAME)),
        spec: Some(ServiceSpec {
            selector: Some(selector_labels()),
            ports: Some(vec![ServicePort {
                name: Some("https".to_owned()),
                port: SERVICE_PORT,
                target_port: Some(IntOrString::Int(CONTAINER_PORT)),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// Namespaces the webhook is never called for: the system namespaces and the mesh's own.
pub fn excluded_namespaces(mesh_namespace: &str) -> Vec<String> {
    SYSTEM_NAMESPACES
        .iter()
        .map(|s| (*s).to_owned())
        .chain(std::iter::once(mesh_namespace.to_owned()))
        .collect()
}

fn requirement(key: &str, operator: &str, values: &[String]) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.to_owned(),
        operator: operator.to_owned(),
        values: Some(values.to_vec()),
    }
}

fn selector(requirements: Vec<LabelSelectorRequirement>) -> LabelSelector {
    LabelSelector {
        match_labels: None,
        match_expressions: Some(requirements),
    }
}

/// The webhooks of the injector, one per way a pod can be chosen, with selectors that are
/// disjoint, so the API server calls us exactly once for a pod that gets the sidecar and
/// never for one that does not. The pod label wins over the namespace's; a pod labelled
/// `disabled` is never sent; `--enabled-namespaces` wins over namespace labels.
///
/// | mode | webhook | namespaces | pods |
/// |---|---|---|---|
/// | auto (default) | `namespaces.` | label not `disabled` | label not `disabled` |
/// | auto (default) | `pods.` | label `disabled` | label `enabled` |
/// | `--disable-auto-inject` | `namespaces.` | label `enabled` | label not `disabled` |
/// | `--disable-auto-inject` | `listed.` | label not `enabled`, in `--enabled-namespaces` | label not `disabled` |
/// | `--disable-auto-inject` | `pods.` | label not `enabled`, not listed | label `enabled` |
///
/// Every webhook also excludes the system namespaces and the mesh namespace.
pub fn injector_webhooks(config: &MeshConfig, ca_pem: &str) -> Vec<MutatingWebhook> {
    let excluded = excluded_namespaces(&config.namespace);
    let enabled = vec!["enabled".to_owned()];
    let disabled = vec!["disabled".to_owned()];
    let not_excluded = || requirement(NAMESPACE_NAME_LABEL, "NotIn", &excluded);
    let pod_not_disabled = || selector(vec![requirement(AUTO_INJECT_LABEL, "NotIn", &disabled)]);
    let pod_enabled = || selector(vec![requirement(AUTO_INJECT_LABEL, "In", &enabled)]);
    let mut webhooks = Vec::new();
    if config.injection.disable_auto_inject {
        let listed = &config.injection.enabled_namespaces;
        webhooks.push((
            "namespaces",
            selector(vec![
                not_excluded(),
                requirement(AUTO_INJECT_LABEL, "In", &enabled),
            ]),
            pod_not_disabled(),
        ));
        if !listed.is_empty() {
            webhooks.push((
                "listed",
                selector(vec![
                    not_excluded(),
                    requirement(AUTO_INJECT_LABEL, "NotIn", &enabled),
                    requirement(NAMESPACE_NAME_LABEL, "In", listed),
                ]),
                pod_not_disabled(),
            ));
        }
        let mut pods_namespaces = vec![
            not_excluded(),
            requirement(AUTO_INJECT_LABEL, "NotIn", &enabled),
        ];
        if !listed.is_empty() {
            pods_namespaces.push(requirement(NAMESPACE_NAME_LABEL, "NotIn", listed));
        }
        webhooks.push(("pods", selector(pods_namespaces), pod_enabled()));
    } else {
        webhooks.push((
            "namespaces",
            selector(vec![
                not_excluded(),
                requirement(AUTO_INJECT_LABEL, "NotIn", &disabled),
            ]),
            pod_not_disabled(),
        ));
        webhooks.push((
            "pods",
            selector(vec![
                not_excluded(),
                requirement(AUTO_INJECT_LABEL, "In", &disabled),
            ]),
            pod_enabled(),
        ));
    }
    webhooks
        .into_iter()
        .map(
            |(prefix, namespace_selector, object_selector)| MutatingWebhook {
                name: format!("{prefix}.{WEBHOOK_NAME}"),
                admission_review_versions: vec!["v1".to_owned()],
                client_config: WebhookClientConfig {
                    ca_bundle: Some(ByteString(ca_pem.as_bytes().to_vec())),
                    service: Some(ServiceReference {
                        name: CONTROLLER_NAME.to_owned(),
                        namespace: config.namespace.clone(),
                        path: Some(WEBHOOK_PATH.to_owned()),
                        port: Some(SERVICE_PORT),
                    }),
                    url: None,
                },
                rules: Some(vec![RuleWithOperations {
                    api_groups: Some(vec![String::new()]),
                    api_versions: Some(vec!["v1".to_owned()]),
                    operations: Some(vec!["CREATE".to_owned()]),
                    resources: Some(vec!["pods".to_owned()]),
                    scope: Some("Namespaced".to_owned()),
                }]),
                namespace_selector: Some(namespace_selector),
                object_selector: Some(object_selector),
                side_effects: "NoneOnDryRun".to_owned(),
                failure_policy: Some("Fail".to_owned()),
                timeout_seconds: Some(10),
                reinvocation_policy: Some("Never".to_owned()),
                match_policy: Some("Equivalent".to_owned()),
                match_conditions: None,
            },
        )
        .collect()
}

fn webhook(config: &MeshConfig, tls: &WebhookTls) -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        metadata: meta(WEBHOOK_CONFIG_NAME, None, common_labels(CONTROLLER_NAME)),
        webhooks: Some(injector_webhooks(config, &tls.ca_pem)),
    }
}

#[cfg(test)]
mod tests;
