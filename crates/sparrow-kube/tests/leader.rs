//! Leader election through a Lease against testkube: one leader among replicas, a takeover
//! only after the holder stops renewing for a lease duration.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use sparrow_kube::leader::{Elector, LeaseConfig};
use testkube::TestCluster;

fn elector(cluster: &TestCluster, identity: &str) -> Elector {
    let config = LeaseConfig {
        namespace: "default".to_owned(),
        name: "sparrow-controller".to_owned(),
        identity: identity.to_owned(),
        lease_duration: Duration::from_secs(1),
        renew_interval: Duration::from_millis(200),
    };
    Elector::new(
        Api::<Lease>::namespaced(cluster.client(), "default"),
        config,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_and_a_takeover_only_after_the_lease_expires() {
    let cluster = TestCluster::start().await.expect("testkube");
    let mut a = elector(&cluster, "replica-a");
    let mut b = elector(&cluster, "replica-b");
    assert!(a.round().await, "the first replica takes the Lease");
    assert!(!b.round().await, "the second does not");
    // While a renews, b never leads.
    for _ in 0..5 {
        assert!(a.round().await);
        assert!(!b.round().await);
    }
    // a stops renewing: b takes over, but not before a lease duration has passed on its clock.
    let stopped = Instant::now();
    let mut rounds = 0;
    while !b.round().await {
        rounds += 1;
        assert!(rounds < 100, "b never took over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        stopped.elapsed() >= Duration::from_millis(900),
        "took over after {:?}",
        stopped.elapsed()
    );
    let lease = Api::<Lease>::namespaced(cluster.client(), "default")
        .get("sparrow-controller")
        .await
        .expect("lease");
    let spec = lease.spec.expect("spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("replica-b"));
    assert_eq!(spec.lease_transitions, Some(1));
    assert!(!a.round().await, "the old leader sees it lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_rides_out_one_failed_renewal() {
    let cluster = TestCluster::start().await.expect("testkube");
    let mut a = elector(&cluster, "replica-a");
    assert!(a.round().await);
    cluster.fail_next("get", "leases", 1, 500);
    assert!(
        a.round().await,
        "one error within the lease does not step down"
    );
    cluster.fail_next("get", "leases", 100, 500);
    let failing = Instant::now();
    while a.round().await {
        assert!(
            failing.elapsed() < Duration::from_secs(5),
            "never stepped down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        failing.elapsed() < Duration::from_secs(1),
        "stepped down before the lease could expire for others"
    );
}
