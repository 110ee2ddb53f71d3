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
        }
    }
}

impl Default for InjectConfig {
    /// The settings of a default deploy (`sparrow-mesh` namespace, `ghcr.io/sparrow-mesh` images).
    fn default() -> Self {
        Self::from_mesh(&MeshConfig::default())
    }
}
