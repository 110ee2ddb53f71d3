//! The webhook's certificates at run time. Every replica follows the serving certificate's
//! Secret and the webhook's `caBundle` ([`CertWatch`]): it serves the first and is ready when
//! the second verifies it. The replica holding the Lease keeps both true ([`CertKeeper`]) as
//! [`sparrow_core::webhook_pki::next_step`] decides: one read of the CA Secret, the serving
//! certificate's Secret and the webhook configuration, one write, and again.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::runtime::{WatchStreamExt as _, watcher::Event};
use kube::{Api, Resource};
use sparrow_core::WebhookTls;
use sparrow_core::manifests::owned_labels;
use sparrow_core::names::{CA_SECRET_NAME, CONTROLLER_NAME, TLS_SECRET_NAME, WEBHOOK_CONFIG_NAME};
use sparrow_core::webhook_pki::{
    CA_BUNDLE_FIELD_MANAGER, Ca, Lifetimes, Observed, PREVIOUS_CA_KEY, PREVIOUS_UNTIL_ANNOTATION,
    Step, StoredCa, next_step,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

use crate::error::{ClusterError, is_already_exists};
use crate::runtime::watch_backoff;
use crate::{timed, within};

/// The non-empty UTF-8 text under `key` of a Secret's data.
fn text_of(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .filter(|t| !t.is_empty())
}

/// The serving certificate a `kubernetes.io/tls` Secret holds (`tls.crt`, `tls.key`, `ca.crt`).
pub fn tls_of(secret: &Secret) -> Option<WebhookTls> {
    let text = |key: &str| text_of(secret, key);
    Some(WebhookTls {
        ca_pem: text("ca.crt").unwrap_or_default(),
        cert_pem: text("tls.crt")?,
        key_pem: text("tls.key")?,
    })
}

/// The CAs the CA Secret holds.
pub fn ca_of(secret: &Secret) -> Option<StoredCa> {
    let text = |key: &str| text_of(secret, key);
    let previous_until = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PREVIOUS_UNTIL_ANNOTATION))
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
    Some(StoredCa {
        current: Ca {
            cert_pem: text("tls.crt")?,
            key_pem: text("tls.key")?,
        },
        previous_pem: text(PREVIOUS_CA_KEY),
        previous_until,
    })
}

fn secret(
    mesh: &str,
    name: &str,
    data: BTreeMap<String, String>,
    annotations: Option<BTreeMap<String, String>>,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(mesh.to_owned()),
            labels: Some(owned_labels(mesh, CONTROLLER_NAME)),
            annotations,
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// The serving certificate's Secret, labelled as the mesh's (so `remove` deletes it).
pub fn tls_secret(mesh: &str, tls: &WebhookTls) -> Secret {
    let data = BTreeMap::from([
        ("ca.crt".to_owned(), tls.ca_pem.clone()),
        ("tls.crt".to_owned(), tls.cert_pem.clone()),
        ("tls.key".to_owned(), tls.key_pem.clone()),
    ]);
    secret(mesh, TLS_SECRET_NAME, data, None)
}

/// The CA Secret, labelled as the mesh's.
pub fn ca_secret(mesh: &str, ca: &StoredCa) -> Secret {
    let mut data = BTreeMap::from([
        ("tls.crt".to_owned(), ca.current.cert_pem.clone()),
        ("tls.key".to_owned(), ca.current.key_pem.clone()),
    ]);
    if let Some(previous) = &ca.previous_pem {
        data.insert(PREVIOUS_CA_KEY.to_owned(), previous.clone());
    }
    let annotations = ca.previous_until.and_then(|t| {
        Some(BTreeMap::from([(
            PREVIOUS_UNTIL_ANNOTATION.to_owned(),
            t.format(&Rfc3339).ok()?,
        )]))
    });
    secret(mesh, CA_SECRET_NAME, data, annotations)
}

/// What the webhook configuration says about trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookBundle {
    /// Not read yet.
    Unknown,
    /// There is no webhook configuration: nobody calls the webhook.
    NoConfiguration,
    /// The `caBundle` every webhook of it has; empty when they have none or disagree.
    Bundle(Vec<u8>),
}

/// The one `caBundle` of a webhook configuration's webhooks (empty when some has none or
/// they disagree).
pub fn bundle_of(config: &MutatingWebhookConfiguration) -> Vec<u8> {
    let mut bundles = config
        .webhooks
        .iter()
        .flatten()
        .map(|w| w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()));
    match bundles.next() {
        Some(Some(first)) if bundles.all(|b| b == Some(first)) => first.to_vec(),
        _ => Vec::new(),
    }
}

/// What every replica follows: the serving certificate's Secret and the webhook's `caBundle`.
#[derive(Debug, Clone)]
pub struct CertWatch {
    /// The serving certificate as the Secret holds it now (`None`: no usable Secret).
    pub leaf: watch::Receiver<Option<WebhookTls>>,
    /// The webhook configuration's `caBundle` now.
    pub bundle: watch::Receiver<WebhookBundle>,
}

