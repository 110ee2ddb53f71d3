//! The webhook certificates the controller keeps itself (without `--tls-cert`): every replica
//! serves the serving certificate its watch sees ([`serve_from_secret`]) and is ready only when
//! the webhook's `caBundle` verifies it ([`verified_by_bundle`]); the replica holding the Lease
//! runs the keeper ([`keep_while_leading`]), whose outcomes become Events and metrics here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::ObjectReference;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sparrow_core::names::TLS_SECRET_NAME;
use sparrow_core::webhook_pki::{self, Step};
use sparrow_kube::error::ClusterError;
use sparrow_kube::runtime::webhook_certs::{CertKeeper, CertReport, CertWatch, WebhookBundle};
use tokio::sync::watch;

use crate::events::{EventRecorder, Occurrence};
use crate::tls::SecretCert;

/// The certificate metrics on `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct CertMetrics {
    /// When the served certificate expires (seconds since the epoch).
    expiry: Gauge,
    /// Certificate writes (CA, serving certificate, caBundle) by the keeper.
    writes: Counter,
    /// Keeper passes that failed.
    failures: Counter,
}

impl CertMetrics {
    /// Registers the metrics under `sparrow_webhook_cert_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let sub = registry.sub_registry_with_prefix("sparrow_webhook_cert");
        sub.register(
            "expiry_timestamp_seconds",
            "When the serving certificate this replica serves expires",
            metrics.expiry.clone(),
        );
        sub.register(
            "writes",
            "CA, serving-certificate and caBundle writes by the Lease holder",
            metrics.writes.clone(),
        );
        sub.register(
            "renewal_failures",
            "Passes of the certificate keeper that failed (retried with backoff)",
            metrics.failures.clone(),
        );
        metrics
    }
}

/// Serves what the watch sees of the serving certificate's Secret, for as long as it runs.
pub async fn serve_from_secret(
    mut watch: CertWatch,
    served: Arc<SecretCert>,
    metrics: CertMetrics,
) {
    loop {
        let leaf = watch.leaf.borrow_and_update().clone();
        if let Some(leaf) = leaf {
            match served.set(&leaf.cert_pem, &leaf.key_pem) {
                Ok(()) => {
                    let expires = webhook_pki::facts(&leaf.cert_pem).ok().map(|f| f.not_after);
                    if let Some(expires) = expires {
                        metrics.expiry.set(expires.unix_timestamp());
                    }
                    tracing::info!(expires = ?expires, "serving the certificate of Secret {TLS_SECRET_NAME}");
                }
                Err(error) => {
                    tracing::warn!(%error, "the serving certificate in Secret {TLS_SECRET_NAME} is not usable; keeping the previous one");
                }
            }
        }
        if watch.leaf.changed().await.is_err() {
            return;
        }
    }
}

/// Whether the certificate served now is one the webhook's `caBundle` verifies. No webhook
/// configuration, or one whose caBundle the keeper has not filled in yet (a deploy moments
/// ago), does not hold readiness back: nobody can call the webhook through it, and the keeper
/// writes it within a second of seeing it.
pub fn verified_by_bundle(watch: &CertWatch, served: &SecretCert) -> bool {
    let Some(pem) = served.served_pem() else {
        return false;
    };
    match &*watch.bundle.borrow() {
        WebhookBundle::Unknown => false,
        WebhookBundle::NoConfiguration => true,
        WebhookBundle::Bundle(bundle) if bundle.is_empty() => true,
        WebhookBundle::Bundle(bundle) => {
            webhook_pki::bundle_verifies(bundle, &pem, time::OffsetDateTime::now_utc())
        }
    }
}

/// Runs the keeper each time this replica leads, until the process stops.
pub async fn keep_while_leading(
    keeper: CertKeeper,
    watch: CertWatch,
    mut leading: watch::Receiver<bool>,
    report: CertEvents,
) {
    while leading.wait_for(|l| *l).await.is_ok() {
        keeper.run(watch.clone(), leading.clone(), &report).await;
    }
}

/// The keeper's outcomes as Events on the serving certificate's Secret, and metrics.
pub struct CertEvents {
    mesh: String,
    events: EventRecorder,
    metrics: CertMetrics,
    failures_in_a_row: AtomicU64,
}

impl CertEvents {
    /// Reports for the mesh in `mesh`.
    pub fn new(mesh: &str, events: EventRecorder, metrics: CertMetrics) -> Self {
        Self {
            mesh: mesh.to_owned(),
            events,
            metrics,
            failures_in_a_row: AtomicU64::new(0),
        }
    }

    fn regarding(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Secret".to_owned()),
            name: Some(TLS_SECRET_NAME.to_owned()),
            namespace: Some(self.mesh.clone()),
            ..ObjectReference::default()
        }
    }
}

impl CertReport for CertEvents {
    fn wrote(&self, step: &Step) {
        self.metrics.writes.inc();
        self.failures_in_a_row.store(0, Ordering::Relaxed);
        let reason = match step {
            Step::WriteCa(_) => "WebhookCAWritten",
            Step::WriteLeaf(_) => "ServingCertificateIssued",
            Step::WriteBundle(_) => "CABundleSet",
            Step::Wait { .. } => return,
        };
        self.events.record(Occurrence {
            regarding: self.regarding(),
            type_: "Normal",
            reason: reason.to_owned(),
            action: "KeepWebhookCertificates".to_owned(),
            note: format!("{} (the webhook's certificates)", step.describe()),
        });
    }

    fn failed(&self, error: &ClusterError) {
        self.metrics.failures.inc();
        // One Event per run of failures, not one per retry.
        if self.failures_in_a_row.fetch_add(1, Ordering::Relaxed) == 0 {
            self.events.record(Occurrence {
                regarding: self.regarding(),
                type_: "Warning",
                reason: "WebhookCertificateRenewalFailed".to_owned(),
                action: "KeepWebhookCertificates".to_owned(),
                note: format!(
                    "keeping the webhook's certificates failed: {error}; retrying with backoff (the certificate served now stays until it expires)"
                ),
            });
        }
    }
}
