//! Answers an AdmissionReview: decision and patch from `sparrow-inject`, namespace labels from
//! the cache, the pull-secret copy ensured before answering for a pod injected now in a
//! namespace the cache says is meshed. Bad input becomes a 400 (when the review itself is
//! unreadable or has no usable uid) or a denied AdmissionResponse (when its request or object
//! is invalid), never a panic or a 5xx.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::Pod;
use sparrow_core::names::NAMESPACE_NAME_LABEL;
use sparrow_inject::{Decision, Injector, decide};

use crate::metrics::AdmissionMetrics;
use crate::namespaces::NamespaceLabels;
use crate::parked::{PARK_LIMIT, ParkedCopies};
use crate::pull_secrets::PullSecretCopies;
use crate::review::{API_VERSION, AdmissionRequest, AdmissionResponse, IncomingReview, KIND};
use crate::validation::{self, quoted};

/// A request body that is not an AdmissionReview v1 with a request that can be answered:
/// answered with HTTP 400.
#[derive(Debug, thiserror::Error)]
pub enum BadReview {
    /// The body is not JSON of the AdmissionReview shape.
    #[error("the body is not an AdmissionReview: {}", one_line(&.0.to_string()))]
    Json(#[source] serde_json::Error),
    /// The body is JSON of another kind or version.
    #[error(
        "expected kind AdmissionReview, apiVersion admission.k8s.io/v1; got kind {}, apiVersion {}",
        quoted(kind),
        quoted(api_version)
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
    /// The request has no uid, or one that cannot be echoed back.
    #[error("{0}")]
    Uid(String),
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

/// How long an admission waits for the namespace cache to learn a namespace it has not seen
/// (one created a moment before its first pod) before deciding about the pull-secret copy.
pub const NAMESPACE_WAIT: Duration = Duration::from_secs(2);
const NAMESPACE_POLL: Duration = Duration::from_millis(20);
/// The longest message quoted from a parser.
const MAX_MESSAGE_CHARS: usize = 300;

/// The injection webhook's logic, independent of HTTP and TLS.
pub struct Webhook {
    injector: Injector,
    namespaces: Arc<dyn NamespaceLabels>,
    pull_secrets: Option<Arc<dyn PullSecretCopies>>,
    metrics: AdmissionMetrics,
    parked: ParkedCopies,
}

impl Webhook {
    /// A webhook deciding with `config` and `namespaces`; `pull_secrets` is called for pods
    /// it injects in namespaces the cache knows to be meshed (none: no copy is made).
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
            parked: ParkedCopies::default(),
        }
    }

    /// The metrics this webhook counts into.
    pub fn metrics(&self) -> &AdmissionMetrics {
        &self.metrics
    }

    /// Answers the review in `body`. Its uid, kind, namespace and name are checked before
    /// anything else uses them; a review whose request is invalid is denied.
    pub async fn review(&self, body: &[u8]) -> Result<AdmissionOutcome, BadReview> {
        let review: IncomingReview<'_> = serde_json::from_slice(body).map_err(BadReview::Json)?;
        if review.kind != KIND || review.api_version != API_VERSION {
            return Err(BadReview::WrongKind {
                kind: review.kind,
                api_version: review.api_version,
            });
        }
        let mut request = review.request.ok_or(BadReview::NoRequest)?;
        let uid = request
            .uid
            .take()
            .ok_or_else(|| BadReview::Uid("the AdmissionReview request has no uid".to_owned()))?;
        validation::check_uid(&uid).map_err(BadReview::Uid)?;
        let Some(kind) = &request.kind else {
            let message = "the request has no kind".to_owned();
            return Ok(denied(uid, message, "invalid-request"));
        };
        if let Err(message) = validation::check_kind(kind) {
            return Ok(denied(uid, message, "invalid-request"));
        }
        let is_pod = kind.group.is_empty() && kind.version == "v1" && kind.kind == "Pod";
        // The webhook is registered for pod CREATE only; anything else passes untouched.
        if !is_pod || request.operation != "CREATE" {
            return Ok(outcome(AdmissionResponse::allow(uid), "allowed", ""));
        }
        Ok(self.review_pod(uid, &request).await)
    }

