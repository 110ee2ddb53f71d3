//! The copy index: every decision about pull-secret copies, with no I/O and no async.
//!
//! Watch events and write results go in; answers for the admission path, planned writes and
//! the leader's work (repairs, restores) come out. The driver ([`super::PullSecretCopier`])
//! performs the writes and feeds their results back, one write per namespace at a time.
//!
//! Every update carries the copy's `resourceVersion` as the index last saw it (a JSON Patch
//! `test`), so a write planned from an older view never lands on a copy that changed since:
//! an older source cannot overwrite a newer one, whatever order the writes reach the server.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::Event;
use sparrow_core::names::SOURCE_HASH_ANNOTATION;

use crate::secrets::{data_hash, is_ours, labels_are_ours};

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
pub struct Source {
    /// The data every copy holds.
    pub data: BTreeMap<String, ByteString>,
    /// [`data_hash`] of `data`: the copies' `sparrow-mesh.io/source-hash`.
    pub hash: String,
}

impl Source {
    /// The source `secret` stands for: `None` when it is not ours (no `usage` label).
    pub fn of(secret: &Secret) -> Option<Self> {
        is_ours(secret).then(|| Self {
            hash: data_hash(secret),
            data: secret.data.clone().unwrap_or_default(),
        })
    }
}

/// What is known of the Secret named `sparrow-registry-key` in one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// It carries `usage=sparrow-registry-key`.
    pub ours: bool,
    /// Its `sparrow-mesh.io/source-hash`.
    pub hash: Option<String>,
    /// Its `resourceVersion`: the guard of the next update.
    pub resource_version: Option<String>,
}

impl Observed {
    /// What `meta` (a watch event, a read, a write's answer) says.
    pub fn of(meta: &ObjectMeta) -> Self {
        Self {
            ours: labels_are_ours(meta.labels.as_ref()),
            hash: meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(SOURCE_HASH_ANNOTATION).cloned()),
            resource_version: meta.resource_version.clone(),
        }
    }
}

/// A write the driver is to perform.
#[derive(Clone)]
pub struct PlannedWrite {
    /// Where the copy goes.
    pub namespace: String,
    /// What it holds.
    pub source: Arc<Source>,
    /// Create, or update guarded by a `resourceVersion`.
    pub action: WriteAction,
}

/// How a planned write reaches the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteAction {
    /// POST: no Secret of that name is known there (409 if one appeared).
    Create,
    /// JSON Patch with `test`s on the `usage` label and on this `resourceVersion`, so it fails
    /// (422) if the Secret changed hands or changed at all since the index saw it.
    Update {
        /// The version the update applies to; `None` when unknown (label guard only).
        resource_version: Option<String>,
    },
}

/// What came of a planned write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    /// The API took it; the answer's `resourceVersion`.
    Written {
        /// The copy's version after the write.
        resource_version: Option<String>,
    },
    /// The API refused it (the Secret exists, changed, or is gone) and a read found this.
    Refused(Option<Observed>),
}

/// The index's answer to a write result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The namespace is settled.
    Done(EnsureOutcome),
    /// Plan again: the index learned something and another write may be needed.
    Again,
}

/// What the index answers for a namespace.
#[derive(Clone)]
pub enum Plan {
    /// Settled without an API call.
    Answer(EnsureOutcome),
    /// This write is needed.
    Write(PlannedWrite),
}

/// The leader's work, taken from the index in one go.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Work {
    /// Namespaces whose copy is stale: write them.
    pub repair: Vec<String>,
    /// Namespaces whose copy was deleted: bring it back if pods there carry the sidecar.
    pub restore: Vec<String>,
}

impl Work {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.repair.is_empty() && self.restore.is_empty()
    }
}

/// The copy index of one replica.
pub struct CopyIndex {
    mesh_namespace: String,
    source: Option<Arc<Source>>,
    copies: HashMap<String, Observed>,
    /// The source watch's relist: whether it listed the source.
    source_relist: Option<bool>,
    /// The copies watch's relist, buffered until it is complete.
    copies_relist: Option<HashMap<String, Observed>>,
    source_synced: bool,
    copies_synced: bool,
    repair: BTreeSet<String>,
    restore: BTreeSet<String>,
}

