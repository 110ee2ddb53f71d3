//! Pull-secret copies: made before the first pull, kept current on rotation, never touching a
//! Secret we do not own.
//!
//! Two watches feed an in-memory index, so the admission path usually makes no API call:
//! - the source `sparrow-registry-key` in the mesh namespace (with data: it is what we copy);
//! - every Secret named `sparrow-registry-key` (fieldSelector, metadata only): which copies
//!   exist, whether they are ours (`usage` label) and current (`sparrow-mesh.io/source-hash`).
//!
//! RBAC lets the controller read, list and watch only Secrets of that name, so it cannot see
//! any other Secret.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt as _, StreamExt as _};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Api, ResourceExt as _};
use sparrow_core::manifests::{DOCKER_CONFIG_JSON_TYPE, pull_secret_labels};
use sparrow_core::names::*;
use tokio::sync::Notify;

use crate::error::{ClusterError, describe_watch, is_already_exists, is_not_found};
use crate::metrics::CopyMetrics;
use crate::secrets::{data_hash, is_injected, is_ours, labels_are_ours};
use crate::{timed, within};

/// Settings of the copier.
#[derive(Debug, Clone)]
pub struct CopyConfig {
    /// Where the source secret lives.
    pub mesh_namespace: String,
    /// Copies written at once during a sync.
    pub concurrency: usize,
    /// A full resync this often, even without a change.
    pub resync_interval: Duration,
    /// Deadline of each API call.
    pub api_timeout: Duration,
    /// Attempts per copy during a sync before it counts as an error (backoff doubles from 100 ms).
    pub attempts: u32,
}

impl CopyConfig {
    /// Defaults for `mesh_namespace`.
    pub fn new(mesh_namespace: &str) -> Self {
        Self {
            mesh_namespace: mesh_namespace.to_owned(),
            concurrency: 32,
            resync_interval: Duration::from_secs(300),
            api_timeout: Duration::from_secs(5),
            attempts: 5,
        }
    }
}

/// What `ensure_copy` found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnsureOutcome {
    /// The copy was current: no API call.
    Current,
    /// A copy was created.
    Created,
    /// A stale copy was updated.
    Updated,
    /// There is no source secret (deployed without credentials): nothing to copy.
    NoSource,
    /// A Secret of that name exists and is not ours: left alone.
    Foreign,
    /// The pod is in the mesh namespace, where the source itself is.
    SourceNamespace,
}

/// The source secret, as copies carry it. (No Debug: it holds the credentials.)
#[derive(Clone, PartialEq)]
struct Source {
    data: BTreeMap<String, ByteString>,
    hash: String,
}

/// What the index knows of the Secret named `sparrow-registry-key` in one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CopyEntry {
    ours: bool,
    hash: Option<String>,
}

type Flight = Shared<BoxFuture<'static, Result<EnsureOutcome, Arc<ClusterError>>>>;

struct State {
    source: RwLock<Option<Arc<Source>>>,
    copies: RwLock<HashMap<String, CopyEntry>>,
    in_flight: Mutex<HashMap<(String, String), Flight>>,
    source_changed: Notify,
    copy_deleted: Mutex<Vec<String>>,
    copy_deleted_notify: Notify,
    source_synced: tokio::sync::watch::Sender<bool>,
    copies_synced: tokio::sync::watch::Sender<bool>,
}

