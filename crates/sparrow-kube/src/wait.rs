//! `deploy --wait`: until the controller Deployment is available, and when it is not, why:
//! image pull failures found in the namespace's pods and Events, naming image and registry.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::ListParams;
use kube::runtime::wait::{await_condition, conditions};
use sparrow_core::names::CONTROLLER_NAME;

use crate::error::describe;

/// Why the controller did not become available.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the controller Deployment {namespace}/{CONTROLLER_NAME} is not available after {seconds}s: {reason}"
)]
pub struct NotAvailable {
    /// The mesh namespace.
    pub namespace: String,
    /// How long we waited.
    pub seconds: u64,
    /// What we found (image pull failures first).
    pub reason: String,
}

/// Waits until the controller Deployment has rolled out; on timeout, explains. A watch that
/// breaks (API restart, 410) is started again until the deadline.
pub async fn wait_for_controller(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
) -> Result<(), WaitError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let condition = await_condition(
            api.clone(),
            CONTROLLER_NAME,
            conditions::is_deployment_completed(),
        );
        match tokio::time::timeout_at(deadline, condition).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(error)) => {
                tracing::debug!(%error, "watching the controller Deployment; retrying");
                let pause = tokio::time::Instant::now() + Duration::from_millis(500);
                tokio::time::sleep_until(pause.min(deadline)).await;
            }
            Err(_) => break,
        }
    }
    // The diagnosis gets its own short budget so a slow API cannot stretch --timeout much.
    let reason = match tokio::time::timeout(Duration::from_secs(10), diagnose(client, namespace))
        .await
    {
        Ok(reason) => reason,
        Err(_) => format!(
            "the API server did not answer while looking for the reason; check `kubectl -n {namespace} describe deployment {CONTROLLER_NAME}`"
        ),
    };
    Err(WaitError::NotAvailable(NotAvailable {
        namespace: namespace.to_owned(),
        seconds: timeout.as_secs(),
        reason,
    }))
}

/// `deploy --wait` failed.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// Timed out; the reason names image pull failures when there are any.
    #[error(transparent)]
    NotAvailable(NotAvailable),
}

const PULL_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
];

/// Image pull failures of the namespace's pods (container statuses, then Events).
pub async fn diagnose(client: &kube::Client, namespace: &str) -> String {
    let mut findings = Vec::new();
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut pod_count = 0usize;
    match pods.list(&ListParams::default()).await {
        Ok(list) => {
            pod_count = list.items.len();
            for pod in list.items {
                let statuses = pod.status.iter().flat_map(|s| {
                    s.init_container_statuses
                        .iter()
                        .flatten()
                        .chain(s.container_statuses.iter().flatten())
                });
                for status in statuses {
                    let Some(waiting) = status.state.as_ref().and_then(|s| s.waiting.as_ref())
                    else {
                        continue;
                    };
                    let reason = waiting.reason.as_deref().unwrap_or_default();
                    if PULL_REASONS.contains(&reason) {
                        findings.push(pull_failure(
                            &status.image,
                            reason,
                            waiting.message.as_deref(),
                        ));
                    }
                }
            }
        }
        Err(error) => findings.push(format!("could not list pods: {}", describe(&error))),
    }
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    if let Ok(list) = events.list(&ListParams::default()).await {
        for event in list.items {
            let message = event.message.unwrap_or_default();
            let reason = event.reason.unwrap_or_default();
            if message.contains("Failed to pull image") || PULL_REASONS.contains(&reason.as_str()) {
                let image = quoted_image(&message).unwrap_or_default();
                let line = pull_failure(&image, &reason, Some(&message));
                if !findings.contains(&line) {
                    findings.push(line);
                }
            }
        }
    }
    if findings.is_empty() && pod_count == 0 {
        format!(
            "no controller pod was created; check `kubectl -n {namespace} describe replicaset` and `kubectl -n {namespace} get events` (quota, admission or scheduling)"
        )
    } else if findings.is_empty() {
        format!(
            "no image pull failures found; check `kubectl -n {namespace} describe deployment {CONTROLLER_NAME}`"
        )
    } else {
        findings.join("; ")
    }
}

fn pull_failure(image: &str, reason: &str, message: Option<&str>) -> String {
    if image.is_empty() {
        let detail = message.map(|m| format!(": {m}")).unwrap_or_default();
        return format!(
            "an image cannot be pulled ({reason}{detail}); check --registry-server and the credentials (sparrowctl registry check)"
        );
    }
    let registry = image
        .split('/')
        .next()
        .filter(|h| h.contains('.') || h.contains(':') || *h == "localhost")
        .unwrap_or("docker.io");
    let detail = message.map(|m| format!(": {m}")).unwrap_or_default();
    format!(
        "image {image} cannot be pulled from registry {registry} ({reason}{detail}); check --registry-server and the credentials (sparrowctl registry check)"
    )
}

/// The image in kubelet's `Failed to pull image "IMAGE": ...`.
fn quoted_image(message: &str) -> Option<String> {
    let start = message.find('"')? + 1;
    let len = message[start..].find('"')?;
    Some(message[start..start + len].to_owned())
}
