//! Why the fixture could not give a test its node.

/// A failure to find or drive the local node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No node is running, or it does not answer.
    #[error(
        "no local Kubernetes node ({detail}): start it with `scripts/local-cluster.sh up` and export \
         `scripts/local-cluster.sh env`, or run the whole suite with `scripts/test.sh`"
    )]
    NotRunning {
        /// What was found instead.
        detail: String,
    },
    /// The node's environment lacks a variable `scripts/local-cluster.sh env` prints.
    #[error(
        "the node environment has no {name}: export the output of `scripts/local-cluster.sh env`"
    )]
    MissingVar {
        /// The variable.
        name: String,
    },
    /// A file or program could not be used.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A command the fixture runs failed.
    #[error("{what} failed: {stderr}")]
    Command {
        /// The command.
        what: String,
        /// Its standard error.
        stderr: String,
    },
    /// A program the tests run is not installed where the project's scripts put it.
    #[error("{what} is not installed at {path}: run `{fix}` (scripts/test.sh does)")]
    NotInstalled {
        /// The program.
        what: String,
        /// Where it was looked for.
        path: String,
        /// The command that installs it.
        fix: String,
    },
    /// A program the fixture started did not come up.
    #[error("{what} did not start: {detail}")]
    NotStarted {
        /// The program.
        what: String,
        /// Why, with the end of its log.
        detail: String,
    },
    /// The kube-rs client could not be built from the kubeconfig.
    #[error("kube client for the node: {0}")]
    Client(String),
}