impl CertWatch {
    /// The watches, and the future that runs them (for ever; a broken watch is restarted).
    pub fn spawn(
        client: &kube::Client,
        mesh: &str,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (leaf_tx, leaf) = watch::channel(None);
        let (bundle_tx, bundle) = watch::channel(WebhookBundle::Unknown);
        let secrets: Api<Secret> = Api::namespaced(client.clone(), mesh);
        let webhooks: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
        let run = async move {
            let leaf = follow(secrets, TLS_SECRET_NAME, move |s| {
                leaf_tx.send_replace(s.and_then(|s| tls_of(&s)));
            });
            let bundle = follow(webhooks, WEBHOOK_CONFIG_NAME, move |c| {
                bundle_tx.send_replace(match c {
                    Some(c) => WebhookBundle::Bundle(bundle_of(&c)),
                    None => WebhookBundle::NoConfiguration,
                });
            });
            tokio::join!(leaf, bundle);
        };
        (Self { leaf, bundle }, run)
    }
}

/// Follows the object `name` of `api`, calling `seen` with it (or `None`) at every change.
async fn follow<K>(api: Api<K>, name: &str, seen: impl Fn(Option<K>))
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = std::pin::pin!(watcher(api, config).backoff(watch_backoff()));
    let mut initial = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => initial = None,
            Ok(Event::InitApply(object)) => initial = Some(object),
            Ok(Event::InitDone) => seen(initial.take()),
            Ok(Event::Apply(object)) => seen(Some(object)),
            Ok(Event::Delete(_)) => seen(None),
            Err(error) => tracing::warn!(%error, object = name, "watch failed; retrying"),
        }
    }
}

/// What the keeper reports (Events, metrics) besides its logs.
pub trait CertReport: Send + Sync {
    /// A step was written.
    fn wrote(&self, step: &Step);
    /// A pass failed; it is tried again.
    fn failed(&self, error: &ClusterError);
}

/// The leader's keeper of the webhook's certificates.
#[derive(Clone)]
pub struct CertKeeper {
    client: kube::Client,
    mesh: String,
    names: Vec<String>,
    lifetimes: Lifetimes,
    timeout: Duration,
}

impl CertKeeper {
    /// A keeper for the mesh in `mesh`, issuing serving certificates for `names`.
    pub fn new(client: kube::Client, mesh: &str, names: Vec<String>, lifetimes: Lifetimes) -> Self {
        Self {
            client,
            mesh: mesh.to_owned(),
            names,
            lifetimes,
            timeout: Duration::from_secs(10),
        }
    }