impl CopyIndex {
    /// An empty index for a control plane in `mesh_namespace`.
    pub fn new(mesh_namespace: &str) -> Self {
        Self {
            mesh_namespace: mesh_namespace.to_owned(),
            source: None,
            copies: HashMap::new(),
            source_relist: None,
            copies_relist: None,
            source_synced: false,
            copies_synced: false,
            repair: BTreeSet::new(),
            restore: BTreeSet::new(),
        }
    }

    /// The source as last seen.
    pub fn source(&self) -> Option<&Arc<Source>> {
        self.source.as_ref()
    }

    /// The source watch has listed once.
    pub fn source_synced(&self) -> bool {
        self.source_synced
    }

    /// Both watches have listed once: from then on a current copy costs no API call.
    pub fn is_synced(&self) -> bool {
        self.source_synced && self.copies_synced
    }

    /// An event of the source watch; true when the source changed (every stale copy is then
    /// scheduled for repair).
    pub fn apply_source(&mut self, event: Event<Secret>) -> bool {
        match event {
            Event::Init => {
                self.source_relist = Some(false);
                false
            }
            Event::InitApply(secret) => {
                self.source_relist = Some(true);
                self.set_source(Source::of(&secret))
            }
            Event::Apply(secret) => self.set_source(Source::of(&secret)),
            Event::Delete(_) => self.set_source(None),
            Event::InitDone => {
                let listed = self.source_relist.take().unwrap_or(true);
                self.source_synced = true;
                !listed && self.set_source(None)
            }
        }
    }

    /// Replaces the source; true when it changed.
    pub fn set_source(&mut self, source: Option<Source>) -> bool {
        if self.source.as_deref() == source.as_ref() {
            return false;
        }
        self.source = source.map(Arc::new);
        self.schedule_stale();
        true
    }

    /// An event of the copies watch (metadata of every Secret named `sparrow-registry-key`).
    /// A copy seen stale is scheduled for repair, one seen deleted for restoring.
    pub fn apply_copy(&mut self, event: Event<PartialObjectMeta<Secret>>) {
        match event {
            Event::Init => self.copies_relist = Some(HashMap::new()),
            Event::InitApply(meta) => {
                let entry = self.entry_of(&meta.metadata);
                if let (Some(relist), Some((ns, seen))) = (self.copies_relist.as_mut(), entry) {
                    relist.insert(ns, seen);
                }
            }
            Event::InitDone => {
                if let Some(fresh) = self.copies_relist.take() {
                    self.replace_copies(fresh);
                }
                self.copies_synced = true;
            }
            Event::Apply(meta) => {
                if let Some((ns, seen)) = self.entry_of(&meta.metadata) {
                    self.observe(&ns, Some(seen));
                }
            }
            Event::Delete(meta) => {
                // The deletion of a version older than the one held (a copy recreated since)
                // says nothing about the copy there now.
                if let Some((ns, gone)) = self.entry_of(&meta.metadata)
                    && !self.is_older(&ns, &gone)
                {
                    self.observe(&ns, None);
                }
            }
        }
    }

    /// A relist: copies of ours that are gone were deleted while the watch was down (no
    /// Delete event comes for them).
    fn replace_copies(&mut self, fresh: HashMap<String, Observed>) {
        let vanished: Vec<String> = self
            .copies
            .iter()
            .filter(|(ns, seen)| seen.ours && !fresh.contains_key(*ns))
            .map(|(ns, _)| ns.clone())
            .collect();
        self.restore.extend(vanished);
        self.copies = fresh;
        self.schedule_stale();
    }

    /// Records what is now in `namespace` (`None`: nothing), scheduling a repair for a stale
    /// copy of ours and a restore for one of ours that disappeared.
    /// An event older than what the index holds (a watch lagging behind our own write) is
    /// ignored.
    pub fn observe(&mut self, namespace: &str, seen: Option<Observed>) {
        match seen {
            Some(seen) => {
                if self.is_older(namespace, &seen) {
                    return;
                }
                if seen.ours && self.is_stale(&seen) {
                    self.repair.insert(namespace.to_owned());
                }
                self.copies.insert(namespace.to_owned(), seen);
            }
            None => {
                if self.copies.remove(namespace).is_some_and(|old| old.ours) {
                    self.restore.insert(namespace.to_owned());
                }
                self.repair.remove(namespace);
            }
        }
    }

