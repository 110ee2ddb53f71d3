//! Load figures for testkube: creates 10,000 secrets across 1,000 namespaces, lists them
//! cluster-wide by label selector and watches them. Point it at a running `testkube serve`
//! with KUBECONFIG; `scripts/bench-testkube.sh` does that and adds the server's RSS.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ListParams, ObjectMeta, PostParams, WatchEvent, WatchParams};

const NAMESPACES: usize = 1_000;
const SECRETS_PER_NAMESPACE: usize = 10;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = kube::Client::try_default()
        .await
        .context("kube client from KUBECONFIG")?;
    let all_secrets: Api<Secret> = Api::all(client.clone());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let start_rv = all_secrets
        .list(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();

    // Watch everything from before the first create, concurrently with the load.
    let watch_api = all_secrets.clone();
    let watch_rv = start_rv.clone();
    let watcher = tokio::spawn(async move {
        let mut stream = watch_api
            .watch(&WatchParams::default().timeout(290), &watch_rv)
            .await?
            .boxed();
        let mut added = 0usize;
        while let Some(ev) = stream.try_next().await? {
            if matches!(ev, WatchEvent::Added(_)) {
                added += 1;
                if added == NAMESPACES * SECRETS_PER_NAMESPACE {
                    break;
                }
            }
        }
        anyhow::Ok((added, Instant::now()))
    });

    let mut create_times = Vec::with_capacity(NAMESPACES * SECRETS_PER_NAMESPACE);
    let load_started = Instant::now();
    for n in 0..NAMESPACES {
        let ns_name = format!("bench-{n:04}");
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(ns_name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating {ns_name}"))?;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns_name);
        for i in 0..SECRETS_PER_NAMESPACE {
            let (name, labels) = if i == 0 {
                (
                    "sparrow-registry-key".to_string(),
                    BTreeMap::from([("usage".to_string(), "sparrow-registry-key".to_string())]),
                )
            } else {
                (
                    format!("other-{i}"),
                    BTreeMap::from([("app".to_string(), "bench".to_string())]),
                )
            };
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(name),
                    labels: Some(labels),
                    ..Default::default()
                },
                string_data: Some(BTreeMap::from([("token".to_string(), "x".repeat(64))])),
                ..Default::default()
            };
            let t = Instant::now();
            secrets.create(&PostParams::default(), &secret).await?;
            create_times.push(t.elapsed());
        }
    }
    let load_elapsed = load_started.elapsed();
    create_times.sort_unstable();

    let list_started = Instant::now();
    let labelled = all_secrets
        .list(&ListParams::default().labels("usage=sparrow-registry-key"))
        .await?;
    let list_elapsed = list_started.elapsed();
    ensure!(
        labelled.items.len() == NAMESPACES,
        "label selector listed {} secrets",
        labelled.items.len()
    );

    let full_started = Instant::now();
    let everything = all_secrets.list(&ListParams::default()).await?;
    let full_elapsed = full_started.elapsed();
    ensure!(
        everything.items.len() == NAMESPACES * SECRETS_PER_NAMESPACE,
        "listed {}",
        everything.items.len()
    );

    let (added, watch_done) = tokio::time::timeout(Duration::from_secs(120), watcher)
        .await
        .context("watch finished in time")???;
    ensure!(
        added == NAMESPACES * SECRETS_PER_NAMESPACE,
        "watch saw {added} ADDED events"
    );

    let replay_started = Instant::now();
    let mut replay = all_secrets
        .watch(&WatchParams::default().timeout(60), &start_rv)
        .await?
        .boxed();
    let mut replayed = 0usize;
    while let Some(ev) = replay.try_next().await? {
        if matches!(ev, WatchEvent::Added(_)) {
            replayed += 1;
            if replayed == NAMESPACES * SECRETS_PER_NAMESPACE {
                break;
            }
        }
    }
    let replay_elapsed = replay_started.elapsed();

    println!("secrets created:          {}", create_times.len());
    println!(
        "create round trip median: {:?}",
        percentile(&create_times, 0.5)
    );
    println!(
        "create round trip p99:    {:?}",
        percentile(&create_times, 0.99)
    );
    println!("load total (incl. ns):    {load_elapsed:?}");
    println!(
        "list -l usage=... -A:     {} items in {list_elapsed:?}",
        labelled.items.len()
    );
    println!(
        "list all secrets -A:      {} items in {full_elapsed:?}",
        everything.items.len()
    );
    println!(
        "live watch ADDED events:  {added} (done {:?} after load start)",
        watch_done.duration_since(load_started)
    );
    println!("watch replay from rv {start_rv}: {replayed} events in {replay_elapsed:?}");
    Ok(())
}