    /// One pass: reads, decides, writes at most one thing; returns the step. `settled_since`
    /// is kept between passes: since when the bundle was seen as the CAs call for.
    pub async fn pass(
        &self,
        settled_since: &mut Option<OffsetDateTime>,
    ) -> Result<Step, ClusterError> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.mesh);
        let webhooks: Api<MutatingWebhookConfiguration> = Api::all(self.client.clone());
        let action = format!("reading Secret {}/{CA_SECRET_NAME}", self.mesh);
        let ca_secret = timed(&action, self.timeout, secrets.get_opt(CA_SECRET_NAME)).await?;
        let action = format!("reading Secret {}/{TLS_SECRET_NAME}", self.mesh);
        let leaf_secret = timed(&action, self.timeout, secrets.get_opt(TLS_SECRET_NAME)).await?;
        let action = format!("reading MutatingWebhookConfiguration {WEBHOOK_CONFIG_NAME}");
        let config = timed(&action, self.timeout, webhooks.get_opt(WEBHOOK_CONFIG_NAME)).await?;

        let ca = ca_secret.as_ref().and_then(ca_of);
        let leaf = leaf_secret.as_ref().and_then(tls_of);
        let bundle = config.as_ref().map(bundle_of);
        let now = OffsetDateTime::now_utc();
        let wanted = ca.as_ref().map(StoredCa::bundle);
        match (&bundle, &wanted) {
            (Some(seen), Some(wanted)) if seen == wanted.as_bytes() => {
                settled_since.get_or_insert(now);
            }
            _ => *settled_since = None,
        }
        let observed = Observed {
            ca: ca.as_ref(),
            leaf: leaf.as_ref(),
            bundle: bundle.as_deref(),
            bundle_settled_since: *settled_since,
        };
        let step = next_step(observed, &self.names, self.lifetimes, now)
            .map_err(|e| ClusterError::Internal(format!("webhook certificates: {e}")))?;
        match &step {
            Step::WriteCa(ca) => {
                self.write_secret(ca_secret, self::ca_secret(&self.mesh, ca))
                    .await?;
            }
            Step::WriteLeaf(tls) => {
                self.write_secret(leaf_secret, tls_secret(&self.mesh, tls))
                    .await?;
            }
            Step::WriteBundle(bundle) => {
                if let Some(config) = &config {
                    self.write_bundle(config, bundle).await?;
                }
            }
            Step::Wait { .. } => {}
        }
        Ok(step)
    }

    /// Creates `wanted`, or replaces `existing` with it (guarded by its resourceVersion).
    async fn write_secret(
        &self,
        existing: Option<Secret>,
        mut wanted: Secret,
    ) -> Result<(), ClusterError> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.mesh);
        let name = wanted.metadata.name.clone().unwrap_or_default();
        let action = format!("writing Secret {}/{name}", self.mesh);
        let params = PostParams {
            field_manager: Some(CONTROLLER_NAME.to_owned()),
            ..PostParams::default()
        };
        match existing {
            None => match within(&action, self.timeout, secrets.create(&params, &wanted)).await? {
                Ok(_) => Ok(()),
                // Another replica's write: the next pass reads it.
                Err(error) if is_already_exists(&error) => Ok(()),
                Err(error) => Err(ClusterError::api(action, error)),
            },
            Some(existing) => {
                wanted.metadata.resource_version = existing.metadata.resource_version;
                timed(
                    &action,
                    self.timeout,
                    secrets.replace(&name, &params, &wanted),
                )
                .await
                .map(drop)
            }
        }
    }

    /// Sets every webhook's `caBundle`, and nothing else: a JSON patch guarded by the
    /// resourceVersion and each webhook's name, under the keeper's own field manager.
    async fn write_bundle(
        &self,
        config: &MutatingWebhookConfiguration,
        bundle: &str,
    ) -> Result<(), ClusterError> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(bundle);
        let mut ops = vec![serde_json::json!({
            "op": "test",
            "path": "/metadata/resourceVersion",
            "value": config.metadata.resource_version,
        })];
        for (i, hook) in config.webhooks.iter().flatten().enumerate() {
            ops.push(serde_json::json!({"op": "test", "path": format!("/webhooks/{i}/name"), "value": hook.name}));
            ops.push(serde_json::json!({"op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": encoded}));
        }
        let patch: json_patch::Patch = serde_json::from_value(serde_json::Value::Array(ops))
            .map_err(|e| ClusterError::Internal(format!("caBundle patch: {e}")))?;
        let webhooks: Api<MutatingWebhookConfiguration> = Api::all(self.client.clone());
        let params = PatchParams {
            field_manager: Some(CA_BUNDLE_FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        let action =
            format!("setting the caBundle of MutatingWebhookConfiguration {WEBHOOK_CONFIG_NAME}");
        timed(
            &action,
            self.timeout,
            webhooks.patch(WEBHOOK_CONFIG_NAME, &params, &Patch::<()>::Json(patch)),
        )
        .await
        .map(drop)
    }

    /// Passes until nothing is left to write (what a controller's first start does), at most
    /// ten; for tests that run no controller pod. With [`Lifetimes::settle`] zero it never waits.
    pub async fn settle(&self) -> Result<(), ClusterError> {
        let mut settled_since = None;
        for _ in 0..10 {
            if let Step::Wait { .. } = self.pass(&mut settled_since).await? {
                return Ok(());
            }
        }
        Err(ClusterError::Internal(
            "the webhook certificates did not settle in ten writes".to_owned(),
        ))
    }

    /// Keeps the certificates while `leading` is true: a pass at every change the replicas'
    /// watches see, when a wait ends, and after a failure with backoff (1 s doubling to 30 s).
    pub async fn run(
        &self,
        mut watch: CertWatch,
        mut leading: watch::Receiver<bool>,
        report: &dyn CertReport,
    ) {
        let mut settled_since = None;
        let mut failures = 0u32;
        while *leading.borrow() {
            let sleep = match self.pass(&mut settled_since).await {
                Ok(Step::Wait { until, why }) => {
                    failures = 0;
                    tracing::debug!(?why, %until, "webhook certificates up to date");
                    let left = until - OffsetDateTime::now_utc();
                    Duration::try_from(left).unwrap_or(Duration::ZERO)
                }
                Ok(step) => {
                    failures = 0;
                    tracing::info!(step = step.describe(), "webhook certificates");
                    report.wrote(&step);
                    Duration::ZERO
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(%error, "keeping the webhook certificates failed; retrying");
                    report.failed(&error);
                    Duration::from_secs(1u64 << failures.min(5).saturating_sub(1))
                        .min(Duration::from_secs(30))
                }
            };
            if sleep.is_zero() {
                continue;
            }
            // A closed channel (its watch ended: the supervisor stops the controller) is
            // never ready again, so it cannot make this loop spin.
            tokio::select! {
                Ok(()) = watch.leaf.changed() => {}
                Ok(()) = watch.bundle.changed() => {}
                Ok(()) = leading.changed() => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }
}
