//! The leader's loop: repair what the index schedules (a source change, a stale copy seen by
//! the watch, the periodic resync), restore deleted copies where pods carry the sidecar, and
//! at every resync (and when it starts leading) make the copies owed where injected pods run
//! without one (after `remove` and `deploy`). It writes only into namespaces meshed now.

use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use sparrow_core::names::PULL_SECRET_NAME;
use tokio::sync::watch;

use super::PullSecretCopier;
use super::index::Work;
use crate::secrets::{is_ours, namespaces_with_injected_pods, namespaces_with_sidecar};
use crate::timed;

/// What one sync did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SyncReport {
    /// Copies brought up to date.
    pub written: usize,
    /// Copies that still failed after every attempt.
    pub failed: usize,
}

impl PullSecretCopier {
    /// Brings every stale copy up to date: bounded concurrency, retries with backoff.
    /// Returns how many copies were written and how many failed.
    pub async fn sync_all(&self) -> SyncReport {
        let stale = self.meshed_only(self.index().stale());
        let report = self.repair(stale, || true).await;
        self.refresh_stale_gauge();
        report
    }

    /// The leader's loop: does the index's work as it is scheduled and resyncs every resync
    /// interval. Returns when `leading` turns false.
    pub async fn run_sync(&self, mut leading: watch::Receiver<bool>) {
        self.source_synced().await;
        self.synced().await;
        let mut resync = tokio::time::interval(self.config.resync_interval);
        loop {
            if !*leading.borrow() {
                return;
            }
            tokio::select! {
                _ = resync.tick() => {
                    self.update(|index| index.schedule_resync());
                    self.make_owed_copies(&leading).await;
                }
                () = self.state.work.notified() => {}
                changed = leading.changed() => {
                    if changed.is_err() {
                        return; // the election is gone: nobody can tell us we lead
                    }
                    continue;
                }
            }
            let work = self.update(|index| index.take_work());
            self.do_work(work, &leading).await;
        }
    }

    /// `namespaces` less those not meshed now: the leader never writes a copy into a
    /// namespace the webhook would not inject (labelled disabled, or not opted in).
    fn meshed_only(&self, namespaces: Vec<String>) -> Vec<String> {
        namespaces
            .into_iter()
            .filter(|ns| {
                let meshed = self.meshed.meshed_now(ns) == Some(true);
                if !meshed {
                    tracing::debug!(namespace = %ns, "not meshed now: its copy is left as it is");
                }
                meshed
            })
            .collect()
    }

    /// Makes the copies owed where injected pods run in a meshed namespace that holds no
    /// Secret of the copies' name (after `remove` and `deploy`, or a copy deleted while no
    /// replica watched). One paged list of pods' metadata per resync.
    async fn make_owed_copies(&self, leading: &watch::Receiver<bool>) {
        if !self.has_source() {
            return;
        }
        let injected =
            match namespaces_with_injected_pods(&self.client, self.config.api_timeout).await {
                Ok(namespaces) => namespaces,
                Err(error) => {
                    tracing::warn!(%error, "listing pods to find namespaces owed a copy");
                    return;
                }
            };
        let owed = self.meshed_only(self.index().without_copy(injected));
        if owed.is_empty() {
            return;
        }
        let report = self.repair(owed, || *leading.borrow()).await;
        tracing::info!(
            written = report.written,
            failed = report.failed,
            "made the pull-secret copies owed to namespaces with injected pods"
        );
    }

    async fn do_work(&self, work: Work, leading: &watch::Receiver<bool>) {
        if work.is_empty() {
            return;
        }
        let (repair, restore) = (
            self.meshed_only(work.repair),
            self.meshed_only(work.restore),
        );
        // A deposed leader must not keep writing next to the new one.
        let report = self.repair(repair, || *leading.borrow()).await;
        if report.written + report.failed > 0 {
            tracing::info!(
                written = report.written,
                failed = report.failed,
                "synced pull-secret copies"
            );
        }
        futures::stream::iter(restore)
            .for_each_concurrent(self.config.concurrency.max(1), |ns| async move {
                self.restore_if_needed(&ns).await;
            })
            .await;
        self.refresh_stale_gauge();
    }

    /// Writes `namespaces` while `leading()`, with bounded concurrency.
    async fn repair(&self, namespaces: Vec<String>, leading: impl Fn() -> bool) -> SyncReport {
        let leading = &leading;
        let results: Vec<bool> = futures::stream::iter(namespaces)
            .filter(|_| std::future::ready(leading()))
            .map(|ns| async move { self.write_with_retries(&ns).await })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        let written = results.iter().filter(|ok| **ok).count();
        SyncReport {
            written,
            failed: results.len() - written,
        }
    }

    /// Ensures the copy in `namespace`, up to `attempts` times, backing off from 100 ms.
    async fn write_with_retries(&self, namespace: &str) -> bool {
        let attempts = self.config.attempts.max(1);
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=attempts {
            match self.ensure(namespace, false).await {
                Ok(_) => return true,
                Err(error) => {
                    tracing::warn!(%namespace, %error, attempt, "syncing pull-secret copy");
                    if attempt < attempts {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
        self.metrics.sync_errors.inc();
        false
    }

    /// Recreates the copy in `namespace` if pods there still carry the sidecar and the source
    /// still exists. The source is read afresh: `sparrowctl remove` deletes the source first,
    /// then the copies, and a controller still shutting down must not bring them back.
    async fn restore_if_needed(&self, namespace: &str) {
        match self.source_still_exists().await {
            Ok(true) => {}
            Ok(false) => {
                self.update(|index| index.set_source(None));
                return;
            }
            Err(error) => {
                tracing::warn!(%namespace, %error, "not restoring the copy: cannot read the source");
                return;
            }
        }
        let listed =
            namespaces_with_sidecar(&self.client, Some(namespace), self.config.api_timeout).await;
        let carries_sidecar = match listed {
            Ok(namespaces) => !namespaces.is_empty(),
            Err(error) => {
                tracing::warn!(%namespace, %error, "checking for pods that carry the sidecar");
                false
            }
        };
        if carries_sidecar && !self.write_with_retries(namespace).await {
            tracing::warn!(%namespace, "could not restore the deleted pull-secret copy");
        }
    }

    async fn source_still_exists(&self) -> Result<bool, crate::ClusterError> {
        let sources: Api<Secret> =
            Api::namespaced(self.client.clone(), &self.config.mesh_namespace);
        let found = timed(
            "reading the source pull secret",
            self.config.api_timeout,
            sources.get_opt(PULL_SECRET_NAME),
        )
        .await?;
        Ok(found.is_some_and(|secret| is_ours(&secret)))
    }
}
