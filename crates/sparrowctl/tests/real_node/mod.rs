//! Shared by the real-node tests: the mesh's images, sparrowctl run against the node, and a
//! mesh deployed from the node's private registry that is removed when the test ends.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use sparrow_testnode::{Credentials, Node, wait_until};

/// How long a real-node condition may take on a busy two-core machine.
pub const LIMIT: Duration = Duration::from_secs(300);

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The OCI layout of the mesh's images: `SPARROW_IMAGES`, or `target/images` when
/// `scripts/build-images.sh` wrote it. A test without them fails, saying how to build them.
pub fn mesh_images() -> PathBuf {
    let dir = std::env::var_os("SPARROW_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/images"));
    assert!(
        dir.join("index.json").is_file(),
        "no mesh images in {}: run `scripts/build-images.sh --profile dev` (scripts/test.sh does) \
         or export SPARROW_IMAGES=DIR",
        dir.display()
    );
    dir
}

/// The sparrowctl this package built.
pub fn sparrowctl_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sparrowctl"))
}

/// Runs sparrowctl against the node with `stdin` (a password) on its standard input.
pub fn sparrowctl(node: &Node, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(sparrowctl_bin())
        .env("KUBECONFIG", &node.kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sparrowctl runs");
    let mut pipe = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        pipe.write_all(format!("{text}\n").as_bytes())
            .expect("write stdin");
    }
    drop(pipe);
    child.wait_with_output().expect("sparrowctl ends")
}

