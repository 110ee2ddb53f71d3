//! Prometheus metrics of the webhook. Each component registers its own metrics in the shared
//! `prometheus_client` registry before the server starts (the copy/sync counters of the
//! pull-secret copies register the same way).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `sparrow_admissions_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct AdmissionLabels {
    /// `injected`, `skipped`, `allowed` (not a pod, or not a CREATE), `denied`, `bad-request`,
    /// `too-large`.
    pub result: &'static str,
    /// Why a pod was skipped or denied; empty otherwise.
    pub reason: &'static str,
}

/// Admissions by result, their latency, and pull-secret errors seen by the webhook.
#[derive(Debug, Clone)]
pub struct AdmissionMetrics {
    admissions: Family<AdmissionLabels, Counter>,
    latency: Histogram,
    pull_secret_errors: Counter,
}

impl AdmissionMetrics {
    /// Creates the metrics and registers them under the `sparrow_` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            admissions: Family::default(),
            // 50µs .. ~100ms
            latency: Histogram::new(exponential_buckets(0.000_05, 2.0, 12)),
            pull_secret_errors: Counter::default(),
        };
        let sub = registry.sub_registry_with_prefix("sparrow");
        sub.register(
            "admissions",
            "Admission reviews answered, by result",
            metrics.admissions.clone(),
        );
        sub.register(
            "admission_duration_seconds",
            "Time to answer an admission review",
            metrics.latency.clone(),
        );
        sub.register(
            "admission_pull_secret_errors",
            "Admissions where the pull secret copy could not be ensured",
            metrics.pull_secret_errors.clone(),
        );
        metrics
    }

    /// Counts one answered review and its latency.
    pub fn observe(&self, result: &'static str, reason: &'static str, elapsed: Duration) {
        self.admissions
            .get_or_create(&AdmissionLabels { result, reason })
            .inc();
        self.latency.observe(elapsed.as_secs_f64());
    }

    pub(crate) fn pull_secret_error(&self) {
        self.pull_secret_errors.inc();
    }
}
