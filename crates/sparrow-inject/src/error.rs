//! What can go wrong while injecting.

/// An injection that cannot be done; each message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    /// A port annotation is not a comma-separated list of ports or port ranges.
    #[error(
        "annotation {annotation}: {value:?} is not a comma-separated list of ports (1-65535) or ranges like 8000-8100"
    )]
    InvalidPorts {
        /// The annotation's key.
        annotation: &'static str,
        /// Its value as found on the pod.
        value: String,
    },
    /// The input is not YAML.
    #[error("could not parse the input as YAML: {0}")]
    ParseYaml(#[source] serde_saphyr::Error),
    /// A workload's pod template is not a valid pod (it would be refused by Kubernetes too).
    #[error("{kind} {name:?}: its pod template is not a valid pod: {source}")]
    InvalidPodTemplate {
        /// The workload's kind.
        kind: String,
        /// The workload's name.
        name: String,
        /// Why the template does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// A workload has no pod template where its kind keeps one.
    #[error("{kind} {name:?} has no pod template at {path}")]
    MissingPodTemplate {
        /// The workload's kind.
        kind: String,
        /// The workload's name.
        name: String,
        /// Where the template was expected, as a JSON pointer.
        path: &'static str,
    },
    /// Applying our own patch failed: a bug, reported instead of producing a broken object.
    #[error("internal error: the injection patch does not apply: {0}")]
    Patch(#[source] json_patch::PatchError),
    /// A pod could not be converted to or from JSON.
    #[error("could not convert the pod to or from JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The output could not be written as YAML.
    #[error("could not write the output as YAML: {0}")]
    WriteYaml(#[source] serde_saphyr::SerializeError),
}
