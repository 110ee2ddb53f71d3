//! The controller's runtime half: what `sparrow-controller` runs for as long as it lives.
//! The CLI's operations (apply, wait, update, status, remove) are the crate's other half, at
//! its root.
//!
//! - [`copies`]: the pull-secret copy index (pure) and the driver that writes what it plans;
//! - [`copy_key`]: the key the controller proves its copies with, made at first start;
//! - [`credential_plugin`]: the pull secret kept fresh by a kubelet credential-provider
//!   plugin, run by the leader;
//! - [`leader`]: the Lease election whose winner runs the copy sync;
//! - [`metrics`]: the copy counters on `/metrics`;
//! - [`webhook_certs`]: the webhook's CA, serving certificate and caBundle, kept by the leader;
//! - [`watch_backoff`]: how every watch of the controller retries.

pub mod copies;
pub mod copy_key;
pub mod credential_plugin;
pub mod leader;
pub mod metrics;
pub mod webhook_certs;

use std::time::Duration;

use kube::runtime::utils::ResetTimerBackoff;
use kube::runtime::watcher::ExponentialBackoff;

/// The retry delays of the controller's watches: from 200 ms doubling to at most 5 s, with
/// jitter, back to 200 ms after 30 s without an error. kube's default (0.8 s to 30 s, reset
/// after 120 s) leaves a controller blind for tens of seconds after an API server restart;
/// its few watches are cheap to retry sooner.
pub fn watch_backoff() -> ResetTimerBackoff<ExponentialBackoff> {
    let delays = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times();
    ResetTimerBackoff::new(delays.into(), Duration::from_secs(30))
}
