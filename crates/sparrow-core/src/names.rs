//! Names fixed by the design: tests, docs and users rely on every one of them.

/// The CLI binary.
pub const CLI_NAME: &str = "sparrowctl";
/// The controller binary, Deployment, ServiceAccount and Service.
pub const CONTROLLER_NAME: &str = "sparrow-controller";
/// Default namespace of the control plane.
pub const DEFAULT_NAMESPACE: &str = "sparrow-mesh";
/// Default registry server when none is given.
pub const DEFAULT_REGISTRY_SERVER: &str = "ghcr.io/sparrow-mesh";
/// Default image tag: the version of this crate, which every Sparrow crate shares.
pub const DEFAULT_IMAGE_TAG: &str = env!("CARGO_PKG_VERSION");

/// Name of the registry pull secret, in the mesh namespace and in every copy.
pub const PULL_SECRET_NAME: &str = "sparrow-registry-key";
/// Label key that finds every pull secret (source and copies).
pub const USAGE_LABEL: &str = "usage";
/// Value of [`USAGE_LABEL`].
pub const USAGE_LABEL_VALUE: &str = PULL_SECRET_NAME;

/// `app.kubernetes.io/part-of`, on everything we create.
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";
/// Value of [`PART_OF_LABEL`].
pub const PART_OF_VALUE: &str = "sparrow-mesh";
/// `app.kubernetes.io/managed-by`, on everything we create.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY_VALUE: &str = CLI_NAME;
/// `app.kubernetes.io/name`, naming the component.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";

/// Annotation on a copy: `<namespace>/<name>` of its source.
pub const SOURCE_ANNOTATION: &str = "sparrow-mesh.io/source";
/// The controller's flag naming the Secret another tool keeps (`deploy --registry-secret`);
/// `status` reads it back from the Deployment.
pub const REGISTRY_SECRET_ARG: &str = "--registry-secret";
/// The controller's flag pointing at its credential-provider config: a Deployment carrying it
/// runs a plugin (`deploy --registry-credential-provider`).
pub const CREDENTIAL_PROVIDER_CONFIG_ARG: &str = "--credential-provider-config";
/// The Secret in the mesh namespace holding the kubelet `CredentialProviderConfig` the
/// controller runs its plugin with (`deploy --registry-credential-provider`): a Secret, since
/// a provider's `env` may carry keys.
pub const CREDENTIAL_PROVIDER_SECRET_NAME: &str = "sparrow-credential-provider";
/// Its key holding the config.
pub const CREDENTIAL_PROVIDER_CONFIG_KEY: &str = "config.yaml";
/// Where the controller reads that config.
pub const CREDENTIAL_PROVIDER_CONFIG_DIR: &str = "/etc/sparrow/credential-provider";
/// Where the plugin binaries lie in the controller pod (copied there from the image of
/// `--credential-provider-image` by an init container).
pub const CREDENTIAL_PROVIDER_BIN_DIR: &str = "/var/lib/sparrow/credential-providers";
/// Where the image of `--credential-provider-image` holds the plugin binaries.
pub const CREDENTIAL_PROVIDER_IMAGE_DIR: &str = "/credential-providers";
/// Annotation on the source pull secret: `static`, `plugin` or `external`.
pub const CREDENTIAL_KIND_ANNOTATION: &str = "sparrow-mesh.io/credential-kind";
/// Annotation on the source pull secret: when a plugin last refreshed it (RFC 3339 UTC).
pub const REFRESHED_AT_ANNOTATION: &str = "sparrow-mesh.io/refreshed-at";
/// Annotation on the source pull secret: when the controller runs the plugin next.
pub const NEXT_REFRESH_ANNOTATION: &str = "sparrow-mesh.io/next-refresh";
/// Annotation on the source pull secret: the last failed plugin run (`<RFC 3339> <why>`),
/// removed by the next good one. Never holds a credential.
pub const REFRESH_FAILED_ANNOTATION: &str = "sparrow-mesh.io/refresh-failed";
/// Annotation on a copy: hex sha256 of the source data it holds.
pub const SOURCE_HASH_ANNOTATION: &str = "sparrow-mesh.io/source-hash";
/// Annotation on the source pull secret: when its credential expires (RFC 3339 UTC), when
/// anything knows it (see [`crate::expiry`]).
pub const CREDENTIAL_EXPIRES_ANNOTATION: &str = "sparrow-mesh.io/credential-expires";
/// Annotation on the source pull secret: who knows the expiry, `flag` (the user's
/// `--registry-credential-expires`) or `jwt` (the password's `exp` claim).
pub const CREDENTIAL_EXPIRES_SOURCE_ANNOTATION: &str = "sparrow-mesh.io/credential-expires-source";
/// Annotation on a copy: the controller's proof that it made this very object (a keyed MAC
/// over the mesh, the copy's namespace, name and uid; see [`crate::ownership`]).
pub const PROOF_ANNOTATION: &str = "sparrow-mesh.io/proof";
/// The Secret in the mesh namespace holding the key copies are proven with. The controller
/// makes it at first start; tenants cannot read or write the mesh namespace.
pub const COPY_KEY_SECRET_NAME: &str = "sparrow-copy-key";
/// The key of [`COPY_KEY_SECRET_NAME`]'s data holding the key's bytes.
pub const COPY_KEY_DATA_KEY: &str = "key";

