//! The pull-secret seam filled with the real thing: [`sparrow_kube::runtime::copies::PullSecretCopier`]
//! ensures the copy; a Secret of that name we do not own gets an admission warning and an
//! Event on that Secret (the pod does not exist yet while it is admitted).

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use sparrow_core::ExpiryState;
use sparrow_core::expiry::ThresholdTracker;
use sparrow_core::names::PULL_SECRET_NAME;
use sparrow_kube::runtime::copies::{
    CopyConfig, CopyError, EnsureOutcome, PullSecretCopier, SourceSecret, SourceState,
};
use sparrow_kube::runtime::copy_key::ensure_copy_key;
use sparrow_kube::runtime::metrics::CopyMetrics;

use crate::events::{EventRecorder, Occurrence};
use crate::namespaces::{MeshedNow, NamespaceLabels};
use crate::pull_secrets::{AdmissionWarning, BoxFuture, PullSecretCopies, PullSecretCopyError};

/// How long reading (or making) the copy key may take at start.
pub const COPY_KEY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The copier as the controller wires it: the mesh's copy key read (or made, at first start),
/// copies written only where `namespaces` says the webhook injects under `config`.
pub async fn pull_secret_copier(
    client: kube::Client,
    config: &sparrow_inject::InjectConfig,
    source: SourceSecret,
    namespaces: Arc<dyn NamespaceLabels>,
    metrics: CopyMetrics,
) -> Result<PullSecretCopier, sparrow_kube::ClusterError> {
    let key = ensure_copy_key(&client, &config.mesh_namespace, COPY_KEY_TIMEOUT).await?;
    let meshed = Arc::new(MeshedNow {
        namespaces,
        config: config.clone(),
    });
    Ok(PullSecretCopier::new(
        client,
        CopyConfig {
            source,
            ..CopyConfig::new(&config.mesh_namespace)
        },
        key,
        meshed,
        metrics,
    ))
}

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
        self.events.record(Occurrence {
            regarding: pull_secret_in(namespace),
            type_: "Warning",
            reason: "ForeignPullSecret".to_owned(),
            note: format!(
                "Secret {namespace}/{PULL_SECRET_NAME} was not made by Sparrow (it lacks the controller's proof), so Sparrow left it alone; pod {pod} uses it to pull the mesh images, which may fail: delete it to let Sparrow make its copy"
            ),
            action: "CopyPullSecret".to_owned(),
        });
    }

    /// Says when the source pull secret disappears or (one another tool keeps) becomes
    /// unusable: an error log, a Warning Event on it (`SourcePullSecretMissing`,
    /// `SourcePullSecretUnusable`: new meshed namespaces and the next controller pod will fail
    /// to pull; the copies keep what they hold) and `sparrow_pull_secret_source_present 0`;
    /// and when it is back. One occurrence per change, through the same bounded recorder. A
    /// mesh's own source missing from the start is a mesh deployed without credentials, not
    /// news. Runs for as long as the controller.
    pub async fn report_source_presence(&self, mesh: &str) {
        let mut states = self.copier.source_state();
        let external = matches!(self.copier.source_secret(), SourceSecret::External(_));
        let mut last: Option<SourceState> = None;
        loop {
            let now = states.borrow_and_update().clone();
            if let Some(state) = &now
                && last.as_ref() != Some(state)
            {
                match state {
                    SourceState::Present => {
                        tracing::info!(namespace = %mesh, "the source pull secret is present");
                    }
                    SourceState::Missing if external || last == Some(SourceState::Present) => {
                        self.report_source_lost(mesh, None);
                    }
                    SourceState::Missing => {}
                    SourceState::Unusable(why) => self.report_source_lost(mesh, Some(why)),
                }
                last = now;
            }
            if states.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Says when the source's credential enters the warning window and when it expires: a
    /// Warning Event on the source Secret (`CredentialExpiring`,
    /// `CredentialExpired`) and a log line, once per threshold crossed for a given
    /// expiry ([`ThresholdTracker`]), not at every resync. Wakes when the recorded expiry
    /// changes and when the next threshold is due. Runs for as long as the controller.
    pub async fn report_credential_expiry(&self, mesh: &str, window: std::time::Duration) {
        let window = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
        let mut expiry = self.copier.credential_expiry();
        let mut tracker = ThresholdTracker::default();
        loop {
            let expires = *expiry.borrow_and_update();
            let now = unix_now();
            if let (Some(state), Some(at)) = (tracker.observe(expires, now, window), expires) {
                self.report_expiry(mesh, state, at);
            }
            let next = expires.and_then(|at| ExpiryState::next_change(at, now, window));
            let due = async {
                match next {
                    // A second late, so the threshold has surely passed when we look again.
                    Some(secs) => {
                        tokio::time::sleep(std::time::Duration::from_secs(
                            secs.unsigned_abs().saturating_add(1),
                        ))
                        .await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = expiry.changed() => if changed.is_err() {
                    return std::future::pending().await;
                },
                () = due => {}
            }
        }
    }

    fn report_expiry(&self, mesh: &str, state: ExpiryState, at: i64) {
        let when = sparrow_core::expiry::rfc3339(at);
        let (reason, note) = if state == ExpiryState::Expired {
            tracing::error!(namespace = %mesh, expires = %when, "the registry credential has expired: run sparrowctl registry update");
            (
                "CredentialExpired",
                format!(
                    "the registry credential in Secret {mesh}/{PULL_SECRET_NAME} expired {when}: new meshed pods and the next controller pod cannot pull the mesh images; give a new one with sparrowctl registry update"
                ),
            )
        } else {
            tracing::warn!(namespace = %mesh, expires = %when, "the registry credential expires soon: run sparrowctl registry update");
            (
                "CredentialExpiring",
                format!(
                    "the registry credential in Secret {mesh}/{PULL_SECRET_NAME} expires {when}: give a new one with sparrowctl registry update before then"
                ),
            )
        };
        self.events.record(Occurrence {
            regarding: pull_secret_in(mesh),
            type_: "Warning",
            reason: reason.to_owned(),
            note,
            action: "WatchCredentialExpiry".to_owned(),
        });
    }

    /// The source is gone (`unusable: None`) or cannot be copied (why).
    fn report_source_lost(&self, mesh: &str, unusable: Option<&str>) {
        let name = self.copier.source_secret().name().to_owned();
        let (reason, note) = match (self.copier.source_secret(), unusable) {
            (SourceSecret::Own, None) => {
                tracing::error!(namespace = %mesh, "the source pull secret was deleted: new meshed pods and controller pods cannot pull; run sparrowctl deploy with the registry flags again, or sparrowctl registry update");
                (
                    "SourcePullSecretMissing",
                    format!(
                        "Secret {mesh}/{name} was deleted: new meshed pods and the next controller pod cannot pull the mesh images; run sparrowctl deploy with the registry flags again, or sparrowctl registry update"
                    ),
                )
            }
            (_, None) => {
                tracing::error!(namespace = %mesh, secret = %name, "the registry Secret another tool keeps is missing: the copies keep what they hold; check the tool that writes it");
                (
                    "SourcePullSecretMissing",
                    format!(
                        "Secret {mesh}/{name}, which another tool keeps, is missing: the copies keep the credential they hold, but namespaces meshed from now on and the next controller pod cannot pull the mesh images; check the tool that writes it"
                    ),
                )
            }
            (_, Some(why)) => {
                tracing::error!(namespace = %mesh, secret = %name, problem = %why, "the registry Secret cannot be copied: the copies keep what they hold");
                (
                    "SourcePullSecretUnusable",
                    format!(
                        "Secret {mesh}/{name} cannot be copied ({why}): the copies keep the credential they hold, but namespaces meshed from now on cannot pull the mesh images; fix the Secret or the tool that writes it"
                    ),
                )
            }
        };
        self.events.record(Occurrence {
            regarding: secret_in(mesh, &name),
            type_: "Warning",
            reason: reason.to_owned(),
            note,
            action: "WatchSourcePullSecret".to_owned(),
        });
    }
}

/// The wall clock in seconds since the epoch: expiry dates are wall-clock dates.
fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The Secret `sparrow-registry-key` in `namespace`, as an Event's `regarding`.
fn pull_secret_in(namespace: &str) -> ObjectReference {
    secret_in(namespace, PULL_SECRET_NAME)
}

/// The Secret `name` in `namespace`, as an Event's `regarding`.
fn secret_in(namespace: &str, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_owned()),
        kind: Some("Secret".to_owned()),
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        ..ObjectReference::default()
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
