//! The object store: one JSON value per object, a global resourceVersion, an event history for
//! watches, and the live watcher list. Every operation runs under one short mutex, no await inside.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::resources::{NAMESPACES, RESOURCES};
use crate::util;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventKind {
    /// The watch event `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as kept in the history and sent to watchers.
#[derive(Debug)]
pub struct Event {
    /// resourceVersion the change produced.
    pub rv: u64,
    /// Index into [`RESOURCES`].
    pub resource: usize,
    /// Namespace of the object ("" for cluster-scoped).
    pub namespace: String,
    /// Kind of change.
    pub kind: EventKind,
    /// The object after the change (for deletes: the last state).
    pub object: Arc<Value>,
    /// The object before the change, for selector transitions.
    pub old: Option<Arc<Value>>,
}

/// A live watch registration.
pub struct Subscription {
    /// Events to send before live ones (history replay or synthetic ADDED).
    pub backlog: Vec<Arc<Event>>,
    /// Live events.
    pub rx: mpsc::UnboundedReceiver<Arc<Event>>,
    /// resourceVersion at subscription time.
    pub rv: u64,
}

struct Watcher {
    resource: usize,
    namespace: Option<String>,
    tx: mpsc::UnboundedSender<Arc<Event>>,
}

type Key = (String, String);

struct Inner {
    rv: u64,
    objects: Vec<BTreeMap<Key, Arc<Value>>>,
    history: VecDeque<Arc<Event>>,
    /// Highest resourceVersion dropped from the history.
    compacted_rv: u64,
    watchers: Vec<Watcher>,
}

/// Shared object store.
pub struct Store {
    inner: Mutex<Inner>,
    history_limit: usize,
    /// Woken whenever a watch registers, for tests that wait for a client's watch.
    registered: tokio::sync::Notify,
}

/// Reads `metadata.<field>` as a string.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// Reads `metadata.resourceVersion` as a number.
pub fn object_rv(obj: &Value) -> Option<u64> {
    meta_str(obj, "resourceVersion")?.parse().ok()
}

/// `metadata` of an object, created when missing; `None` when `obj` is not an object.
fn metadata_mut(obj: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
    let meta = obj
        .as_object_mut()?
        .entry("metadata")
        .or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut()
}

fn set_meta(obj: &mut Value, field: &str, value: Value) {
    if let Some(meta) = metadata_mut(obj) {
        meta.insert(field.into(), value);
    }
}

fn not_an_object() -> ApiError {
    ApiError::bad_request("the object must be a JSON object")
}

impl Store {
    /// An empty store keeping `history_limit` events for watch resumption.
    pub fn new(history_limit: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                rv: 1,
                objects: RESOURCES.iter().map(|_| BTreeMap::new()).collect(),
                history: VecDeque::new(),
                compacted_rv: 0,
                watchers: Vec::new(),
            }),
            history_limit: history_limit.max(1),
            registered: tokio::sync::Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that matters
        // to a test double, so recover from poisoning instead of cascading panics.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// One object.
    pub fn get(&self, resource: usize, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.lock().objects[resource]
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Objects of a resource, in one namespace or all, with the list resourceVersion.
    pub fn list(&self, resource: usize, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let inner = self.lock();
        let map = &inner.objects[resource];
        let items = match namespace {
            Some(ns) => map
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v.clone())
                .collect(),
            None => map.values().cloned().collect(),
        };
        (items, inner.rv)
    }

    /// Stores a new object. The caller has set `metadata.namespace` for namespaced resources
    /// and a name or generateName.
    pub fn create(
        &self,
        resource: usize,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let def = &RESOURCES[resource];
        let mut inner = self.lock();
        let namespace = meta_str(&obj, "namespace").unwrap_or_default().to_string();
        if def.namespaced
            && !inner.objects[NAMESPACES].contains_key(&(String::new(), namespace.clone()))
        {
            return Err(ApiError::not_found(
                "",
                "namespaces",
                "namespaces",
                &namespace,
            ));
        }
        let name = match meta_str(&obj, "name").filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => {
                let prefix = meta_str(&obj, "generateName").unwrap_or_default();
                let mut candidate = format!("{prefix}{}", util::random_suffix());
                while inner.objects[resource].contains_key(&(namespace.clone(), candidate.clone()))
                {
                    candidate = format!("{prefix}{}", util::random_suffix());
                }
                candidate
            }
        };
        let key = (namespace, name.clone());
        if inner.objects[resource].contains_key(&key) {
            return Err(ApiError::already_exists(
                def.group,
                def.plural,
                &def.qualified(),
                &name,
            ));
        }
        let rv = if dry_run { inner.rv } else { inner.rv + 1 };
        let has_spec = obj.get("spec").is_some();
        {
            let meta = metadata_mut(&mut obj).ok_or_else(not_an_object)?;
            meta.insert("name".into(), json!(name));
            meta.insert("uid".into(), json!(util::new_uid()));
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
            meta.insert("creationTimestamp".into(), json!(util::now_rfc3339()));
            meta.remove("deletionTimestamp");
            if has_spec && resource != NAMESPACES {
                meta.insert("generation".into(), json!(1));
            }
        }
        let obj = Arc::new(obj);
        if !dry_run {
            inner.rv = rv;
            inner.objects[resource].insert(key.clone(), obj.clone());
            self.record(
                &mut inner,
                resource,
                key.0,
                EventKind::Added,
                obj.clone(),
                None,
            );
        }
        Ok(obj)
    }

    /// Replaces an existing object. `precondition` is the resourceVersion the caller based the
    /// change on; a mismatch is a 409 Conflict. An unchanged object keeps its resourceVersion.
    pub fn update(
        &self,
        resource: usize,
        mut obj: Value,
        precondition: Option<u64>,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let def = &RESOURCES[resource];
        let mut inner = self.lock();
        let namespace = meta_str(&obj, "namespace").unwrap_or_default().to_string();
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let key = (namespace, name.clone());
        let Some(old) = inner.objects[resource].get(&key).cloned() else {
            return Err(ApiError::not_found(
                def.group,
                def.plural,
                &def.qualified(),
                &name,
            ));
        };
        let old_rv = object_rv(&old).unwrap_or(0);
        if precondition.is_some_and(|p| p != old_rv) {
            return Err(ApiError::conflict(
                def.group,
                def.plural,
                &def.qualified(),
                &name,
            ));
        }
        {
            let old_meta = old.get("metadata");
            let meta = metadata_mut(&mut obj).ok_or_else(not_an_object)?;
            for field in ["uid", "creationTimestamp", "generation"] {
                match old_meta.and_then(|m| m.get(field)) {
                    Some(v) => meta.insert(field.into(), v.clone()),
                    None => meta.remove(field),
                };
            }
            meta.insert("resourceVersion".into(), json!(old_rv.to_string()));
        }
        if obj == *old {
            return Ok(old);
        }
        if obj.get("spec") != old.get("spec") && obj.get("spec").is_some() {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            set_meta(&mut obj, "generation", json!(generation + 1));
        }
        let rv = if dry_run { old_rv } else { inner.rv + 1 };
        set_meta(&mut obj, "resourceVersion", json!(rv.to_string()));
        let obj = Arc::new(obj);
        if !dry_run {
            inner.rv = rv;
            inner.objects[resource].insert(key.clone(), obj.clone());
            self.record(
                &mut inner,
                resource,
                key.0,
                EventKind::Modified,
                obj.clone(),
                Some(old),
            );
        }
        Ok(obj)
    }

    /// Removes an object; deleting a namespace removes every object inside it first.
    pub fn delete(
        &self,
        resource: usize,
        namespace: &str,
        name: &str,
        precondition: Option<u64>,
        dry_run: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let def = &RESOURCES[resource];
        let mut inner = self.lock();
        let key = (namespace.to_string(), name.to_string());
        let Some(old) = inner.objects[resource].get(&key).cloned() else {
            return Err(ApiError::not_found(
                def.group,
                def.plural,
                &def.qualified(),
                name,
            ));
        };
        if precondition.is_some_and(|p| Some(p) != object_rv(&old)) {
            return Err(ApiError::conflict(
                def.group,
                def.plural,
                &def.qualified(),
                name,
            ));
        }
        if dry_run {
            return Ok(old);
        }
        if resource == NAMESPACES {
            for (idx, child_def) in RESOURCES.iter().enumerate() {
                if !child_def.namespaced {
                    continue;
                }
                let keys: Vec<Key> = inner.objects[idx]
                    .range((name.to_string(), String::new())..)
                    .take_while(|((n, _), _)| n == name)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in keys {
                    self.remove_locked(&mut inner, idx, k);
                }
            }
        }
        self.remove_locked(&mut inner, resource, key)
            .ok_or_else(|| ApiError::not_found(def.group, def.plural, &def.qualified(), name))
    }

    fn remove_locked(&self, inner: &mut Inner, resource: usize, key: Key) -> Option<Arc<Value>> {
        let old = inner.objects[resource].remove(&key)?;
        inner.rv += 1;
        let mut last = (*old).clone();
        set_meta(&mut last, "resourceVersion", json!(inner.rv.to_string()));
        if resource == NAMESPACES {
            last["status"] = json!({"phase": "Terminating"});
        }
        let last = Arc::new(last);
        self.record(
            inner,
            resource,
            key.0,
            EventKind::Deleted,
            last.clone(),
            Some(old),
        );
        Some(last)
    }

    fn record(
        &self,
        inner: &mut Inner,
        resource: usize,
        namespace: String,
        kind: EventKind,
        object: Arc<Value>,
        old: Option<Arc<Value>>,
    ) {
        let event = Arc::new(Event {
            rv: inner.rv,
            resource,
            namespace,
            kind,
            object,
            old,
        });
        inner.watchers.retain(|w| {
            if w.resource != event.resource {
                return !w.tx.is_closed();
            }
            if w.namespace
                .as_ref()
                .is_some_and(|ns| *ns != event.namespace)
            {
                return !w.tx.is_closed();
            }
            w.tx.send(event.clone()).is_ok()
        });
        inner.history.push_back(event);
        while inner.history.len() > self.history_limit {
            if let Some(dropped) = inner.history.pop_front() {
                inner.compacted_rv = dropped.rv;
            }
        }
    }

    /// Registers a watcher. `from = None` replays the current objects as ADDED (watch without a
    /// resourceVersion, or "0"); `Some(rv)` replays the history after `rv`, or fails with the
    /// 410 Expired error when that part of the history is gone.
    pub fn watch(
        &self,
        resource: usize,
        namespace: Option<String>,
        from: Option<u64>,
    ) -> Result<Subscription, ApiError> {
        let mut inner = self.lock();
        let backlog: Vec<Arc<Event>> = match from {
            None => {
                let map = &inner.objects[resource];
                let iter: Box<dyn Iterator<Item = (&Key, &Arc<Value>)>> = match &namespace {
                    Some(ns) => Box::new(
                        map.range((ns.clone(), String::new())..)
                            .take_while(move |((n, _), _)| n == ns),
                    ),
                    None => Box::new(map.iter()),
                };
                iter.map(|((ns, _), obj)| {
                    Arc::new(Event {
                        rv: object_rv(obj).unwrap_or(0),
                        resource,
                        namespace: ns.clone(),
                        kind: EventKind::Added,
                        object: obj.clone(),
                        old: None,
                    })
                })
                .collect()
            }
            Some(rv) => {
                if rv < inner.compacted_rv {
                    return Err(ApiError::expired(rv));
                }
                inner
                    .history
                    .iter()
                    .filter(|e| {
                        e.rv > rv
                            && e.resource == resource
                            && namespace.as_ref().is_none_or(|ns| *ns == e.namespace)
                    })
                    .cloned()
                    .collect()
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        inner.watchers.push(Watcher {
            resource,
            namespace,
            tx,
        });
        let rv = inner.rv;
        drop(inner);
        self.registered.notify_waiters();
        Ok(Subscription { backlog, rx, rv })
    }

    /// Ends every open watch stream (fault injection).
    pub fn cut_watches(&self) {
        self.lock().watchers.clear();
    }

    /// Number of live watch registrations, on one resource or all.
    pub fn watcher_count(&self, resource: Option<usize>) -> usize {
        let mut inner = self.lock();
        inner.watchers.retain(|w| !w.tx.is_closed());
        inner
            .watchers
            .iter()
            .filter(|w| resource.is_none_or(|r| r == w.resource))
            .count()
    }

    /// Resolves once at least one watch is open on any of `resources`.
    pub async fn wait_for_watcher(&self, resources: &[usize]) {
        loop {
            let notified = self.registered.notified();
            tokio::pin!(notified);
            // Register interest before checking, so a registration in between is not missed.
            notified.as_mut().enable();
            if resources.iter().any(|r| self.watcher_count(Some(*r)) > 0) {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;

    fn secrets() -> usize {
        find("", "v1", "secrets").expect("secrets")
    }

    fn ns(store: &Store, name: &str) {
        store
            .create(NAMESPACES, json!({"metadata": {"name": name}}), false)
            .expect("namespace");
    }

    fn secret(ns: &str, name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns}})
    }

    #[test]
    fn create_assigns_metadata_and_refuses_duplicates() {
        let store = Store::new(100);
        ns(&store, "a");
        let s = store
            .create(secrets(), secret("a", "x"), false)
            .expect("created");
        assert!(object_rv(&s).expect("rv") > 1);
        assert_eq!(meta_str(&s, "uid").map(str::len), Some(36));
        let err = store
            .create(secrets(), secret("a", "x"), false)
            .expect_err("dup");
        assert_eq!(err.reason, "AlreadyExists");
        let err = store
            .create(secrets(), secret("missing", "x"), false)
            .expect_err("no ns");
        assert_eq!(err.message, "namespaces \"missing\" not found");
    }

    #[test]
    fn generate_name_and_dry_run() {
        let store = Store::new(100);
        ns(&store, "a");
        let rv = store.resource_version();
        let obj = json!({"metadata": {"generateName": "web-", "namespace": "a"}});
        let s = store.create(secrets(), obj, true).expect("dry run");
        assert!(meta_str(&s, "name").expect("name").starts_with("web-"));
        assert_eq!(store.resource_version(), rv);
        assert!(store.list(secrets(), None).0.is_empty());
    }

    #[test]
    fn update_conflicts_on_stale_version_and_noop_keeps_version() {
        let store = Store::new(100);
        ns(&store, "a");
        let s = store
            .create(secrets(), secret("a", "x"), false)
            .expect("created");
        let rv = object_rv(&s).expect("rv");
        let same = store
            .update(secrets(), (*s).clone(), Some(rv), false)
            .expect("noop");
        assert_eq!(object_rv(&same), Some(rv));
        let mut changed = (*s).clone();
        changed["data"] = json!({"k": "dg=="});
        let updated = store
            .update(secrets(), changed.clone(), Some(rv), false)
            .expect("update");
        assert!(object_rv(&updated).expect("rv") > rv);
        let err = store
            .update(secrets(), changed, Some(rv), false)
            .expect_err("stale");
        assert_eq!(err.code, 409);
        assert_eq!(err.reason, "Conflict");
    }

    #[test]
    fn deleting_a_namespace_deletes_its_objects_and_notifies_watchers() {
        let store = Store::new(100);
        ns(&store, "a");
        ns(&store, "b");
        store.create(secrets(), secret("a", "x"), false).expect("x");
        store.create(secrets(), secret("b", "y"), false).expect("y");
        let mut sub = store
            .watch(secrets(), None, Some(store.resource_version()))
            .expect("watch");
        store
            .delete(NAMESPACES, "", "a", None, false)
            .expect("delete ns");
        let ev = sub.rx.try_recv().expect("event");
        assert_eq!(ev.kind, EventKind::Deleted);
        assert_eq!(meta_str(&ev.object, "name"), Some("x"));
        assert_eq!(store.list(secrets(), None).0.len(), 1);
        assert!(store.get(NAMESPACES, "", "a").is_none());
    }

    #[test]
    fn watch_replays_history_and_expires_compacted_versions() {
        let store = Store::new(3);
        ns(&store, "a");
        let start = store.resource_version();
        for i in 0..5 {
            store
                .create(secrets(), secret("a", &format!("s{i}")), false)
                .expect("created");
        }
        assert_eq!(
            store
                .watch(secrets(), None, Some(start))
                .err()
                .map(|e| e.code),
            Some(410)
        );
        let recent = store.resource_version() - 2;
        let sub = store
            .watch(secrets(), Some("a".into()), Some(recent))
            .expect("recent");
        assert_eq!(sub.backlog.len(), 2);
        let all = store.watch(secrets(), None, None).expect("from now");
        assert_eq!(all.backlog.len(), 5);
        assert!(all.backlog.iter().all(|e| e.kind == EventKind::Added));
        store.cut_watches();
        assert_eq!(store.watcher_count(None), 0);
    }
}
