//! The two watches that feed the index. They survive API restarts and 410 Gone (the watcher
//! relists with backoff); they return only if the stream ends, which the caller treats as a
//! failure.

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher;
use sparrow_core::names::PULL_SECRET_NAME;

use super::PullSecretCopier;
use crate::error::describe_watch;

fn by_name(name: &str) -> watcher::Config {
    watcher::Config::default().fields(&format!("metadata.name={name}"))
}

impl PullSecretCopier {
    /// Runs both watches; returns only if one of them ends.
    pub async fn run_watches(&self) {
        tokio::select! {
            () = self.watch_source() => tracing::error!("the source pull-secret watch ended"),
            () = self.watch_copies() => tracing::error!("the pull-secret copies watch ended"),
        }
    }

    async fn watch_source(&self) {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.config.mesh_namespace);
        let source = by_name(self.config.source.name());
        let mut stream = watcher::watcher(api, source)
            .backoff(crate::runtime::watch_backoff())
            .boxed();
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    if self.update(|index| index.apply_source(event)) {
                        tracing::info!(present = self.has_source(), "source pull secret changed");
                        self.refresh_stale_gauge();
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %describe_watch(&error), "watching the source pull secret");
                }
            }
        }
    }

    async fn watch_copies(&self) {
        // With data: whether a copy is current is read from what it holds (a copy edited by
        // hand is repaired). The fieldSelector keeps every other Secret out.
        let api: Api<Secret> = Api::all(self.client.clone());
        let mut stream = watcher::watcher(api, by_name(PULL_SECRET_NAME))
            .backoff(crate::runtime::watch_backoff())
            .boxed();
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    let relisted = matches!(event, watcher::Event::InitDone);
                    self.update(|index| index.apply_copy(event));
                    if relisted {
                        self.refresh_stale_gauge();
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %describe_watch(&error), "watching pull-secret copies");
                }
            }
        }
    }
}
