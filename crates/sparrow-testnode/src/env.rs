//! Reading the node's variables: from the environment, or from `scripts/local-cluster.sh env`.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use crate::NodeError;

/// The variables a test needs; `SPARROW_CLUSTER_NETNS` is the sign that a node was exported.
const KEYS: [&str; 10] = [
    "KUBECONFIG",
    "SPARROW_WEBHOOK_CLIENT_CA",
    "SPARROW_CLUSTER_NETNS",
    "SPARROW_REGISTRY",
    "SPARROW_REGISTRY_CA",
    "SPARROW_NODE_IMAGES",
    "SPARROW_NODE_KUBECTL",
    "SPARROW_NODE_IP",
    "SPARROW_NODE_ECR_REGISTRY",
    "SPARROW_NODE_CREDENTIAL_PROVIDERS",
];

/// The node's variables by name.
pub(crate) struct Vars(HashMap<String, String>);

impl Vars {
    pub(crate) fn get(&self, key: &str) -> Result<&str, NodeError> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| NodeError::MissingVar {
                name: key.to_owned(),
            })
    }
}

/// The exported environment when `scripts/test.sh` (or the user) exported a node, else what the
/// script reports for a running node.
pub(crate) fn node_vars(script: &Path) -> Result<Vars, NodeError> {
    if std::env::var_os("SPARROW_CLUSTER_NETNS").is_some() {
        let vars = KEYS
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)));
        return Ok(Vars(vars.collect()));
    }
    let out = Command::new(script)
        .arg("env")
        .output()
        .map_err(|source| NodeError::Io {
            what: format!("running {} env", script.display()),
            source,
        })?;
    if !out.status.success() {
        let detail = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(NodeError::NotRunning { detail });
    }
    Ok(Vars(parse_exports(&String::from_utf8_lossy(&out.stdout))))
}

/// The `export NAME=VALUE` lines of a shell snippet (values unquoted as the shell would for the
/// simple quoting `local-cluster.sh env` uses).
pub fn parse_exports(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|assignment| assignment.split_once('='))
        .map(|(name, value)| (name.trim().to_owned(), unquote(value.trim()).to_owned()))
        .collect()
}

fn unquote(value: &str) -> &str {
    for quote in ['\'', '"'] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

/// The version go.mod requires for `module`, on a `require` line or inside a `require (...)` block.
pub(crate) fn pinned_version(go_mod: &str, module: &str) -> Option<String> {
    go_mod.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let mut first = words.next()?;
        if first == "require" {
            first = words.next()?;
        }
        let version = words.next()?;
        (first == module && version.starts_with('v')).then(|| version.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_are_read_with_and_without_quotes() {
        let cases = [
            (
                "export KUBECONFIG=/s/kube/admin.kubeconfig",
                "KUBECONFIG",
                Some("/s/kube/admin.kubeconfig"),
            ),
            (
                "export SPARROW_REGISTRY='127.0.0.1:15443'",
                "SPARROW_REGISTRY",
                Some("127.0.0.1:15443"),
            ),
            ("  export A=\"x y\"", "A", Some("x y")),
            ("KUBECONFIG=/not/exported", "KUBECONFIG", None),
            ("# export B=comment", "B", None),
        ];
        for (text, key, want) in cases {
            assert_eq!(
                parse_exports(text).get(key).map(String::as_str),
                want,
                "{text}"
            );
        }
    }

    #[test]
    fn pinned_version_is_found_in_a_block_or_on_a_line() {
        let block = "module m\n\nrequire (\n\tk8s.io/kubernetes v1.37.2 // indirect\n)\n\
                     replace k8s.io/api => k8s.io/api v0.37.2\n";
        assert_eq!(
            pinned_version(block, "k8s.io/kubernetes").as_deref(),
            Some("v1.37.2")
        );
        assert_eq!(
            pinned_version("require k8s.io/kubernetes v1.36.3\n", "k8s.io/kubernetes").as_deref(),
            Some("v1.36.3")
        );
        assert_eq!(
            pinned_version(block, "k8s.io/api"),
            None,
            "a replace line is not a requirement"
        );
    }

    #[test]
    fn a_missing_variable_names_itself() {
        let vars = Vars(parse_exports(
            "export KUBECONFIG=/k\nexport SPARROW_REGISTRY=\n",
        ));
        assert_eq!(vars.get("KUBECONFIG").ok(), Some("/k"));
        let error = vars
            .get("SPARROW_REGISTRY")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("no SPARROW_REGISTRY"), "{error}");
    }
}