    async fn review_pod(&self, uid: String, request: &AdmissionRequest<'_>) -> AdmissionOutcome {
        let pod: Pod = match request.object.map(|raw| serde_json::from_str(raw.get())) {
            Some(Ok(pod)) => pod,
            Some(Err(error)) => {
                let message = format!(
                    "the object is not a valid Pod: {}",
                    one_line(&error.to_string())
                );
                return denied(uid, message, "invalid-pod");
            }
            None => return denied(uid, "the request has no object".to_owned(), "invalid-pod"),
        };
        let namespace = match validation::pod_namespace(
            request.namespace.as_deref(),
            pod.metadata.namespace.as_deref(),
        ) {
            Ok(namespace) => namespace,
            Err(message) => return denied(uid, message, "invalid-request"),
        };
        let (name, generate_name) = (
            pod.metadata.name.as_deref(),
            pod.metadata.generate_name.as_deref(),
        );
        if let Err(message) = validation::check_pod_name(name, generate_name) {
            return denied(uid, message, "invalid-pod");
        }
        if let Err(message) = validation::check_pod_spec(&pod) {
            return denied(uid, message, "invalid-pod");
        }
        let pod_name = name
            .filter(|n| !n.is_empty())
            .or(generate_name)
            .unwrap_or_default();
        let labels = self.namespace_labels(namespace);
        let mut response = AdmissionResponse::allow(uid);
        match decide(&pod, &labels, self.injector.config()) {
            Decision::Inject => match self.injector.patch_json(&pod) {
                Ok(json) => {
                    response.patch_type = Some("JSONPatch");
                    response.patch = Some(STANDARD.encode(json));
                }
                Err(error) => {
                    tracing::debug!(%namespace, pod = %pod_name, %error, "pod denied");
                    let message = one_line(&error.to_string());
                    return denied(response.uid, message, "invalid-annotation");
                }
            },
            Decision::Skip(reason) => {
                tracing::debug!(%namespace, pod = %pod_name, reason = reason.as_str(), "admission skipped");
                return outcome(response, "skipped", reason.as_str());
            }
        }
        tracing::debug!(%namespace, pod = %pod_name, "admission injected");
        // The only side effect: for a pod injected now, never on a dry run.
        if !request.dry_run.unwrap_or(false) {
            self.copy_for_injected_pod(namespace, pod_name, &mut response.warnings)
                .await;
        }
        outcome(response, "injected", "")
    }

    /// The namespace's labels from the cache; a namespace not seen yet (created a moment ago)
    /// is taken as unlabelled: the API server's selectors already matched it.
    fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String> {
        let labels = self.namespaces.labels(namespace).unwrap_or_default();
        with_name_label(labels, namespace)
    }

