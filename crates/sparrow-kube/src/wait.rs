//! `deploy --wait`: until the controller Deployment is available, and when it is not, why:
//! image pull failures found in the namespace's pods and Events, naming image and registry;
//! then until the API server reaches the webhook through the controller's Service.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::{ListParams, PostParams};
use kube::runtime::wait::await_condition;
use sparrow_core::names::{AUTO_INJECT_LABEL, CONTROLLER_NAME, PROXY_CONTAINER};

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

/// Whether `deployment` has rolled out, as `kubectl rollout status` decides: its controller has
/// seen the latest spec, every wanted replica runs that spec and is available, and no replica of
/// an older spec is left. (A `Progressing` condition alone still reads `NewReplicaSetAvailable`
/// from the previous rollout right after the spec changed.)
fn rolled_out(deployment: &Deployment) -> bool {
    let Some(status) = &deployment.status else {
        return false;
    };
    let generation = deployment.metadata.generation.unwrap_or(0);
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|spec| spec.replicas)
        .unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    status.observed_generation.unwrap_or(0) >= generation
        && updated >= wanted
        && status.replicas.unwrap_or(0) <= updated
        && status.available_replicas.unwrap_or(0) >= updated
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
        let condition = await_condition(api.clone(), CONTROLLER_NAME, |d: Option<&Deployment>| {
            d.is_some_and(rolled_out)
        });
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
    /// The controller is available but the API server's calls to the webhook fail.
    #[error(
        "the API server does not reach the webhook through Service {namespace}/{CONTROLLER_NAME} after {seconds}s: {last}"
    )]
    WebhookUnreachable {
        /// The mesh namespace.
        namespace: String,
        /// How long we tried.
        seconds: u64,
        /// What the last attempt got.
        last: String,
    },
}

/// What the webhook probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookProbe {
    /// A dry-run pod came back with the sidecar: the API server calls the webhook.
    Injected,
    /// The probe could not run (no namespace to probe in, no right to create pods there).
    Unchecked(String),
}

/// Where the probe pod is (never) created: an ordinary namespace no webhook excludes.
pub const PROBE_NAMESPACE: &str = "default";

/// Waits until the API server reaches the webhook: a dry-run create of a pod that opts in by
/// its label (so a `Fail` webhook answers for it in any namespace but the excluded ones)
/// comes back with the sidecar. Nothing is stored and no copy is made (the controller makes
/// no side effect on a dry run). Between the controller becoming available and this, the
/// Service's endpoints and the node's Service rules catch up.
pub async fn wait_for_webhook(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
) -> Result<WebhookProbe, WaitError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), PROBE_NAMESPACE);
    let probe = probe_pod();
    let params = PostParams {
        dry_run: true,
        field_manager: Some("sparrowctl".to_owned()),
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last;
    loop {
        match tokio::time::timeout_at(deadline, api.create(&params, &probe)).await {
            Ok(Ok(pod)) if carries_proxy(&pod) => return Ok(WebhookProbe::Injected),
            Ok(Ok(_)) => {
                last = "the API server admitted the probe pod without the sidecar (it has not loaded the webhook configuration yet)".to_owned();
            }
            Ok(Err(kube::Error::Api(status))) if status.code == 404 || status.code == 403 => {
                return Ok(WebhookProbe::Unchecked(format!(
                    "a dry-run pod in namespace {PROBE_NAMESPACE} was refused: {}",
                    status.message
                )));
            }
            Ok(Err(error)) => last = describe(&error),
            Err(_) => last = "the API server did not answer the probe in time".to_owned(),
        }
        let pause = tokio::time::Instant::now() + Duration::from_millis(500);
        tokio::time::sleep_until(pause.min(deadline)).await;
        if tokio::time::Instant::now() >= deadline {
            break;
        }
    }
    Err(WaitError::WebhookUnreachable {
        namespace: namespace.to_owned(),
        seconds: timeout.as_secs(),
        last,
    })
}

fn probe_pod() -> Pod {
    let mut pod = Pod::default();
    pod.metadata.generate_name = Some("sparrow-webhook-probe-".to_owned());
    pod.metadata.labels = Some([(AUTO_INJECT_LABEL.to_owned(), "enabled".to_owned())].into());
    pod.spec = Some(k8s_openapi::api::core::v1::PodSpec {
        containers: vec![k8s_openapi::api::core::v1::Container {
            name: "probe".to_owned(),
            image: Some("sparrow-mesh.invalid/webhook-probe:1".to_owned()),
            ..Default::default()
        }],
        ..Default::default()
    });
    pod
}

fn carries_proxy(pod: &Pod) -> bool {
    pod.spec.as_ref().is_some_and(|spec| {
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .any(|c| c.name == PROXY_CONTAINER)
    })
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A Deployment of generation 2 wanting one replica, whose status reports `observed`
    /// generation and `[replicas, updated, available]`, with the Progressing condition a
    /// finished rollout leaves.
    fn deployment(observed: i64, [replicas, updated, available]: [i32; 3]) -> Deployment {
        serde_json::from_value(json!({
            "metadata": { "name": CONTROLLER_NAME, "generation": 2 },
            "spec": { "replicas": 1, "selector": {}, "template": {} },
            "status": {
                "observedGeneration": observed,
                "replicas": replicas,
                "updatedReplicas": updated,
                "availableReplicas": available,
                "conditions": [{
                    "type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"
                }]
            }
        }))
        .expect("a Deployment")
    }

    #[test]
    fn a_rollout_is_done_once_every_replica_runs_the_latest_spec_and_is_available() {
        assert!(rolled_out(&deployment(2, [1, 1, 1])));
    }

    #[test]
    fn a_rollout_the_deployment_controller_has_not_seen_yet_is_not_done() {
        // Right after `deploy` changed the template: the status is the previous rollout's.
        assert!(!rolled_out(&deployment(1, [1, 1, 1])));
    }

    #[test]
    fn a_rollout_with_old_new_or_unavailable_replicas_left_is_not_done() {
        for (what, replicas) in [
            ("the new replica not created yet", [1, 0, 1]),
            ("the old replica still terminating", [2, 1, 1]),
            ("the new replica not available yet", [1, 1, 0]),
        ] {
            assert!(!rolled_out(&deployment(2, replicas)), "{what}");
        }
        let mut none = deployment(2, [1, 1, 1]);
        none.status = None;
        assert!(!rolled_out(&none), "no status at all");
    }
}
