//! The pull secret kept fresh by a kubelet credential-provider plugin (`deploy
//! --registry-credential-provider`): while this replica holds the Lease it runs the plugin when
//! the schedule says ([`sparrow_core::credential_provider::next_refresh`], about half the
//! answer's lifetime, jittered, never later than 5 minutes before expiry, never more often than
//! every 30 s) and after a failure with backoff ([`retry_after_failure`]), keeping the last
//! good credential. Outcomes become `sparrow_credential_refresh_total{outcome}`, Events on the
//! source Secret (`CredentialRefreshed`, `CredentialRefreshFailed`) and log lines; the
//! credential never does.
//!
//! [`retry_after_failure`]: sparrow_core::credential_provider::retry_after_failure

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::ObjectReference;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use sparrow_core::RegistryServer;
use sparrow_core::credential_provider::{
    CredentialProviderConfig, next_refresh, retry_after_failure,
};
use sparrow_core::expiry::rfc3339;
use sparrow_core::names::PULL_SECRET_NAME;
use sparrow_kube::runtime::credential_plugin::{PluginRefresher, Recorded};
use tokio::sync::watch;

use crate::events::{EventRecorder, Occurrence};

/// A plugin's file may not be larger than this (a kubelet config is a few lines).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// `outcome="success"` or `outcome="failure"`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// The plugin's counters on `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct PluginMetrics {
    refreshes: Family<Outcome, Counter>,
}

impl PluginMetrics {
    /// Registers `sparrow_credential_refresh_total{outcome}`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.sub_registry_with_prefix("sparrow").register(
            "credential_refresh",
            "Runs of the credential-provider plugin by the Lease holder, by outcome",
            metrics.refreshes.clone(),
        );
        metrics
    }

    fn count(&self, outcome: &'static str) {
        self.refreshes.get_or_create(&Outcome { outcome }).inc();
    }
}

/// The refresher the flags describe: the config read and checked as deploy checked it, the
/// provider it names picked out of it.
pub fn refresher(
    client: kube::Client,
    mesh: &str,
    config_path: &Path,
    bin_dir: &Path,
    provider: &str,
    registry: &str,
    images: Vec<String>,
) -> anyhow::Result<PluginRefresher> {
    let shown = config_path.display();
    let size = std::fs::metadata(config_path)
        .with_context(|| format!("cannot read the credential-provider config {shown}"))?
        .len();
    anyhow::ensure!(
        size <= MAX_CONFIG_BYTES,
        "the credential-provider config {shown} holds {size} bytes; a config is at most 1 MiB"
    );
    let text = std::fs::read_to_string(config_path)
        .with_context(|| format!("cannot read the credential-provider config {shown}"))?;
    let config = CredentialProviderConfig::parse(&text)
        .map_err(|e| anyhow::anyhow!("the credential-provider config {shown}: {e}"))?;
    let provider = config
        .providers
        .into_iter()
        .find(|p| p.name == provider)
        .with_context(|| {
            format!("the credential-provider config {shown} has no provider {provider:?}")
        })?;
    let server =
        RegistryServer::parse(registry).map_err(|e| anyhow::anyhow!("--registry-server: {e}"))?;
    Ok(PluginRefresher::new(
        client,
        mesh,
        server,
        images,
        provider,
        bin_dir.to_owned(),
    ))
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A fraction in [0, 1) for the schedule's jitter (0.5, no jitter, if the system has no
/// randomness to give).
fn jitter() -> f64 {
    getrandom::u32().map_or(0.5, |r| f64::from(r) / (f64::from(u32::MAX) + 1.0))
}

/// Runs the plugin on schedule while this replica leads, for as long as the controller runs.
pub async fn keep_fresh(
    refresher: PluginRefresher,
    mut leading: watch::Receiver<bool>,
    events: EventRecorder,
    metrics: PluginMetrics,
    mesh: String,
) {
    let name = refresher.provider().name.clone();
    let report = Report {
        events,
        metrics,
        mesh,
        plugin: name,
    };
    let mut failures = 0u32;
    let mut last_good_expires = None;
    let mut next: Option<i64> = None;
    loop {
        let gone = leading.wait_for(|l| *l).await.is_err();
        if gone {
            return std::future::pending().await;
        }
        // A new leader keeps the schedule the source records, unless it holds nothing yet.
        if next.is_none() {
            next = match refresher.recorded().await {
                Ok(Recorded {
                    present: true,
                    next_refresh,
                    expires,
                }) => {
                    last_good_expires = expires;
                    next_refresh
                }
                Ok(_) => None,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the source's schedule; running the plugin now");
                    None
                }
            };
        }
        let wait = next.map_or(0, |at| (at - unix_now()).max(0));
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(wait.unsigned_abs())) => {}
            gone = async { leading.wait_for(|l| !*l).await.is_err() } => {
                if gone {
                    return std::future::pending().await;
                }
                next = None;
                continue;
            }
        }
        let now = unix_now();
        let jitter = jitter();
        let started = std::time::Instant::now();
        match refresher
            .refresh(now, |lifetime| next_refresh(now, lifetime, jitter, now))
            .await
        {
            Ok(obtained) => {
                failures = 0;
                last_good_expires = obtained.expires;
                let at = next_refresh(now, obtained.lifetime, jitter, now);
                next = Some(at);
                report.refreshed(obtained.expires, at, started.elapsed());
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                let at = retry_after_failure(failures, last_good_expires, now);
                next = Some(at);
                let why = error.to_string();
                if let Err(error) = refresher.record_failure(now, &why, at).await {
                    tracing::warn!(%error, "cannot note the failed plugin run on the source");
                }
                report.failed(&why, last_good_expires, at, failures);
            }
        }
    }
}

struct Report {
    events: EventRecorder,
    metrics: PluginMetrics,
    mesh: String,
    plugin: String,
}

impl Report {
    fn source(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Secret".to_owned()),
            name: Some(PULL_SECRET_NAME.to_owned()),
            namespace: Some(self.mesh.clone()),
            ..ObjectReference::default()
        }
    }

    fn refreshed(&self, expires: Option<i64>, next: i64, took: Duration) {
        self.metrics.count("success");
        let expires = expires.map_or_else(|| "an unknown time".to_owned(), rfc3339);
        let next = rfc3339(next);
        let took_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        tracing::info!(plugin = %self.plugin, %expires, %next, took_ms, "the credential-provider plugin refreshed the registry credential");
        self.events.record(Occurrence {
            regarding: self.source(),
            type_: "Normal",
            reason: "CredentialRefreshed".to_owned(),
            note: format!(
                "the credential-provider plugin {} refreshed the registry credential in Secret {}/{PULL_SECRET_NAME}; it expires {expires}, next run {next}",
                self.plugin, self.mesh
            ),
            action: "RunCredentialProvider".to_owned(),
        });
    }

    fn failed(&self, why: &str, last_good_expires: Option<i64>, next: i64, failures: u32) {
        self.metrics.count("failure");
        let kept = match last_good_expires {
            Some(at) => format!(
                "the last good credential stays until it expires {}",
                rfc3339(at)
            ),
            None => "there is no good credential yet".to_owned(),
        };
        let next = rfc3339(next);
        tracing::error!(plugin = %self.plugin, error = %why, failures, %next, "the credential-provider plugin failed");
        self.events.record(Occurrence {
            regarding: self.source(),
            type_: "Warning",
            reason: "CredentialRefreshFailed".to_owned(),
            note: format!(
                "the credential-provider plugin {} failed: {why}; {kept}; next attempt {next}",
                self.plugin
            ),
            action: "RunCredentialProvider".to_owned(),
        });
    }
}
