//! The pull-secret seam filled with the real thing: [`sparrow_kube::runtime::copies::PullSecretCopier`]
//! ensures the copy; a Secret of that name we do not own gets an admission warning and an
//! Event on that Secret (the pod does not exist yet while it is admitted).

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use sparrow_core::names::{PULL_SECRET_NAME, USAGE_LABEL, USAGE_LABEL_VALUE};
use sparrow_kube::runtime::copies::{CopyError, EnsureOutcome, PullSecretCopier};

use crate::events::{EventRecorder, Occurrence};
use crate::pull_secrets::{AdmissionWarning, BoxFuture, PullSecretCopies, PullSecretCopyError};

/// The most an admission waits for its copy.
pub const ENSURE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(7);

/// Copies through the Kubernetes API.
pub struct KubeCopies {
    copier: PullSecretCopier,
    events: EventRecorder,
}

impl KubeCopies {
    /// Wraps `copier`; Events go through `events` (bounded, aggregated, never retried).
    pub fn new(copier: PullSecretCopier, events: EventRecorder) -> Self {
        Self { copier, events }
    }

    /// One occurrence for the recorder: a review (possibly forged) costs a map update, and
    /// never waits for or multiplies an API write.
    fn report_foreign(&self, namespace: &str, pod: &str) {
        let regarding = ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Secret".to_owned()),
            name: Some(PULL_SECRET_NAME.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectReference::default()
        };
        self.events.record(Occurrence {
            regarding,
            type_: "Warning",
            reason: "ForeignPullSecret".to_owned(),
            note: format!(
                "Secret {namespace}/{PULL_SECRET_NAME} has no {USAGE_LABEL}={USAGE_LABEL_VALUE} label, so Sparrow left it alone; pod {pod} uses it to pull the mesh images, which may fail"
            ),
            action: "CopyPullSecret".to_owned(),
        });
    }
}

/// An `Arc`'d cluster error as a boxed error source.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct CopyFailed(Arc<CopyError>);

impl PullSecretCopies for KubeCopies {
    fn ensure_pull_secret_copy<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
    ) -> BoxFuture<'a, Result<Option<AdmissionWarning>, PullSecretCopyError>> {
        Box::pin(async move {
            // The common case, a current copy, is answered from the caches without a timer.
            match self.copier.cached_outcome(namespace) {
                Some(EnsureOutcome::Foreign) | None => {}
                Some(_) => return Ok(None),
            }
            // Below the webhook's 10 s timeout, so a slow API costs a warning, not a failed pod.
            let ensured =
                tokio::time::timeout(ENSURE_TIMEOUT, self.copier.ensure_copy(namespace)).await;
            let Ok(ensured) = ensured else {
                return Err(PullSecretCopyError {
                    namespace: namespace.to_owned(),
                    source: format!(
                        "no answer from the API server within {}s",
                        ENSURE_TIMEOUT.as_secs()
                    )
                    .into(),
                });
            };
            match ensured {
                Ok(EnsureOutcome::Foreign) => {
                    self.report_foreign(namespace, pod);
                    Ok(Some(AdmissionWarning(format!(
                        "sparrow-mesh: Secret {namespace}/{PULL_SECRET_NAME} is not Sparrow's; mesh image pulls may fail"
                    ))))
                }
                Ok(_) => Ok(None),
                Err(error) => Err(PullSecretCopyError {
                    namespace: namespace.to_owned(),
                    source: Box::new(CopyFailed(error)),
                }),
            }
        })
    }
}
