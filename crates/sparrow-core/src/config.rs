//! What a deploy is made of: the values the CLI flags become.

use std::fmt;
use std::str::FromStr;

use crate::auth::RegistryAuth;
use crate::client_ca::WebhookClientCa;
use crate::names::{
    CONTROLLER_IMAGE_NAME, DEFAULT_IMAGE_TAG, DEFAULT_NAMESPACE, INIT_IMAGE_NAME, PROXY_IMAGE_NAME,
};
use crate::registry::RegistryServer;

/// `imagePullPolicy` for the mesh's own images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Always pull.
    Always,
    /// Pull when the node does not have the image (Kubernetes' default for tagged images).
    #[default]
    IfNotPresent,
    /// Never pull.
    Never,
}

impl PullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

impl fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown `--pull-policy`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pull policy {0:?}: use Always, IfNotPresent or Never")]
pub struct PullPolicyError(pub String);

impl FromStr for PullPolicy {
    type Err = PullPolicyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Always" => Ok(Self::Always),
            "IfNotPresent" => Ok(Self::IfNotPresent),
            "Never" => Ok(Self::Never),
            other => Err(PullPolicyError(other.to_owned())),
        }
    }
}

/// Which namespaces get the sidecar automatically.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InjectionScope {
    /// `--disable-auto-inject`: only namespaces (or pods) labelled `enabled`, and `enabled_namespaces`.
    pub disable_auto_inject: bool,
    /// `--enabled-namespaces a,b`: injected even with auto-injection disabled.
    pub enabled_namespaces: Vec<String>,
}

/// The three images of the mesh, resolved from the registry server and tag or overridden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// The controller (webhook) image.
    pub controller: String,
    /// The sidecar proxy image.
    pub proxy: String,
    /// The init container image.
    pub init: String,
}

impl Images {
    /// `<server>/<name>:<tag>` for each image, unless overridden.
    pub fn resolve(server: &RegistryServer, tag: &str, overrides: &ImageOverrides) -> Self {
        let pick = |over: &Option<String>, name: &str| {
            over.clone().unwrap_or_else(|| server.image(name, tag))
        };
        Self {
            controller: pick(&overrides.controller, CONTROLLER_IMAGE_NAME),
            proxy: pick(&overrides.proxy, PROXY_IMAGE_NAME),
            init: pick(&overrides.init, INIT_IMAGE_NAME),
        }
    }

    /// The images in a fixed order, with a label for each.
    pub fn all(&self) -> [(&'static str, &str); 3] {
        [
            ("controller", &self.controller),
            ("proxy", &self.proxy),
            ("init", &self.init),
        ]
    }
}

/// `--controller-image`, `--sidecar-image`, `--init-image`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageOverrides {
    /// Replaces the controller image.
    pub controller: Option<String>,
    /// Replaces the sidecar proxy image.
    pub proxy: Option<String>,
    /// Replaces the init image.
    pub init: Option<String>,
}

/// Everything a deploy renders from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshConfig {
    /// The control plane's namespace.
    pub namespace: String,
    /// Where images come from.
    pub registry: RegistryServer,
    /// Credentials; without them no pull secret is rendered.
    pub auth: Option<RegistryAuth>,
    /// When `auth` expires, when anything knows it: recorded on the source pull secret.
    pub credential_expiry: Option<crate::CredentialExpiry>,
    /// No credentials were given but the mesh's pull secret exists already (a `deploy` again
    /// without the credential flags): the control plane keeps pulling with it, unrendered.
    pub stored_pull_secret: bool,
    /// `--registry-secret NAME`: a `kubernetes.io/dockerconfigjson` Secret in the mesh
    /// namespace that another tool keeps. The control plane pulls with it and the controller
    /// copies it as it is; Sparrow never writes or deletes it. Excludes `auth`.
    pub registry_secret: Option<String>,
    /// `--registry-credential-provider`: the controller keeps the pull secret fresh by
    /// running a kubelet credential-provider plugin. `auth` then holds the credential
    /// `deploy` obtained by running it once (`--credential-provider-bin-dir`), if it did.
    pub credential_plugin: Option<CredentialPlugin>,
    /// The mesh's images.
    pub images: Images,
    /// `imagePullPolicy` of the mesh's containers.
    pub pull_policy: PullPolicy,
    /// Which namespaces are injected.
    pub injection: InjectionScope,
    /// The life of the webhook's serving certificate, which the controller makes and renews;
    /// `None` for the controller's default.
    pub webhook_cert_validity: Option<std::time::Duration>,
    /// `--webhook-client-ca`: only callers with a client certificate signed by it (the API
    /// server) are answered; `None`: anyone who reaches the webhook is.
    pub webhook_client_ca: Option<WebhookClientCa>,
}

/// A kubelet credential-provider plugin the controller runs to keep the pull secret fresh.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialPlugin {
    /// The `CredentialProviderConfig` file as given (YAML or JSON), already validated; stored
    /// in Secret `sparrow-credential-provider`.
    pub config: String,
    /// The provider of that config whose `matchImages` cover the mesh's images.
    pub provider: String,
    /// The image holding the plugin binaries under `/credential-providers` and a `cp`.
    pub image: String,
}

/// The config's text may carry keys in a provider's `env`: never printed.
impl std::fmt::Debug for CredentialPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialPlugin")
            .field("provider", &self.provider)
            .field("image", &self.image)
            .finish_non_exhaustive()
    }
}

impl Default for MeshConfig {
    fn default() -> Self {
        let registry = RegistryServer::default();
        let images = Images::resolve(&registry, DEFAULT_IMAGE_TAG, &ImageOverrides::default());
        Self {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            registry,
            auth: None,
            credential_expiry: None,
            stored_pull_secret: false,
            registry_secret: None,
            credential_plugin: None,
            images,
            pull_policy: PullPolicy::default(),
            injection: InjectionScope::default(),
            webhook_cert_validity: None,
            webhook_client_ca: None,
        }
    }
}

/// A namespace name that Kubernetes would refuse (RFC 1123 label).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid namespace {0:?}: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
)]
pub struct NamespaceError(pub String);

/// Checks one `--enabled-namespaces` entry: a valid name that the mesh may inject (never a
/// system namespace or the mesh's own, which every webhook excludes).
pub fn validate_enabled_namespace(name: &str, mesh_namespace: &str) -> Result<(), String> {
    validate_namespace(name).map_err(|e| e.to_string())?;
    if crate::names::SYSTEM_NAMESPACES.contains(&name) {
        return Err(format!(
            "{name} is a system namespace, which the mesh never injects: remove it from the list"
        ));
    }
    if name == mesh_namespace {
        return Err(format!(
            "{name} is the mesh's own namespace, which is never injected: remove it from the list"
        ));
    }
    Ok(())
}

/// Checks an RFC 1123 label, as Kubernetes does for namespace names.
pub fn validate_namespace(name: &str) -> Result<(), NamespaceError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(NamespaceError(name.to_owned()))
    }
}
