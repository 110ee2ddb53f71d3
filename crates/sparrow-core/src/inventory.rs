//! The control plane's parts, listed once. `render` builds them in this order, `deploy`
//! applies them in this order (the webhook last, once the controller can answer it),
//! `remove` deletes them in the reverse order, and the tests walk the same list: adding an
//! object is one line here and one builder in `manifests`.

use std::fmt;

use crate::names::{
    CA_SECRET_NAME, CONTROLLER_NAME, CREDENTIAL_PROVIDER_SECRET_NAME, PULL_SECRET_NAME,
    TLS_SECRET_NAME, WEBHOOK_CLIENT_CA_NAME, WEBHOOK_CONFIG_NAME,
};

/// A kind of object the control plane is made of, as the API addresses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `v1` Namespace.
    Namespace,
    /// `v1` Secret.
    Secret,
    /// `v1` ConfigMap.
    ConfigMap,
    /// `v1` ServiceAccount.
    ServiceAccount,
    /// `rbac.authorization.k8s.io/v1` ClusterRole.
    ClusterRole,
    /// `rbac.authorization.k8s.io/v1` ClusterRoleBinding.
    ClusterRoleBinding,
    /// `rbac.authorization.k8s.io/v1` Role.
    Role,
    /// `rbac.authorization.k8s.io/v1` RoleBinding.
    RoleBinding,
    /// `apps/v1` Deployment.
    Deployment,
    /// `v1` Service.
    Service,
    /// `admissionregistration.k8s.io/v1` MutatingWebhookConfiguration.
    MutatingWebhookConfiguration,
}

impl Kind {
    /// The `kind` field.
    pub fn name(self) -> &'static str {
        match self {
            Self::Namespace => "Namespace",
            Self::Secret => "Secret",
            Self::ConfigMap => "ConfigMap",
            Self::ServiceAccount => "ServiceAccount",
            Self::ClusterRole => "ClusterRole",
            Self::ClusterRoleBinding => "ClusterRoleBinding",
            Self::Role => "Role",
            Self::RoleBinding => "RoleBinding",
            Self::Deployment => "Deployment",
            Self::Service => "Service",
            Self::MutatingWebhookConfiguration => "MutatingWebhookConfiguration",
        }
    }

    /// The API group (`""` for the core group).
    pub fn group(self) -> &'static str {
        match self {
            Self::Namespace
            | Self::Secret
            | Self::ConfigMap
            | Self::ServiceAccount
            | Self::Service => "",
            Self::ClusterRole | Self::ClusterRoleBinding | Self::Role | Self::RoleBinding => {
                "rbac.authorization.k8s.io"
            }
            Self::Deployment => "apps",
            Self::MutatingWebhookConfiguration => "admissionregistration.k8s.io",
        }
    }

    /// The API version (every part is served at `v1`).
    pub fn version(self) -> &'static str {
        "v1"
    }

    /// The `apiVersion` field: `v1` or `group/v1`.
    pub fn api_version(self) -> String {
        match self.group() {
            "" => self.version().to_owned(),
            group => format!("{group}/{}", self.version()),
        }
    }

    /// The resource in URLs (`secrets`, `mutatingwebhookconfigurations`).
    pub fn plural(self) -> &'static str {
        match self {
            Self::Namespace => "namespaces",
            Self::Secret => "secrets",
            Self::ConfigMap => "configmaps",
            Self::ServiceAccount => "serviceaccounts",
            Self::ClusterRole => "clusterroles",
            Self::ClusterRoleBinding => "clusterrolebindings",
            Self::Role => "roles",
            Self::RoleBinding => "rolebindings",
            Self::Deployment => "deployments",
            Self::Service => "services",
            Self::MutatingWebhookConfiguration => "mutatingwebhookconfigurations",
        }
    }

    /// True for objects that live in a namespace (the mesh's).
    pub fn namespaced(self) -> bool {
        !matches!(
            self,
            Self::Namespace
                | Self::ClusterRole
                | Self::ClusterRoleBinding
                | Self::MutatingWebhookConfiguration
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// When a part is rendered at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Always.
    Always,
    /// Only when credentials were given (the pull secret).
    WithCredentials,
    /// Never rendered: the controller makes it (the webhook's certificates), with the mesh's
    /// marker, so that remove finds it like the rest.
    MadeByController,
    /// Only when the webhook requires client certificates (`--webhook-client-ca`).
    WithWebhookClientCa,
    /// Only when the controller runs a credential-provider plugin (its config).
    WithCredentialPlugin,
}

/// One object of the control plane, before it is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// Its kind.
    pub kind: Kind,
    /// Its name; `None` for the mesh namespace, which is named by `-n`.
    pub fixed_name: Option<&'static str>,
    /// When it exists.
    pub presence: Presence,
}

