//! The fixed table of resources the server knows, shared by routing, discovery and OpenAPI.

/// One served resource type.
#[derive(Debug)]
pub struct ResourceDef {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// API version inside the group.
    pub version: &'static str,
    /// Plural, lower-case resource name used in URLs.
    pub plural: &'static str,
    /// Singular name for discovery.
    pub singular: &'static str,
    /// Kind of one object.
    pub kind: &'static str,
    /// Whether objects live inside a namespace.
    pub namespaced: bool,
    /// Short names kubectl resolves (`ns`, `cm`, ...).
    pub short_names: &'static [&'static str],
    /// Which rule governs names of this resource.
    pub name_rule: NameRule,
}

/// Name validation rule, as the real API applies per resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain (most resources).
    Subdomain,
    /// RFC 1123 label (namespaces, services).
    Label,
    /// Any path segment (RBAC objects allow `system:foo`).
    PathSegment,
}

// A table row reads best as one positional call per resource.
#[allow(clippy::too_many_arguments)]
const fn def(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    name_rule: NameRule,
) -> ResourceDef {
    ResourceDef {
        group,
        version,
        plural,
        singular,
        kind,
        namespaced,
        short_names,
        name_rule,
    }
}

/// Index of the `namespaces` resource in [`RESOURCES`].
pub const NAMESPACES: usize = 0;

/// Every resource the server serves.
pub static RESOURCES: &[ResourceDef] = &[
    def(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
        NameRule::Label,
    ),
    def(
        "",
        "v1",
        "secrets",
        "secret",
        "Secret",
        true,
        &[],
        NameRule::Subdomain,
    ),
    def(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        true,
        &["po"],
        NameRule::Subdomain,
    ),
    def(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
        NameRule::Subdomain,
    ),
    def(
        "",
        "v1",
        "services",
        "service",
        "Service",
        true,
        &["svc"],
        NameRule::Label,
    ),
    def(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
        NameRule::Subdomain,
    ),
    def(
        "",
        "v1",
        "events",
        "event",
        "Event",
        true,
        &["ev"],
        NameRule::Subdomain,
    ),
    def(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
        NameRule::Subdomain,
    ),
    def(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        &[],
        NameRule::PathSegment,
    ),
    def(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        &[],
        NameRule::PathSegment,
    ),
    def(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        true,
        &[],
        NameRule::PathSegment,
    ),
    def(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        &[],
        NameRule::PathSegment,
    ),
    def(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration",
        "MutatingWebhookConfiguration",
        false,
        &[],
        NameRule::Subdomain,
    ),
    def(
        "coordination.k8s.io",
        "v1",
        "leases",
        "lease",
        "Lease",
        true,
        &[],
        NameRule::Subdomain,
    ),
    def(
        "events.k8s.io",
        "v1",
        "events",
        "event",
        "Event",
        true,
        &["ev"],
        NameRule::Subdomain,
    ),
];

/// Index of the `mutatingwebhookconfigurations` resource in [`RESOURCES`].
pub const MUTATING_WEBHOOKS: usize = 12;

/// Verbs every resource supports.
pub const VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

impl ResourceDef {
    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `secrets` or `deployments.apps`, the form used in error messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// Looks a resource up by group, version and plural name.
pub fn find(group: &str, version: &str, plural: &str) -> Option<usize> {
    RESOURCES
        .iter()
        .position(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Looks a resource up by plural name alone (first match), for request counting helpers.
pub fn find_plural(plural: &str) -> Option<usize> {
    RESOURCES.iter().position(|r| r.plural == plural)
}

/// Distinct group/version pairs in table order.
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_indexes_point_at_their_resources() {
        assert_eq!(RESOURCES[NAMESPACES].plural, "namespaces");
        assert_eq!(
            RESOURCES[MUTATING_WEBHOOKS].plural,
            "mutatingwebhookconfigurations"
        );
    }

    #[test]
    fn api_version_and_qualified_names() {
        let deploy = &RESOURCES[find("apps", "v1", "deployments").expect("deployments")];
        assert_eq!(deploy.api_version(), "apps/v1");
        assert_eq!(deploy.qualified(), "deployments.apps");
        let secrets = &RESOURCES[find("", "v1", "secrets").expect("secrets")];
        assert_eq!(secrets.api_version(), "v1");
        assert_eq!(secrets.qualified(), "secrets");
        assert!(find("", "v1", "nodes").is_none());
    }
}
