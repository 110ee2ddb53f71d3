//! The race between two writers of one copy, provoked on purpose: a replica's admission writes
//! the copy from the source it knows, that write is held on the wire while the source rotates
//! and the leader writes the new source, then it lands. An older source must never win: the
//! copy ends up (and stays) at the newest source, whatever order the writes land in.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Method, Request, Response};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube::client::Body;
use sparrow_core::manifests::pull_secret;
use sparrow_core::{RegistryAuth, RegistryServer, dockerconfigjson};
use sparrow_kube::runtime::copies::{EnsureOutcome, PullSecretCopier};
use sparrow_kube::secrets::data_hash;
use testkube::TestCluster;
use tokio::sync::{Notify, oneshot};

mod support;

use support::{MESH, watching_copier};

fn source_secret(password: &str) -> Secret {
    let server = RegistryServer::parse("127.0.0.1:5000/team/mesh").expect("server");
    let auth = RegistryAuth::user_password("robot", password).expect("auth");
    pull_secret(MESH, dockerconfigjson(&server, &auth))
}

/// Holds the first write (POST or PATCH) to the copy in one namespace until released; every
/// other request passes straight through to the real client.
#[derive(Clone)]
struct Gate {
    inner: kube::Client,
    path: String,
    held: Arc<Mutex<Option<oneshot::Receiver<()>>>>,
    arrived: Arc<Notify>,
}

impl Gate {
    /// A gate on `namespace`'s copy, and the key that opens it.
    fn new(inner: kube::Client, namespace: &str) -> (Self, oneshot::Sender<()>) {
        let (open, held) = oneshot::channel();
        let gate = Self {
            inner,
            path: format!("/api/v1/namespaces/{namespace}/secrets"),
            held: Arc::new(Mutex::new(Some(held))),
            arrived: Arc::new(Notify::new()),
        };
        (gate, open)
    }

    fn holds(&self, request: &Request<Body>) -> Option<oneshot::Receiver<()>> {
        let write = request.method() == Method::PATCH || request.method() == Method::POST;
        if !write || !request.uri().path().starts_with(&self.path) {
            return None;
        }
        self.held.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl tower_service::Service<Request<Body>> for Gate {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, kube::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), kube::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let held = self.holds(&request);
        let (inner, arrived) = (self.inner.clone(), self.arrived.clone());
        Box::pin(async move {
            if let Some(held) = held {
                arrived.notify_one();
                let _ = held.await;
            }
            inner.send(request).await
        })
    }
}

async fn create_namespace(client: &kube::Client, name: &str) {
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
}

async fn rotate(client: &kube::Client, password: &str) {
    Api::<Secret>::namespaced(client.clone(), MESH)
        .patch(
            "sparrow-registry-key",
            &PatchParams::apply("sparrowctl").force(),
            &Patch::Apply(&source_secret(password)),
        )
        .await
        .expect("rotate");
}

async fn replica(client: kube::Client) -> PullSecretCopier {
    watching_copier(client, Duration::from_secs(30)).await
}

/// Waits for `condition`; fails after `limit`.
async fn eventually(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_source_never_overwrites_a_newer_copy() {
    let cluster = TestCluster::start().await.expect("testkube");
    let client = cluster.client();
    create_namespace(&client, MESH).await;
    create_namespace(&client, "shop").await;
    Api::<Secret>::namespaced(client.clone(), MESH)
        .create(&PostParams::default(), &source_secret("pw1"))
        .await
        .expect("source");
    let copy_data = || {
        cluster
            .object("secrets", "shop", "sparrow-registry-key")
            .map(|c| c["data"].clone())
    };
    let source_data = || {
        cluster
            .object("secrets", MESH, "sparrow-registry-key")
            .map(|c| c["data"].clone())
    };
    let copy_hash = || {
        let copy = cluster.object("secrets", "shop", "sparrow-registry-key")?;
        copy["metadata"]["annotations"]["sparrow-mesh.io/source-hash"]
            .as_str()
            .map(str::to_owned)
    };

    // Replica A leads and syncs; replica B answers an admission through the gate.
    let leader = replica(client.clone()).await;
    let (gate, open) = Gate::new(client.clone(), "shop");
    let arrived = gate.arrived.clone();
    let follower = replica(kube::Client::new(gate, "default")).await;
    assert_eq!(
        leader.ensure_copy("shop").await.expect("copy"),
        EnsureOutcome::Created
    );

    // pw2: B's admission starts writing it, and the write is held on the wire.
    rotate(&client, "pw2").await;
    let pw2 = Some(data_hash(&source_secret("pw2")));
    eventually("both replicas saw pw2", Duration::from_secs(10), || {
        leader.source_hash() == pw2 && follower.source_hash() == pw2
    })
    .await;
    let admission = {
        let follower = follower.clone();
        tokio::spawn(async move { follower.ensure_copy("shop").await })
    };
    tokio::time::timeout(Duration::from_secs(10), arrived.notified())
        .await
        .expect("the admission's write reached the gate");

    // pw3: the leader's sync writes it.
    rotate(&client, "pw3").await;
    let (leading_tx, leading) = tokio::sync::watch::channel(true);
    let syncer = leader.clone();
    tokio::spawn(async move { syncer.run_sync(leading).await });
    let pw3 = Some(data_hash(&source_secret("pw3")));
    eventually("the leader wrote pw3", Duration::from_secs(10), || {
        copy_hash() == pw3
    })
    .await;
    eventually("the follower saw pw3", Duration::from_secs(10), || {
        follower.source_hash() == pw3
    })
    .await;

    // The admission's pw2 write lands now, after pw3's.
    let _ = open.send(());
    let outcome = tokio::time::timeout(Duration::from_secs(10), admission)
        .await
        .expect("the admission finished")
        .expect("join");
    // Whatever landed, the copy settles at pw3 well before the 300 s resync, and stays there.
    eventually("the copy holds pw3", Duration::from_secs(10), || {
        copy_hash() == pw3
    })
    .await;
    assert_eq!(
        copy_data(),
        source_data(),
        "the copy's data is the newest source's"
    );
    assert_eq!(
        outcome.expect("no error"),
        EnsureOutcome::Current,
        "pw3 was already there"
    );
    drop(leading_tx);
}
