//! Pull-secret copies: made before the first pull, kept current on rotation, never touching a
//! Secret we do not own.
//!
//! Two watches feed the [`index::CopyIndex`], so the admission path usually makes no API call:
//! - the source in the mesh namespace (with data: it is what we copy): the mesh's own
//!   `sparrow-registry-key`, or the Secret another tool keeps ([`SourceSecret::External`]);
//! - every Secret named `sparrow-registry-key` (fieldSelector): which copies exist, whether
//!   the controller can prove it made them (`sparrow-mesh.io/proof`, see
//!   [`sparrow_core::ownership`]) and whether the data they hold is the source's.
//!
//! The index decides; this driver performs its writes ([`write`]), one at a time per namespace
//! (admissions and the sync share it), feeds it the watches ([`watch`]) and runs the leader's
//! loop ([`sync`]). The leader writes only into namespaces meshed now ([`MeshedNamespaces`]).
//! RBAC lets the controller read, list and watch only Secrets of that name (and its key in
//! the mesh namespace), so it cannot see any other Secret.

pub mod index;
mod sync;
mod watch;
mod write;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use kube::Api;
use sparrow_core::names::PULL_SECRET_NAME;
use sparrow_core::ownership::CopyKey;
use tokio::sync::{Notify, watch as channel};

use self::index::{CopyIndex, Plan, Step};
pub use self::index::{EnsureOutcome, SourceSecret, SourceState};
pub use self::sync::SyncReport;
use crate::error::ClusterError;
use crate::runtime::metrics::CopyMetrics;

/// Settings of the copier.
#[derive(Debug, Clone)]
pub struct CopyConfig {
    /// Where the source secret lives.
    pub mesh_namespace: String,
    /// Which Secret there copies are made from.
    pub source: SourceSecret,
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
            source: SourceSecret::Own,
            concurrency: 32,
            resync_interval: Duration::from_secs(300),
            api_timeout: Duration::from_secs(5),
            attempts: 5,
        }
    }
}

/// Writes one ensure may take: create, then (it existed) update, then (it changed meanwhile)
/// update again from what a read found. More means the copy is contended; the caller retries.
const WRITES_PER_ENSURE: usize = 4;

/// Why a copy could not be ensured.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// An API call failed or missed its deadline.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// Every write was refused because the copy kept changing.
    #[error(
        "Secret {namespace}/{PULL_SECRET_NAME} changed under each of {writes} writes; it will be retried"
    )]
    Contended {
        /// The copy's namespace.
        namespace: String,
        /// Writes tried.
        writes: usize,
    },
    /// The task writing the copy ended without an answer (a bug).
    #[error("the task writing Secret {namespace}/{PULL_SECRET_NAME} failed: {detail}")]
    TaskFailed {
        /// The copy's namespace.
        namespace: String,
        /// The join error.
        detail: String,
    },
}

/// Which namespaces are meshed now: the webhook's own rule over the namespace cache.
pub trait MeshedNamespaces: Send + Sync {
    /// Whether a pod with no opinion of its own would be injected in `namespace`; `None`
    /// while the cache does not know the namespace.
    fn meshed_now(&self, namespace: &str) -> Option<bool>;
}

type Flight = Shared<BoxFuture<'static, Result<EnsureOutcome, Arc<CopyError>>>>;

struct State {
    index: RwLock<CopyIndex>,
    /// The write in progress per namespace, shared by every admission and the sync.
    flights: Mutex<HashMap<String, Flight>>,
    /// The leader has work (the index scheduled a repair or a restore).
    work: Notify,
    /// (source listed once, both watches listed once).
    synced: channel::Sender<(bool, bool)>,
    /// How the source looks, once the source watch has listed.
    source_state: channel::Sender<Option<SourceState>>,
    /// When the source's credential expires, as it records it (`None`: unknown or no source).
    credential_expires: channel::Sender<Option<i64>>,
}

