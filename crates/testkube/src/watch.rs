//! Watch streams: replay from a resourceVersion (or the current state), live events filtered by
//! selectors with the real API's ADDED/DELETED transitions, bookmarks, timeouts.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::handlers::{Body, Shared, partial};
use crate::resources::RESOURCES;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::{Event, EventKind};

/// Parameters of one watch request.
pub struct WatchRequest {
    /// Index into [`RESOURCES`].
    pub resource: usize,
    /// Namespace scope, `None` for all.
    pub namespace: Option<String>,
    /// Parsed `resourceVersion`: `None` means "current state first".
    pub from: Option<u64>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `timeoutSeconds`.
    pub timeout: Duration,
    /// Answer with PartialObjectMetadata objects.
    pub metadata_only: bool,
}

struct Emitter {
    req: WatchRequest,
    tx: mpsc::Sender<Bytes>,
}

impl Emitter {
    fn matches(&self, obj: &Value) -> bool {
        self.req.labels.matches_object(obj) && self.req.fields.matches(obj)
    }

    fn render(&self, obj: &Value) -> Value {
        if self.req.metadata_only {
            partial(obj)
        } else {
            obj.clone()
        }
    }

    async fn send(&self, kind: &str, object: Value) -> bool {
        let mut line = match serde_json::to_vec(&json!({"type": kind, "object": object})) {
            Ok(line) => line,
            Err(_) => return false,
        };
        line.push(b'\n');
        self.tx.send(Bytes::from(line)).await.is_ok()
    }

    /// Sends one store event, translating selector transitions; false when the client is gone.
    async fn event(&self, ev: &Event) -> bool {
        let now = self.matches(&ev.object);
        let before = ev.old.as_deref().is_some_and(|o| self.matches(o));
        let kind = match ev.kind {
            EventKind::Added if now => EventKind::Added,
            EventKind::Deleted if now || before => EventKind::Deleted,
            EventKind::Modified if now && before => EventKind::Modified,
            EventKind::Modified if now => EventKind::Added,
            EventKind::Modified if before => EventKind::Deleted,
            _ => return true,
        };
        self.send(kind.as_str(), self.render(&ev.object)).await
    }

    async fn bookmark(&self, rv: u64) -> bool {
        let def = &RESOURCES[self.req.resource];
        let (kind, api_version) = if self.req.metadata_only {
            (
                "PartialObjectMetadata".to_string(),
                "meta.k8s.io/v1".to_string(),
            )
        } else {
            (def.kind.to_string(), def.api_version())
        };
        let metadata = json!({"resourceVersion": rv.to_string()});
        self.send(
            "BOOKMARK",
            json!({"kind": kind, "apiVersion": api_version, "metadata": metadata}),
        )
        .await
    }
}

/// Starts a watch and returns its streaming body.
pub fn start(shared: Arc<Shared>, req: WatchRequest) -> Body {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(run(shared, Emitter { req, tx }));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    StreamBody::new(stream).boxed_unsync()
}

async fn run(shared: Arc<Shared>, em: Emitter) {
    let sub = shared
        .store
        .watch(em.req.resource, em.req.namespace.clone(), em.req.from);
    let mut sub = match sub {
        Ok(sub) => sub,
        Err(err) => {
            let _ = em.send("ERROR", err.to_status()).await;
            return;
        }
    };
    let mut last_rv = em.req.from.unwrap_or(0);
    for ev in std::mem::take(&mut sub.backlog) {
        last_rv = last_rv.max(ev.rv);
        if !em.event(&ev).await {
            return;
        }
    }
    last_rv = last_rv.max(sub.rv);
    let deadline = tokio::time::sleep(em.req.timeout);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(shared.bookmark_interval);
    ticker.tick().await;
    loop {
        tokio::select! {
            ev = sub.rx.recv() => {
                let Some(ev) = ev else { return };
                last_rv = last_rv.max(ev.rv);
                if !em.event(&ev).await {
                    return;
                }
            }
            _ = ticker.tick(), if em.req.bookmarks => {
                // Every event at or below the store's version is already queued for us; drain
                // them so the bookmark never claims a version the client has not seen.
                let rv = shared.store.resource_version();
                while let Ok(ev) = sub.rx.try_recv() {
                    if !em.event(&ev).await {
                        return;
                    }
                }
                last_rv = last_rv.max(rv);
                if !em.bookmark(last_rv).await {
                    return;
                }
            }
            _ = &mut deadline => return,
            _ = em.tx.closed() => return,
        }
    }
}
