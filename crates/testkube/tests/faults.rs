//! Fault injection: failing requests, latency, cut watches, restart.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::watcher;
use testkube::TestCluster;

fn cm(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// One HTTP/1.1 request on a fresh connection, without kube-rs's retry layer.
async fn plain_request(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut out = String::new();
    stream.read_to_string(&mut out).await.expect("read");
    out
}

#[tokio::test]
async fn next_requests_fail_with_the_injected_status() {
    let cluster = TestCluster::builder()
        .plain_http()
        .start()
        .await
        .expect("start");
    cluster.fail_next("create", "configmaps", 2, 429);
    let body = serde_json::to_string(&cm("a")).expect("json");
    let request = format!(
        "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let response = plain_request(cluster.addr(), &request).await;
    assert!(response.starts_with("HTTP/1.1 429"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("retry-after: 1"),
        "{response}"
    );
    assert!(
        response.contains("\"reason\":\"TooManyRequests\""),
        "{response}"
    );
    // kube-rs retries a 429 after Retry-After, so the second injected failure is absorbed.
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    api.create(&PostParams::default(), &cm("a"))
        .await
        .expect("retried past the 429");
    assert_eq!(cluster.request_count("create", "configmaps"), 3);
    cluster.fail_next("get", "configmaps", 1, 500);
    match api.get("a").await.expect_err("injected 500") {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (500, "InternalError")),
        other => panic!("unexpected {other:?}"),
    }
    api.get("a").await.expect("only one failure injected");
    cluster.reset_requests();
    assert_eq!(cluster.total_requests(), 0);
}

#[tokio::test]
async fn latency_is_added() {
    let cluster = TestCluster::start().await.expect("start");
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    cluster.set_latency(Duration::from_millis(200));
    let started = Instant::now();
    api.list(&Default::default()).await.expect("list");
    assert!(started.elapsed() >= Duration::from_millis(200));
    cluster.clear_faults();
}

#[tokio::test]
async fn cut_watches_forces_a_rewatch() {
    let cluster = TestCluster::start().await.expect("start");
    let api: Api<Secret> = Api::namespaced(cluster.client(), "default");
    let mut stream = watcher::watcher(api.clone(), watcher::Config::default()).boxed();
    // Init, InitDone: the initial list is empty.
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("event")
            .expect("open")
            .expect("ok");
    }
    // Drive the stream until the watch request is open, then cut it.
    let poll = tokio::spawn(async move {
        let mut events = Vec::new();
        while let Some(ev) = stream.next().await {
            let done = matches!(ev, Ok(watcher::Event::Apply(_)));
            events.push(ev.is_ok());
            if done {
                break;
            }
        }
        events
    });
    tokio::time::timeout(Duration::from_secs(10), cluster.wait_for_watch("secrets"))
        .await
        .expect("watch opened");
    let watches_before = cluster.request_count("watch", "secrets");
    cluster.cut_watches();
    assert_eq!(cluster.watch_count(), 0);
    tokio::time::timeout(Duration::from_secs(10), cluster.wait_for_watch("secrets"))
        .await
        .expect("watcher re-watched after the cut");
    assert!(cluster.request_count("watch", "secrets") > watches_before);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("after-cut".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &secret)
        .await
        .expect("create");
    let events = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect("event after cut")
        .expect("task");
    assert!(events.last().copied().unwrap_or(false));
}

#[tokio::test]
async fn restart_keeps_the_store_and_port() {
    let cluster = TestCluster::start().await.expect("start");
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    api.create(&PostParams::default(), &cm("kept"))
        .await
        .expect("create");
    let addr = cluster.addr();
    cluster.stop().await;
    assert!(api.get("kept").await.is_err(), "stopped server refuses");
    cluster.resume().await.expect("resume");
    assert_eq!(cluster.addr(), addr);
    let kept = api
        .get("kept")
        .await
        .expect("served again with the same store");
    assert_eq!(kept.metadata.name.as_deref(), Some("kept"));
    cluster.restart().await.expect("restart");
    assert!(api.get("kept").await.is_ok());
}
