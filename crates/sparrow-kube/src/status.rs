//! `status`: read what the cluster holds ([`observe`], reads only), then judge it
//! ([`evaluate`], pure): health, registry and kind of credential (never the credential),
//! copies, and whether pod creation is blocked anywhere right now.

mod evaluate;

use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::Api;
use kube::api::{ListParams, ObjectMeta};
use sparrow_core::names::*;
use sparrow_core::ownership::CopyKey;

use crate::error::ClusterError;
use crate::secrets::read_copy_key;
use crate::timed;

pub use evaluate::{
    Admission, ControllerStatus, ExpiryStatus, RefreshStatus, RegistryStatus, SourceKind,
    StatusReport, WebhookCallers, WebhookStatus, admission, evaluate,
};

/// Everything `status` reads.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The mesh namespace.
    pub namespace: String,
    /// The controller Deployment.
    pub deployment: Option<Deployment>,
    /// The serving certificate (`tls.crt` of the webhook's TLS secret), PEM.
    pub serving_cert: Option<String>,
    /// When this was read (seconds since the epoch): what certificates are checked against.
    pub observed_at: i64,
    /// The webhook configuration.
    pub webhook: Option<MutatingWebhookConfiguration>,
    /// The source pull secret (the one `--registry-secret` names, when the controller runs
    /// with it).
    pub source: Option<Secret>,
    /// The Secret another tool keeps that the controller copies (`--registry-secret`), as
    /// the Deployment says.
    pub registry_secret: Option<String>,
    /// Warn this many seconds before the registry credential expires (`--expiry-warning`).
    pub expiry_warning_seconds: i64,
    /// The key copies are proven with (`None`: no controller made one yet).
    pub copy_key: Option<CopyKey>,
    /// Every Secret named `sparrow-registry-key`, with its data (whether a copy is current is
    /// read from what it holds).
    pub same_named_secrets: Vec<Secret>,
    /// Every pod (metadata).
    pub pods: Vec<ObjectMeta>,
    /// Every namespace (metadata).
    pub namespaces: Vec<ObjectMeta>,
}

/// Collects the report with reads only; warns `expiry_warning` before the registry
/// credential expires.
pub async fn status(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
    expiry_warning: Duration,
) -> Result<StatusReport, ClusterError> {
    let mut observed = observe(client, namespace, timeout).await?;
    observed.expiry_warning_seconds = i64::try_from(expiry_warning.as_secs()).unwrap_or(i64::MAX);
    Ok(evaluate(&observed))
}

/// Reads what `status` judges: five GETs, the Secrets named `sparrow-registry-key` and three
/// metadata lists.
pub async fn observe(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
) -> Result<Observed, ClusterError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let all_secrets: Api<Secret> = Api::all(client.clone());
    let deployment = timed(
        "reading the controller Deployment",
        timeout,
        deployments.get_opt(CONTROLLER_NAME),
    )
    .await?;
    let serving_cert = timed(
        "reading the TLS secret",
        timeout,
        secrets.get_opt(TLS_SECRET_NAME),
    )
    .await?
    .and_then(|s| String::from_utf8(s.data?.get("tls.crt")?.0.clone()).ok());
    let webhook = timed(
        "reading the webhook configuration",
        timeout,
        Api::<MutatingWebhookConfiguration>::all(client.clone()).get_opt(WEBHOOK_CONFIG_NAME),
    )
    .await?;
    let registry_secret = deployment
        .as_ref()
        .and_then(sparrow_core::manifests::registry_secret_in);
    let source = timed(
        "reading the registry secret",
        timeout,
        secrets.get_opt(registry_secret.as_deref().unwrap_or(PULL_SECRET_NAME)),
    )
    .await?;
    let copy_key = read_copy_key(client, namespace, timeout).await?;
    let same_named_secrets = timed(
        "listing Secrets named sparrow-registry-key",
        timeout,
        all_secrets
            .list(&ListParams::default().fields(&format!("metadata.name={PULL_SECRET_NAME}"))),
    )
    .await?
    .items;
    let pods = list_meta(
        &Api::<Pod>::all(client.clone()),
        "listing pods",
        ListParams::default(),
        timeout,
    )
    .await?;
    let namespaces = list_meta(
        &Api::<Namespace>::all(client.clone()),
        "listing namespaces",
        ListParams::default(),
        timeout,
    )
    .await?;
    Ok(Observed {
        namespace: namespace.to_owned(),
        deployment,
        serving_cert,
        observed_at: time::OffsetDateTime::now_utc().unix_timestamp(),
        webhook,
        source,
        registry_secret,
        expiry_warning_seconds: i64::try_from(
            sparrow_core::expiry::DEFAULT_EXPIRY_WARNING.as_secs(),
        )
        .unwrap_or(i64::MAX),
        copy_key,
        same_named_secrets,
        pods,
        namespaces,
    })
}

async fn list_meta<K>(
    api: &Api<K>,
    action: &str,
    params: ListParams,
    timeout: Duration,
) -> Result<Vec<ObjectMeta>, ClusterError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let list = timed(action, timeout, api.list_metadata(&params)).await?;
    Ok(list.items.into_iter().map(|m| m.metadata).collect())
}

/// Whether pod creation is blocked right now, for `deploy`'s failure message: reads the
/// controller Deployment, the webhook configuration and the namespaces.
pub async fn admission_now(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
) -> Result<Admission, ClusterError> {
    let deployment = timed(
        "reading the controller Deployment",
        timeout,
        Api::<Deployment>::namespaced(client.clone(), namespace).get_opt(CONTROLLER_NAME),
    )
    .await?;
    let webhook = timed(
        "reading the webhook configuration",
        timeout,
        Api::<MutatingWebhookConfiguration>::all(client.clone()).get_opt(WEBHOOK_CONFIG_NAME),
    )
    .await?;
    let namespaces = list_meta(
        &Api::<Namespace>::all(client.clone()),
        "listing namespaces",
        ListParams::default(),
        timeout,
    )
    .await?;
    let ready = evaluate::controller_status(deployment.as_ref()).available();
    Ok(admission(webhook.as_ref(), ready, &namespaces))
}
