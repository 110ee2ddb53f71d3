//! Events caused by admissions, written by one worker from a bounded book: the admission path
//! only offers an occurrence (a lock and a map lookup) and never waits for the API server.
//!
//! What no library does: kube's `Recorder` writes once per call (a review flood is a write
//! flood), each call in its own task with the client's retries on 429 (a 429 multiplies the
//! writes instead of slowing them), and counts one occurrence per write. client-go's
//! `EventBroadcaster` aggregates, but nothing in Rust does. So here:
//! - occurrences of one (namespace, reason, object) are aggregated: the first is written at
//!   once, the following ones at most once per [`AGGREGATION_WINDOW`], as one series update
//!   carrying their count;
//! - at most [`MAX_KEYS`] (namespace, reason, object) are tracked; an occurrence of a new one
//!   beyond that is dropped and counted (`sparrow_events_dropped_total{cause="queue-full"}`);
//! - one worker writes, at most one write per [`MIN_WRITE_INTERVAL`]; a failed write is not
//!   retried (its occurrences are dropped and counted) and the worker pauses, doubling the
//!   pause while the API server keeps refusing (429 and 5xx): back-pressure slows it down.
//!
//! The book ([`EventBook`]) is pure state with no I/O, driven by the worker ([`EventRecorder::run`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::pull_secrets::BoxFuture;

/// After an Event is written, further occurrences of it wait this long and are then written
/// as one series update.
pub const AGGREGATION_WINDOW: Duration = Duration::from_secs(60);
/// How long an Event written is kept to be continued as a series (client-go's 6 minutes).
pub const SERIES_TTL: Duration = Duration::from_secs(6 * 60);
/// The most (namespace, reason, object) tracked at once.
pub const MAX_KEYS: usize = 256;
/// The shortest time between two writes (at most 5 per second, whatever the load).
pub const MIN_WRITE_INTERVAL: Duration = Duration::from_millis(200);
/// The first pause after a failed write; doubled while writes keep failing.
pub const FIRST_PAUSE: Duration = Duration::from_secs(1);
/// The longest pause after failed writes.
pub const MAX_PAUSE: Duration = Duration::from_secs(60);
/// The longest a single write may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What an Event is about and says.
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    /// The object the Event is about (its namespace is the Event's).
    pub regarding: ObjectReference,
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    /// A short CamelCase reason.
    pub reason: String,
    /// What the controller did (or did not).
    pub action: String,
    /// The message; the first occurrence's is kept for the whole series.
    pub note: String,
}

/// What identifies one Event series.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    namespace: String,
    reason: String,
    kind: String,
    name: String,
}

impl Key {
    fn of(occurrence: &Occurrence) -> Self {
        let r = &occurrence.regarding;
        Self {
            namespace: r.namespace.clone().unwrap_or_default(),
            reason: occurrence.reason.clone(),
            kind: r.kind.clone().unwrap_or_default(),
            name: r.name.clone().unwrap_or_default(),
        }
    }
}

/// What became of an offered occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// A new series: written as soon as the worker gets to it.
    Queued,
    /// Counted into a series already tracked.
    Aggregated,
    /// [`MAX_KEYS`] series are waiting to be written: dropped.
    Dropped,
}

/// The Event series written so far.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    name: String,
    count: i32,
}

#[derive(Debug)]
struct Series {
    occurrence: Occurrence,
    /// Occurrences not written yet.
    unwritten: u32,
    /// The Event object, once created.
    written: Option<Written>,
    /// The next write may not happen before this.
    due: Instant,
    /// The last write, or when the series was first seen.
    last_write: Instant,
}

/// One write for the worker to do.
#[derive(Debug, Clone, PartialEq)]
pub enum EventWrite {
    /// Create the Event (the first occurrence, or one after the series expired).
    Create {
        /// The Event to create.
        event: Box<K8sEvent>,
        /// Occurrences it carries.
        occurrences: u32,
    },
    /// Raise the series count of the Event already written.
    Series {
        /// The Event's namespace.
        namespace: String,
        /// The Event's name.
        name: String,
        /// The new count.
        count: i32,
        /// Occurrences it adds.
        occurrences: u32,
    },
}

/// The aggregation and its bounds, with no I/O: the worker asks it what to write and when.
#[derive(Debug, Default)]
pub struct EventBook {
    series: HashMap<Key, Series>,
    /// The key of the write handed out and not reported yet.
    writing: Option<Key>,
}

