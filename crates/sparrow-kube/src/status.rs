//! `status`: is the mesh healthy, which registry and kind of credential it uses (never the
//! credential), and where its pull-secret copies stand.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::ListParams;
use serde::Serialize;
use sparrow_core::auth::JSON_KEY_USERNAME;
use sparrow_core::manifests::pull_secret_selector;
use sparrow_core::names::*;

use crate::error::ClusterError;
use crate::remove::injected_namespaces;
use crate::secrets::{data_hash, foreign_pull_secrets, labels_are_ours, registry_and_user};
use crate::timed;

/// Everything `status` reports.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    /// The mesh namespace.
    pub namespace: String,
    /// The controller Deployment.
    pub controller: ControllerStatus,
    /// The injector webhook.
    pub webhook: WebhookStatus,
    /// The registry credentials, when a pull secret exists.
    pub registry: Option<RegistryStatus>,
    /// Copies of the pull secret outside the mesh namespace.
    pub copies: usize,
    /// Copies whose `sparrow-mesh.io/source-hash` differs from the source (`ns/name`).
    pub stale_copies: Vec<String>,
    /// Namespaces with injected pods and no copy: their next image pull will fail.
    pub namespaces_missing_copy: Vec<String>,
    /// Secrets named `sparrow-registry-key` that Sparrow does not own (`ns/name`).
    pub foreign_secrets: Vec<String>,
    /// What is wrong, one sentence each; empty when healthy.
    pub problems: Vec<String>,
}

/// The controller Deployment.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ControllerStatus {
    /// The Deployment exists.
    pub present: bool,
    /// Desired replicas.
    pub replicas: i32,
    /// Ready replicas.
    pub ready_replicas: i32,
    /// The controller image.
    pub image: Option<String>,
}

/// The webhook configuration.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookStatus {
    /// The MutatingWebhookConfiguration exists.
    pub present: bool,
    /// Every webhook's caBundle is the CA in the TLS secret.
    pub ca_bundle_matches: bool,
}

/// Registry and kind of credential; never the credential.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RegistryStatus {
    /// The `auths` key (`HOST[:PORT]`).
    pub server: String,
    /// `json-key` or `username-password`.
    pub credential: sparrow_core::CredentialKind,
}

impl StatusReport {
    /// Healthy when nothing is wrong.
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Collects the report with reads only.
pub async fn status(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
) -> Result<StatusReport, ClusterError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let webhooks: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let all_secrets: Api<Secret> = Api::all(client.clone());
    let mut problems = Vec::new();

    let deployment = timed(
        "reading the controller Deployment",
        timeout,
        deployments.get_opt(CONTROLLER_NAME),
    )
    .await?;
    let controller = match &deployment {
        Some(d) => ControllerStatus {
            present: true,
            replicas: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            ready_replicas: d
                .status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0),
            image: d
                .spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.clone()),
        },
        None => ControllerStatus {
            present: false,
            replicas: 0,
            ready_replicas: 0,
            image: None,
        },
    };
    if !controller.present {
        problems.push(format!("the controller Deployment {namespace}/{CONTROLLER_NAME} does not exist: run sparrowctl deploy"));
    } else if controller.ready_replicas < controller.replicas.max(1) {
        problems.push(format!(
            "the controller has {} of {} replicas ready",
            controller.ready_replicas, controller.replicas
        ));
    }

    let tls_ca = timed(
        "reading the TLS secret",
        timeout,
        secrets.get_opt(TLS_SECRET_NAME),
    )
    .await?
    .and_then(|s| s.data?.get("ca.crt").map(|b| b.0.clone()));
    let webhook = timed(
        "reading the webhook configuration",
        timeout,
        webhooks.get_opt(WEBHOOK_CONFIG_NAME),
    )
    .await?;
    let webhook = match webhook {
        Some(config) => {
            let hooks = config.webhooks.unwrap_or_default();
            let matches = !hooks.is_empty()
                && tls_ca.is_some()
                && hooks
                    .iter()
                    .all(|h| h.client_config.ca_bundle.as_ref().map(|b| &b.0) == tls_ca.as_ref());
            WebhookStatus {
                present: true,
                ca_bundle_matches: matches,
            }
        }
        None => WebhookStatus {
            present: false,
            ca_bundle_matches: false,
        },
    };
    if !webhook.present {
        problems.push(format!(
            "the webhook {WEBHOOK_CONFIG_NAME} does not exist: pods are not injected"
        ));
    } else if !webhook.ca_bundle_matches {
        problems.push(format!("the webhook's caBundle does not match Secret {namespace}/{TLS_SECRET_NAME}: run sparrowctl deploy"));
    }

    let source = timed(
        "reading the registry secret",
        timeout,
        secrets.get_opt(PULL_SECRET_NAME),
    )
    .await?;
    let mut source_hash = None;
    let registry = match &source {
        Some(secret) if labels_are_ours(secret.metadata.labels.as_ref()) => {
            source_hash = Some(data_hash(secret));
            match registry_and_user(secret) {
                Ok((server, user)) => Some(RegistryStatus {
                    server,
                    credential: if user == JSON_KEY_USERNAME {
                        sparrow_core::CredentialKind::JsonKey
                    } else {
                        sparrow_core::CredentialKind::UsernamePassword
                    },
                }),
                Err(detail) => {
                    problems.push(format!("Secret {namespace}/{PULL_SECRET_NAME} does not hold a valid .dockerconfigjson: {detail}"));
                    None
                }
            }
        }
        _ => None,
    };

    let labelled = timed(
        "listing pull-secret copies",
        timeout,
        all_secrets.list_metadata(&ListParams::default().labels(&pull_secret_selector())),
    )
    .await?;
    let mut copies = 0;
    let mut stale_copies = Vec::new();
    let mut namespaces_with_copy = BTreeSet::new();
    for meta in &labelled.items {
        let (Some(ns), Some(name)) = (&meta.metadata.namespace, &meta.metadata.name) else {
            continue;
        };
        if ns == namespace {
            continue;
        }
        copies += 1;
        namespaces_with_copy.insert(ns.clone());
        let hash = meta
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(SOURCE_HASH_ANNOTATION));
        if source_hash.is_some() && hash != source_hash.as_ref() {
            stale_copies.push(format!("{ns}/{name}"));
        }
    }
    if !stale_copies.is_empty() {
        problems.push(format!(
            "{} cop{} of the registry secret are stale (the controller refreshes them)",
            stale_copies.len(),
            if stale_copies.len() == 1 { "y" } else { "ies" }
        ));
    }

    let foreign_secrets = foreign_pull_secrets(client, timeout).await?;

    let namespaces_missing_copy: Vec<String> = if registry.is_some() {
        injected_namespaces(client, timeout)
            .await?
            .into_iter()
            .filter(|ns| ns != namespace && !namespaces_with_copy.contains(ns))
            .collect()
    } else {
        Vec::new()
    };
    if !namespaces_missing_copy.is_empty() {
        problems.push(format!(
            "namespaces with injected pods but no registry secret: {}",
            namespaces_missing_copy.join(", ")
        ));
    }

    Ok(StatusReport {
        namespace: namespace.to_owned(),
        controller,
        webhook,
        registry,
        copies,
        stale_copies,
        namespaces_missing_copy,
        foreign_secrets,
        problems,
    })
}
