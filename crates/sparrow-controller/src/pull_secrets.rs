//! The seam for pull-secret copies: before answering for a pod that carries the sidecar, the
//! webhook makes sure the registry pull secret exists in the pod's namespace, so the first
//! image pull already authenticates. The implementation lives with the cluster operations.

use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future (the trait is used as a trait object).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A message for the user who created the pod, returned in the AdmissionResponse's `warnings`
/// (kubectl prints it). Keep it under 120 characters; never put credentials in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionWarning(pub String);

/// The copy could not be ensured. The pod is still admitted (its pull may fail), with a
/// warning and a log line carrying this error.
#[derive(Debug, thiserror::Error)]
#[error("could not ensure the pull secret in namespace {namespace}: {source}")]
pub struct PullSecretCopyError {
    /// The pod's namespace.
    pub namespace: String,
    /// What failed (an API error, a timeout).
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Keeps a current copy of the registry pull secret in the namespaces of meshed pods.
///
/// The webhook calls it for every admitted pod that carries the sidecar (injected now or
/// before), except on dry-run requests, and waits for it before answering.
pub trait PullSecretCopies: Send + Sync {
    /// Makes sure `namespace` holds a current copy for `pod` (its name or generateName).
    /// `Ok(Some(_))`: admitted with that warning (for instance, a Secret of that name that is
    /// not ours is left alone).
    fn ensure_pull_secret_copy<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
    ) -> BoxFuture<'a, Result<Option<AdmissionWarning>, PullSecretCopyError>>;

    /// Whether a pod that carries the sidecar exists in `namespace` now: a copy owed to a
    /// review is made only once its pod really exists (a forged review makes none).
    fn injected_pod_exists<'a>(
        &'a self,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<bool, PullSecretCopyError>>;
}
