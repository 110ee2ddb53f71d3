//! The copy index: every decision about pull-secret copies, with no I/O and no async.
//!
//! Watch events and write results go in; answers for the admission path, planned writes and
//! the leader's work (repairs, restores) come out. The driver ([`super::PullSecretCopier`])
//! performs the writes and feeds their results back, one write per namespace at a time.
//!
//! Every update carries the copy's `resourceVersion` as the index last saw it (a JSON Patch
//! `test`), so a write planned from an older view never lands on a copy that changed since:
//! an older source cannot overwrite a newer one, whatever order the writes reach the server.
//!
//! A Secret of the copies' name is the mesh's only when it carries the controller's proof
//! ([`sparrow_core::ownership::is_proven_copy`]); whatever else it carries, anything unproven
//! is foreign: never written, never repaired, never restored. Whether a copy is current is
//! read from its data, not from its annotations, so a copy edited by hand is repaired.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::watcher::Event;
use sparrow_core::names::PULL_SECRET_NAME;
use sparrow_core::ownership::{CopyIdentity, CopyKey, is_proven_copy};

use crate::secrets::{data_hash, external_source_problem, is_ours};

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
    /// A Secret of that name exists that the controller cannot prove it made: left alone.
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
    /// When the credential expires (seconds since the epoch), as the source records it.
    pub credential_expires: Option<i64>,
}

impl Source {
    /// The source `secret` stands for: `None` when it is not ours (no `usage` label).
    pub fn of(secret: &Secret) -> Option<Self> {
        is_ours(secret).then(|| Self::copied_from(secret))
    }

    /// The source `secret` stands for as the Secret of kind `kind`: the mesh's own must carry
    /// its label; one another tool keeps must be a usable `.dockerconfigjson` (else why not,
    /// so an emptied Secret is never copied as an empty credential).
    pub fn read(secret: &Secret, kind: &SourceSecret) -> Result<Self, SourceState> {
        match kind {
            SourceSecret::Own => Self::of(secret).ok_or(SourceState::Missing),
            SourceSecret::External(_) => match external_source_problem(secret) {
                Some(problem) => Err(SourceState::Unusable(problem)),
                None => Ok(Self::copied_from(secret)),
            },
        }
    }

    /// Its data as it is, byte for byte.
    fn copied_from(secret: &Secret) -> Self {
        Self {
            hash: data_hash(secret),
            data: secret.data.clone().unwrap_or_default(),
            credential_expires: sparrow_core::CredentialExpiry::from_annotations(
                secret.metadata.annotations.as_ref(),
            )
            .map(|e| e.at),
        }
    }
}

/// Which Secret of the mesh namespace copies are made from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SourceSecret {
    /// The mesh's own `sparrow-registry-key`, which `deploy` and `registry update` write.
    #[default]
    Own,
    /// A `kubernetes.io/dockerconfigjson` Secret another tool keeps (`--registry-secret`):
    /// read, never written.
    External(String),
}

impl SourceSecret {
    /// Its name in the mesh namespace.
    pub fn name(&self) -> &str {
        match self {
            Self::Own => PULL_SECRET_NAME,
            Self::External(name) => name,
        }
    }
}

/// How the source looks, once its watch has listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceState {
    /// It exists and is copied.
    Present,
    /// It does not exist (or, the mesh's own, lost its label): copies are kept as they are.
    Missing,
    /// It exists but cannot be copied (why, in one line without its content): copies are
    /// kept as they are.
    Unusable(String),
}

/// What is known of the Secret named `sparrow-registry-key` in one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// It carries the controller's proof that it made this very object.
    pub proven: bool,
    /// [`data_hash`] of the data it holds.
    pub data_hash: String,
    /// Its uid: the guard of every update, and what the proof is bound to.
    pub uid: Option<String>,
    /// Its `resourceVersion`: the guard of the next update.
    pub resource_version: Option<String>,
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
    /// JSON Patch with `test`s on the uid (the object the proof was made for) and on this
    /// `resourceVersion`, so it fails (422) if the Secret was replaced or changed at all since
    /// the index saw it.
    Update {
        /// The uid of the proven copy.
        uid: String,
        /// The version the update applies to; `None` when unknown (uid guard only).
        resource_version: Option<String>,
    },
}

