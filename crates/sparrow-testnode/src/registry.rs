//! The node's private registry: users (through `local-cluster.sh registry-user`), pushes of the
//! project's test images (skopeo, as a user pushes), and pull secrets for them.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::{Node, NodeError, script};

/// A registry user name and password.
#[derive(Clone)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password (random unless a test picks one).
    pub password: String,
}

impl Credentials {
    /// A user named `user` with a fresh random password.
    pub fn random(user: &str) -> Self {
        Self {
            user: user.to_owned(),
            password: random_hex(16),
        }
    }
}

/// `bytes` random bytes from the kernel, as hex.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .unwrap_or_else(|e| panic!("/dev/urandom: {e}"));
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A `kubernetes.io/dockerconfigjson` Secret named `name` with `creds` for `registry`, the shape
/// `kubectl create secret docker-registry` writes.
pub fn pull_secret(name: &str, registry: &str, creds: &Credentials) -> serde_json::Value {
    let auth = STANDARD.encode(format!("{}:{}", creds.user, creds.password));
    let config = serde_json::json!({
        "auths": { registry: { "username": creds.user, "password": creds.password, "auth": auth } }
    });
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": name },
        "type": "kubernetes.io/dockerconfigjson",
        "data": { ".dockerconfigjson": STANDARD.encode(config.to_string()) }
    })
}

/// A directory holding only the registry CA as `ca.crt`, for skopeo's `--cert-dir`. Written to a
/// fresh name and renamed, so concurrent test binaries never read half a file; one per node
/// (namespace name), so test runs of two checkouts on one machine never trust each other's CA.
pub(crate) fn cert_dir(ca: &Path, netns: &str) -> Result<PathBuf, NodeError> {
    let dir = std::env::temp_dir().join(format!("sparrow-testnode-registry-ca-{netns}"));
    let io = |what: String| move |source| NodeError::Io { what, source };
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    let tmp = dir.join(format!("ca.crt.{}", std::process::id()));
    std::fs::copy(ca, &tmp).map_err(io(format!("reading {}", ca.display())))?;
    std::fs::rename(&tmp, dir.join("ca.crt")).map_err(io(format!("writing {}", dir.display())))?;
    Ok(dir)
}

impl Node {
    /// Adds `creds.user` to the registry, or changes its password.
    pub fn registry_user(&self, creds: &Credentials) -> Result<(), NodeError> {
        self.run_script(&["registry-user", &creds.user], Some(&creds.password))
    }

    /// Removes a registry user.
    pub fn delete_registry_user(&self, user: &str) -> Result<(), NodeError> {
        self.run_script(&["registry-user", "--delete", user], None)
    }

    pub(crate) fn run_script(&self, args: &[&str], stdin: Option<&str>) -> Result<(), NodeError> {
        let what = format!("local-cluster.sh {}", args.join(" "));
        let mut child = Command::new(script())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| NodeError::Io {
                what: what.clone(),
                source,
            })?;
        if let Some(mut pipe) = child.stdin.take() {
            let line = stdin.map(|s| format!("{s}\n")).unwrap_or_default();
            pipe.write_all(line.as_bytes())
                .map_err(|source| NodeError::Io {
                    what: what.clone(),
                    source,
                })?;
        }
        let out = child.wait_with_output().map_err(|source| NodeError::Io {
            what: what.clone(),
            source,
        })?;
        if out.status.success() {
            return Ok(());
        }
        Err(NodeError::Command {
            what,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }

    /// Pushes the project-built test image `image` (`httpecho` or `webhook`) to `<registry>/<repo>:1`
    /// as `creds`, and returns that reference.
    pub fn push_image(
        &self,
        image: &str,
        repo: &str,
        creds: &Credentials,
    ) -> Result<String, NodeError> {
        self.push_layout(&self.images.join(image), repo, creds)
    }

    /// Packs the static program `program` as a one-layer OCI layout that runs it as
    /// `/<its file name>` (the node's `ociimage`, reproducible), in a temporary directory removed
    /// on drop; push it with [`Node::push_layout`] from the directory's `image`.
    pub fn pack_program(&self, program: &Path) -> Result<tempfile::TempDir, NodeError> {
        let name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dest = format!("/{name}");
        self.pack_files(&dest, &[(program, &dest)])
    }

    /// [`Node::pack_program`] for several static files (`(source, path in the image)`), the
    /// image running `entrypoint`.
    pub fn pack_files(
        &self,
        entrypoint: &str,
        files: &[(&Path, &str)],
    ) -> Result<tempfile::TempDir, NodeError> {
        let io = |what: String| move |source| NodeError::Io { what, source };
        let dir = tempfile::tempdir().map_err(io("a temporary directory".into()))?;
        let ociimage = self.kubectl.with_file_name("ociimage");
        let out = Command::new(&ociimage)
            .arg("-out")
            .arg(dir.path().join("image"))
            .args(["-tag", "1", "-entrypoint", entrypoint])
            .args(
                files
                    .iter()
                    .map(|(source, dest)| format!("{}={dest}", source.display())),
            )
            .output()
            .map_err(io(format!("running {}", ociimage.display())))?;
        if !out.status.success() {
            return Err(NodeError::Command {
                what: format!("ociimage for {entrypoint}"),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(dir)
    }

    /// Pushes the OCI layout `layout` (tag `1`) to `<registry>/<repo>:1` as `creds`, and returns
    /// that reference. A layout from [`Node::pack_program`] is its directory's `image`.
    pub fn push_layout(
        &self,
        layout: &Path,
        repo: &str,
        creds: &Credentials,
    ) -> Result<String, NodeError> {
        let reference = format!("{}/{repo}:1", self.registry);
        let auth_dir = tempfile::tempdir().map_err(|source| NodeError::Io {
            what: "a temporary directory".into(),
            source,
        })?;
        let authfile = auth_dir.path().join("auth.json");
        let auth = STANDARD.encode(format!("{}:{}", creds.user, creds.password));
        let config = serde_json::json!({ "auths": { &self.registry: { "auth": auth } } });
        std::fs::write(&authfile, config.to_string()).map_err(|source| NodeError::Io {
            what: "writing the skopeo auth file".into(),
            source,
        })?;
        let out = Command::new("skopeo")
            .args(["copy", "-q", "--retry-times", "3", "--dest-cert-dir"])
            .arg(self.cert_dir())
            .arg("--dest-authfile")
            .arg(&authfile)
            .arg(format!("oci:{}:1", layout.display()))
            .arg(format!("docker://{reference}"))
            .output()
            .map_err(|source| NodeError::Io {
                what: "running skopeo (apt-get install skopeo)".into(),
                source,
            })?;
        if out.status.success() {
            return Ok(reference);
        }
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        Err(NodeError::Command {
            what: format!("skopeo copy to {reference}"),
            stderr,
        })
    }
}
