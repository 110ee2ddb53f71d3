//! Counters of the pull-secret copies, registered in the controller's Prometheus registry.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Copy and sync counters (cheap to clone: every field is shared).
#[derive(Debug, Clone, Default)]
pub struct CopyMetrics {
    /// Copies created.
    pub copies_created: Counter,
    /// Copies updated (rotation, repair).
    pub copies_updated: Counter,
    /// Copies that failed to sync after every retry.
    pub sync_errors: Counter,
    /// Copies known to be stale right now.
    pub stale_copies: Gauge,
    /// API calls made while answering admissions (zero when copies are current).
    pub admission_api_calls: Counter,
}

impl CopyMetrics {
    /// Registers every metric under `sparrow_`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sparrow_pull_secret_copies_created",
            "Pull-secret copies created",
            self.copies_created.clone(),
        );
        registry.register(
            "sparrow_pull_secret_copies_updated",
            "Pull-secret copies updated",
            self.copies_updated.clone(),
        );
        registry.register(
            "sparrow_pull_secret_sync_errors",
            "Pull-secret copies that failed to sync after every retry",
            self.sync_errors.clone(),
        );
        registry.register(
            "sparrow_pull_secret_stale_copies",
            "Pull-secret copies whose source-hash differs from the source",
            self.stale_copies.clone(),
        );
        registry.register(
            "sparrow_admission_api_calls",
            "Kubernetes API calls made while answering admissions",
            self.admission_api_calls.clone(),
        );
    }
}
