//! The pull-secret seam filled with the real thing: [`sparrow_kube::runtime::copies::PullSecretCopier`]
//! ensures the copy; a Secret of that name we do not own gets an admission warning and an
//! Event on that Secret (the pod does not exist yet while it is admitted).

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use sparrow_core::names::{CONTROLLER_NAME, PULL_SECRET_NAME};
use sparrow_kube::runtime::copies::{CopyError, EnsureOutcome, PullSecretCopier};

use crate::pull_secrets::{AdmissionWarning, BoxFuture, PullSecretCopies, PullSecretCopyError};

/// The most an admission waits for its copy.
pub const ENSURE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(7);

/// Copies through the Kubernetes API.
pub struct KubeCopies {
    copier: PullSecretCopier,
    recorder: Recorder,
}

impl KubeCopies {
    /// Wraps `copier`; Events are reported as `sparrow-controller` from `instance`.
    pub fn new(copier: PullSecretCopier, client: kube::Client, instance: &str) -> Self {
        let reporter = Reporter {
            controller: CONTROLLER_NAME.to_owned(),
            instance: Some(instance.to_owned()),
        };
        Self {
            copier,
            recorder: Recorder::new(client, reporter),
        }
    }

    fn report_foreign(&self, namespace: &str, pod: &str) {
        let recorder = self.recorder.clone();
        let reference = ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Secret".to_owned()),
            name: Some(PULL_SECRET_NAME.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectReference::default()
        };
        let event = Event {
            type_: EventType::Warning,
            reason: "ForeignPullSecret".to_owned(),
            note: Some(format!(
                "Secret {namespace}/{PULL_SECRET_NAME} was not made by Sparrow (it lacks the controller's proof), so Sparrow left it alone; pod {pod} uses it to pull the mesh images, which may fail: delete it to let Sparrow make its copy"
            )),
            action: "CopyPullSecret".to_owned(),
            secondary: None,
        };
        let namespace = namespace.to_owned();
        // Off the admission path: the answer must not wait for an Event.
        tokio::spawn(async move {
            if let Err(error) = recorder.publish(&event, &reference).await {
                tracing::warn!(%namespace, %error, "could not record the foreign pull secret Event");
            }
        });
    }
}

impl KubeCopies {
    /// Says when the source pull secret disappears: an error log, a Warning Event
    /// `SourcePullSecretMissing` on it (new meshed pods and the next controller pod will fail
    /// to pull) and `sparrow_pull_secret_source_present 0`; and when it is back. One Event per
    /// disappearance, so nothing here grows with load. Runs for as long as the controller.
    pub async fn report_source_presence(&self, mesh: &str) {
        let mut presence = self.copier.source_presence();
        let mut was_present = false;
        loop {
            let now = *presence.borrow_and_update();
            match now {
                Some(false) if was_present => self.report_source_missing(mesh).await,
                Some(true) if !was_present => {
                    tracing::info!(namespace = %mesh, "the source pull secret is present");
                }
                _ => {}
            }
            was_present = now == Some(true);
            if presence.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    async fn report_source_missing(&self, mesh: &str) {
        tracing::error!(namespace = %mesh, "the source pull secret was deleted: new meshed pods and controller pods cannot pull; run sparrowctl deploy with the registry flags again, or sparrowctl registry update");
        let reference = ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Secret".to_owned()),
            name: Some(PULL_SECRET_NAME.to_owned()),
            namespace: Some(mesh.to_owned()),
            ..ObjectReference::default()
        };
        let event = Event {
            type_: EventType::Warning,
            reason: "SourcePullSecretMissing".to_owned(),
            note: Some(format!(
                "Secret {mesh}/{PULL_SECRET_NAME} was deleted: new meshed pods and the next controller pod cannot pull the mesh images; run sparrowctl deploy with the registry flags again, or sparrowctl registry update"
            )),
            action: "WatchSourcePullSecret".to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &reference).await {
            tracing::warn!(namespace = %mesh, %error, "could not record the missing source Event");
        }
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

    fn injected_pod_exists<'a>(
        &'a self,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<bool, PullSecretCopyError>> {
        Box::pin(async move {
            self.copier
                .injected_pod_exists(namespace)
                .await
                .map_err(|error| PullSecretCopyError {
                    namespace: namespace.to_owned(),
                    source: Box::new(error),
                })
        })
    }
}