    /// True when `seen` is an older version of the copy the index holds. Resource versions
    /// are opaque to clients, but every API server hands out etcd revisions, which only
    /// grow; one that does not parse counts as newer.
    fn is_older(&self, namespace: &str, seen: &Observed) -> bool {
        let version = |o: &Observed| o.resource_version.as_deref()?.parse::<u64>().ok();
        let held = self.copies.get(namespace).and_then(version);
        matches!((held, version(seen)), (Some(held), Some(new)) if new < held)
    }

    fn entry_of(&self, meta: &ObjectMeta) -> Option<(String, Observed)> {
        let ns = meta.namespace.clone()?;
        (ns != self.mesh_namespace).then(|| (ns, Observed::of(meta)))
    }

    fn is_stale(&self, seen: &Observed) -> bool {
        self.source
            .as_ref()
            .is_some_and(|source| seen.hash.as_deref() != Some(source.hash.as_str()))
    }

    fn schedule_stale(&mut self) {
        let stale = self.stale();
        self.repair.extend(stale);
    }

    /// Namespaces whose copy is ours and differs from the source.
    pub fn stale(&self) -> Vec<String> {
        let mut stale: Vec<String> = self
            .copies
            .iter()
            .filter(|(_, seen)| seen.ours && self.is_stale(seen))
            .map(|(ns, _)| ns.clone())
            .collect();
        stale.sort();
        stale
    }

    /// Schedules every stale copy for repair (the periodic resync).
    pub fn schedule_resync(&mut self) {
        self.schedule_stale();
    }

    /// True while the leader has work waiting.
    pub fn has_work(&self) -> bool {
        !self.repair.is_empty() || !self.restore.is_empty()
    }

    /// The leader's pending work; the index forgets it.
    pub fn take_work(&mut self) -> Work {
        Work {
            repair: std::mem::take(&mut self.repair).into_iter().collect(),
            restore: std::mem::take(&mut self.restore).into_iter().collect(),
        }
    }

    /// What the index answers for `namespace` without an API call; `None` when a write is
    /// needed.
    pub fn answer(&self, namespace: &str) -> Option<EnsureOutcome> {
        match self.plan(namespace) {
            Plan::Answer(outcome) => Some(outcome),
            Plan::Write(_) => None,
        }
    }

    /// The answer for `namespace`, or the write that brings its copy up to the source.
    pub fn plan(&self, namespace: &str) -> Plan {
        if namespace == self.mesh_namespace {
            return Plan::Answer(EnsureOutcome::SourceNamespace);
        }
        let Some(source) = self.source.clone() else {
            return Plan::Answer(EnsureOutcome::NoSource);
        };
        let action = match self.copies.get(namespace) {
            None => WriteAction::Create,
            Some(seen) if !seen.ours => return Plan::Answer(EnsureOutcome::Foreign),
            Some(seen) if seen.hash.as_deref() == Some(source.hash.as_str()) => {
                return Plan::Answer(EnsureOutcome::Current);
            }
            Some(seen) => WriteAction::Update {
                resource_version: seen.resource_version.clone(),
            },
        };
        Plan::Write(PlannedWrite {
            namespace: namespace.to_owned(),
            source,
            action,
        })
    }

    /// Takes in what came of `write`.
    pub fn record(&mut self, write: &PlannedWrite, result: WriteResult) -> Step {
        let ns = write.namespace.as_str();
        match result {
            WriteResult::Written { resource_version } => {
                let written = Observed {
                    ours: true,
                    hash: Some(write.source.hash.clone()),
                    resource_version,
                };
                self.repair.remove(ns);
                if !self.is_older(ns, &written) {
                    self.copies.insert(ns.to_owned(), written);
                }
                Step::Done(match write.action {
                    WriteAction::Create => EnsureOutcome::Created,
                    WriteAction::Update { .. } => EnsureOutcome::Updated,
                })
            }
            WriteResult::Refused(seen) => {
                match seen {
                    Some(seen) => self.copies.insert(ns.to_owned(), seen),
                    None => self.copies.remove(ns),
                };
                match self.answer(ns) {
                    Some(outcome) => {
                        self.repair.remove(ns);
                        Step::Done(outcome)
                    }
                    None => Step::Again,
                }
            }
        }
    }

    /// Copies of ours that differ from the source right now (the stale-copies gauge).
    pub fn stale_count(&self) -> usize {
        self.copies
            .values()
            .filter(|seen| seen.ours && self.is_stale(seen))
            .count()
    }
}

#[cfg(test)]
mod tests;
