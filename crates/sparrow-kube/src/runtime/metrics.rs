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
    /// 1 while the source pull secret exists (and, one another tool keeps, can be copied),
    /// 0 otherwise.
    pub source_present: Gauge,
    /// When the source's credential expires (seconds since the epoch); 0 when unknown.
    pub credential_expiry: Gauge,
}

impl CopyMetrics {
    /// Creates the metrics and registers them under the `sparrow_` prefix, as every metric
    /// of the controller is (counters gain `_total` on the way out).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let sub = registry.sub_registry_with_prefix("sparrow");
        sub.register(
            "pull_secret_copies_created",
            "Pull-secret copies created",
            metrics.copies_created.clone(),
        );
        sub.register(
            "pull_secret_copies_updated",
            "Pull-secret copies updated",
            metrics.copies_updated.clone(),
        );
        sub.register(
            "pull_secret_sync_errors",
            "Pull-secret copies that failed to sync after every retry",
            metrics.sync_errors.clone(),
        );
        sub.register(
            "pull_secret_stale_copies",
            "Pull-secret copies whose data differs from the source",
            metrics.stale_copies.clone(),
        );
        sub.register(
            "pull_secret_source_present",
            "1 while the source pull secret exists in the mesh namespace and can be copied, 0 when it is gone or unusable",
            metrics.source_present.clone(),
        );
        sub.register(
            "credential_expiry_timestamp_seconds",
            "When the source pull secret's credential expires, seconds since the epoch; 0 when unknown",
            metrics.credential_expiry.clone(),
        );
        sub.register(
            "admission_api_calls",
            "Kubernetes API calls made while answering admissions",
            metrics.admission_api_calls.clone(),
        );
        metrics
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;

    use super::*;

    #[test]
    fn every_copy_metric_is_exposed_under_the_sparrow_prefix() {
        let mut registry = Registry::default();
        let metrics = CopyMetrics::register(&mut registry);
        metrics.copies_created.inc();
        metrics.stale_copies.set(3);
        metrics.credential_expiry.set(1_803_859_200);
        let mut text = String::new();
        encode(&mut text, &registry).expect("encode");
        for line in [
            "sparrow_pull_secret_copies_created_total 1",
            "sparrow_pull_secret_copies_updated_total 0",
            "sparrow_pull_secret_sync_errors_total 0",
            "sparrow_pull_secret_stale_copies 3",
            "sparrow_pull_secret_source_present 0",
            "sparrow_credential_expiry_timestamp_seconds 1803859200",
            "sparrow_admission_api_calls_total 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
