//! The real `ecr-credential-provider` kubelet plugin (pinned in `cluster/ecr-credential-provider`,
//! built by `scripts/local-cluster.sh build` into the node's cache) and how the node stands in for
//! ECR: the name [`MOTO_ECR_REGISTRY`] pulls from the node's own registry, whose user `AWS` has
//! moto's token as password.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Credentials, Node, NodeError, env, repo_root};

/// moto's default AWS account, the one its GetAuthorizationToken answers for.
pub const MOTO_ACCOUNT: &str = "123456789012";

/// The ECR registry of [`MOTO_ACCOUNT`] in `us-east-1`: the name the node's containerd resolves to
/// its own registry (`SPARROW_NODE_ECR_REGISTRY` says the same).
pub const MOTO_ECR_REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

/// The password moto's token carries for [`MOTO_ACCOUNT`] (the token is base64 of
/// `AWS:<account>-auth-token`, fixed, with an `expiresAt` of 2015-01-01).
pub fn moto_ecr_password() -> String {
    format!("{MOTO_ACCOUNT}-auth-token")
}

/// The registry user the kubelet and the controller authenticate as with moto's token.
pub fn moto_ecr_credentials() -> Credentials {
    Credentials {
        user: "AWS".into(),
        password: moto_ecr_password(),
    }
}

/// The `ecr-credential-provider` binary in the node's cache
/// (`/var/cache/sparrow-mesh/node/<k8s version>/plugins/`, or under `$SPARROW_NODE_CACHE`), the
/// directory the kubelet's `--image-credential-provider-bin-dir` defaults to. Fails, saying what
/// to run, when it is not built.
pub fn ecr_credential_provider() -> Result<PathBuf, NodeError> {
    let path = plugin_dir()?.join("ecr-credential-provider");
    if path.is_file() {
        return Ok(path);
    }
    Err(NodeError::NotInstalled {
        what: "ecr-credential-provider".into(),
        path: path.display().to_string(),
        fix: "scripts/local-cluster.sh build".into(),
    })
}

/// The node cache's plugin directory, keyed by the pinned Kubernetes version as its binaries are.
pub fn plugin_dir() -> Result<PathBuf, NodeError> {
    let go_mod = repo_root().join("cluster/go.mod");
    let text = std::fs::read_to_string(&go_mod).map_err(|source| NodeError::Io {
        what: format!("reading {}", go_mod.display()),
        source,
    })?;
    let version = env::pinned_version(&text, "k8s.io/kubernetes").ok_or_else(|| NodeError::Io {
        what: format!("no k8s.io/kubernetes version in {}", go_mod.display()),
        source: std::io::ErrorKind::InvalidData.into(),
    })?;
    let cache = std::env::var_os("SPARROW_NODE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/sparrow-mesh/node"));
    Ok(cache.join(version).join("plugins"))
}

/// Runs a kubelet credential-provider plugin as the kubelet does: one exec, a
/// `CredentialProviderRequest` for `image` on stdin, only `env` (and a PATH) in its environment.
/// Returns the `CredentialProviderResponse` it printed, parsed.
pub fn run_credential_provider(
    plugin: &Path,
    image: &str,
    env: &[(String, String)],
) -> Result<serde_json::Value, NodeError> {
    run_plugin(Command::new(plugin), plugin, image, env)
}

/// [`run_credential_provider`] inside the node's network namespace, where the kubelet runs it.
pub fn run_credential_provider_on(
    node: &Node,
    plugin: &Path,
    image: &str,
    env: &[(String, String)],
) -> Result<serde_json::Value, NodeError> {
    let mut command = Command::new("nsenter");
    command
        .arg(format!("--net=/var/run/netns/{}", node.netns))
        .arg("--")
        .arg(plugin);
    run_plugin(command, plugin, image, env)
}

fn run_plugin(
    mut command: Command,
    plugin: &Path,
    image: &str,
    env: &[(String, String)],
) -> Result<serde_json::Value, NodeError> {
    let what = format!("{} for {image}", plugin.display());
    let io = |what: String| move |source| NodeError::Io { what, source };
    let request = serde_json::json!({
        "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
        "kind": "CredentialProviderRequest",
        "image": image,
    });
    let mut child = command
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io(format!("running {what}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(request.to_string().as_bytes())
            .map_err(io(format!("writing the request to {what}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(io(format!("waiting for {what}")))?;
    if !out.status.success() {
        return Err(NodeError::Command {
            what,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    serde_json::from_slice(&out.stdout).map_err(|e| NodeError::Command {
        what: what.clone(),
        stderr: format!(
            "printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout).trim()
        ),
    })
}

impl Node {
    /// `<ECR registry>/<repo>:1`: the name under which an image pushed with [`Node::push_image`]
    /// as `<registry>/<repo>:1` pulls on the node (the registry stores repositories by path;
    /// containerd's hosts.toml sends the ECR name to it).
    pub fn ecr_image(&self, repo: &str) -> String {
        format!("{}/{repo}:1", self.ecr_registry)
    }

    /// Adds the registry user `AWS` with moto's token as password (idempotent: the password is
    /// fixed, so concurrent tests agree on it).
    pub fn ecr_registry_user(&self) -> Result<Credentials, NodeError> {
        let creds = moto_ecr_credentials();
        self.registry_user(&creds)?;
        Ok(creds)
    }
}
