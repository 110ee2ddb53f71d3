//! Sparrow against the Kubernetes API, through kube-rs, in two halves:
//! - the CLI's operations, at the root: connect, apply the control plane, wait for it, rotate
//!   credentials, report status, remove everything;
//! - the controller's runtime, under [`runtime`]: the pull-secret copies, the leader
//!   election, their metrics.
//!
//! [`secrets`] (which Secrets are ours, what they hold, which pods carry the sidecar) and
//! [`error`] serve both.

#![deny(missing_docs)]

pub mod apply;
pub mod connect;
pub mod error;
pub mod parts;
pub mod remove;
pub mod runtime;
pub mod secrets;
pub mod status;
pub mod switch;
pub mod update;
pub mod wait;
pub mod webhook_client_ca;

use std::future::Future;
use std::time::Duration;

pub use connect::{Cluster, ClusterConfig, ClusterTarget};
pub use error::{ClusterError, describe};

/// Runs one API call with a deadline, naming `action` in the error.
pub async fn timed<T>(
    action: &str,
    timeout: Duration,
    call: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, ClusterError> {
    within(action, timeout, call)
        .await?
        .map_err(|e| ClusterError::api(action, e))
}

/// Runs one API call with a deadline; only a missed deadline is an error here, the API's
/// answer is left to the caller (who may treat a 404 or 409 as success).
pub async fn within<T>(
    action: &str,
    timeout: Duration,
    call: impl Future<Output = Result<T, kube::Error>>,
) -> Result<Result<T, kube::Error>, ClusterError> {
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| ClusterError::Timeout {
            action: action.to_owned(),
            seconds: timeout.as_secs().max(1),
        })
}