impl EventBook {
    /// Takes in one occurrence at `now`.
    pub fn offer(&mut self, occurrence: Occurrence, now: Instant) -> Offered {
        let key = Key::of(&occurrence);
        let writing = self.writing.as_ref() == Some(&key);
        if let Some(series) = self.series.get_mut(&key) {
            let expired = series.unwritten == 0
                && !writing
                && now.saturating_duration_since(series.last_write) >= SERIES_TTL;
            if !expired {
                series.unwritten = series.unwritten.saturating_add(1);
                return Offered::Aggregated;
            }
            self.series.remove(&key);
        }
        if self.series.len() >= MAX_KEYS && !self.forget_one_idle(now) {
            return Offered::Dropped;
        }
        self.series.insert(
            key,
            Series {
                occurrence,
                unwritten: 1,
                written: None,
                due: now,
                last_write: now,
            },
        );
        Offered::Queued
    }

    /// Makes room by forgetting the series written longest ago with nothing left to write.
    fn forget_one_idle(&mut self, now: Instant) -> bool {
        self.expire(now);
        let oldest = self
            .series
            .iter()
            .filter(|(key, s)| s.unwritten == 0 && self.writing.as_ref() != Some(*key))
            .min_by_key(|(_, s)| s.last_write)
            .map(|(key, _)| key.clone());
        match oldest {
            Some(key) => self.series.remove(&key).is_some(),
            None => false,
        }
    }

    /// Forgets series with nothing to write whose Event is too old to continue.
    fn expire(&mut self, now: Instant) {
        let writing = self.writing.clone();
        self.series.retain(|key, s| {
            s.unwritten > 0
                || writing.as_ref() == Some(key)
                || now.saturating_duration_since(s.last_write) < SERIES_TTL
        });
    }

    /// The next write due at `now`, if any (one at a time: the previous one must have been
    /// reported with [`EventBook::done`]).
    pub fn take_due(&mut self, now: Instant) -> Option<EventWrite> {
        if self.writing.is_some() {
            return None;
        }
        self.expire(now);
        let (key, series) = self
            .series
            .iter_mut()
            .filter(|(_, s)| s.unwritten > 0 && s.due <= now)
            .min_by_key(|(_, s)| s.due)?;
        let occurrences = std::mem::take(&mut series.unwritten);
        let fresh = now.saturating_duration_since(series.last_write) < SERIES_TTL;
        let write = match &series.written {
            Some(written) if fresh => EventWrite::Series {
                namespace: key.namespace.clone(),
                name: written.name.clone(),
                count: written
                    .count
                    .saturating_add(i32::try_from(occurrences).unwrap_or(i32::MAX)),
                occurrences,
            },
            _ => EventWrite::Create {
                event: Box::new(new_event(&series.occurrence, occurrences)),
                occurrences,
            },
        };
        series.due = now + AGGREGATION_WINDOW;
        self.writing = Some(key.clone());
        Some(write)
    }

    /// When the next write is due; `None` when nothing waits.
    pub fn next_due(&self) -> Option<Instant> {
        if self.writing.is_some() {
            return None;
        }
        self.series
            .values()
            .filter(|s| s.unwritten > 0)
            .map(|s| s.due)
            .min()
    }

    /// Reports the write handed out last: `Ok` with what was written, or failed (then its
    /// occurrences are lost; the series is written afresh next time).
    pub fn done(&mut self, write: &EventWrite, ok: bool, now: Instant) {
        let Some(key) = self.writing.take() else {
            return;
        };
        let Some(series) = self.series.get_mut(&key) else {
            return;
        };
        series.last_write = now;
        if !ok {
            series.written = None;
            return;
        }
        series.written = match write {
            EventWrite::Create { event, occurrences } => Some(Written {
                name: event.metadata.name.clone().unwrap_or_default(),
                count: i32::try_from(*occurrences).unwrap_or(i32::MAX),
            }),
            EventWrite::Series { name, count, .. } => Some(Written {
                name: name.clone(),
                count: *count,
            }),
        };
    }