    /// Whether the namespace cache says `namespace` is meshed: a pod with no opinion of its
    /// own would be injected there. `None`: the cache does not know the namespace, even after
    /// [`NAMESPACE_WAIT`]. Nothing in the review counts: not the pod's labels, not its
    /// annotations.
    async fn namespace_is_meshed(&self, namespace: &str) -> Option<bool> {
        let deadline = tokio::time::Instant::now() + NAMESPACE_WAIT;
        loop {
            if let Some(meshed) = self.meshed_now(namespace) {
                return Some(meshed);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(NAMESPACE_POLL).await;
        }
    }

    /// [`Self::namespace_is_meshed`] from the cache as it is now.
    fn meshed_now(&self, namespace: &str) -> Option<bool> {
        crate::namespaces::meshed_now(&*self.namespaces, self.injector.config(), namespace)
    }

    async fn copy_for_injected_pod(&self, namespace: &str, pod: &str, warnings: &mut Vec<String>) {
        let Some(copies) = &self.pull_secrets else {
            return;
        };
        match self.namespace_is_meshed(namespace).await {
            Some(true) => {}
            Some(false) => {
                tracing::info!(%namespace, %pod, "no pull secret copy: the namespace is not meshed");
                warnings.push(format!(
                    "sparrow-mesh: namespace {namespace} is not meshed, so the registry pull secret was not copied there"
                ));
                return;
            }
            None => {
                // The copy is owed, not refused: made once the cache learns the namespace.
                let parked = self.parked.park(namespace, pod);
                tracing::info!(%namespace, %pod, parked, "pull secret copy deferred: the namespace is not known to the controller yet");
                warnings.push(if parked {
                    format!(
                        "sparrow-mesh: namespace {namespace} is not known to the controller yet; the registry pull secret will be copied there as soon as it is"
                    )
                } else {
                    format!(
                        "sparrow-mesh: namespace {namespace} is not known to the controller, so the registry pull secret was not copied there"
                    )
                });
                return;
            }
        }
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

    /// Makes the copies owed to pods admitted while their namespace was unknown, as the cache
    /// learns each namespace: a meshed one gets its copy (retried while that fails), one that
    /// is not meshed is owed nothing, one never learned is given up after [`PARK_LIMIT`].
    /// Runs for as long as the controller does.
    pub async fn copy_parked(&self) {
        let Some(copies) = &self.pull_secrets else {
            return std::future::pending().await;
        };
        loop {
            for parked in self.parked.next_round().await {
                let (namespace, pod) = (parked.namespace.as_str(), parked.pod.as_str());
                match self.meshed_now(namespace) {
                    None if parked.since.elapsed() >= PARK_LIMIT => {
                        tracing::warn!(%namespace, %pod, "the namespace never became known; its pull secret copy is left to the next pod");
                        self.parked.release(namespace);
                    }
                    None => {}
                    Some(false) => {
                        tracing::info!(%namespace, %pod, "the namespace is not meshed; no pull secret copy owed");
                        self.parked.release(namespace);
                    }
                    Some(true) => self.copy_for_parked(copies.as_ref(), namespace, pod).await,
                }
            }
        }
    }

    /// The copy owed to `namespace`, now that the cache says it is meshed: made only if a pod
    /// that carries the sidecar exists there (the review was for a real pod), else nothing is
    /// owed. A failure keeps it parked, to be tried again.
    async fn copy_for_parked(&self, copies: &dyn PullSecretCopies, namespace: &str, pod: &str) {
        match copies.injected_pod_exists(namespace).await {
            Ok(false) => {
                tracing::info!(%namespace, %pod, "no injected pod exists in the namespace; no pull secret copy owed");
                self.parked.release(namespace);
                return;
            }
            Ok(true) => {}
            Err(error) => {
                self.metrics.pull_secret_error();
                tracing::warn!(%namespace, %error, "cannot tell whether the namespace holds an injected pod; retrying");
                return;
            }
        }
        match copies.ensure_pull_secret_copy(namespace, pod).await {
            Ok(_) => {
                tracing::info!(%namespace, %pod, "deferred pull secret copy ensured");
                self.parked.release(namespace);
            }
            Err(error) => {
                self.metrics.pull_secret_error();
                tracing::warn!(%namespace, %error, "deferred pull secret copy failed; retrying");
            }
        }
    }
}

fn with_name_label(
    mut labels: BTreeMap<String, String>,
    namespace: &str,
) -> BTreeMap<String, String> {
    labels
        .entry(NAMESPACE_NAME_LABEL.to_owned())
        .or_insert_with(|| namespace.to_owned());
    labels
}

/// `message` on one line, at most [`MAX_MESSAGE_CHARS`] characters.
fn one_line(message: &str) -> String {
    let flat: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE_CHARS + 1)
        .collect();
    if flat.chars().count() > MAX_MESSAGE_CHARS {
        let cut: String = flat.chars().take(MAX_MESSAGE_CHARS).collect();
        format!("{cut}...")
    } else {
        flat
    }
}

fn denied(uid: String, message: String, reason: &'static str) -> AdmissionOutcome {
    outcome(AdmissionResponse::deny(uid, message), "denied", reason)
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
