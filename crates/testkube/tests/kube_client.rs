//! kube-rs against testkube: CRUD, watchers, conflicts, server-side apply.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use testkube::TestCluster;

async fn namespace(client: &kube::Client, name: &str) {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
}

fn secret(name: &str, labels: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
        ..Default::default()
    }
}

fn api_code(err: kube::Error) -> u16 {
    match err {
        kube::Error::Api(status) => status.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Waits (bounded) for the next event the stream yields.
async fn next<S, T>(stream: &mut S) -> T
where
    S: futures::Stream<Item = Result<T, watcher::Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("event within 10s")
        .expect("stream open")
        .expect("no watch error")
}

#[tokio::test]
async fn crud_with_typed_api() {
    let cluster = TestCluster::start().await.expect("start");
    let client = cluster.client();
    namespace(&client, "shop").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "shop");
    let created = secrets
        .create(&PostParams::default(), &secret("a", &[("usage", "x")]))
        .await
        .expect("create");
    assert!(created.metadata.uid.is_some());
    assert_eq!(
        created
            .data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(|b| b.0.clone()),
        Some(b"v".to_vec())
    );
    assert_eq!(
        api_code(
            secrets
                .create(&PostParams::default(), &secret("a", &[]))
                .await
                .expect_err("dup")
        ),
        409
    );
    secrets
        .create(&PostParams::default(), &secret("b", &[]))
        .await
        .expect("create b");
    let listed = secrets
        .list(&ListParams::default().labels("usage=x"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    assert!(listed.metadata.resource_version.is_some());
    let by_name = secrets
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .expect("list");
    assert_eq!(by_name.items[0].metadata.name.as_deref(), Some("b"));
    let patched = secrets
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"tier": "web"}}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(
        patched
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("tier"))
            .map(String::as_str),
        Some("web")
    );
    let json_patched = secrets
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(serde_json::json!([
                    {"op": "add", "path": "/metadata/annotations", "value": {"a": "1"}}
                ]))
                .expect("patch"),
            ),
        )
        .await
        .expect("json patch");
    assert_eq!(
        json_patched
            .metadata
            .annotations
            .and_then(|a| a.get("a").cloned())
            .as_deref(),
        Some("1")
    );
    secrets
        .delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    assert_eq!(api_code(secrets.get("a").await.expect_err("gone")), 404);
    let generated = Secret {
        metadata: ObjectMeta {
            generate_name: Some("gen-".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let g = secrets
        .create(&PostParams::default(), &generated)
        .await
        .expect("generateName");
    assert!(
        g.metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("gen-") && n.len() == 9)
    );
    assert_eq!(cluster.request_count("create", "secrets"), 4);
}

#[tokio::test]
async fn stale_update_conflicts() {
    let cluster = TestCluster::start().await.expect("start");
    let client = cluster.client();
    let secrets: Api<Secret> = Api::namespaced(client, "default");
    let first = secrets
        .create(&PostParams::default(), &secret("s", &[]))
        .await
        .expect("create");
    let mut a = first.clone();
    a.metadata.labels = Some(BTreeMap::from([("v".to_string(), "1".to_string())]));
    secrets
        .replace("s", &PostParams::default(), &a)
        .await
        .expect("first update");
    let mut b = first;
    b.metadata.labels = Some(BTreeMap::from([("v".to_string(), "2".to_string())]));
    let err = secrets
        .replace("s", &PostParams::default(), &b)
        .await
        .expect_err("stale");
    match err {
        kube::Error::Api(s) => {
            assert!(s.is_conflict());
            assert!(s.message.contains("the object has been modified"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn server_side_apply_creates_and_merges() {
    let cluster = TestCluster::start().await.expect("start");
    let secrets: Api<Secret> = Api::namespaced(cluster.client(), "default");
    let pp = PatchParams::apply("sparrowctl").force();
    let mut s = secret("applied", &[("usage", "sparrow-registry-key")]);
    s.string_data = None;
    s.type_ = Some("Opaque".into());
    let created = secrets
        .patch("applied", &pp, &Patch::Apply(&s))
        .await
        .expect("apply creates");
    let rv1 = created.metadata.resource_version.clone();
    let again = secrets
        .patch("applied", &pp, &Patch::Apply(&s))
        .await
        .expect("apply again");
    assert_eq!(
        again.metadata.resource_version, rv1,
        "an unchanged apply is a no-op"
    );
    s.metadata.annotations = Some(BTreeMap::from([(
        "sparrow-mesh.io/source".to_string(),
        "x/y".to_string(),
    )]));
    let changed = secrets
        .patch("applied", &pp, &Patch::Apply(&s))
        .await
        .expect("apply change");
    assert_ne!(changed.metadata.resource_version, rv1);
    assert_eq!(
        changed
            .metadata
            .labels
            .and_then(|l| l.get("usage").cloned())
            .as_deref(),
        Some("sparrow-registry-key")
    );
    // A second manager's label survives; the first manager's dropped annotation goes.
    secrets
        .patch(
            "applied",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"team": "a"}}})),
        )
        .await
        .expect("other manager");
    s.metadata.annotations = None;
    let pruned = secrets
        .patch("applied", &pp, &Patch::Apply(&s))
        .await
        .expect("apply without annotation");
    assert!(pruned.metadata.annotations.unwrap_or_default().is_empty());
    assert_eq!(
        pruned
            .metadata
            .labels
            .unwrap_or_default()
            .get("team")
            .map(String::as_str),
        Some("a")
    );
    let no_manager = secrets
        .patch("applied", &PatchParams::default(), &Patch::Apply(&s))
        .await;
    assert_eq!(
        api_code(no_manager.expect_err("fieldManager required")),
        400
    );
    let dry = PatchParams::apply("sparrowctl").dry_run();
    secrets
        .patch("dry", &dry, &Patch::Apply(&secret("dry", &[])))
        .await
        .expect("dry-run apply");
    assert_eq!(
        api_code(
            secrets
                .get("dry")
                .await
                .expect_err("dry run stored nothing")
        ),
        404
    );
}

#[tokio::test]
async fn watcher_sees_events_in_order() {
    let cluster = TestCluster::start().await.expect("start");
    let client = cluster.client();
    namespace(&client, "shop").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "shop");
    secrets
        .create(&PostParams::default(), &secret("pre", &[("usage", "k")]))
        .await
        .expect("pre");
    let cfg = watcher::Config::default().labels("usage=k");
    let mut stream = watcher::watcher(secrets.clone(), cfg).boxed();
    assert!(matches!(next(&mut stream).await, Event::Init));
    match next(&mut stream).await {
        Event::InitApply(s) => assert_eq!(s.metadata.name.as_deref(), Some("pre")),
        other => panic!("expected InitApply, got {other:?}"),
    }
    assert!(matches!(next(&mut stream).await, Event::InitDone));
    secrets
        .create(&PostParams::default(), &secret("unlabelled", &[]))
        .await
        .expect("ignored");
    secrets
        .create(&PostParams::default(), &secret("new", &[("usage", "k")]))
        .await
        .expect("new");
    secrets
        .patch(
            "new",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"x": "1"}}})),
        )
        .await
        .expect("modify");
    secrets
        .patch(
            "pre",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"usage": null}}})),
        )
        .await
        .expect("unlabel");
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(match next(&mut stream).await {
            Event::Apply(s) => format!(
                "apply {} {}",
                s.metadata.name.unwrap_or_default(),
                s.metadata.annotations.map_or(0, |a| a.len())
            ),
            Event::Delete(s) => format!("delete {}", s.metadata.name.unwrap_or_default()),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(seen, ["apply new 0", "apply new 1", "delete pre"]);
}

#[tokio::test]
async fn metadata_watcher_gets_partial_objects() {
    let cluster = TestCluster::start().await.expect("start");
    let secrets: Api<Secret> = Api::namespaced(cluster.client(), "default");
    secrets
        .create(&PostParams::default(), &secret("one", &[]))
        .await
        .expect("one");
    // kube 5's replacement for metadata_watcher: Api<PartialObjectMeta<K>> sends
    // `Accept: ...;as=PartialObjectMetadataList` on list and watch.
    let meta: Api<PartialObjectMeta<Secret>> = Api::namespaced(cluster.client(), "default");
    let mut stream = watcher::watcher(meta, watcher::Config::default())
        .applied_objects()
        .boxed();
    let first = next(&mut stream).await;
    assert_eq!(first.metadata.name.as_deref(), Some("one"));
    secrets
        .create(&PostParams::default(), &secret("two", &[]))
        .await
        .expect("two");
    let second = next(&mut stream).await;
    assert_eq!(second.metadata.name.as_deref(), Some("two"));
    assert!(second.metadata.uid.is_some());
}

#[tokio::test]
async fn watch_resumes_from_version_and_expires_old_ones() {
    let cluster = TestCluster::builder()
        .watch_history(4)
        .start()
        .await
        .expect("start");
    let secrets: Api<Secret> = Api::namespaced(cluster.client(), "default");
    let start = cluster.resource_version().to_string();
    for i in 0..6 {
        secrets
            .create(&PostParams::default(), &secret(&format!("s{i}"), &[]))
            .await
            .expect("create");
    }
    let stream = secrets
        .watch(&kube::api::WatchParams::default(), &start)
        .await
        .expect("watch");
    let mut stream = stream.boxed();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .expect("event")
        .expect("ok")
        .expect("some");
    match first {
        kube::api::WatchEvent::Error(e) => assert_eq!(e.code, 410),
        other => panic!("expected 410 error event, got {other:?}"),
    }
    let recent = (cluster.resource_version() - 1).to_string();
    let mut stream = secrets
        .watch(&kube::api::WatchParams::default(), &recent)
        .await
        .expect("watch")
        .boxed();
    match stream.try_next().await.expect("ok").expect("some") {
        kube::api::WatchEvent::Added(s) => assert_eq!(s.metadata.name.as_deref(), Some("s5")),
        other => panic!("expected ADDED s5, got {other:?}"),
    }
}

#[tokio::test]
async fn bookmarks_arrive_when_asked() {
    let cluster = TestCluster::builder()
        .bookmark_interval(Duration::from_millis(50))
        .start()
        .await
        .expect("start");
    let secrets: Api<Secret> = Api::namespaced(cluster.client(), "default");
    let rv = cluster.resource_version().to_string();
    let wp = kube::api::WatchParams::default();
    assert!(wp.bookmarks, "kube asks for bookmarks by default");
    let mut stream = secrets.watch(&wp, &rv).await.expect("watch").boxed();
    let ev = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .expect("bookmark in time")
        .expect("ok")
        .expect("some");
    match ev {
        kube::api::WatchEvent::Bookmark(b) => assert_eq!(b.metadata.resource_version, rv),
        other => panic!("expected bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_objects() {
    let cluster = TestCluster::start().await.expect("start");
    let client = cluster.client();
    namespace(&client, "gone").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "gone");
    secrets
        .create(&PostParams::default(), &secret("s", &[]))
        .await
        .expect("create");
    Api::<Namespace>::all(client.clone())
        .delete("gone", &DeleteParams::default())
        .await
        .expect("delete ns");
    let all: Api<Secret> = Api::all(client);
    let left = all
        .list(&ListParams::default().fields("metadata.namespace=gone"))
        .await
        .expect("list");
    assert!(left.items.is_empty());
    let err = secrets
        .create(&PostParams::default(), &secret("s", &[]))
        .await
        .expect_err("ns gone");
    match err {
        kube::Error::Api(s) => assert_eq!(
            (s.code, s.message.as_str()),
            (404, "namespaces \"gone\" not found")
        ),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn kubeconfig_works_for_kube_rs_and_plain_http_serves() {
    let cluster = TestCluster::start().await.expect("start");
    let kc = kube::config::Kubeconfig::from_yaml(&cluster.kubeconfig()).expect("parse kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    let client = kube::Client::try_from(config).expect("client");
    let v = client.apiserver_version().await.expect("version");
    assert_eq!(v.major, "1");
    let plain = TestCluster::builder()
        .plain_http()
        .start()
        .await
        .expect("plain");
    assert!(plain.url().starts_with("http://"));
    assert!(plain.ca_pem().is_none());
    let ns: Api<Namespace> = Api::all(plain.client());
    assert!(ns.get("default").await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_paginated_with_limit_and_continue() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{ListParams, PostParams};
    let cluster = testkube::TestCluster::start().await.expect("testkube");
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(cluster.client(), "default");
    for i in 0..7 {
        let cm: ConfigMap =
            serde_json::from_value(serde_json::json!({"metadata": {"name": format!("cm-{i}")}}))
                .expect("cm");
        api.create(&PostParams::default(), &cm)
            .await
            .expect("create");
    }
    let first = api
        .list(&ListParams::default().limit(3))
        .await
        .expect("page 1");
    assert_eq!(first.items.len(), 3);
    assert_eq!(first.metadata.remaining_item_count, Some(4));
    let rv = first.metadata.resource_version.clone();
    let mut names: Vec<String> = first
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    let mut token = first.metadata.continue_.clone().expect("continue token");
    // A change between pages does not move the pages' resourceVersion.
    let cm: ConfigMap =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "zz-late"}})).expect("cm");
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    loop {
        let page = api
            .list(&ListParams::default().limit(3).continue_token(&token))
            .await
            .expect("page");
        assert_eq!(page.metadata.resource_version, rv);
        names.extend(page.items.iter().filter_map(|c| c.metadata.name.clone()));
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(next) => token = next,
            None => break,
        }
    }
    let expected: Vec<String> = (0..7)
        .map(|i| format!("cm-{i}"))
        .chain(["zz-late".to_owned()])
        .collect();
    assert_eq!(names, expected);
    let error = api
        .list(&ListParams::default().limit(3).continue_token("garbage!"))
        .await
        .expect_err("bad token");
    assert!(
        error.to_string().contains("invalid continue token"),
        "{error}"
    );
}
