//! What injection needs to know about the mesh: the controller's flags as values.

use sparrow_core::{MeshConfig, PullPolicy};

/// The injector's settings (the controller's `--mesh-namespace`, `--sidecar-image`,
/// `--init-image`, `--disable-auto-inject`, `--enabled-namespaces`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectConfig {
    /// The control plane's namespace: never injected.
    pub mesh_namespace: String,
    /// Image of the `sparrow-proxy` sidecar.
    pub proxy_image: String,
    /// Image of the `sparrow-init` init container.
    pub init_image: String,
    /// `imagePullPolicy` of both containers; `None` leaves Kubernetes' default.
    pub pull_policy: Option<PullPolicy>,
    /// Only namespaces labelled `enabled`, the listed ones, and pods labelled `enabled` are injected.
    pub disable_auto_inject: bool,
    /// Namespaces injected even with `disable_auto_inject`, whatever their label says.
    pub enabled_namespaces: Vec<String>,
    /// How the proxy is added: as a native sidecar where the API server supports it.
    pub sidecar: SidecarKind,
}

/// How the proxy joins the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SidecarKind {
    /// An init container with `restartPolicy: Always` (Kubernetes >= 1.29): it starts before
    /// the application and stops after it, so Jobs complete.
    #[default]
    Native,
    /// An ordinary container, for API servers older than 1.29.
    Classic,
}

/// The first Kubernetes minor version (of 1.x) with native sidecars on by default.
pub const NATIVE_SIDECAR_MINOR: u32 = 29;

impl SidecarKind {
    /// The kind for an API server reporting `major` and `minor` (its `/version`, where the
    /// minor may carry a suffix such as `29+`). A version that cannot be read gets the
    /// classic sidecar, which works everywhere (a native one on an older server would be
    /// an init container that never ends, and the pod would never start).
    pub fn for_server_version(major: &str, minor: &str) -> Self {
        let number = |s: &str| -> Option<u32> {
            let digits: String = s.trim().chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        };
        match (number(major), number(minor)) {
            (Some(major), _) if major > 1 => Self::Native,
            (Some(1), Some(minor)) if minor >= NATIVE_SIDECAR_MINOR => Self::Native,
            _ => Self::Classic,
        }
    }
}

impl InjectConfig {
    /// The settings a deploy of `mesh` passes to the controller.
    pub fn from_mesh(mesh: &MeshConfig) -> Self {
        Self {
            mesh_namespace: mesh.namespace.clone(),
            proxy_image: mesh.images.proxy.clone(),
            init_image: mesh.images.init.clone(),
            pull_policy: Some(mesh.pull_policy),
            disable_auto_inject: mesh.injection.disable_auto_inject,
            enabled_namespaces: mesh.injection.enabled_namespaces.clone(),
            sidecar: SidecarKind::default(),
        }
    }
}

impl Default for InjectConfig {
    /// The settings of a default deploy (`sparrow-mesh` namespace, `ghcr.io/sparrow-mesh` images).
    fn default() -> Self {
        Self::from_mesh(&MeshConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_sidecars_from_1_29() {
        let cases = [
            ("1", "33", SidecarKind::Native),
            ("1", "29", SidecarKind::Native),
            ("1", "29+", SidecarKind::Native),
            ("2", "0", SidecarKind::Native),
            ("1", "28", SidecarKind::Classic),
            ("1", "28+", SidecarKind::Classic),
            ("1", "9", SidecarKind::Classic),
            ("", "", SidecarKind::Classic),
            ("v1", "x", SidecarKind::Classic),
        ];
        for (major, minor, want) in cases {
            assert_eq!(
                SidecarKind::for_server_version(major, minor),
                want,
                "{major}.{minor}"
            );
        }
    }
}