    /// How many series are tracked.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// No series is tracked.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

/// The Event for the first write of a series (`occurrences` > 1: already a series).
fn new_event(occurrence: &Occurrence, occurrences: u32) -> K8sEvent {
    let now = Timestamp::now();
    let regarding = &occurrence.regarding;
    let base = regarding
        .name
        .clone()
        .unwrap_or_else(|| "object".to_owned());
    K8sEvent {
        metadata: ObjectMeta {
            namespace: regarding.namespace.clone(),
            name: Some(format!("{base}.{:x}", now.as_nanosecond())),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some(occurrence.type_.to_owned()),
        reason: Some(occurrence.reason.clone()),
        action: Some(occurrence.action.clone()),
        note: Some(occurrence.note.clone()),
        regarding: Some(regarding.clone()),
        series: (occurrences > 1).then(|| EventSeries {
            count: i32::try_from(occurrences).unwrap_or(i32::MAX),
            last_observed_time: MicroTime(now),
        }),
        ..K8sEvent::default()
    }
}

/// Why a write failed, as far as the worker cares.
#[derive(Debug, thiserror::Error)]
pub enum EventWriteError {
    /// The API server pushed back (429, 5xx) or did not answer in time: pause before the next.
    #[error("the API server is overloaded: {0}")]
    Overloaded(String),
    /// Any other refusal (the namespace is gone, RBAC): the next write goes ahead.
    #[error("the Event was refused: {0}")]
    Refused(String),
}

/// Where the worker writes Events (the API server, or a test's record).
pub trait EventSink: Send + Sync {
    /// Performs `write`; the reporter's names are filled in here.
    fn write<'a>(&'a self, write: &'a EventWrite) -> BoxFuture<'a, Result<(), EventWriteError>>;
}

/// Writes Events to the API server as `controller`/`instance`.
pub struct KubeEventSink {
    client: kube::Client,
    controller: String,
    instance: String,
}

impl KubeEventSink {
    /// Events reported by `controller` from `instance`. Give it a client without retries
    /// ([`client_without_retries`]): a retried 429 is one more write, not one fewer.
    pub fn new(client: kube::Client, controller: &str, instance: &str) -> Self {
        Self {
            client,
            controller: controller.to_owned(),
            instance: instance.to_owned(),
        }
    }
}

/// A client like `Client::try_default()` but without the default retries on 429/503/504:
/// the recorder handles back-pressure by pausing itself.
pub async fn client_without_retries() -> Result<kube::Client, kube::Error> {
    let config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    without_retries(config)
}

/// A client for `config` with kube's default retries turned off.
pub fn without_retries(mut config: kube::Config) -> Result<kube::Client, kube::Error> {
    config.default_retry = false;
    kube::Client::try_from(config)
}

fn classify(error: kube::Error) -> EventWriteError {
    match &error {
        kube::Error::Api(status) if status.code == 429 || status.code >= 500 => {
            EventWriteError::Overloaded(format!("{} {}", status.code, status.reason))
        }
        kube::Error::Api(status) => {
            EventWriteError::Refused(format!("{} {}", status.code, status.reason))
        }
        other => EventWriteError::Overloaded(other.to_string()),
    }
}

impl EventSink for KubeEventSink {
    fn write<'a>(&'a self, write: &'a EventWrite) -> BoxFuture<'a, Result<(), EventWriteError>> {
        Box::pin(async move {
            let done = match write {
                EventWrite::Create { event, .. } => {
                    let mut event = (**event).clone();
                    event.reporting_controller = Some(self.controller.clone());
                    event.reporting_instance = Some(self.instance.clone());
                    let namespace = event.metadata.namespace.clone().unwrap_or_default();
                    let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
                    let params = PostParams::default();
                    let created = api.create(&params, &event);
                    tokio::time::timeout(WRITE_TIMEOUT, created)
                        .await
                        .map(|r| r.map(drop))
                }
                EventWrite::Series {
                    namespace,
                    name,
                    count,
                    ..
                } => {
                    let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
                    let patch = serde_json::json!({
                        "series": EventSeries {
                            count: *count,
                            last_observed_time: MicroTime(Timestamp::now()),
                        }
                    });
                    let (params, patch) = (PatchParams::default(), Patch::Merge(&patch));
                    let patched = api.patch(name, &params, &patch);
                    tokio::time::timeout(WRITE_TIMEOUT, patched)
                        .await
                        .map(|r| r.map(drop))
                }
            };
            match done {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(classify(error)),
                Err(_) => Err(EventWriteError::Overloaded(format!(
                    "no answer within {}s",
                    WRITE_TIMEOUT.as_secs()
                ))),
            }
        })
    }
}

/// Labels of `sparrow_events_dropped_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DropLabels {
    /// `queue-full` or `write-failed`.
    cause: &'static str,
}

/// The recorder's counters.
#[derive(Debug, Clone, Default)]
pub struct EventMetrics {
    offered: Counter,
    writes: Counter,
    dropped: Family<DropLabels, Counter>,
}

impl EventMetrics {
    /// Creates the counters and registers them under the `sparrow_` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let sub = registry.sub_registry_with_prefix("sparrow");
        sub.register(
            "events_offered",
            "Occurrences of Events the controller wanted to record",
            metrics.offered.clone(),
        );
        sub.register(
            "event_writes",
            "Event creates and series updates sent to the API server",
            metrics.writes.clone(),
        );
        sub.register(
            "events_dropped",
            "Occurrences of Events never written, by cause (queue-full, write-failed)",
            metrics.dropped.clone(),
        );
        metrics
    }