/// What came of a planned write.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteResult {
    /// The API took it (a create also proven); the answer's uid and `resourceVersion`.
    Written {
        /// The copy's uid.
        uid: Option<String>,
        /// The copy's version after the write.
        resource_version: Option<String>,
    },
    /// The API refused it (the Secret exists, changed, or is gone) and a read found this.
    Refused(Option<Box<Secret>>),
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
    key: Arc<CopyKey>,
    source_secret: SourceSecret,
    source: Option<Arc<Source>>,
    /// Why there is no source, when there is none.
    source_problem: SourceState,
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
    /// An empty index for a control plane in `mesh_namespace`, proving copies with `key`,
    /// copying the Secret `source_secret`.
    pub fn new(mesh_namespace: &str, key: Arc<CopyKey>, source_secret: SourceSecret) -> Self {
        Self {
            mesh_namespace: mesh_namespace.to_owned(),
            key,
            source_secret,
            source: None,
            source_problem: SourceState::Missing,
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

    /// How the source looks; `None` until its watch has listed.
    pub fn source_state(&self) -> Option<SourceState> {
        self.source_synced.then(|| match self.source {
            Some(_) => SourceState::Present,
            None => self.source_problem.clone(),
        })
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
                self.read_source(&secret)
            }
            Event::Apply(secret) => self.read_source(&secret),
            Event::Delete(_) => self.lose_source(SourceState::Missing),
            Event::InitDone => {
                let listed = self.source_relist.take().unwrap_or(true);
                self.source_synced = true;
                !listed && self.lose_source(SourceState::Missing)
            }
        }
    }

    fn read_source(&mut self, secret: &Secret) -> bool {
        match Source::read(secret, &self.source_secret) {
            Ok(source) => self.set_source(Some(source)),
            Err(state) => self.lose_source(state),
        }
    }

    /// No source to copy from, for the reason `state`: the copies stay as they are.
    fn lose_source(&mut self, state: SourceState) -> bool {
        let changed = self.source_problem != state;
        self.source_problem = state;
        self.set_source(None) || changed
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

    /// An event of the copies watch (every Secret named `sparrow-registry-key`). A proven
    /// copy seen stale is scheduled for repair, one seen deleted for restoring.
    pub fn apply_copy(&mut self, event: Event<Secret>) {
        match event {
            Event::Init => self.copies_relist = Some(HashMap::new()),
            Event::InitApply(secret) => {
                let entry = self.entry_of(&secret);
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
            Event::Apply(secret) => {
                if let Some((ns, seen)) = self.entry_of(&secret) {
                    self.observe(&ns, Some(seen));
                }
            }
            Event::Delete(secret) => {
                // The deletion of a version older than the one held (a copy recreated since)
                // says nothing about the copy there now.
                if let Some((ns, gone)) = self.entry_of(&secret)
                    && !self.is_older(&ns, &gone)
                {
                    self.observe(&ns, None);
                }
            }
        }
    }

    /// A relist: proven copies that are gone were deleted while the watch was down (no
    /// Delete event comes for them).
    fn replace_copies(&mut self, fresh: HashMap<String, Observed>) {
        let vanished: Vec<String> = self
            .copies
            .iter()
            .filter(|(ns, seen)| seen.proven && !fresh.contains_key(*ns))
            .map(|(ns, _)| ns.clone())
            .collect();
        self.restore.extend(vanished);
        self.copies = fresh;
        self.schedule_stale();
    }

    /// Records what is now in `namespace` (`None`: nothing), scheduling a repair for a stale
    /// proven copy and a restore for a proven copy that disappeared.
    /// An event older than what the index holds (a watch lagging behind our own write) is
    /// ignored.
    pub fn observe(&mut self, namespace: &str, seen: Option<Observed>) {
        match seen {
            Some(seen) => {
                if self.is_older(namespace, &seen) {
                    return;
                }
                if seen.proven && self.is_stale(&seen) {
                    self.repair.insert(namespace.to_owned());
                }
                self.copies.insert(namespace.to_owned(), seen);
            }
            None => {
                if self.copies.remove(namespace).is_some_and(|old| old.proven) {
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

    fn entry_of(&self, secret: &Secret) -> Option<(String, Observed)> {
        let ns = secret.metadata.namespace.clone()?;
        (ns != self.mesh_namespace).then(|| (ns, self.observed(secret)))
    }

    /// What `secret` (a watch event, a read) says: whether the proof on it verifies, and the
    /// hash of what it holds.
    pub fn observed(&self, secret: &Secret) -> Observed {
        let meta = &secret.metadata;
        let identity = CopyIdentity {
            namespace: meta.namespace.as_deref().unwrap_or_default(),
            name: meta.name.as_deref().unwrap_or_default(),
            uid: meta.uid.as_deref(),
            annotations: meta.annotations.as_ref(),
        };
        Observed {
            proven: is_proven_copy(Some(&self.key), &self.mesh_namespace, identity),
            data_hash: data_hash(secret),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
        }
    }

    /// The proof for the copy with `uid` in `namespace`.
    pub fn proof(&self, namespace: &str, uid: &str) -> String {
        self.key
            .proof(&self.mesh_namespace, namespace, PULL_SECRET_NAME, uid)
    }

    fn is_stale(&self, seen: &Observed) -> bool {
        self.source
            .as_ref()
            .is_some_and(|source| seen.data_hash != source.hash)
    }

    fn schedule_stale(&mut self) {
        let stale = self.stale();
        self.repair.extend(stale);
    }

    /// Namespaces whose copy is proven and holds other data than the source.
    pub fn stale(&self) -> Vec<String> {
        let mut stale: Vec<String> = self
            .copies
            .iter()
            .filter(|(_, seen)| seen.proven && self.is_stale(seen))
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
            Some(Observed {
                proven: true,
                uid: Some(uid),
                data_hash,
                resource_version,
            }) => {
                if *data_hash == source.hash {
                    return Plan::Answer(EnsureOutcome::Current);
                }
                WriteAction::Update {
                    uid: uid.clone(),
                    resource_version: resource_version.clone(),
                }
            }
            Some(_) => return Plan::Answer(EnsureOutcome::Foreign),
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
            WriteResult::Written {
                uid,
                resource_version,
            } => {
                let written = Observed {
                    proven: true,
                    data_hash: write.source.hash.clone(),
                    uid,
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
            WriteResult::Refused(found) => {
                match found {
                    Some(secret) => {
                        let seen = self.observed(&secret);
                        self.copies.insert(ns.to_owned(), seen)
                    }
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

    /// Proven copies that differ from the source right now (the stale-copies gauge).
    pub fn stale_count(&self) -> usize {
        self.copies
            .values()
            .filter(|seen| seen.proven && self.is_stale(seen))
            .count()
    }

    /// Of `namespaces` (those where injected pods run), the ones that hold no Secret of the
    /// copies' name at all: a copy is owed there (after `remove` and `deploy`, or a copy
    /// deleted while no replica watched). One that holds a foreign Secret is not listed.
    pub fn without_copy(&self, namespaces: impl IntoIterator<Item = String>) -> Vec<String> {
        namespaces
            .into_iter()
            .filter(|ns| *ns != self.mesh_namespace && !self.copies.contains_key(ns))
            .collect()
    }
}

#[cfg(test)]
mod tests;
