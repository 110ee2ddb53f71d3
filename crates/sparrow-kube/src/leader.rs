//! Leader election through a coordination.k8s.io Lease: every replica serves the webhook,
//! one (the holder of the Lease) runs the copy sync loop.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;

use crate::error::{ClusterError, describe};

/// Lease settings.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a holder that stops renewing keeps the Lease.
    pub lease_duration: Duration,
    /// How often the holder renews (and others try).
    pub renew_interval: Duration,
}

/// Runs the election until the process ends, publishing whether this replica leads.
pub async fn run_election(client: kube::Client, config: LeaseConfig, leading: watch::Sender<bool>) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut tick = tokio::time::interval(config.renew_interval);
    loop {
        tick.tick().await;
        let now_leading = match try_acquire_or_renew(&api, &config).await {
            Ok(leading) => leading,
            Err(error) => {
                tracing::warn!(%error, lease = %config.name, "leader election");
                false
            }
        };
        if *leading.borrow() != now_leading {
            tracing::info!(identity = %config.identity, leading = now_leading, "leadership changed");
            leading.send_replace(now_leading);
        }
    }
}

/// One round: create the Lease, renew it, or take it over when it expired. Conflicts (another
/// replica won the race) mean "not leading".
pub async fn try_acquire_or_renew(
    api: &Api<Lease>,
    config: &LeaseConfig,
) -> Result<bool, ClusterError> {
    let now = Timestamp::now();
    let seconds = i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX);
    let existing = api
        .get_opt(&config.name)
        .await
        .map_err(|e| ClusterError::api("reading the Lease", e))?;
    let Some(mut lease) = existing else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(error) if crate::error::is_already_exists(&error) => Ok(false),
            Err(error) => Err(ClusterError::api("creating the Lease", error)),
        };
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder != config.identity {
        let duration =
            SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(seconds)));
        let expired = spec
            .renew_time
            .as_ref()
            .is_none_or(|t| t.0 + duration < now)
            || holder.is_empty();
        if !expired {
            return Ok(false);
        }
        spec.holder_identity = Some(config.identity.clone());
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.renew_time = Some(MicroTime(now));
    spec.lease_duration_seconds = Some(seconds);
    // `replace` carries the resourceVersion we read: a concurrent change makes it a 409.
    match api
        .replace(&config.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(error) => {
            tracing::debug!(error = %describe(&error), "renewing the Lease");
            Err(ClusterError::api("renewing the Lease", error))
        }
    }
}
