//! Leader election through a Lease against testkube: one leader among replicas, a takeover
//! only after the holder stops renewing for a lease duration, a release that hands over at
//! once. Time moves on tokio's clock (paused only to jump it), never in wall-clock windows:
//! the lease is long, so the real time the rounds take cannot decide an assertion.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use sparrow_kube::runtime::leader::{Elector, LeaseConfig, run_election};
use testkube::TestCluster;

const LEASE: Duration = Duration::from_secs(60);
const RENEW: Duration = Duration::from_secs(20);

fn config(identity: &str) -> LeaseConfig {
    LeaseConfig {
        namespace: "default".to_owned(),
        name: "sparrow-controller".to_owned(),
        identity: identity.to_owned(),
        lease_duration: LEASE,
        renew_interval: RENEW,
    }
}

fn elector(cluster: &TestCluster, identity: &str) -> Elector {
    Elector::new(
        Api::<Lease>::namespaced(cluster.client(), "default"),
        config(identity),
    )
}

/// Moves tokio's clock forward by `by`; the clock runs on (paused only for the jump), so API
/// calls see no spurious deadline.
async fn later(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

async fn holder(cluster: &TestCluster) -> Option<String> {
    let lease = Api::<Lease>::namespaced(cluster.client(), "default")
        .get("sparrow-controller")
        .await
        .expect("lease");
    lease.spec.and_then(|s| s.holder_identity)
}

#[tokio::test]
async fn one_leader_and_a_takeover_only_after_the_lease_expires() {
    let cluster = TestCluster::start().await.expect("testkube");
    let mut a = elector(&cluster, "replica-a");
    let mut b = elector(&cluster, "replica-b");
    assert!(a.round().await, "the first replica takes the Lease");
    assert!(!b.round().await, "the second does not");
    // While a renews, b never leads, however much time passes.
    for _ in 0..5 {
        later(RENEW).await;
        assert!(a.round().await);
        assert!(!b.round().await);
    }
    // a stops renewing: half a lease later b still waits; past a full lease it takes over.
    later(LEASE / 2).await;
    assert!(!b.round().await, "taken over before the lease expired");
    later(LEASE / 2 + Duration::from_secs(1)).await;
    assert!(
        b.round().await,
        "b takes over once the lease expired on its clock"
    );
    let lease = Api::<Lease>::namespaced(cluster.client(), "default")
        .get("sparrow-controller")
        .await
        .expect("lease");
    let spec = lease.spec.expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("replica-b"));
    assert_eq!(spec.lease_transitions, Some(1));
    assert_eq!(spec.lease_duration_seconds, Some(60));
    assert!(!a.round().await, "the old leader sees it lost");
}

#[tokio::test]
async fn a_leader_rides_out_failed_renewals_until_its_lease_could_expire() {
    let cluster = TestCluster::start().await.expect("testkube");
    let mut a = elector(&cluster, "replica-a");
    assert!(a.round().await);
    cluster.fail_next("get", "leases", 1, 500);
    assert!(
        a.round().await,
        "one error within the lease does not step down"
    );
    cluster.fail_next("get", "leases", 100, 500);
    later(RENEW).await;
    assert!(
        a.round().await,
        "still within the lease, less a renew interval"
    );
    // Past lease - renew interval since the last renewal, others may take it: step down.
    later(LEASE - RENEW).await;
    assert!(
        !a.round().await,
        "stepped down before the lease could expire for others"
    );
}

#[tokio::test]
async fn a_released_lease_is_taken_at_once() {
    let cluster = TestCluster::start().await.expect("testkube");
    let mut a = elector(&cluster, "replica-a");
    let mut b = elector(&cluster, "replica-b");
    assert!(
        !b.release().await.expect("no lease yet"),
        "nothing to release"
    );
    assert!(a.round().await);
    assert!(!b.round().await);
    assert!(!b.release().await.expect("release"), "b does not hold it");
    assert_eq!(holder(&cluster).await.as_deref(), Some("replica-a"));
    assert!(a.release().await.expect("release"));
    assert_eq!(holder(&cluster).await, None);
    assert!(b.round().await, "no wait for the lease to expire");
    assert_eq!(holder(&cluster).await.as_deref(), Some("replica-b"));
}

#[tokio::test]
async fn the_election_steps_down_and_releases_on_shutdown() {
    let cluster = TestCluster::start().await.expect("testkube");
    let (leading_tx, mut leading) = tokio::sync::watch::channel(false);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let election = tokio::spawn(run_election(
        cluster.client(),
        config("replica-a"),
        leading_tx,
        async move {
            let _ = stopped.await;
        },
    ));
    leading.wait_for(|l| *l).await.expect("leads");
    assert_eq!(holder(&cluster).await.as_deref(), Some("replica-a"));
    stop.send(()).expect("election running");
    election.await.expect("election ends");
    assert!(!*leading.borrow(), "stepped down");
    assert_eq!(holder(&cluster).await, None, "released");
}
