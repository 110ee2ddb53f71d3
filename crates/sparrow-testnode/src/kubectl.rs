//! The node's own kubectl, run with the admin kubeconfig.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use crate::{Node, NodeError};

impl Node {
    /// Runs kubectl with `args` (and `stdin`, if any) and returns what it did, success or not.
    pub fn kubectl_output(&self, args: &[&str], stdin: Option<&str>) -> Result<Output, NodeError> {
        let mut child = Command::new(&self.kubectl)
            .env("KUBECONFIG", &self.kubeconfig)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| NodeError::Io {
                what: format!("running {}", self.kubectl.display()),
                source,
            })?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())
                .map_err(|source| NodeError::Io {
                    what: "writing kubectl's stdin".into(),
                    source,
                })?;
        }
        child.wait_with_output().map_err(|source| NodeError::Io {
            what: "waiting for kubectl".into(),
            source,
        })
    }

    /// Runs kubectl and returns its standard output; a failure fails the test with kubectl's error.
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.kubectl_stdin(args, None)
    }

    /// [`Node::kubectl`] with `stdin` (a manifest for `apply -f -`, say).
    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self
            .kubectl_output(args, stdin)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl get ... -o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        let text = self.kubectl(&all);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("kubectl {} printed no JSON: {e}", all.join(" ")))
    }

    /// `kubectl apply -f -` of one object.
    pub fn apply(&self, object: &serde_json::Value) -> String {
        self.kubectl_stdin(&["apply", "-f", "-"], Some(&object.to_string()))
    }
}

impl Node {
    /// A kubeconfig that authenticates with `token` alone (no client certificate), for requests
    /// made as a ServiceAccount; removed when the returned path is dropped.
    pub fn token_kubeconfig(&self, token: &str) -> tempfile::TempPath {
        let jsonpath = |path: &str| {
            self.kubectl(&["config", "view", "--raw", "-o", &format!("jsonpath={path}")])
        };
        let server = jsonpath("{.clusters[0].cluster.server}");
        let ca = jsonpath("{.clusters[0].cluster.certificate-authority-data}");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: node\n  cluster:\n    server: {server}\n    \
             certificate-authority-data: {ca}\nusers:\n- name: token\n  user:\n    token: {token}\n\
             contexts:\n- name: node\n  context: {{cluster: node, user: token}}\ncurrent-context: node\n"
        );
        let mut file =
            tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("temporary kubeconfig: {e}"));
        file.write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("temporary kubeconfig: {e}"));
        file.into_temp_path()
    }
}