    /// Occurrences dropped for `cause`.
    pub fn dropped(&self, cause: &'static str) -> u64 {
        self.dropped.get_or_create(&DropLabels { cause }).get()
    }

    /// Writes sent to the API server.
    pub fn writes(&self) -> u64 {
        self.writes.get()
    }
}

/// The handle the admission path records through; cheap to clone.
#[derive(Clone)]
pub struct EventRecorder {
    shared: Arc<Shared>,
}

struct Shared {
    book: Mutex<EventBook>,
    offered: Notify,
    metrics: EventMetrics,
}

impl EventRecorder {
    /// A recorder counting into `metrics`; nothing is written until [`EventRecorder::run`] runs.
    pub fn new(metrics: EventMetrics) -> Self {
        Self {
            shared: Arc::new(Shared {
                book: Mutex::new(EventBook::default()),
                offered: Notify::new(),
                metrics,
            }),
        }
    }

    /// Records one occurrence without waiting: aggregated, queued, or dropped and counted.
    pub fn record(&self, occurrence: Occurrence) {
        let shared = &self.shared;
        shared.metrics.offered.inc();
        let offered = self.book().offer(occurrence, Instant::now());
        match offered {
            // The worker may be waiting for nothing in particular: a series it wrote may now
            // have something due at the end of its window.
            Offered::Queued | Offered::Aggregated => shared.offered.notify_one(),
            Offered::Dropped => {
                shared
                    .metrics
                    .dropped
                    .get_or_create(&DropLabels {
                        cause: "queue-full",
                    })
                    .inc();
            }
        }
    }

    /// The one worker: writes what is due to `sink`, for as long as the controller runs.
    pub async fn run(&self, sink: impl EventSink) {
        let shared = &self.shared;
        let mut pause = FIRST_PAUSE;
        loop {
            let next = {
                let mut book = self.book();
                match book.take_due(Instant::now()) {
                    Some(write) => Ok(write),
                    None => Err(book.next_due()),
                }
            };
            let write = match next {
                Ok(write) => write,
                Err(due) => {
                    let offered = shared.offered.notified();
                    match due {
                        Some(due) => {
                            tokio::select! {
                                () = tokio::time::sleep_until(due) => {}
                                () = offered => {}
                            }
                        }
                        None => offered.await,
                    }
                    continue;
                }
            };
            shared.metrics.writes.inc();
            let result = sink.write(&write).await;
            self.book().done(&write, result.is_ok(), Instant::now());
            let wait = match result {
                Ok(()) => {
                    pause = FIRST_PAUSE;
                    MIN_WRITE_INTERVAL
                }
                Err(error) => {
                    let occurrences = match &write {
                        EventWrite::Create { occurrences, .. }
                        | EventWrite::Series { occurrences, .. } => *occurrences,
                    };
                    shared
                        .metrics
                        .dropped
                        .get_or_create(&DropLabels {
                            cause: "write-failed",
                        })
                        .inc_by(u64::from(occurrences));
                    tracing::warn!(%error, occurrences, "an Event was not written; not retried");
                    match error {
                        EventWriteError::Overloaded(_) => {
                            let now = pause;
                            pause = (pause * 2).min(MAX_PAUSE);
                            now
                        }
                        EventWriteError::Refused(_) => MIN_WRITE_INTERVAL,
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// The counters.
    pub fn metrics(&self) -> &EventMetrics {
        &self.shared.metrics
    }

    fn book(&self) -> std::sync::MutexGuard<'_, EventBook> {
        // Every change to the book is one call: a panicking holder leaves it consistent.
        self.shared
            .book
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