/// Injection switch on a namespace or a pod (`enabled` / `disabled`; the pod wins).
pub const AUTO_INJECT_LABEL: &str = "injector.sparrow-mesh.io/auto-inject";
/// Annotation set on every injected pod.
pub const INJECT_STATUS_ANNOTATION: &str = "injector.sparrow-mesh.io/status";
/// Value of [`INJECT_STATUS_ANNOTATION`].
pub const INJECT_STATUS_INJECTED: &str = "injected";

/// Sidecar container name.
pub const PROXY_CONTAINER: &str = "sparrow-proxy";
/// Init container name.
pub const INIT_CONTAINER: &str = "sparrow-init";
/// Image name of the controller.
pub const CONTROLLER_IMAGE_NAME: &str = "sparrow-controller";
/// Image name of the sidecar proxy.
pub const PROXY_IMAGE_NAME: &str = "sparrow-proxy";
/// Image name of the init container.
pub const INIT_IMAGE_NAME: &str = "sparrow-init";

/// The MutatingWebhookConfiguration.
pub const WEBHOOK_CONFIG_NAME: &str = "sparrow-sidecar-injector";
/// Suffix of the webhooks' names inside the configuration (`namespaces.`, `listed.`, `pods.`).
pub const WEBHOOK_NAME: &str = "injector.sparrow-mesh.io";
/// Path the controller serves admission reviews on.
pub const WEBHOOK_PATH: &str = "/inject";
/// Port of the controller Service.
pub const SERVICE_PORT: i32 = 443;
/// Port the controller listens on.
pub const CONTAINER_PORT: i32 = 8443;
/// The controller's plain-HTTP health port (`/healthz`, `/readyz`, `/metrics`), the kubelet's
/// probes' own: no load on the webhook's port can make them fail.
pub const HEALTH_PORT: i32 = 9990;
/// The webhook serving certificate Secret.
pub const TLS_SECRET_NAME: &str = "sparrow-controller-tls";
/// The Secret holding the webhook CA the controller made (`tls.crt`, `tls.key`, and during a
/// rollover `previous.crt`).
pub const CA_SECRET_NAME: &str = "sparrow-controller-ca";
/// The leader-election Lease of the copy sync loop.
pub const LEASE_NAME: &str = "sparrow-controller";

/// Field manager for server-side apply from the CLI.
pub const FIELD_MANAGER: &str = CLI_NAME;

/// Namespaces the mesh never injects into, besides its own.
pub const SYSTEM_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

/// The label Kubernetes puts on every namespace with the namespace's own name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Label on everything Sparrow creates, naming the mesh (its namespace) it belongs to.
/// `remove` deletes only what carries it; on a Namespace it means deploy created it.
pub const MESH_LABEL: &str = "sparrow-mesh.io/mesh";

/// Namespaces `remove` never deletes, whatever their labels say.
pub const PROTECTED_NAMESPACES: &[&str] =
    &["kube-system", "kube-public", "kube-node-lease", "default"];

/// ConfigMap in the mesh namespace holding the CA whose client certificates the webhook accepts
/// (`deploy --webhook-client-ca`); absent when any caller is answered.
pub const WEBHOOK_CLIENT_CA_NAME: &str = "sparrow-webhook-client-ca";
/// The key of [`WEBHOOK_CLIENT_CA_NAME`]'s data holding the PEM certificates.
pub const WEBHOOK_CLIENT_CA_KEY: &str = "ca.crt";