/// Keeps copies of the registry pull secret in the namespaces of meshed pods.
#[derive(Clone)]
pub struct PullSecretCopier {
    client: kube::Client,
    config: Arc<CopyConfig>,
    key: Arc<CopyKey>,
    meshed: Arc<dyn MeshedNamespaces>,
    state: Arc<State>,
    metrics: CopyMetrics,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PullSecretCopier {
    /// A copier proving its copies with `key` and keeping them only where `meshed` says;
    /// call [`PullSecretCopier::run_watches`] to feed it and [`PullSecretCopier::run_sync`]
    /// (on the leader) to keep copies current.
    pub fn new(
        client: kube::Client,
        config: CopyConfig,
        key: CopyKey,
        meshed: Arc<dyn MeshedNamespaces>,
        metrics: CopyMetrics,
    ) -> Self {
        let (synced, _) = channel::channel((false, false));
        let (source_state, _) = channel::channel(None);
        let (credential_expires, _) = channel::channel(None);
        let key = Arc::new(key);
        Self {
            client,
            key: key.clone(),
            meshed,
            state: Arc::new(State {
                index: RwLock::new(CopyIndex::new(
                    &config.mesh_namespace,
                    key,
                    config.source.clone(),
                )),
                flights: Mutex::new(HashMap::new()),
                work: Notify::new(),
                synced,
                source_state,
                credential_expires,
            }),
            config: Arc::new(config),
            metrics,
        }
    }

    fn index(&self) -> std::sync::RwLockReadGuard<'_, CopyIndex> {
        self.state
            .index
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Changes the index, waking the leader when it scheduled work.
    fn update<T>(&self, change: impl FnOnce(&mut CopyIndex) -> T) -> T {
        let (result, has_work, synced, present) = {
            let mut index = self
                .state
                .index
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let result = change(&mut index);
            let synced = (index.source_synced(), index.is_synced());
            let state = index.source_state();
            let expires = index.source().and_then(|s| s.credential_expires);
            (result, index.has_work(), synced, (state, expires))
        };
        let (state, expires) = present;
        let present = state.as_ref().map(|s| *s == SourceState::Present);
        self.metrics.credential_expiry.set(expires.unwrap_or(0));
        self.state.credential_expires.send_if_modified(|e| {
            let changed = *e != expires;
            *e = expires;
            changed
        });
        if let Some(present) = present {
            self.metrics.source_present.set(i64::from(present));
        }
        self.state.source_state.send_if_modified(|s| {
            let changed = *s != state;
            *s = state;
            changed
        });
        if has_work {
            self.state.work.notify_one();
        }
        self.state.synced.send_if_modified(|s| {
            let changed = *s != synced;
            *s = synced;
            changed
        });
        result
    }

    /// The Secret copies are made from.
    pub fn source_secret(&self) -> &SourceSecret {
        &self.config.source
    }

    /// The metrics this copier counts into.
    pub fn metrics(&self) -> &CopyMetrics {
        &self.metrics
    }

    /// Waits until the source secret has been read once (present or not).
    pub async fn source_synced(&self) {
        let mut synced = self.state.synced.subscribe();
        let _ = synced.wait_for(|(source, _)| *source).await;
    }

    /// How the source secret looks, as last seen (`None` until the source watch listed);
    /// changes are signalled, so the controller can say when the source disappears or
    /// becomes unusable.
    pub fn source_state(&self) -> channel::Receiver<Option<SourceState>> {
        self.state.source_state.subscribe()
    }

    /// When the source's credential expires (seconds since the epoch) as it records it;
    /// changes are signalled, so the controller can say when a threshold is crossed.
    pub fn credential_expiry(&self) -> channel::Receiver<Option<i64>> {
        self.state.credential_expires.subscribe()
    }

    /// True while the source secret exists (as last seen).
    pub fn has_source(&self) -> bool {
        self.index().source().is_some()
    }

    /// The source's data hash as last seen.
    pub fn source_hash(&self) -> Option<String> {
        self.index().source().map(|s| s.hash.clone())
    }

    /// Waits until both watches have listed once: from then on a current copy costs no API call.
    pub async fn synced(&self) {
        let mut synced = self.state.synced.subscribe();
        let _ = synced.wait_for(|(_, both)| *both).await;
    }

    /// True once both watches have listed once.
    pub fn is_synced(&self) -> bool {
        self.index().is_synced()
    }

    /// What the index already answers for `namespace` without an API call; `None` when a
    /// write is needed.
    pub fn cached_outcome(&self, namespace: &str) -> Option<EnsureOutcome> {
        self.index().answer(namespace)
    }

    /// Makes sure `namespace` holds a current copy of the source. A current copy costs no API
    /// call; concurrent calls for one namespace share one write.
    pub async fn ensure_copy(&self, namespace: &str) -> Result<EnsureOutcome, Arc<CopyError>> {
        self.ensure(namespace, true).await
    }

    /// [`PullSecretCopier::ensure_copy`]; `admission` counts the API calls it makes as the
    /// admission path's. A write in flight may have been planned from an older source: when
    /// it ends and the index still wants a write, one more flight follows.
    async fn ensure(
        &self,
        namespace: &str,
        admission: bool,
    ) -> Result<EnsureOutcome, Arc<CopyError>> {
        let mut outcome = None;
        for _ in 0..2 {
            // A write in progress is joined, not second-guessed: between a create and its
            // proof the watch may already show the new copy, still unproven.
            if let Some(flight) = self.in_flight(namespace) {
                outcome = Some(flight.await?);
                continue;
            }
            if let Some(answer) = self.cached_outcome(namespace) {
                return Ok(outcome.unwrap_or(answer));
            }
            outcome = Some(self.flight(namespace, admission).await?);
        }
        Ok(outcome.unwrap_or(EnsureOutcome::Current))
    }

    fn in_flight(&self, namespace: &str) -> Option<Flight> {
        lock(&self.state.flights).get(namespace).cloned()
    }

    /// The one write in progress for `namespace`, shared by every admission and the sync. It
    /// runs in its own task, so a caller that gives up (an admission's deadline) neither
    /// cancels nor stalls it.
    fn flight(&self, namespace: &str, admission: bool) -> Flight {
        // The lock is held until the flight is registered, so the task's removal comes after.
        let mut flights = lock(&self.state.flights);
        if let Some(flight) = flights.get(namespace) {
            return flight.clone();
        }
        let (this, ns) = (self.clone(), namespace.to_owned());
        let task = tokio::spawn(async move {
            let result = this.converge(&ns, admission).await.map_err(Arc::new);
            lock(&this.state.flights).remove(&ns);
            result
        });
        let ns = namespace.to_owned();
        let flight = async move {
            task.await.unwrap_or_else(|e| {
                Err(Arc::new(CopyError::TaskFailed {
                    namespace: ns,
                    detail: e.to_string(),
                }))
            })
        }
        .boxed()
        .shared();
        flights.insert(namespace.to_owned(), flight.clone());
        flight
    }

    /// Plans, writes and records until the index is settled for `namespace`, within
    /// [`WRITES_PER_ENSURE`] writes.
    async fn converge(&self, namespace: &str, admission: bool) -> Result<EnsureOutcome, CopyError> {
        let api: Api<_> = Api::namespaced(self.client.clone(), namespace);
        let count = || {
            if admission {
                self.metrics.admission_api_calls.inc();
            }
        };
        for _ in 0..WRITES_PER_ENSURE {
            let planned = match self.index().plan(namespace) {
                Plan::Answer(outcome) => return Ok(outcome),
                Plan::Write(planned) => planned,
            };
            let result = write::perform(&api, &planned, &self.config, &self.key, &count).await?;
            if let Step::Done(outcome) = self.update(|index| index.record(&planned, result)) {
                self.count_outcome(namespace, outcome);
                return Ok(outcome);
            }
        }
        Err(CopyError::Contended {
            namespace: namespace.to_owned(),
            writes: WRITES_PER_ENSURE,
        })
    }

    /// Whether a pod whose metadata says it carries the sidecar exists in `namespace`: one
    /// page of pods' metadata, so a forged review costs at most that.
    pub async fn injected_pod_exists(&self, namespace: &str) -> Result<bool, ClusterError> {
        let pods: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client.clone(), namespace);
        let action = format!("listing pods in namespace {namespace}");
        let page = crate::timed(
            &action,
            self.config.api_timeout,
            pods.list_metadata(&kube::api::ListParams::default().limit(500)),
        )
        .await?;
        Ok(page
            .items
            .iter()
            .any(|pod| crate::secrets::is_injected(&pod.metadata)))
    }

    fn count_outcome(&self, namespace: &str, outcome: EnsureOutcome) {
        match outcome {
            EnsureOutcome::Created => {
                self.metrics.copies_created.inc();
                tracing::info!(%namespace, "created pull-secret copy");
            }
            EnsureOutcome::Updated => {
                self.metrics.copies_updated.inc();
                tracing::info!(%namespace, "updated pull-secret copy");
            }
            _ => {}
        }
    }

    fn refresh_stale_gauge(&self) {
        let stale = self.index().stale_count();
        self.metrics
            .stale_copies
            .set(i64::try_from(stale).unwrap_or(i64::MAX));
    }
}