/// Keeps copies of the registry pull secret in the namespaces of meshed pods.
#[derive(Clone)]
pub struct PullSecretCopier {
    client: kube::Client,
    config: Arc<CopyConfig>,
    state: Arc<State>,
    metrics: CopyMetrics,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PullSecretCopier {
    /// A copier; call [`PullSecretCopier::run_watches`] to feed it and
    /// [`PullSecretCopier::run_sync`] (on the leader) to keep copies current.
    pub fn new(client: kube::Client, config: CopyConfig, metrics: CopyMetrics) -> Self {
        let (source_synced, _) = tokio::sync::watch::channel(false);
        let (copies_synced, _) = tokio::sync::watch::channel(false);
        Self {
            client,
            config: Arc::new(config),
            state: Arc::new(State {
                source: RwLock::new(None),
                copies: RwLock::new(HashMap::new()),
                in_flight: Mutex::new(HashMap::new()),
                source_changed: Notify::new(),
                copy_deleted: Mutex::new(Vec::new()),
                copy_deleted_notify: Notify::new(),
                source_synced,
                copies_synced,
            }),
            metrics,
        }
    }

    /// The metrics this copier counts into.
    pub fn metrics(&self) -> &CopyMetrics {
        &self.metrics
    }

    /// Waits until the source secret has been read once (present or not).
    pub async fn source_synced(&self) {
        let mut synced = self.state.source_synced.subscribe();
        let _ = synced.wait_for(|s| *s).await;
    }

    /// True while the source secret exists (as last seen).
    pub fn has_source(&self) -> bool {
        read(&self.state.source).is_some()
    }

    /// The source's data hash as last seen.
    pub fn source_hash(&self) -> Option<String> {
        read(&self.state.source).as_ref().map(|s| s.hash.clone())
    }

    /// Waits until both watches have listed once: from then on a current copy costs no API call.
    pub async fn synced(&self) {
        self.source_synced().await;
        let mut synced = self.state.copies_synced.subscribe();
        let _ = synced.wait_for(|s| *s).await;
    }

    /// True once both watches have listed once.
    pub fn is_synced(&self) -> bool {
        *self.state.source_synced.borrow() && *self.state.copies_synced.borrow()
    }

    /// Makes sure `namespace` holds a current copy of the source. A current copy costs no API
    /// call; concurrent calls for one namespace share one write.
    pub async fn ensure_copy(&self, namespace: &str) -> Result<EnsureOutcome, Arc<ClusterError>> {
        match self.cached(namespace) {
            Ok(outcome) => Ok(outcome),
            Err(source) => self.flight(namespace, source, true).await,
        }
    }

    /// What the caches already answer for `namespace` without an API call; `None` when a
    /// write is needed.
    pub fn cached_outcome(&self, namespace: &str) -> Option<EnsureOutcome> {
        self.cached(namespace).ok()
    }

    fn cached(&self, namespace: &str) -> Result<EnsureOutcome, Arc<Source>> {
        if namespace == self.config.mesh_namespace {
            return Ok(EnsureOutcome::SourceNamespace);
        }
        let Some(source) = read(&self.state.source).clone() else {
            return Ok(EnsureOutcome::NoSource);
        };
        match read(&self.state.copies).get(namespace) {
            Some(entry) if !entry.ours => Ok(EnsureOutcome::Foreign),
            Some(entry) if entry.hash.as_deref() == Some(source.hash.as_str()) => {
                Ok(EnsureOutcome::Current)
            }
            _ => Err(source),
        }
    }

    /// The one write in progress for `namespace` and this source version, shared by every
    /// admission and the sync. It runs in its own task, so a caller that gives up (an
    /// admission's deadline) neither cancels nor stalls it.
    fn flight(&self, namespace: &str, source: Arc<Source>, admission: bool) -> Flight {
        let key = (namespace.to_owned(), source.hash.clone());
        // The lock is held until the flight is registered, so the task's removal comes after.
        let mut in_flight = lock(&self.state.in_flight);
        if let Some(flight) = in_flight.get(&key) {
            return flight.clone();
        }
        let this = self.clone();
        let task_key = key.clone();
        let task = tokio::spawn(async move {
            let result = this
                .write_copy(&task_key.0, &source, admission)
                .await
                .map_err(Arc::new);
            lock(&this.state.in_flight).remove(&task_key);
            result
        });
        let flight = async move {
            task.await.unwrap_or_else(|e| {
                Err(Arc::new(ClusterError::Internal(format!(
                    "the copy task failed: {e}"
                ))))
            })
        }
        .boxed()
        .shared();
        in_flight.insert(key, flight.clone());
        flight
    }

    fn copy_of(&self, namespace: &str, source: &Source) -> Secret {
        let mut secret = sparrow_core::manifests::pull_secret(namespace, Vec::new());
        secret.data = Some(source.data.clone());
        secret.type_ = Some(DOCKER_CONFIG_JSON_TYPE.to_owned());
        secret.metadata.labels = Some(pull_secret_labels());
        secret.metadata.annotations = Some(BTreeMap::from([
            (
                SOURCE_ANNOTATION.to_owned(),
                format!("{}/{PULL_SECRET_NAME}", self.config.mesh_namespace),
            ),
            (SOURCE_HASH_ANNOTATION.to_owned(), source.hash.clone()),
        ]));
        secret
    }

    fn record(&self, namespace: &str, entry: CopyEntry) {
        write(&self.state.copies).insert(namespace.to_owned(), entry);
    }

    /// Creates or updates the copy in `namespace`. `admission` counts the API calls made on
    /// the admission path.
    async fn write_copy(
        &self,
        namespace: &str,
        source: &Source,
        admission: bool,
    ) -> Result<EnsureOutcome, ClusterError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let copy = self.copy_of(namespace, source);
        let timeout = self.config.api_timeout;
        let count = |n: u64| {
            if admission {
                self.metrics.admission_api_calls.inc_by(n);
            }
        };
        let known = read(&self.state.copies).get(namespace).cloned();
        if known.as_ref().is_none_or(|e| !e.ours) {
            count(1);
            let action = format!("creating Secret {namespace}/{PULL_SECRET_NAME}");
            match within(&action, timeout, api.create(&PostParams::default(), &copy)).await? {
                Ok(_) => {
                    self.metrics.copies_created.inc();
                    self.record(
                        namespace,
                        CopyEntry {
                            ours: true,
                            hash: Some(source.hash.clone()),
                        },
                    );
                    tracing::info!(%namespace, "created pull-secret copy");
                    return Ok(EnsureOutcome::Created);
                }
                Err(error) if is_already_exists(&error) => {}
                Err(error) => return Err(ClusterError::api(action, error)),
            }
            // It exists (created concurrently by another replica, or someone else's): look.
            count(1);
            let existing = timed(
                &format!("reading Secret {namespace}/{PULL_SECRET_NAME}"),
                timeout,
                api.get_opt(PULL_SECRET_NAME),
            )
            .await?;
            match existing {
                Some(secret) if !is_ours(&secret) => {
                    self.record(
                        namespace,
                        CopyEntry {
                            ours: false,
                            hash: None,
                        },
                    );
                    return Ok(EnsureOutcome::Foreign);
                }
                Some(secret)
                    if secret.annotations().get(SOURCE_HASH_ANNOTATION) == Some(&source.hash) =>
                {
                    self.record(
                        namespace,
                        CopyEntry {
                            ours: true,
                            hash: Some(source.hash.clone()),
                        },
                    );
                    return Ok(EnsureOutcome::Current);
                }
                // Ours and stale, or deleted meanwhile: update (or create) below.
                _ => {}
            }
        }
        count(1);
        let action = format!("updating Secret {namespace}/{PULL_SECRET_NAME}");
        // One write, guarded: the `test` fails (422) if the Secret lost our label since the index
        // saw it, so a Secret someone else now owns is never overwritten. `data` and the
        // annotations are replaced whole, so keys the source dropped go too.
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "test", "path": "/metadata/labels/usage", "value": USAGE_LABEL_VALUE},
            {"op": "add", "path": "/metadata/annotations", "value": copy.metadata.annotations},
            {"op": "add", "path": "/data", "value": copy.data},
        ]))
        .map_err(|e| ClusterError::Internal(format!("building the copy patch: {e}")))?;
        let (params, patch) = (PatchParams::default(), Patch::Json::<()>(patch));
        let patched = api.patch(PULL_SECRET_NAME, &params, &patch);
        match within(&action, timeout, patched).await? {
            Ok(_) => {
                self.metrics.copies_updated.inc();
                self.record(
                    namespace,
                    CopyEntry {
                        ours: true,
                        hash: Some(source.hash.clone()),
                    },
                );
                tracing::info!(%namespace, "updated pull-secret copy");
                Ok(EnsureOutcome::Updated)
            }
            Err(kube::Error::Api(status)) if status.code == 422 => {
                // The guard failed: see whose it is now.
                let existing = timed(&action, timeout, api.get_opt(PULL_SECRET_NAME)).await?;
                match existing {
                    Some(secret) if is_ours(&secret) => {
                        Err(ClusterError::api(action, kube::Error::Api(status)))
                    }
                    Some(_) => {
                        self.record(
                            namespace,
                            CopyEntry {
                                ours: false,
                                hash: None,
                            },
                        );
                        Ok(EnsureOutcome::Foreign)
                    }
                    None => {
                        write(&self.state.copies).remove(namespace);
                        Box::pin(self.write_copy(namespace, source, admission)).await
                    }
                }
            }
            Err(error) if is_not_found(&error) => {
                write(&self.state.copies).remove(namespace);
                Box::pin(self.write_copy(namespace, source, admission)).await
            }
            Err(error) => Err(ClusterError::api(action, error)),
        }
    }

    /// Runs both watches until the process ends; watches survive API restarts and 410 Gone
    /// (the watcher relists with backoff).
    pub async fn run_watches(&self) {
        tokio::join!(self.watch_source(), self.watch_copies());
    }

    async fn watch_source(&self) {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.config.mesh_namespace);
        let config =
            watcher::Config::default().fields(&format!("metadata.name={PULL_SECRET_NAME}"));
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        let mut seen_during_init = false;
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Apply(secret)) | Ok(Event::InitApply(secret)) => {
                    seen_during_init = true;
                    self.set_source(is_ours(&secret).then(|| Source {
                        hash: data_hash(&secret),
                        data: secret.data.unwrap_or_default(),
                    }));
                }
                Ok(Event::Delete(_)) => self.set_source(None),
                Ok(Event::Init) => seen_during_init = false,
                Ok(Event::InitDone) => {
                    if !seen_during_init {
                        self.set_source(None);
                    }
                    self.state.source_synced.send_replace(true);
                }
                Err(error) => {
                    tracing::warn!(error = %describe_watch(&error), "watching the source pull secret")
                }
            }
        }
    }

    fn set_source(&self, source: Option<Source>) {
        let changed = {
            let mut current = write(&self.state.source);
            let changed = current.as_deref() != source.as_ref();
            if changed {
                *current = source.map(Arc::new);
            }
            changed
        };
        if changed {
            tracing::info!(
                present = read(&self.state.source).is_some(),
                "source pull secret changed"
            );
            self.state.source_changed.notify_one();
        }
    }

    async fn watch_copies(&self) {
        // Metadata only: the index needs labels and annotations, never another copy's data.
        let api: Api<PartialObjectMeta<Secret>> = Api::all(self.client.clone());
        let config =
            watcher::Config::default().fields(&format!("metadata.name={PULL_SECRET_NAME}"));
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        let mut buffer: Option<HashMap<String, CopyEntry>> = None;
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => buffer = Some(HashMap::new()),
                Ok(Event::InitApply(meta)) => {
                    if let (Some(buffer), Some((ns, entry))) =
                        (buffer.as_mut(), self.entry_of(&meta))
                    {
                        buffer.insert(ns, entry);
                    }
                }
                Ok(Event::InitDone) => {
                    if let Some(fresh) = buffer.take() {
                        // Copies deleted while the watch was down send no Delete event.
                        let vanished: Vec<String> = {
                            let mut copies = write(&self.state.copies);
                            let vanished = copies
                                .iter()
                                .filter(|(ns, e)| e.ours && !fresh.contains_key(*ns))
                                .map(|(ns, _)| ns.clone())
                                .collect();
                            *copies = fresh;
                            vanished
                        };
                        if !vanished.is_empty() {
                            lock(&self.state.copy_deleted).extend(vanished);
                            self.state.copy_deleted_notify.notify_one();
                        }
                        self.refresh_stale_gauge();
                    }
                    self.state.copies_synced.send_replace(true);
                }
                Ok(Event::Apply(meta)) => {
                    if let Some((ns, entry)) = self.entry_of(&meta) {
                        self.record(&ns, entry);
                    }
                }
                Ok(Event::Delete(meta)) => {
                    if let Some((ns, entry)) = self.entry_of(&meta) {
                        write(&self.state.copies).remove(&ns);
                        if entry.ours {
                            lock(&self.state.copy_deleted).push(ns);
                            self.state.copy_deleted_notify.notify_one();
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %describe_watch(&error), "watching pull-secret copies")
                }
            }
        }
    }

    fn entry_of(&self, meta: &PartialObjectMeta<Secret>) -> Option<(String, CopyEntry)> {
        let ns = meta.metadata.namespace.clone()?;
        if ns == self.config.mesh_namespace {
            return None;
        }
        let entry = CopyEntry {
            ours: labels_are_ours(meta.metadata.labels.as_ref()),
            hash: meta
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(SOURCE_HASH_ANNOTATION).cloned()),
        };
        Some((ns, entry))
    }

    fn refresh_stale_gauge(&self) {
        let hash = read(&self.state.source).as_ref().map(|s| s.hash.clone());
        let stale = match hash {
            Some(hash) => read(&self.state.copies)
                .values()
                .filter(|e| e.ours && e.hash.as_ref() != Some(&hash))
                .count(),
            None => 0,
        };
        self.metrics
            .stale_copies
            .set(i64::try_from(stale).unwrap_or(i64::MAX));
    }

    /// Brings every stale copy up to date: bounded concurrency, retries with backoff.
    /// Returns how many copies were written and how many failed.
    pub async fn sync_all(&self) -> SyncReport {
        self.sync_while(|| true).await
    }

    /// [`PullSecretCopier::sync_all`], stopping early once `leading()` turns false: a deposed
    /// leader must not keep writing next to the new one.
    async fn sync_while(&self, leading: impl Fn() -> bool) -> SyncReport {
        let Some(source) = read(&self.state.source).clone() else {
            return SyncReport::default();
        };
        let stale: Vec<String> = read(&self.state.copies)
            .iter()
            .filter(|(_, e)| e.ours && e.hash.as_deref() != Some(source.hash.as_str()))
            .map(|(ns, _)| ns.clone())
            .collect();
        let leading = &leading;
        let results: Vec<bool> = futures::stream::iter(stale)
            .filter(|_| std::future::ready(leading()))
            .map(|ns| {
                let source = source.clone();
                async move { self.write_with_retries(&ns, &source).await }
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        self.refresh_stale_gauge();
        let written = results.iter().filter(|ok| **ok).count();
        SyncReport {
            written,
            failed: results.len() - written,
        }
    }

    async fn write_with_retries(&self, namespace: &str, source: &Arc<Source>) -> bool {
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=self.config.attempts.max(1) {
            // Another path (admission) may have brought it up to date meanwhile.
            if read(&self.state.copies)
                .get(namespace)
                .is_some_and(|e| e.hash.as_deref() == Some(source.hash.as_str()) || !e.ours)
            {
                return true;
            }
            match self.flight(namespace, source.clone(), false).await {
                Ok(_) => return true,
                Err(error) => {
                    tracing::warn!(%namespace, %error, attempt, "syncing pull-secret copy");
                    if attempt < self.config.attempts {
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
        let sources: Api<Secret> =
            Api::namespaced(self.client.clone(), &self.config.mesh_namespace);
        match timed(
            "reading the source pull secret",
            self.config.api_timeout,
            sources.get_opt(PULL_SECRET_NAME),
        )
        .await
        {
            Ok(Some(secret)) if is_ours(&secret) => {}
            Ok(_) => {
                self.set_source(None);
                return;
            }
            Err(error) => {
                tracing::warn!(%namespace, %error, "not restoring the copy: cannot read the source");
                return;
            }
        }
        let Some(source) = read(&self.state.source).clone() else {
            return;
        };
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let injected = match timed(
            "listing pods",
            self.config.api_timeout,
            pods.list_metadata(&ListParams::default()),
        )
        .await
        {
            Ok(list) => list.items.iter().any(|p| is_injected(&p.metadata)),
            Err(error) => {
                tracing::warn!(%namespace, %error, "checking for injected pods");
                false
            }
        };
        if injected && !self.write_with_retries(namespace, &source).await {
            tracing::warn!(%namespace, "could not restore the deleted pull-secret copy");
        }
    }

    /// The leader's loop: sync on every source change, every resync interval, and restore
    /// deleted copies. Returns when `leading` turns false.
    pub async fn run_sync(&self, mut leading: tokio::sync::watch::Receiver<bool>) {
        self.source_synced().await;
        let mut resync = tokio::time::interval(self.config.resync_interval);
        loop {
            if !*leading.borrow() {
                return;
            }
            tokio::select! {
                _ = resync.tick() => {}
                _ = self.state.source_changed.notified() => {}
                _ = self.state.copy_deleted_notify.notified() => {
                    let deleted: Vec<String> = std::mem::take(&mut *lock(&self.state.copy_deleted));
                    futures::stream::iter(deleted)
                        .for_each_concurrent(self.config.concurrency.max(1), |ns| async move {
                            self.restore_if_needed(&ns).await;
                        })
                        .await;
                    continue;
                }
                changed = leading.changed() => {
                    if changed.is_err() {
                        return; // the election is gone: nobody can tell us we lead
                    }
                    continue;
                }
            }
            let still_leading = || *leading.borrow();
            let report = self.sync_while(still_leading).await;
            if report.written + report.failed > 0 {
                tracing::info!(
                    written = report.written,
                    failed = report.failed,
                    "synced pull-secret copies"
                );
            }
        }
    }
}

/// What one sync did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SyncReport {
    /// Copies brought up to date.
    pub written: usize,
    /// Copies that still failed after every attempt.
    pub failed: usize,
}
