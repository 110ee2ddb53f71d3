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
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, HTTPGetAction, LocalObjectReference, Namespace, ObjectFieldSelector,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    Secret, SecretVolumeSource, SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec,
    Volume, VolumeMount,
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
use crate::client_ca::WebhookClientCa;
use crate::config::MeshConfig;
use crate::inventory::{Kind, PARTS, Part, Presence, describe};
use crate::names::*;
use crate::pods::quantities;

/// Secret type of the pull secret.
pub const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
/// Data key of the pull secret.
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
/// Where the controller finds the webhook client CA (`--webhook-client-ca`).
pub const WEBHOOK_CLIENT_CA_MOUNT_PATH: &str = "/var/run/sparrow/webhook-client-ca";

/// One object of the control plane. (A deploy holds a dozen: variant sizes do not matter.)
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Object {
    /// The mesh namespace.
    Namespace(Namespace),
    /// The pull secret or the TLS secret.
    Secret(Secret),
    /// The CA whose client certificates the webhook accepts.
    ConfigMap(ConfigMap),
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

/// Runs `$body` with `$o` bound to the typed object inside `$object`, whatever its variant.
macro_rules! each_variant {
    ($object:expr, $o:ident => $body:expr) => {
        match $object {
            Object::Namespace($o) => $body,
            Object::Secret($o) => $body,
            Object::ConfigMap($o) => $body,
            Object::ServiceAccount($o) => $body,
            Object::ClusterRole($o) => $body,
            Object::ClusterRoleBinding($o) => $body,
            Object::Role($o) => $body,
            Object::RoleBinding($o) => $body,
            Object::Deployment($o) => $body,
            Object::Service($o) => $body,
            Object::MutatingWebhookConfiguration($o) => $body,
        }
    };
}

impl Object {
    /// The object's metadata.
    pub fn meta(&self) -> &ObjectMeta {
        each_variant!(self, o => &o.metadata)
    }

    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Namespace(_) => Kind::Namespace,
            Self::Secret(_) => Kind::Secret,
            Self::ConfigMap(_) => Kind::ConfigMap,
            Self::ServiceAccount(_) => Kind::ServiceAccount,
            Self::ClusterRole(_) => Kind::ClusterRole,
            Self::ClusterRoleBinding(_) => Kind::ClusterRoleBinding,
            Self::Role(_) => Kind::Role,
            Self::RoleBinding(_) => Kind::RoleBinding,
            Self::Deployment(_) => Kind::Deployment,
            Self::Service(_) => Kind::Service,
            Self::MutatingWebhookConfiguration(_) => Kind::MutatingWebhookConfiguration,
        }
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or_default()
    }

    /// `Kind/name`, or `Kind namespace/name`, for progress lines.
    pub fn describe(&self) -> String {
        describe(self.kind(), self.meta().namespace.as_deref(), self.name())
    }

    /// The object as JSON with `apiVersion` and `kind`.
    pub fn to_json(&self) -> serde_json::Value {
        // k8s-openapi types only hold strings, maps and numbers: serialisation cannot fail.
        each_variant!(self, o => serde_json::to_value(o)).unwrap_or_default()
    }

    /// True for the object pod creation depends on (the webhook configuration).
    pub fn gates_admission(&self) -> bool {
        self.kind() == Kind::MutatingWebhookConfiguration
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

/// [`common_labels`] plus the ownership marker `sparrow-mesh.io/mesh=<mesh>`: what the
/// control plane's own objects carry, and what `remove` looks for.
pub fn owned_labels(mesh: &str, component: &str) -> BTreeMap<String, String> {
    let mut labels = common_labels(component);
    labels.insert(MESH_LABEL.to_owned(), mesh.to_owned());
    labels
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

/// The source pull secret of the mesh in `mesh`: [`pull_secret`] with the ownership marker.
pub fn source_pull_secret(mesh: &str, dockerconfigjson: Vec<u8>) -> Secret {
    let mut secret = pull_secret(mesh, dockerconfigjson);
    let labels = secret.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(MESH_LABEL.to_owned(), mesh.to_owned());
    secret
}

/// [`source_pull_secret`] recording when its credential expires, when that is known
/// ([`crate::expiry`]); without it the Secret carries no expiry annotation.
pub fn expiring_source_pull_secret(
    mesh: &str,
    dockerconfigjson: Vec<u8>,
    expiry: Option<&crate::CredentialExpiry>,
) -> Secret {
    let mut secret = source_pull_secret(mesh, dockerconfigjson);
    if let Some(expiry) = expiry {
        secret
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .extend(expiry.annotations());
    }
    secret
}

/// The source pull secret as deploy and `registry update` write it: [`expiring_source_pull_secret`]
/// recording its kind ([`CREDENTIAL_KIND_ANNOTATION`]): `plugin` when a credential-provider
/// plugin keeps it, `static` when it holds the credential given on the command line.
pub fn kind_source_pull_secret(
    mesh: &str,
    dockerconfigjson: Vec<u8>,
    expiry: Option<&crate::CredentialExpiry>,
    credential_plugin: bool,
) -> Secret {
    let mut secret = expiring_source_pull_secret(mesh, dockerconfigjson, expiry);
    let kind = if credential_plugin {
        "plugin"
    } else {
        "static"
    };
    secret
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(CREDENTIAL_KIND_ANNOTATION.to_owned(), kind.to_owned());
    secret
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
    /// Renders the control plane for `config`: one object per entry of [`PARTS`] that deploy
    /// writes, in that order. No certificate and no `caBundle`: the controller makes and
    /// renews those (so the rendering holds no private key but the pull secret's).
    pub fn render(config: &MeshConfig) -> Self {
        let objects = PARTS
            .iter()
            .filter(|part| is_rendered(part, config))
            .filter_map(|part| build(part, config))
            .collect();
        Self { objects }
    }

    /// The rendered object for `part`, if it is part of this rendering.
    pub fn object(&self, part: &Part, mesh: &str) -> Option<&Object> {
        self.objects
            .iter()
            .find(|o| o.kind() == part.kind && o.name() == part.name(mesh))
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

/// Whether `part` is rendered for `config`.
fn is_rendered(part: &Part, config: &MeshConfig) -> bool {
    match part.presence {
        Presence::Always => true,
        Presence::WithCredentials => config.auth.is_some(),
        Presence::WithWebhookClientCa => config.webhook_client_ca.is_some(),
        Presence::MadeByController => false,
        Presence::WithCredentialPlugin => config.credential_plugin.is_some(),
    }
}

/// Builds one part; `None` for the pull secret when no credentials were given.
fn build(part: &Part, config: &MeshConfig) -> Option<Object> {
    let ns = config.namespace.as_str();
    let owned = |name: &str, namespace: Option<&str>, component: &str| {
        meta(name, namespace, owned_labels(ns, component))
    };
    let name = part.name(ns);
    let namespace = part.namespace(ns);
    Some(match part.kind {
        Kind::Namespace => Object::Namespace(Namespace {
            metadata: owned(name, None, PART_OF_VALUE),
            ..Namespace::default()
        }),
        Kind::Secret if name == PULL_SECRET_NAME => Object::Secret(kind_source_pull_secret(
            ns,
            dockerconfigjson(&config.registry, config.auth.as_ref()?),
            config.credential_expiry.as_ref(),
            config.credential_plugin.is_some(),
        )),
        Kind::Secret if name == CREDENTIAL_PROVIDER_SECRET_NAME => {
            let plugin = config.credential_plugin.as_ref()?;
            Object::Secret(Secret {
                metadata: owned(name, namespace, CONTROLLER_NAME),
                type_: Some("Opaque".to_owned()),
                data: Some(BTreeMap::from([(
                    CREDENTIAL_PROVIDER_CONFIG_KEY.to_owned(),
                    ByteString(plugin.config.clone().into_bytes()),
                )])),
                ..Secret::default()
            })
        }
        // The controller's certificates: made by the controller, never rendered.
        Kind::Secret => return None,
        Kind::ConfigMap => {
            Object::ConfigMap(webhook_client_ca(ns, config.webhook_client_ca.as_ref()?))
        }
        Kind::ServiceAccount => Object::ServiceAccount(ServiceAccount {
            metadata: owned(name, namespace, CONTROLLER_NAME),
            ..ServiceAccount::default()
        }),
        Kind::ClusterRole => Object::ClusterRole(cluster_role(ns)),
        Kind::ClusterRoleBinding => Object::ClusterRoleBinding(ClusterRoleBinding {
            metadata: owned(name, None, CONTROLLER_NAME),
            role_ref: role_ref("ClusterRole"),
            subjects: Some(vec![controller_subject(ns)]),
        }),
        Kind::Role => Object::Role(controller_role(
            ns,
            config.credential_plugin.is_some(),
            config.registry_secret.as_slice(),
        )),
        Kind::RoleBinding => Object::RoleBinding(RoleBinding {
            metadata: owned(name, namespace, CONTROLLER_NAME),
            role_ref: role_ref("Role"),
            subjects: Some(vec![controller_subject(ns)]),
        }),
        Kind::Deployment => Object::Deployment(with_credential_plugin(
            with_webhook_client_ca(deployment(config), config),
            config,
        )),
        Kind::Service => Object::Service(service(ns)),
        Kind::MutatingWebhookConfiguration => Object::MutatingWebhookConfiguration(webhook(config)),
    })
}

/// The controller's Role in the mesh namespace. `registry_secrets` are the Secrets other tools
/// keep that it may read (never write): the one `--registry-secret` names, or, while
/// `registry update` switches from one to another, both until the new controller runs.
pub fn controller_role(mesh: &str, credential_plugin: bool, registry_secrets: &[String]) -> Role {
    let names: Vec<&str> = registry_secrets.iter().map(String::as_str).collect();
    Role {
        metadata: meta(
            CONTROLLER_NAME,
            Some(mesh),
            owned_labels(mesh, CONTROLLER_NAME),
        ),
        rules: Some(
            vec![
                rule(
                    "coordination.k8s.io",
                    "leases",
                    &["get", "create", "update"],
                    &[],
                ),
                // The key copies are proven with (created through the ClusterRole's create).
                rule("", "secrets", &["get"], &[COPY_KEY_SECRET_NAME]),
                // The webhook's CA and serving certificate, which the controller keeps; every
                // replica watches the serving certificate (by name) to serve it.
                rule(
                    "",
                    "secrets",
                    &["get", "update"],
                    &[CA_SECRET_NAME, TLS_SECRET_NAME],
                ),
                rule("", "secrets", &["list", "watch"], &[TLS_SECRET_NAME]),
            ]
            .into_iter()
            // A token for its own ServiceAccount, which a plugin in KEP-4412's token mode
            // is given as the kubelet gives it a pod's.
            .chain(
                credential_plugin
                    .then(|| rule("", "serviceaccounts/token", &["create"], &[CONTROLLER_NAME])),
            )
            // The Secrets another tool keeps: read, never written (these names only).
            .chain(
                (!names.is_empty()).then(|| rule("", "secrets", &["get", "list", "watch"], &names)),
            )
            .collect(),
        ),
    }
}

fn role_ref(kind: &str) -> RoleRef {
    RoleRef {
        api_group: "rbac.authorization.k8s.io".to_owned(),
        kind: kind.to_owned(),
        name: CONTROLLER_NAME.to_owned(),
    }
}

fn controller_subject(ns: &str) -> Subject {
    Subject {
        kind: "ServiceAccount".to_owned(),
        name: CONTROLLER_NAME.to_owned(),
        namespace: Some(ns.to_owned()),
        api_group: None,
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

/// A whole number of seconds as the largest unit that divides it (`90d`, `2m`, `45s`), which
/// humantime parses back.
fn humanize_secs(secs: u64) -> String {
    match secs {
        s if s > 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s > 0 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Least privilege: the controller can create secrets anywhere (create cannot be limited by
/// name), but read, list, watch, change and delete only secrets named `sparrow-registry-key`.
/// list/watch with `resourceNames` are allowed only with `fieldSelector=metadata.name=...`,
/// so the controller can never read another secret.
pub fn cluster_role(mesh: &str) -> ClusterRole {
    ClusterRole {
        metadata: meta(CONTROLLER_NAME, None, owned_labels(mesh, CONTROLLER_NAME)),
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
            // The webhook's caBundle, which the controller keeps true (this one object only).
            rule(
                "admissionregistration.k8s.io",
                "mutatingwebhookconfigurations",
                &["get", "list", "watch", "patch"],
                &[WEBHOOK_CONFIG_NAME],
            ),
            rule("", "events", &["create", "patch"], &[]),
            rule("events.k8s.io", "events", &["create", "patch"], &[]),
        ]),
        aggregation_rule: None,
    }
}

fn selector_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(NAME_LABEL.to_owned(), CONTROLLER_NAME.to_owned())])
}

/// The Secret the control plane pulls with: the external one `--registry-secret` names, the
/// mesh's own when it has credentials, none otherwise.
pub fn control_plane_pull_secret(config: &MeshConfig) -> Option<&str> {
    match &config.registry_secret {
        Some(name) => Some(name),
        None => (config.auth.is_some()
            || config.stored_pull_secret
            || config.credential_plugin.is_some())
        .then_some(PULL_SECRET_NAME),
    }
}

/// The controller container of a Deployment (and its index among the containers).
pub fn controller_container(deployment: &Deployment) -> Option<(usize, &Container)> {
    deployment
        .spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .iter()
        .enumerate()
        .find(|(_, c)| c.name == CONTROLLER_NAME)
}

/// The value of the controller's argument `flag=VALUE` (`flag` with its dashes), as the
/// Deployment renders it.
pub fn controller_arg(deployment: &Deployment, flag: &str) -> Option<String> {
    let prefix = format!("{flag}=");
    controller_container(deployment)?
        .1
        .args
        .iter()
        .flatten()
        .find_map(|arg| arg.strip_prefix(&prefix).map(str::to_owned))
}

/// The Secret another tool keeps that the controller Deployment copies (its
/// `--registry-secret=NAME` argument).
pub fn registry_secret_in(deployment: &Deployment) -> Option<String> {
    controller_arg(deployment, REGISTRY_SECRET_ARG)
}

/// The plugin a controller Deployment runs (`--credential-provider=NAME`) and the image its
/// binaries come from (the init container's), when it runs one.
pub fn credential_plugin_in(deployment: &Deployment) -> Option<(String, String)> {
    let provider = controller_arg(deployment, "--credential-provider")?;
    let image = deployment
        .spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .init_containers
        .iter()
        .flatten()
        .find(|c| c.name == CREDENTIAL_PROVIDERS_INIT_CONTAINER)?
        .image
        .clone()?;
    Some((provider, image))
}

/// The controller's command-line, which `sparrow-controller` parses.
pub fn controller_args(config: &MeshConfig) -> Vec<String> {
    let mut args = vec![
        format!("--addr=0.0.0.0:{CONTAINER_PORT}"),
        format!("--health-addr=0.0.0.0:{HEALTH_PORT}"),
        format!("--mesh-namespace={}", config.namespace),
        format!("--sidecar-image={}", config.images.proxy),
        format!("--init-image={}", config.images.init),
        format!("--pull-policy={}", config.pull_policy),
        "--log-format=json".to_owned(),
    ];
    if let Some(validity) = config.webhook_cert_validity {
        args.push(format!(
            "--webhook-cert-validity={}",
            humanize_secs(validity.as_secs())
        ));
    }
    if config.webhook_client_ca.is_some() {
        args.push(format!(
            "--webhook-client-ca={WEBHOOK_CLIENT_CA_MOUNT_PATH}/{WEBHOOK_CLIENT_CA_KEY}"
        ));
    }
    if let Some(name) = &config.registry_secret {
        args.push(format!("{REGISTRY_SECRET_ARG}={name}"));
    }
    if let Some(plugin) = &config.credential_plugin {
        args.push(format!(
            "{CREDENTIAL_PROVIDER_CONFIG_ARG}={CREDENTIAL_PROVIDER_CONFIG_DIR}/{CREDENTIAL_PROVIDER_CONFIG_KEY}"
        ));
        args.push(format!(
            "--credential-provider-bin-dir={CREDENTIAL_PROVIDER_BIN_DIR}"
        ));
        args.push(format!("--credential-provider={}", plugin.provider));
        args.push(format!("--registry-server={}", config.registry));
    }
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

/// A probe of the health listener: plain HTTP on a port of its own, so neither a TLS
/// handshake under load nor a flood of webhook connections can make it fail.
fn health_probe(path: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(HEALTH_PORT),
            scheme: Some("HTTP".to_owned()),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(1),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

fn deployment(config: &MeshConfig) -> Deployment {
    let ns = config.namespace.as_str();
    let mut pod_labels = owned_labels(ns, CONTROLLER_NAME);
    // The control plane is never injected into itself.
    pod_labels.insert(AUTO_INJECT_LABEL.to_owned(), "disabled".to_owned());
    let container = Container {
        name: CONTROLLER_NAME.to_owned(),
        image: Some(config.images.controller.clone()),
        image_pull_policy: Some(config.pull_policy.as_str().to_owned()),
        args: Some(controller_args(config)),
        ports: Some(vec![
            ContainerPort {
                name: Some("https".to_owned()),
                container_port: CONTAINER_PORT,
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("health".to_owned()),
                container_port: HEALTH_PORT,
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            },
        ]),
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
        liveness_probe: Some(health_probe("/healthz", 10)),
        readiness_probe: Some(health_probe("/readyz", 5)),
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
        ..Container::default()
    };
    Deployment {
        metadata: meta(CONTROLLER_NAME, Some(ns), owned_labels(ns, CONTROLLER_NAME)),
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
                    image_pull_secrets: control_plane_pull_secret(config).map(|name| {
                        vec![LocalObjectReference {
                            name: name.to_owned(),
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
        metadata: meta(CONTROLLER_NAME, Some(ns), owned_labels(ns, CONTROLLER_NAME)),
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

/// What the API server does when the controller cannot answer for a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// The pod is refused: for namespaces and pods that opted in explicitly, which must
    /// never run without the sidecar.
    Fail,
    /// The pod is admitted without the sidecar: for namespaces nobody opted in (auto
    /// injection's implicit selector), which a controller that is down must never block.
    Ignore,
}

impl FailurePolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fail => "Fail",
            Self::Ignore => "Ignore",
        }
    }
}

/// One webhook of the injector before it is rendered: its name prefix, selectors and policy.
struct Hook {
    prefix: &'static str,
    namespaces: LabelSelector,
    pods: LabelSelector,
    policy: FailurePolicy,
}

/// The webhooks of the injector, one per way a pod can be chosen, with selectors that are
/// disjoint, so the API server calls us exactly once for a pod that gets the sidecar and
/// never for one that does not. The pod label wins over the namespace's; a pod labelled
/// `disabled` is never sent; `--enabled-namespaces` wins over namespace labels.
///
/// Availability: only the implicit selector (auto injection of namespaces nobody labelled)
/// is `Ignore`; every explicit opt-in (a namespace or pod labelled `enabled`, a namespace in
/// `--enabled-namespaces`) is `Fail`, so a meshed namespace never runs a pod without the
/// sidecar, and a controller that is down blocks nothing else.
///
/// | mode | webhook | namespaces | pods | failurePolicy |
/// |---|---|---|---|---|
/// | auto (default) | `namespaces.` | label `enabled` | label not `disabled` | Fail |
/// | auto (default) | `pods.` | label not `enabled` | label `enabled` | Fail |
/// | auto (default) | `implicit.` | label neither `enabled` nor `disabled` | label neither | Ignore |
/// | `--disable-auto-inject` | `namespaces.` | label `enabled` | label not `disabled` | Fail |
/// | `--disable-auto-inject` | `listed.` | label not `enabled`, in `--enabled-namespaces` | label not `disabled` | Fail |
/// | `--disable-auto-inject` | `pods.` | label not `enabled`, not listed | label `enabled` | Fail |
///
/// Every webhook also excludes the system namespaces and the mesh namespace.
pub fn injector_webhooks(config: &MeshConfig, ca_pem: Option<&str>) -> Vec<MutatingWebhook> {
    injector_hooks(config)
        .into_iter()
        .map(|hook| rendered_hook(config, ca_pem, hook))
        .collect()
}

fn injector_hooks(config: &MeshConfig) -> Vec<Hook> {
    let excluded = excluded_namespaces(&config.namespace);
    let enabled = vec!["enabled".to_owned()];
    let switches = vec!["enabled".to_owned(), "disabled".to_owned()];
    let not_excluded = || requirement(NAMESPACE_NAME_LABEL, "NotIn", &excluded);
    let label =
        |operator: &str, values: &[String]| requirement(AUTO_INJECT_LABEL, operator, values);
    let pod_not_disabled = || selector(vec![label("NotIn", &["disabled".to_owned()])]);
    let pod_enabled = || selector(vec![label("In", &enabled)]);
    let hook = |prefix, namespaces: Vec<_>, pods, policy| Hook {
        prefix,
        namespaces: selector(namespaces),
        pods,
        policy,
    };
    let mut hooks = vec![hook(
        "namespaces",
        vec![not_excluded(), label("In", &enabled)],
        pod_not_disabled(),
        FailurePolicy::Fail,
    )];
    if config.injection.disable_auto_inject {
        let listed = &config.injection.enabled_namespaces;
        let mut pods_namespaces = vec![not_excluded(), label("NotIn", &enabled)];
        if !listed.is_empty() {
            hooks.push(hook(
                "listed",
                vec![
                    not_excluded(),
                    label("NotIn", &enabled),
                    requirement(NAMESPACE_NAME_LABEL, "In", listed),
                ],
                pod_not_disabled(),
                FailurePolicy::Fail,
            ));
            pods_namespaces.push(requirement(NAMESPACE_NAME_LABEL, "NotIn", listed));
        }
        hooks.push(hook(
            "pods",
            pods_namespaces,
            pod_enabled(),
            FailurePolicy::Fail,
        ));
    } else {
        hooks.push(hook(
            "pods",
            vec![not_excluded(), label("NotIn", &enabled)],
            pod_enabled(),
            FailurePolicy::Fail,
        ));
        hooks.push(hook(
            "implicit",
            vec![not_excluded(), label("NotIn", &switches)],
            selector(vec![label("NotIn", &switches)]),
            FailurePolicy::Ignore,
        ));
    }
    hooks
}

fn rendered_hook(config: &MeshConfig, ca_pem: Option<&str>, hook: Hook) -> MutatingWebhook {
    MutatingWebhook {
        name: format!("{}.{WEBHOOK_NAME}", hook.prefix),
        admission_review_versions: vec!["v1".to_owned()],
        client_config: WebhookClientConfig {
            ca_bundle: ca_pem.map(|pem| ByteString(pem.as_bytes().to_vec())),
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
        namespace_selector: Some(hook.namespaces),
        object_selector: Some(hook.pods),
        side_effects: "NoneOnDryRun".to_owned(),
        failure_policy: Some(hook.policy.as_str().to_owned()),
        timeout_seconds: Some(10),
        reinvocation_policy: Some("Never".to_owned()),
        match_policy: Some("Equivalent".to_owned()),
        match_conditions: None,
    }
}

fn webhook(config: &MeshConfig) -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        metadata: meta(
            WEBHOOK_CONFIG_NAME,
            None,
            owned_labels(&config.namespace, CONTROLLER_NAME),
        ),
        webhooks: Some(injector_webhooks(config, None)),
    }
}

/// The ConfigMap holding the CA whose client certificates the webhook accepts. A CA
/// certificate is public: a ConfigMap, which `status` and GitOps tools may show.
fn webhook_client_ca(ns: &str, ca: &WebhookClientCa) -> ConfigMap {
    ConfigMap {
        metadata: meta(
            WEBHOOK_CLIENT_CA_NAME,
            Some(ns),
            owned_labels(ns, CONTROLLER_NAME),
        ),
        data: Some(BTreeMap::from([(
            WEBHOOK_CLIENT_CA_KEY.to_owned(),
            ca.pem().to_owned(),
        )])),
        ..ConfigMap::default()
    }
}

/// With `--webhook-client-ca`, the client CA's ConfigMap as a volume of the controller, where
/// its `--webhook-client-ca` flag reads it. A ConfigMap volume (no `subPath`) follows changes,
/// which the controller picks up without a restart.
fn with_webhook_client_ca(mut deployment: Deployment, config: &MeshConfig) -> Deployment {
    const VOLUME: &str = "webhook-client-ca";
    let pod = deployment
        .spec
        .as_mut()
        .and_then(|spec| spec.template.spec.as_mut());
    let Some(pod) = pod.filter(|_| config.webhook_client_ca.is_some()) else {
        return deployment;
    };
    pod.volumes.get_or_insert_with(Vec::new).push(Volume {
        name: VOLUME.to_owned(),
        config_map: Some(ConfigMapVolumeSource {
            name: WEBHOOK_CLIENT_CA_NAME.to_owned(),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    });
    for container in &mut pod.containers {
        container
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .push(VolumeMount {
                name: VOLUME.to_owned(),
                mount_path: WEBHOOK_CLIENT_CA_MOUNT_PATH.to_owned(),
                read_only: Some(true),
                ..VolumeMount::default()
            });
    }
    deployment
}

/// The plugin binaries and their config in the controller pod: an init container copies the
/// binaries out of `--credential-provider-image` into an emptyDir (the image volume source
/// needs containerd 2.1 or newer, which many nodes lack), and the config Secret is mounted
/// read-only.
/// The init container copying the plugin binaries (and their emptyDir volume).
const CREDENTIAL_PROVIDERS_INIT_CONTAINER: &str = "credential-providers";

fn with_credential_plugin(mut deployment: Deployment, config: &MeshConfig) -> Deployment {
    const BINS: &str = CREDENTIAL_PROVIDERS_INIT_CONTAINER;
    const CONFIG: &str = "credential-provider-config";
    let pod = deployment
        .spec
        .as_mut()
        .and_then(|spec| spec.template.spec.as_mut());
    let (Some(pod), Some(plugin)) = (pod, config.credential_plugin.as_ref()) else {
        return deployment;
    };
    let volumes = pod.volumes.get_or_insert_with(Vec::new);
    volumes.push(Volume {
        name: BINS.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity("256Mi".to_owned())),
            ..EmptyDirVolumeSource::default()
        }),
        ..Volume::default()
    });
    volumes.push(Volume {
        name: CONFIG.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(CREDENTIAL_PROVIDER_SECRET_NAME.to_owned()),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    });
    let mount = |name: &str, path: &str, read_only: bool| VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    };
    let security = pod
        .containers
        .first()
        .and_then(|c| c.security_context.clone());
    pod.init_containers
        .get_or_insert_with(Vec::new)
        .push(Container {
            name: BINS.to_owned(),
            image: Some(plugin.image.clone()),
            image_pull_policy: Some(config.pull_policy.as_str().to_owned()),
            command: Some(vec![
                "cp".to_owned(),
                "-R".to_owned(),
                format!("{CREDENTIAL_PROVIDER_IMAGE_DIR}/."),
                format!("{CREDENTIAL_PROVIDER_BIN_DIR}/"),
            ]),
            volume_mounts: Some(vec![mount(BINS, CREDENTIAL_PROVIDER_BIN_DIR, false)]),
            resources: Some(ResourceRequirements {
                requests: Some(quantities(&[("cpu", "10m"), ("memory", "16Mi")])),
                limits: Some(quantities(&[("cpu", "200m"), ("memory", "64Mi")])),
                ..ResourceRequirements::default()
            }),
            security_context: security,
            ..Container::default()
        });
    for container in &mut pod.containers {
        let mounts = container.volume_mounts.get_or_insert_with(Vec::new);
        mounts.push(mount(BINS, CREDENTIAL_PROVIDER_BIN_DIR, true));
        mounts.push(mount(CONFIG, CREDENTIAL_PROVIDER_CONFIG_DIR, true));
    }
    deployment
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod webhook_client_ca_tests;
