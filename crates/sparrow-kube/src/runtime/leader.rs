//! Leader election through a coordination.k8s.io Lease: every replica serves the webhook,
//! one (the holder of the Lease) runs the copy sync loop.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;
// The tokio clock, so tests can move it instead of waiting.
use tokio::time::Instant;

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

impl LeaseConfig {
    /// The controller's defaults: a 15 s lease renewed every 5 s.
    pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
    /// See [`LeaseConfig::DEFAULT_LEASE_DURATION`].
    pub const DEFAULT_RENEW_INTERVAL: Duration = Duration::from_secs(5);
}

/// Runs the election until `shutdown` completes, publishing whether this replica leads; then
/// steps down (the sync stops first) and releases the Lease, so the next leader need not wait
/// for it to expire.
pub async fn run_election(
    client: kube::Client,
    config: LeaseConfig,
    leading: watch::Sender<bool>,
    shutdown: impl Future<Output = ()>,
) {
    let mut elector = Elector::new(Api::namespaced(client, &config.namespace), config);
    let mut tick = tokio::time::interval(elector.config.renew_interval);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut shutdown => break,
        }
        let now_leading = elector.round().await;
        if *leading.borrow() != now_leading {
            tracing::info!(identity = %elector.config.identity, leading = now_leading, "leadership changed");
            leading.send_replace(now_leading);
        }
    }
    let was_leading = leading.send_replace(false);
    if was_leading {
        match tokio::time::timeout(elector.config.renew_interval, elector.release()).await {
            Ok(Ok(true)) => {
                tracing::info!(identity = %elector.config.identity, "released the Lease")
            }
            Ok(Ok(false)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "releasing the Lease"),
            Err(_) => tracing::warn!("releasing the Lease: no answer from the API server"),
        }
    }
}

/// One replica's view of the election.
pub struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
    /// The holder's lease as last seen (resourceVersion) and when, on our own clock: another
    /// holder's lease expires when it has not changed for a lease duration, whatever the
    /// clocks of the nodes say.
    observed: Option<(String, Instant)>,
    /// When we last renewed successfully.
    renewed: Option<Instant>,
}

impl Elector {
    /// An elector for the Lease in `api`.
    pub fn new(api: Api<Lease>, config: LeaseConfig) -> Self {
        Self {
            api,
            config,
            observed: None,
            renewed: None,
        }
    }

    /// One round with a deadline; true while this replica leads. A leader whose renewals fail
    /// keeps leading until its lease could have expired for others (less a renew interval of
    /// margin), then steps down: no flapping on one error, and never two leaders for long.
    pub async fn round(&mut self) -> bool {
        let deadline = self.config.renew_interval;
        let outcome = match tokio::time::timeout(deadline, self.try_acquire_or_renew()).await {
            Ok(result) => result,
            Err(_) => Err(ClusterError::Timeout {
                action: "renewing the Lease".to_owned(),
                seconds: deadline.as_secs().max(1),
            }),
        };
        match outcome {
            Ok(true) => {
                self.renewed = Some(Instant::now());
                true
            }
            Ok(false) => {
                self.renewed = None;
                false
            }
            Err(error) => {
                tracing::warn!(%error, lease = %self.config.name, "leader election");
                let grace = self
                    .config
                    .lease_duration
                    .saturating_sub(self.config.renew_interval);
                self.renewed.is_some_and(|at| at.elapsed() < grace)
            }
        }
    }

    /// Gives the Lease up if this replica holds it: no holder, so any other replica takes it
    /// on its next round. True when it was released.
    pub async fn release(&mut self) -> Result<bool, ClusterError> {
        self.renewed = None;
        let existing = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| ClusterError::api("reading the Lease", e))?;
        let Some(mut lease) = existing else {
            return Ok(false);
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(false);
        }
        spec.holder_identity = None;
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        // `replace` carries the resourceVersion read: if someone took it meanwhile, a 409.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(ClusterError::api("releasing the Lease", error)),
        }
    }

    /// Creates the Lease, renews it, or takes it over when its holder stopped renewing.
    /// A conflict (another replica won the race) means "not leading".
    async fn try_acquire_or_renew(&mut self) -> Result<bool, ClusterError> {
        let config = &self.config;
        let now = Timestamp::now();
        let seconds = i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let existing = self
            .api
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
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(error) if crate::error::is_already_exists(&error) => Ok(false),
                Err(error) => Err(ClusterError::api("creating the Lease", error)),
            };
        };
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        if holder != config.identity {
            let duration = Duration::from_secs(
                u64::try_from(spec.lease_duration_seconds.unwrap_or(seconds)).unwrap_or(15),
            );
            let unchanged_since = match &self.observed {
                Some((seen, since)) if *seen == version => *since,
                _ => {
                    self.observed = Some((version, Instant::now()));
                    Instant::now()
                }
            };
            if !holder.is_empty() && unchanged_since.elapsed() < duration {
                return Ok(false);
            }
            spec.holder_identity = Some(config.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(seconds);
        // `replace` carries the resourceVersion we read: a concurrent change makes it a 409.
        match self
            .api
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
}
