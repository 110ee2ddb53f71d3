//! The real local node (`scripts/local-cluster.sh`) as a test fixture: one place that finds it,
//! plus the kubectl, namespace and registry helpers the acceptance tests share.
//!
//! A test never passes without a node: [`Node::require`] fails the test with the command that
//! starts one. `scripts/test.sh` brings the node up and exports its variables for the whole run.

mod ecr;
mod env;
mod error;
mod kubectl;
mod moto;
mod namespace;
mod registry;
mod wait;

pub use ecr::{
    MOTO_ACCOUNT, MOTO_ECR_REGISTRY, ecr_credential_provider, moto_ecr_credentials,
    moto_ecr_password, plugin_dir, run_credential_provider, run_credential_provider_on,
};
pub use env::parse_exports;
pub use error::NodeError;
pub use moto::{Moto, Served, moto_server};
pub use namespace::TestNamespace;
pub use registry::{Credentials, pull_secret};
pub use wait::wait_until;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A running local node, as `scripts/local-cluster.sh env` describes it.
#[derive(Debug)]
pub struct Node {
    /// The admin kubeconfig (client certificate in `system:masters`).
    pub kubeconfig: PathBuf,
    /// The network namespace every node process lives in.
    pub netns: String,
    /// `host:port` of the private registry, the same for pushes from the host and pulls by containerd.
    pub registry: String,
    /// The PEM CA the registry's certificate is signed by.
    pub registry_ca: PathBuf,
    /// OCI layouts of the tests' application images (`httpecho`, `webhook`), built by the project.
    pub images: PathBuf,
    /// The kubectl built with the node, at the node's version.
    pub kubectl: PathBuf,
    /// The CA of the client certificate the API server presents to admission webhooks (its
    /// certificate and key lie beside it, `webhook-client.crt` and `.key`).
    pub webhook_client_ca: PathBuf,
    /// The node's address, where pods reach what listens on every address of its namespace.
    pub node_ip: String,
    /// The ECR registry name containerd pulls from the private registry (same repository paths).
    pub ecr_registry: String,
    /// The CredentialProviderConfig the kubelet was started with, if the node was brought up with
    /// `SPARROW_NODE_CREDENTIAL_PROVIDER_CONFIG`.
    pub credential_providers: Option<PathBuf>,
    /// A directory holding only the registry CA, the shape skopeo's `--cert-dir` wants.
    cert_dir: PathBuf,
}

static NODE: OnceLock<Result<Node, NodeError>> = OnceLock::new();

impl Node {
    /// The running node. Fails the calling test, saying how to start one, when there is none.
    pub fn require() -> &'static Node {
        match Self::get() {
            Ok(node) => node,
            Err(error) => panic!("{error}"),
        }
    }

    /// The running node, found once per test binary: from the environment `scripts/test.sh`
    /// exports, or else by asking `scripts/local-cluster.sh env`.
    pub fn get() -> Result<&'static Node, &'static NodeError> {
        NODE.get_or_init(Self::find).as_ref()
    }

    fn find() -> Result<Node, NodeError> {
        let vars = env::node_vars(&script())?;
        let node = Node::from_vars(&vars)?;
        node.check_answers()?;
        Ok(node)
    }

    /// Stops and starts one control-plane process (`etcd`, `kube-apiserver`,
    /// `kube-controller-manager` or `kube-scheduler`) and waits until it answers again.
    pub fn restart(&self, component: &str) -> Result<(), NodeError> {
        self.run_script(&["restart", component], None)
    }

    fn from_vars(vars: &env::Vars) -> Result<Node, NodeError> {
        let path = |key: &str| vars.get(key).map(PathBuf::from);
        let registry_ca = path("SPARROW_REGISTRY_CA")?;
        let netns = vars.get("SPARROW_CLUSTER_NETNS")?;
        let cert_dir = registry::cert_dir(&registry_ca, netns)?;
        Ok(Node {
            kubeconfig: path("KUBECONFIG")?,
            netns: netns.to_owned(),
            registry: vars.get("SPARROW_REGISTRY")?.to_owned(),
            registry_ca,
            images: path("SPARROW_NODE_IMAGES")?,
            kubectl: path("SPARROW_NODE_KUBECTL")?,
            webhook_client_ca: path("SPARROW_WEBHOOK_CLIENT_CA")?,
            node_ip: vars.get("SPARROW_NODE_IP")?.to_owned(),
            ecr_registry: vars.get("SPARROW_NODE_ECR_REGISTRY")?.to_owned(),
            credential_providers: vars
                .get("SPARROW_NODE_CREDENTIAL_PROVIDERS")
                .ok()
                .map(PathBuf::from),
            cert_dir,
        })
    }

    /// The pinned Kubernetes version, as `cluster/go.mod` requires it.
    pub fn pinned_version() -> String {
        let go_mod = repo_root().join("cluster/go.mod");
        let text = std::fs::read_to_string(&go_mod).unwrap_or_default();
        env::pinned_version(&text, "k8s.io/kubernetes")
            .unwrap_or_else(|| panic!("no k8s.io/kubernetes version in {}", go_mod.display()))
    }

    /// A kube-rs client for the admin kubeconfig.
    pub async fn client(&self) -> Result<kube::Client, NodeError> {
        let text = std::fs::read_to_string(&self.kubeconfig).map_err(|source| NodeError::Io {
            what: format!("reading {}", self.kubeconfig.display()),
            source,
        })?;
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&text)
            .map_err(|e| NodeError::Client(e.to_string()))?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| NodeError::Client(e.to_string()))?;
        kube::Client::try_from(config).map_err(|e| NodeError::Client(e.to_string()))
    }

    fn check_answers(&self) -> Result<(), NodeError> {
        let out = self.kubectl_output(&["get", "--raw", "/readyz"], None)?;
        if out.status.success() {
            return Ok(());
        }
        Err(NodeError::NotRunning {
            detail: format!(
                "the API server in KUBECONFIG={} does not answer: {}",
                self.kubeconfig.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }

    pub(crate) fn cert_dir(&self) -> &Path {
        &self.cert_dir
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn script() -> PathBuf {
    repo_root().join("scripts/local-cluster.sh")
}