const fn part(kind: Kind, name: &'static str) -> Part {
    Part {
        kind,
        fixed_name: Some(name),
        presence: Presence::Always,
    }
}

/// The control plane, in apply order.
pub const PARTS: &[Part] = &[
    Part {
        kind: Kind::Namespace,
        fixed_name: None,
        presence: Presence::Always,
    },
    Part {
        kind: Kind::Secret,
        fixed_name: Some(PULL_SECRET_NAME),
        presence: Presence::WithCredentials,
    },
    Part {
        kind: Kind::Secret,
        fixed_name: Some(CREDENTIAL_PROVIDER_SECRET_NAME),
        presence: Presence::WithCredentialPlugin,
    },
    // The controller's certificates: made by the controller with the mesh's marker.
    Part {
        kind: Kind::Secret,
        fixed_name: Some(TLS_SECRET_NAME),
        presence: Presence::MadeByController,
    },
    Part {
        kind: Kind::Secret,
        fixed_name: Some(CA_SECRET_NAME),
        presence: Presence::MadeByController,
    },
    Part {
        kind: Kind::ConfigMap,
        fixed_name: Some(WEBHOOK_CLIENT_CA_NAME),
        presence: Presence::WithWebhookClientCa,
    },
    part(Kind::ServiceAccount, CONTROLLER_NAME),
    part(Kind::ClusterRole, CONTROLLER_NAME),
    part(Kind::ClusterRoleBinding, CONTROLLER_NAME),
    part(Kind::Role, CONTROLLER_NAME),
    part(Kind::RoleBinding, CONTROLLER_NAME),
    part(Kind::Deployment, CONTROLLER_NAME),
    part(Kind::Service, CONTROLLER_NAME),
    // Last: pod creation depends on it, so it goes in once the controller can answer.
    part(Kind::MutatingWebhookConfiguration, WEBHOOK_CONFIG_NAME),
];

impl Part {
    /// The object's name for the mesh in `mesh_namespace`.
    pub fn name<'a>(&self, mesh_namespace: &'a str) -> &'a str {
        self.fixed_name.unwrap_or(mesh_namespace)
    }

    /// The object's namespace, for namespaced kinds.
    pub fn namespace<'a>(&self, mesh_namespace: &'a str) -> Option<&'a str> {
        self.kind.namespaced().then_some(mesh_namespace)
    }

    /// `Kind name` or `Kind namespace/name`, for progress lines and reports.
    pub fn describe(&self, mesh_namespace: &str) -> String {
        describe(
            self.kind,
            self.namespace(mesh_namespace),
            self.name(mesh_namespace),
        )
    }

    /// True for the part pod creation depends on (the webhook configuration): `deploy`
    /// applies it only once the controller is available, `remove` deletes it first.
    pub fn gates_admission(&self) -> bool {
        self.kind == Kind::MutatingWebhookConfiguration
    }

    /// True for the mesh namespace itself.
    pub fn is_namespace(&self) -> bool {
        self.kind == Kind::Namespace
    }
}

/// `Kind name` or `Kind namespace/name`.
pub fn describe(kind: Kind, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_is_last_and_the_namespace_first() {
        assert!(PARTS[0].is_namespace());
        assert!(PARTS.last().is_some_and(Part::gates_admission));
        assert_eq!(PARTS.iter().filter(|p| p.gates_admission()).count(), 1);
        assert_eq!(PARTS.iter().filter(|p| p.is_namespace()).count(), 1);
    }

    #[test]
    fn api_versions_and_scopes() {
        let table = [
            (Kind::Namespace, "v1", "namespaces", false),
            (Kind::Secret, "v1", "secrets", true),
            (Kind::ConfigMap, "v1", "configmaps", true),
            (
                Kind::ClusterRole,
                "rbac.authorization.k8s.io/v1",
                "clusterroles",
                false,
            ),
            (
                Kind::RoleBinding,
                "rbac.authorization.k8s.io/v1",
                "rolebindings",
                true,
            ),
            (Kind::Deployment, "apps/v1", "deployments", true),
            (
                Kind::MutatingWebhookConfiguration,
                "admissionregistration.k8s.io/v1",
                "mutatingwebhookconfigurations",
                false,
            ),
        ];
        for (kind, api_version, plural, namespaced) in table {
            assert_eq!(kind.api_version(), api_version, "{kind}");
            assert_eq!(kind.plural(), plural, "{kind}");
            assert_eq!(kind.namespaced(), namespaced, "{kind}");
        }
    }

    #[test]
    fn names_follow_the_mesh_namespace() {
        assert_eq!(PARTS[0].name("team"), "team");
        assert_eq!(PARTS[0].namespace("team"), None);
        assert_eq!(PARTS[0].describe("team"), "Namespace team");
        assert_eq!(
            PARTS[3].describe("team"),
            "Secret team/sparrow-controller-tls"
        );
    }
}
