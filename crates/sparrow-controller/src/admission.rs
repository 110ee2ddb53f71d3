//! Answers an AdmissionReview: decision and patch from `sparrow-inject`, namespace labels from
//! the cache, the pull-secret copy ensured before answering. Bad input becomes a 400 (when the
//! review itself is unreadable) or a denied AdmissionResponse (when the object is), never a
//! panic or a 5xx.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::Pod;
use sparrow_core::names::NAMESPACE_NAME_LABEL;
use sparrow_inject::{Decision, Injector, SkipReason, decide};

use crate::metrics::AdmissionMetrics;
use crate::namespaces::NamespaceLabels;
use crate::pull_secrets::PullSecretCopies;
use crate::review::{API_VERSION, AdmissionResponse, IncomingReview, KIND};

/// A request body that is not an AdmissionReview v1 with a request: answered with HTTP 400.
#[derive(Debug, thiserror::Error)]
pub enum BadReview {
    /// The body is not JSON of the AdmissionReview shape.
    #[error("the body is not an AdmissionReview: {0}")]
    Json(#[source] serde_json::Error),
    /// The body is JSON of another kind or version.
    #[error(
        "expected kind AdmissionReview, apiVersion admission.k8s.io/v1; got kind {kind:?}, apiVersion {api_version:?}"
    )]
    WrongKind {
        /// The `kind` received.
        kind: String,
        /// The `apiVersion` received.
        api_version: String,
    },
    /// The review has no `request`.
    #[error("the AdmissionReview has no request")]
    NoRequest,
}

/// What became of a review: the JSON to answer with and the labels to count it under.
#[derive(Debug)]
pub struct AdmissionOutcome {
    /// The AdmissionReview response, serialized.
    pub body: Vec<u8>,
    /// The `result` label: `injected`, `skipped`, `allowed` or `denied`.
    pub result: &'static str,
    /// The `reason` label (skip or denial reason), empty otherwise.
    pub reason: &'static str,
}

/// The injection webhook's logic, independent of HTTP and TLS.
pub struct Webhook {
    injector: Injector,
    namespaces: Arc<dyn NamespaceLabels>,
    pull_secrets: Option<Arc<dyn PullSecretCopies>>,
    metrics: AdmissionMetrics,
}

impl Webhook {
    /// A webhook deciding with `config` and `namespaces`; `pull_secrets` is called for pods
    /// that carry the sidecar (none: no copy is made).
    pub fn new(
        injector: Injector,
        namespaces: Arc<dyn NamespaceLabels>,
        pull_secrets: Option<Arc<dyn PullSecretCopies>>,
        metrics: AdmissionMetrics,
    ) -> Self {
        Self {
            injector,
            namespaces,
            pull_secrets,
            metrics,
        }
    }

    /// The metrics this webhook counts into.
    pub fn metrics(&self) -> &AdmissionMetrics {
        &self.metrics
    }

    /// Answers the review in `body`.
    pub async fn review(&self, body: &[u8]) -> Result<AdmissionOutcome, BadReview> {
        let review: IncomingReview<'_> = serde_json::from_slice(body).map_err(BadReview::Json)?;
        if review.kind != KIND || review.api_version != API_VERSION {
            return Err(BadReview::WrongKind {
                kind: review.kind,
                api_version: review.api_version,
            });
        }
        let request = review.request.ok_or(BadReview::NoRequest)?;
        let uid = request.uid;
        let is_pod = request.kind.group.is_empty()
            && request.kind.version == "v1"
            && request.kind.kind == "Pod";
        // The webhook is registered for pod CREATE only; anything else passes untouched.
        if !is_pod || request.operation != "CREATE" {
            return Ok(outcome(AdmissionResponse::allow(uid), "allowed", ""));
        }
        let pod: Pod = match request.object.map(|raw| serde_json::from_str(raw.get())) {
            Some(Ok(pod)) => pod,
            Some(Err(error)) => {
                let message = format!("the object is not a valid Pod: {error}");
                return Ok(outcome(
                    AdmissionResponse::deny(uid, message),
                    "denied",
                    "invalid-pod",
                ));
            }
            None => {
                let message = "the request has no object".to_owned();
                return Ok(outcome(
                    AdmissionResponse::deny(uid, message),
                    "denied",
                    "invalid-pod",
                ));
            }
        };
        let namespace = request
            .namespace
            .or_else(|| pod.metadata.namespace.clone())
            .unwrap_or_default();
        let dry_run = request.dry_run.unwrap_or(false);
        let labels = self.namespace_labels(&namespace);
        let pod_name = pod
            .metadata
            .name
            .as_deref()
            .or(pod.metadata.generate_name.as_deref())
            .unwrap_or_default();

        let decision = decide(&pod, &labels, self.injector.config());
        let mut response = AdmissionResponse::allow(uid);
        let (result, reason) = match decision {
            Decision::Inject => match self.injector.patch_json(&pod) {
                Ok(json) => {
                    response.patch_type = Some("JSONPatch");
                    response.patch = Some(STANDARD.encode(json));
                    ("injected", "")
                }
                Err(error) => {
                    tracing::debug!(%namespace, pod = %pod_name, %error, "pod denied");
                    let denied = AdmissionResponse::deny(response.uid, error.to_string());
                    return Ok(outcome(denied, "denied", "invalid-annotation"));
                }
            },
            Decision::Skip(reason) => ("skipped", reason.as_str()),
        };
        tracing::debug!(%namespace, pod = %pod_name, result, reason, "admission");
        let carries_sidecar = matches!(
            decision,
            Decision::Inject | Decision::Skip(SkipReason::AlreadyInjected)
        );
        if carries_sidecar && !dry_run {
            self.ensure_pull_secret(&namespace, pod_name, &mut response.warnings)
                .await;
        }
        Ok(outcome(response, result, reason))
    }

    /// The namespace's labels from the cache; a namespace not seen yet (created a moment ago)
    /// is taken as unlabelled: the API server's selectors already matched it.
    fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String> {
        let mut labels = self.namespaces.labels(namespace).unwrap_or_default();
        labels
            .entry(NAMESPACE_NAME_LABEL.to_owned())
            .or_insert_with(|| namespace.to_owned());
        labels
    }

    async fn ensure_pull_secret(&self, namespace: &str, pod: &str, warnings: &mut Vec<String>) {
        let Some(copies) = &self.pull_secrets else {
            return;
        };
        match copies.ensure_pull_secret_copy(namespace, pod).await {
            Ok(None) => {}
            Ok(Some(warning)) => warnings.push(warning.0),
            Err(error) => {
                tracing::warn!(%namespace, %error, "pull secret copy not ensured; admitting the pod");
                self.metrics.pull_secret_error();
                warnings.push(format!(
                    "sparrow-mesh: the registry pull secret could not be copied to namespace {namespace}; image pulls may fail"
                ));
            }
        }
    }
}

fn outcome(
    response: AdmissionResponse,
    result: &'static str,
    reason: &'static str,
) -> AdmissionOutcome {
    // A response of strings and booleans always serializes.
    let body = serde_json::to_vec(&response.into_review()).unwrap_or_default();
    AdmissionOutcome {
        body,
        result,
        reason,
    }
}

#[cfg(test)]
mod tests;
