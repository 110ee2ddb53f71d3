//! Errors of cluster operations, with messages a user can act on (never a Debug dump).

use sparrow_core::names::{CONTROLLER_NAME, COPY_KEY_SECRET_NAME};

/// A Kubernetes API error, described in one line: the server's message, code and reason.
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            let message = if status.message.is_empty() {
                "no message"
            } else {
                status.message.as_str()
            };
            match (status.code, status.reason.as_str()) {
                (0, "") => message.to_owned(),
                (code, "") => format!("{message} (HTTP {code})"),
                (code, reason) => format!("{message} (HTTP {code} {reason})"),
            }
        }
        other => {
            // Walk to the innermost cause: "connection refused" says more than "ServiceError".
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text = cause.to_string();
                source = cause.source();
            }
            text
        }
    }
}

/// A watch error in one line, without the Debug dump kube's own Display carries.
pub fn describe_watch(error: &kube::runtime::watcher::Error) -> String {
    use kube::runtime::watcher::Error as W;
    match error {
        W::InitialListFailed(e) => format!("listing failed: {}", describe(e)),
        W::WatchStartFailed(e) => format!("starting the watch failed: {}", describe(e)),
        W::WatchFailed(e) => format!("the watch failed: {}", describe(e)),
        W::WatchError(status) => format!(
            "the API server ended the watch: {} (HTTP {})",
            status.message, status.code
        ),
        other => other.to_string(),
    }
}

/// True when the API answered 404.
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// True when the API answered 409 AlreadyExists.
pub fn is_already_exists(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409 && status.reason == "AlreadyExists")
}

/// What went wrong talking to the cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No kubeconfig could be loaded and we are not in a cluster.
    #[error(
        "no Kubernetes configuration found ({detail}): set KUBECONFIG, pass --kubeconfig, or run inside a cluster"
    )]
    NoConfig {
        /// Why loading failed.
        detail: String,
    },
    /// The kubeconfig exists but cannot be used (unknown context, bad file).
    #[error("cannot use the kubeconfig{}: {detail}", context.as_ref().map(|c| format!(" (context {c})")).unwrap_or_default())]
    BadConfig {
        /// The context asked for, if any.
        context: Option<String>,
        /// The loader's complaint.
        detail: String,
    },
    /// The API server did not answer.
    #[error("cannot reach the Kubernetes API server at {server} (context {context}): {detail}")]
    Unreachable {
        /// The server URL.
        server: String,
        /// The context name.
        context: String,
        /// The cause.
        detail: String,
    },
    /// An API call failed.
    #[error("{action}: {}", describe(.source))]
    Api {
        /// What we were doing, e.g. "applying Deployment sparrow-mesh/sparrow-controller".
        action: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// An API call did not finish in time.
    #[error("{action}: no answer from the API server within {seconds}s")]
    Timeout {
        /// What we were doing.
        action: String,
        /// The limit.
        seconds: u64,
    },
    /// A Secret named `sparrow-registry-key` exists that Sparrow did not create.
    #[error("Secret {namespace}/{name} exists and was not created by Sparrow (it has no usage={usage} label); it is left untouched: rename or delete it, then run deploy again", usage = sparrow_core::names::USAGE_LABEL_VALUE)]
    ForeignSecret {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// An object with the name of one of the control plane's, in the mesh namespace, that
    /// does not carry this mesh's marker.
    #[error("{object} exists and was not created by this Sparrow mesh (it lacks the {marker} label); it is left untouched: rename or delete it, then run deploy again", marker = sparrow_core::names::MESH_LABEL)]
    ForeignObject {
        /// `Kind namespace/name`.
        object: String,
    },
    /// A cluster-wide object of the control plane belongs to the mesh in another namespace.
    #[error(
        "{object} belongs to the Sparrow mesh in namespace {mesh}: only one mesh runs per cluster; deploy with -n {mesh}, or remove that mesh first (sparrowctl remove -n {mesh})"
    )]
    OtherMesh {
        /// The object, `Kind name`.
        object: String,
        /// The namespace of the mesh it belongs to.
        mesh: String,
    },
    /// `remove -n X` where X holds no Sparrow control plane: nothing was deleted.
    #[error("no Sparrow control plane in namespace {namespace}: nothing was deleted{}", elsewhere.as_ref().map(|m| format!(" (Sparrow is installed in namespace {m}: sparrowctl remove -n {m})")).unwrap_or_default())]
    NoControlPlane {
        /// The namespace given.
        namespace: String,
        /// Where a mesh is installed, if anywhere.
        elsewhere: Option<String>,
    },
    /// `remove --adopt-unmarked` found an object named like a part that another mesh's
    /// marker claims: that is another mesh, not an install from before the marker.
    #[error(
        "{object} carries the marker of the Sparrow mesh in namespace {owner}, not {namespace}: --adopt-unmarked removes only objects with no marker; nothing was deleted (that mesh is removed with sparrowctl remove -n {owner})"
    )]
    AdoptOtherMesh {
        /// The object, `Kind ns/name`.
        object: String,
        /// The namespace its marker names.
        owner: String,
        /// The namespace given with `-n`.
        namespace: String,
    },
    /// The mesh namespace is still being deleted (a `remove` moments ago).
    #[error(
        "Namespace {namespace} is still being deleted (by a previous remove) after {seconds}s: wait until `kubectl get namespace {namespace}` no longer finds it, then run deploy again (or raise --timeout)"
    )]
    NamespaceTerminating {
        /// The namespace.
        namespace: String,
        /// How long we waited.
        seconds: u64,
    },
    /// A bug or a task that died: not the cluster's fault.
    #[error("internal error: {0}")]
    Internal(String),
    /// `registry update` before `deploy`.
    #[error(
        "Sparrow has no registry secret in namespace {namespace}: run `sparrowctl deploy` with the registry flags first"
    )]
    NotDeployed {
        /// The mesh namespace.
        namespace: String,
    },
    /// The key copies are proven with cannot be used (edited by hand?).
    #[error(
        "Secret {namespace}/{COPY_KEY_SECRET_NAME} cannot be used: {detail}; it holds the key Sparrow proves its pull-secret copies with, so fix it, or delete it and restart the controller (copies made with the old key are then left alone)"
    )]
    BadCopyKey {
        /// The mesh namespace.
        namespace: String,
        /// What is wrong, never the key.
        detail: String,
    },
    /// The stored pull secret cannot be read back (edited by hand?).
    #[error("Secret {namespace}/{name} does not hold a valid .dockerconfigjson: {detail}")]
    BadPullSecret {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What is wrong, never the content.
        detail: String,
    },
    /// The controller Deployment cannot be switched to another registry credential.
    #[error(transparent)]
    Switch(#[from] sparrow_core::credential_switch::SwitchPatchError),
    /// The controller Deployment changed between reading and patching it (its resourceVersion).
    #[error(
        "Deployment {namespace}/{CONTROLLER_NAME} changed while registry update switched it (another deploy or update?): it was left as the other writer made it; run registry update again"
    )]
    ChangedMeanwhile {
        /// The mesh namespace.
        namespace: String,
    },
}

impl ClusterError {
    /// Wraps an API error with what we were doing.
    pub fn api(action: impl Into<String>, source: kube::Error) -> Self {
        Self::Api {
            action: action.into(),
            source,
        }
    }
}