/// [`sparrowctl`] that must succeed; returns its standard output.
pub fn sparrowctl_ok(node: &Node, args: &[&str], stdin: Option<&str>) -> String {
    let out = sparrowctl(node, args, stdin);
    assert!(
        out.status.success(),
        "sparrowctl {} failed:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One mesh per node at a time (its webhook and ClusterRole are cluster-wide): the tests of one
/// binary take turns.
static ONE_MESH: Mutex<()> = Mutex::new(());

/// A mesh deployed from the node's private registry, its images pushed under a path of its
/// own by a registry user of its own; removed (and its namespace awaited gone) when dropped.
pub struct Mesh {
    pub node: &'static Node,
    /// `HOST:PORT/PATH` the mesh's images were pushed to.
    pub registry: String,
    /// The registry user deploy stored.
    pub creds: Credentials,
    /// The mesh namespace was made by the test (for a Secret another tool keeps), not by
    /// deploy: the test deletes it after remove.
    made_namespace: bool,
    _turn: MutexGuard<'static, ()>,
}

impl Mesh {
    /// Pushes the mesh's images as a fresh user and deploys with `extra` deploy flags.
    pub fn deploy(node: &'static Node, purpose: &str, extra: &[&str]) -> Mesh {
        Self::install(node, purpose, extra, false)
    }

    /// Pushes the mesh's images as a fresh user and applies `deploy --dry-run`'s output with
    /// `kubectl apply -f -`, as a GitOps tool would: no certificate in it, the controller makes
    /// its own.
    pub fn apply_dry_run(node: &'static Node, purpose: &str) -> Mesh {
        Self::install(node, purpose, &[], true)
    }

    /// Pushes the mesh's images as a fresh user, writes that user's credential into Secret
    /// `secret` of a mesh namespace made beforehand (as external-secrets would) and deploys
    /// with `--registry-secret secret` and `extra`.
    pub fn deploy_from_secret(
        node: &'static Node,
        purpose: &str,
        secret: &str,
        extra: &[&str],
    ) -> Mesh {
        let mut flags = vec!["--registry-secret", secret];
        flags.extend_from_slice(extra);
        Self::install_as(node, purpose, &flags, false, Some(secret))
    }

    fn install(node: &'static Node, purpose: &str, extra: &[&str], dry_run: bool) -> Mesh {
        Self::install_as(node, purpose, extra, dry_run, None)
    }

    /// Pushes the mesh's images as a fresh user, then deploys with the flags `plugin` returns
    /// for the mesh (`--registry-server` and a credential-provider plugin's), from inside the
    /// node's network namespace: what `deploy --credential-provider-bin-dir` runs reaches the
    /// servers the controller's pod reaches, at the node's address.
    pub fn deploy_with_plugin(
        node: &'static Node,
        purpose: &str,
        plugin: impl FnOnce(&Mesh) -> Vec<String>,
    ) -> Mesh {
        let mesh = Self::begin(node, purpose);
        let images = mesh_images();
        let ca = node.registry_ca.to_string_lossy().into_owned();
        let mut deploy: Vec<String> = [
            "deploy",
            "--images-from",
            &images.to_string_lossy(),
            "--registry-ca",
            &ca,
        ]
        .map(str::to_owned)
        .to_vec();
        deploy.extend(plugin(&mesh));
        let out = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", node.netns))
            .arg("--")
            .arg(sparrowctl_bin())
            .env("KUBECONFIG", &node.kubeconfig)
            .args(&deploy)
            .stdin(Stdio::null())
            .output()
            .expect("sparrowctl runs");
        assert!(
            out.status.success(),
            "sparrowctl {} failed:\n{}\n{}",
            deploy.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        mesh
    }

    /// Takes the node's turn, makes a fresh registry user and pushes the mesh's images under a
    /// path of this purpose's own.
    fn begin(node: &'static Node, purpose: &str) -> Mesh {
        let turn = ONE_MESH
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        await_no_mesh(node);
        let creds = Credentials::random(&format!("robot-{purpose}"));
        node.registry_user(&creds).expect("registry user");
        let registry = format!("{}/t-{purpose}/mesh", node.registry);
        let images = mesh_images();
        let ca = node.registry_ca.to_string_lossy();
        sparrowctl_ok(
            node,
            &[
                "images",
                "push",
                "--from",
                &images.to_string_lossy(),
                "--registry-server",
                &registry,
                "--registry-username",
                &creds.user,
                "--registry-password-stdin",
                "--registry-ca",
                &ca,
            ],
            Some(&creds.password),
        );
        Mesh {
            node,
            registry,
            creds,
            made_namespace: false,
            _turn: turn,
        }
    }

    fn install_as(
        node: &'static Node,
        purpose: &str,
        extra: &[&str],
        dry_run: bool,
        external: Option<&str>,
    ) -> Mesh {
        let mut mesh = Self::begin(node, purpose);
        mesh.made_namespace = external.is_some();
        let images = mesh_images();
        let images = images.to_string_lossy();
        let ca = node.registry_ca.to_string_lossy();
        let (registry, creds) = (mesh.registry.clone(), mesh.creds.clone());
        let credential_flags = [
            "--registry-server",
            registry.as_str(),
            "--registry-username",
            creds.user.as_str(),
            "--registry-password-stdin",
            "--registry-ca",
            ca.as_ref(),
        ];
        let mut deploy = vec!["deploy", "--images-from", images.as_ref()];
        match external {
            Some(secret) => {
                node.kubectl(&["create", "namespace", "sparrow-mesh"]);
                let mut object = sparrow_testnode::pull_secret(secret, &node.registry, &creds);
                object["metadata"]["namespace"] = "sparrow-mesh".into();
                node.apply(&object);
                deploy.extend_from_slice(&credential_flags[..2]);
                deploy.extend_from_slice(&credential_flags[5..]);
            }
            None => deploy.extend_from_slice(&credential_flags),
        }
        deploy.extend_from_slice(extra);
        if dry_run {
            deploy.push("--dry-run");
        }
        let deploy: Vec<String> = deploy.into_iter().map(str::to_owned).collect();
        let deploy: Vec<&str> = deploy.iter().map(String::as_str).collect();
        let output = sparrowctl_ok(node, &deploy, Some(&mesh.creds.password));
        if dry_run {
            assert!(!output.contains("PRIVATE KEY"), "{output}");
            let applied = node
                .kubectl_output(&["apply", "-f", "-"], Some(&output))
                .expect("kubectl runs");
            assert!(
                applied.status.success(),
                "kubectl apply: {}",
                String::from_utf8_lossy(&applied.stderr)
            );
        }
        mesh
    }

    /// A new registry user `user`, then `sparrowctl registry update` to it; returns it.
    pub fn rotate(&self, user: &str) -> Credentials {
        let creds = Credentials::random(user);
        self.node.registry_user(&creds).expect("registry user");
        let ca = self.node.registry_ca.to_string_lossy();
        sparrowctl_ok(
            self.node,
            &[
                "registry",
                "update",
                "--registry-username",
                &creds.user,
                "--registry-password-stdin",
                "--registry-ca",
                &ca,
            ],
            Some(&creds.password),
        );
        creds
    }

    /// The controller's ServiceAccount as an RBAC user name.
    pub fn controller_user(&self) -> &'static str {
        "system:serviceaccount:sparrow-mesh:sparrow-controller"
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        let out = sparrowctl(self.node, &["remove", "--yes"], None);
        if !out.status.success() && !std::thread::panicking() {
            panic!(
                "remove failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        if self.made_namespace {
            let _ = self.node.kubectl_output(
                &["delete", "namespace", "sparrow-mesh", "--wait=false"],
                None,
            );
        }
        let _ = self.node.delete_registry_user(&self.creds.user);
    }
}

/// Waits until no mesh namespace exists (an earlier test's remove may still be finishing).
fn await_no_mesh(node: &Node) {
    wait_until("namespace sparrow-mesh to be gone", LIMIT, || {
        let out = node
            .kubectl_output(&["get", "namespace", "sparrow-mesh", "-o", "name"], None)
            .ok()?;
        (!out.status.success()).then_some(())
    });
}

/// The user name in a dockerconfigjson Secret's only entry.
pub fn secret_user(secret: &serde_json::Value) -> Option<String> {
    use base64::Engine as _;
    let data = secret["data"][".dockerconfigjson"].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    let config: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let auths = config["auths"].as_object()?;
    let entry = auths.values().next()?;
    entry["username"].as_str().map(str::to_owned)
}
