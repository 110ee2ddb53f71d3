//! The health rules of `status`, as a pure function of what was read.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhook, MutatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use serde::Serialize;
use sparrow_core::expiry::CredentialExpiry;
use sparrow_core::names::{
    CREDENTIAL_KIND_ANNOTATION, NAMESPACE_NAME_LABEL, NEXT_REFRESH_ANNOTATION, PULL_SECRET_NAME,
    REFRESH_FAILED_ANNOTATION, REFRESHED_AT_ANNOTATION, TLS_SECRET_NAME, WEBHOOK_CONFIG_NAME,
};
use sparrow_core::ownership::{CopyState, copy_state, is_pull_secret};
use sparrow_core::selector::selector_matches;
use sparrow_core::webhook_pki;
use sparrow_core::{CredentialKind, ExpirySource, ExpiryState};

use super::Observed;
use crate::secrets::{
    data_hash, external_source_problem, is_injected, is_proven, registry_and_user,
};

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
    /// Whether pod creation is blocked anywhere right now.
    pub admission: Admission,
    /// The registry credentials, when a pull secret exists.
    pub registry: Option<RegistryStatus>,
    /// The Secret another tool keeps that the controller copies (`--registry-secret`), when
    /// it runs with one: named even when it is missing or unusable.
    pub registry_secret: Option<String>,
    /// Copies of this mesh's pull secret in other namespaces that the controller proves it
    /// made.
    pub copies: usize,
    /// Copies whose data differs from the source's (`ns/name`).
    pub stale_copies: Vec<String>,
    /// Namespaces with injected pods and no copy: their next image pull will fail.
    pub namespaces_missing_copy: Vec<String>,
    /// Secrets named `sparrow-registry-key` that Sparrow cannot prove it made (`ns/name`).
    pub foreign_secrets: Vec<String>,
    /// Pods a webhook selects that run without the sidecar (`ns/name`): admitted while the
    /// controller could not answer, or created before the mesh.
    pub pods_without_sidecar: Vec<String>,
    /// What is wrong, one sentence each; empty when healthy.
    pub problems: Vec<String>,
    /// Worth knowing, not wrong.
    pub warnings: Vec<String>,
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
    /// Who the webhook answers, from the controller's flags.
    pub webhook_callers: WebhookCallers,
}

/// Who the webhook answers.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum WebhookCallers {
    /// Only callers with a client certificate from the CA of `deploy --webhook-client-ca`.
    ApiServerOnly,
    /// Anyone who reaches the webhook's port.
    Anyone,
}

impl WebhookCallers {
    /// What the controller `container`'s flags say.
    fn of(container: Option<&k8s_openapi::api::core::v1::Container>) -> Self {
        let requires = container
            .and_then(|c| c.args.as_ref())
            .is_some_and(|args| args.iter().any(|a| a.starts_with("--webhook-client-ca")));
        if requires {
            Self::ApiServerOnly
        } else {
            Self::Anyone
        }
    }
}

impl ControllerStatus {
    /// At least one replica can answer the webhook.
    pub fn available(&self) -> bool {
        self.present && self.ready_replicas > 0
    }
}

/// The webhook configuration.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookStatus {
    /// The MutatingWebhookConfiguration exists.
    pub present: bool,
    /// Every webhook's caBundle verifies the serving certificate in the TLS secret.
    pub ca_bundle_matches: bool,
    /// When the serving certificate expires (RFC 3339), when there is one.
    pub cert_expires: Option<String>,
    /// Seconds from the reading until then (negative: expired).
    pub cert_expires_in_seconds: Option<i64>,
}

/// Whether pod creation is refused anywhere right now: only when the webhook exists, no
/// controller replica is ready, and a webhook with `failurePolicy: Fail` selects the pod.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Admission {
    /// Pod creation is blocked somewhere.
    pub blocked: bool,
    /// Namespaces where every new pod (not labelled disabled) is refused.
    pub blocked_namespaces: Vec<String>,
    /// New pods labelled `injector.sparrow-mesh.io/auto-inject=enabled` are refused.
    pub blocked_labelled_pods: bool,
    /// Refused because the API server cannot verify the controller: the webhook's caBundle
    /// is not the CA of its serving certificate (however ready the controller is).
    pub ca_bundle_mismatch: bool,
}

impl Admission {
    /// One sentence for people.
    pub fn describe(&self) -> String {
        if !self.blocked {
            return "pod creation is not blocked anywhere".to_owned();
        }
        let mut parts = Vec::new();
        if !self.blocked_namespaces.is_empty() {
            parts.push(format!(
                "in namespace(s) {}",
                self.blocked_namespaces.join(", ")
            ));
        }
        if self.blocked_labelled_pods {
            parts.push(format!(
                "for pods labelled {}=enabled",
                sparrow_core::names::AUTO_INJECT_LABEL
            ));
        }
        let until = if self.ca_bundle_mismatch {
            "because the API server cannot verify the controller's certificate (the webhook's caBundle does not match it; sparrowctl deploy repairs it)"
        } else {
            "until the controller is ready"
        };
        format!(
            "pod creation is blocked {} {until} (namespaces nobody opted in are not blocked)",
            parts.join(" and ")
        )
    }
}

/// Registry and kind of credential; never the credential.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RegistryStatus {
    /// The `auths` key (`HOST[:PORT]`).
    pub server: String,
    /// The Secret of the mesh namespace the credential is in.
    pub secret: String,
    /// Who keeps it: `static` (Sparrow, from deploy's flags) or `external` (another tool).
    pub kept_by: SourceKind,
    /// `json-key` or `username-password`.
    pub credential: CredentialKind,
    /// When the credential expires, when the source Secret records it.
    pub expiry: Option<ExpiryStatus>,
    /// The plugin's runs, when a plugin keeps the credential.
    pub refresh: Option<RefreshStatus>,
}

/// Who keeps the Secret the mesh's pull credential is in.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum SourceKind {
    /// Sparrow, from `deploy` and `registry update`'s flags.
    Static,
    /// Another tool (`--registry-secret`): read, never written.
    External,
    /// A kubelet credential-provider plugin the controller runs.
    Plugin,
}

/// What the source records of the plugin's runs.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RefreshStatus {
    /// When it last answered with a credential (RFC 3339).
    pub refreshed_at: Option<String>,
    /// When the controller runs it next (RFC 3339).
    pub next_refresh: Option<String>,
    /// The last failed run, `<RFC 3339> <why>`, until a good one.
    pub failed: Option<String>,
}

/// When the registry credential expires, as the source Secret records it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExpiryStatus {
    /// RFC 3339 UTC.
    pub expires: String,
    /// Seconds from the reading until then (negative: expired).
    pub expires_in_seconds: i64,
    /// `flag` (--registry-credential-expires) or `jwt` (the password's `exp` claim).
    pub source: ExpirySource,
    /// `ok`, `warning` (within --expiry-warning) or `expired`.
    pub state: ExpiryState,
}

impl StatusReport {
    /// Healthy when nothing is wrong.
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The controller's state from its Deployment.
pub fn controller_status(deployment: Option<&Deployment>) -> ControllerStatus {
    match deployment {
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
            webhook_callers: WebhookCallers::of(
                d.spec
                    .as_ref()
                    .and_then(|s| s.template.spec.as_ref())
                    .and_then(|s| s.containers.first()),
            ),
        },
        None => ControllerStatus {
            present: false,
            replicas: 0,
            ready_replicas: 0,
            image: None,
            webhook_callers: WebhookCallers::Anyone,
        },
    }
}

/// Judges what was read.
pub fn evaluate(observed: &Observed) -> StatusReport {
    let ns = observed.namespace.as_str();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let controller = controller_status(observed.deployment.as_ref());
    if !controller.present {
        problems.push(format!(
            "the controller Deployment {ns}/{} does not exist: run sparrowctl deploy",
            sparrow_core::names::CONTROLLER_NAME
        ));
    } else if controller.ready_replicas < controller.replicas.max(1) {
        problems.push(format!(
            "the controller has {} of {} replicas ready",
            controller.ready_replicas, controller.replicas
        ));
    }
    let webhook = webhook_status(
        observed.webhook.as_ref(),
        observed.serving_cert.as_deref(),
        observed.observed_at,
    );
    if !webhook.present {
        problems.push(format!(
            "the webhook {WEBHOOK_CONFIG_NAME} does not exist: pods are not injected"
        ));
    } else if observed.serving_cert.is_none() {
        problems.push(format!("Secret {ns}/{TLS_SECRET_NAME} holds no serving certificate: the controller makes it at start (see its logs if it runs)"));
    } else if webhook.cert_expires_in_seconds.is_some_and(|s| s <= 0) {
        problems.push(format!("the serving certificate in Secret {ns}/{TLS_SECRET_NAME} has expired: the controller renews it while it runs (see its logs)"));
    } else if !webhook.ca_bundle_matches {
        problems.push(format!("the webhook's caBundle does not verify the serving certificate in Secret {ns}/{TLS_SECRET_NAME}: the controller repairs it within seconds while it runs (see its logs if this persists)"));
    }
    // A caBundle that does not match fails every call to the webhook, as a controller down does.
    let mut admission = admission(
        observed.webhook.as_ref(),
        controller.available() && webhook.ca_bundle_matches,
        &observed.namespaces,
    );
    admission.ca_bundle_mismatch =
        admission.blocked && controller.available() && !webhook.ca_bundle_matches;
    if admission.blocked {
        problems.push(admission.describe());
    }
    let (registry, source_hash) = registry_status(observed, &mut problems);
    if let Some(expiry) = registry.as_ref().and_then(|r| r.expiry.as_ref()) {
        judge_expiry(expiry, ns, &mut problems, &mut warnings);
    }
    if let Some(failed) = registry
        .as_ref()
        .and_then(|r| r.refresh.as_ref())
        .and_then(|r| r.failed.as_ref())
    {
        // The last good credential still serves until it expires (judged above).
        warnings.push(format!(
            "the credential-provider plugin failed at {failed}; the controller keeps the last good credential and retries with backoff (its Events and logs say more)"
        ));
    }
    if registry.is_none() && controller_pulls_with_the_pull_secret(observed.deployment.as_ref()) {
        problems.push(format!(
            "Secret {ns}/{PULL_SECRET_NAME} is gone, yet the controller pulls its image with it: the next controller restart and every new meshed pod will fail to pull; run sparrowctl deploy with the registry flags again (or sparrowctl registry update)"
        ));
    }
    let copies = copies(observed, source_hash.as_deref());
    if !copies.stale.is_empty() {
        problems.push(format!(
            "{} cop{} of the registry secret hold other data than the source (the controller rewrites them): {}",
            copies.stale.len(),
            if copies.stale.len() == 1 { "y" } else { "ies" },
            copies.stale.join(", ")
        ));
    }
    let namespaces_missing_copy: Vec<String> = if registry.is_some() {
        injected_namespaces(&observed.pods)
            .into_iter()
            .filter(|n| n != ns && !copies.namespaces.contains(n))
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
    let pods_without_sidecar = pods_without_sidecar(observed);
    if !pods_without_sidecar.is_empty() {
        warnings.push(format!(
            "{} pod(s) selected for injection run without the sidecar (admitted while the controller could not answer, or created before the mesh): restart them to add it",
            pods_without_sidecar.len()
        ));
    }
    StatusReport {
        namespace: ns.to_owned(),
        controller,
        webhook,
        admission,
        registry,
        registry_secret: observed.registry_secret.clone(),
        copies: copies.count,
        stale_copies: copies.stale,
        namespaces_missing_copy,
        foreign_secrets: copies.foreign,
        pods_without_sidecar,
        problems,
        warnings,
    }
}

fn webhook_status(
    config: Option<&MutatingWebhookConfiguration>,
    serving_cert: Option<&str>,
    at: i64,
) -> WebhookStatus {
    let now =
        time::OffsetDateTime::from_unix_timestamp(at).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let expires = serving_cert
        .and_then(|pem| webhook_pki::facts(pem).ok())
        .map(|f| f.not_after);
    let cert_expires = expires.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    });
    let cert_expires_in_seconds = expires.map(|t| (t - now).whole_seconds());
    let Some(config) = config else {
        return WebhookStatus {
            present: false,
            ca_bundle_matches: false,
            cert_expires,
            cert_expires_in_seconds,
        };
    };
    let hooks = config.webhooks.as_deref().unwrap_or_default();
    let matches = !hooks.is_empty()
        && serving_cert.is_some_and(|cert| {
            hooks.iter().all(|h| {
                h.client_config
                    .ca_bundle
                    .as_ref()
                    .is_some_and(|b| webhook_pki::bundle_verifies(&b.0, cert, now))
            })
        });
    WebhookStatus {
        present: true,
        ca_bundle_matches: matches,
        cert_expires,
        cert_expires_in_seconds,
    }
}

fn registry_status(
    observed: &Observed,
    problems: &mut Vec<String>,
) -> (Option<RegistryStatus>, Option<String>) {
    let ns = observed.namespace.as_str();
    let (name, kept_by) = match &observed.registry_secret {
        Some(name) => (name.as_str(), SourceKind::External),
        None => (PULL_SECRET_NAME, SourceKind::Static),
    };
    let secret = match (kept_by, observed.source.as_ref()) {
        (SourceKind::Static | SourceKind::Plugin, source) => {
            source.filter(|s| is_pull_secret(s.metadata.labels.as_ref()))
        }
        (SourceKind::External, None) => {
            problems.push(format!(
                "Secret {ns}/{name}, which another tool keeps (--registry-secret), is missing: the copies keep the credential they hold, but namespaces meshed from now on and the next controller pod cannot pull; check the tool that writes it"
            ));
            None
        }
        (SourceKind::External, Some(secret)) => match external_source_problem(secret) {
            Some(problem) => {
                problems.push(format!(
                    "Secret {ns}/{name}, which another tool keeps (--registry-secret), cannot be copied: {problem}; the copies keep the credential they hold; fix the Secret or the tool that writes it"
                ));
                None
            }
            None => Some(secret),
        },
    };
    let Some(secret) = secret else {
        return (None, None);
    };
    let hash = Some(data_hash(secret));
    let annotations = secret.metadata.annotations.as_ref();
    let annotation = |key: &str| annotations.and_then(|a| a.get(key)).cloned();
    let refresh =
        (annotation(CREDENTIAL_KIND_ANNOTATION).as_deref() == Some("plugin")).then(|| {
            RefreshStatus {
                refreshed_at: annotation(REFRESHED_AT_ANNOTATION),
                next_refresh: annotation(NEXT_REFRESH_ANNOTATION),
                failed: annotation(REFRESH_FAILED_ANNOTATION),
            }
        });
    let kept_by = if refresh.is_some() {
        SourceKind::Plugin
    } else {
        kept_by
    };
    match registry_and_user(secret) {
        Ok((server, user)) => (
            Some(RegistryStatus {
                server,
                secret: format!("{ns}/{name}"),
                kept_by,
                refresh,
                credential: CredentialKind::from_username(&user),
                expiry: expiry_status(secret, observed),
            }),
            hash,
        ),
        Err(detail) => {
            problems.push(format!(
                "Secret {ns}/{PULL_SECRET_NAME} does not hold a valid .dockerconfigjson: {detail}"
            ));
            (None, hash)
        }
    }
}

/// The expiry the source records, judged at the reading against the warning window.
fn expiry_status(source: &Secret, observed: &Observed) -> Option<ExpiryStatus> {
    let expiry = CredentialExpiry::from_annotations(source.metadata.annotations.as_ref())?;
    let now = observed.observed_at;
    // A plugin's credential is short-lived by design and renewed before it lapses: only its
    // expiry (the plugin failing for its whole life) is news.
    let window = if expiry.source == ExpirySource::Plugin {
        0
    } else {
        observed.expiry_warning_seconds
    };
    Some(ExpiryStatus {
        expires: expiry.rfc3339(),
        expires_in_seconds: expiry.at - now,
        source: expiry.source,
        state: ExpiryState::at(Some(expiry.at), now, window),
    })
}

/// Expired is a problem (pulls fail); within the window a warning, which does not fail status.
fn judge_expiry(
    expiry: &ExpiryStatus,
    ns: &str,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    let left = sparrow_core::expiry::short_duration(expiry.expires_in_seconds.unsigned_abs());
    match expiry.state {
        ExpiryState::Expired => problems.push(format!(
            "the registry credential in Secret {ns}/{PULL_SECRET_NAME} expired {} ({left} ago): new meshed pods and controller pods cannot pull; give a new one with sparrowctl registry update",
            expiry.expires
        )),
        ExpiryState::Warning => warnings.push(format!(
            "the registry credential in Secret {ns}/{PULL_SECRET_NAME} expires {} (in {left}): give a new one with sparrowctl registry update before then",
            expiry.expires
        )),
        ExpiryState::Ok | ExpiryState::Unknown => {}
    }
}

struct Copies {
    count: usize,
    stale: Vec<String>,
    namespaces: BTreeSet<String>,
    foreign: Vec<String>,
}

/// The Secrets named like copies, sorted by the one ownership rule: proven copies (current or
/// stale by their data) and foreign ones.
fn copies(observed: &Observed, source_hash: Option<&str>) -> Copies {
    let mut copies = Copies {
        count: 0,
        stale: Vec::new(),
        namespaces: BTreeSet::new(),
        foreign: Vec::new(),
    };
    let mesh = observed.namespace.as_str();
    for secret in &observed.same_named_secrets {
        let meta = &secret.metadata;
        let (Some(ns), Some(name)) = (&meta.namespace, &meta.name) else {
            continue;
        };
        if ns == mesh {
            continue;
        }
        if !is_proven(observed.copy_key.as_ref(), mesh, meta) {
            copies.foreign.push(format!("{ns}/{name}"));
            continue;
        }
        copies.count += 1;
        copies.namespaces.insert(ns.clone());
        if copy_state(Some(&data_hash(secret)), source_hash) == CopyState::Stale {
            copies.stale.push(format!("{ns}/{name}"));
        }
    }
    copies
}

/// The controller's pod template names the pull secret in `imagePullSecrets` (it was deployed
/// with credentials).
fn controller_pulls_with_the_pull_secret(deployment: Option<&Deployment>) -> bool {
    deployment
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.image_pull_secrets.as_ref())
        .is_some_and(|refs| refs.iter().any(|r| r.name == PULL_SECRET_NAME))
}

fn injected_namespaces(pods: &[ObjectMeta]) -> BTreeSet<String> {
    pods.iter()
        .filter(|p| is_injected(p))
        .filter_map(|p| p.namespace.clone())
        .collect()
}

/// A namespace's labels as the webhook sees them (with its name label, which Kubernetes
/// sets on every namespace).
fn namespace_labels(namespaces: &[ObjectMeta]) -> BTreeMap<String, BTreeMap<String, String>> {
    namespaces
        .iter()
        .filter_map(|n| {
            let name = n.name.clone()?;
            let mut labels = n.labels.clone().unwrap_or_default();
            labels.insert(NAMESPACE_NAME_LABEL.to_owned(), name.clone());
            Some((name, labels))
        })
        .collect()
}

fn fails_closed(hook: &MutatingWebhook) -> bool {
    // The API server's default is Fail.
    hook.failure_policy.as_deref().unwrap_or("Fail") == "Fail"
}

/// Where pod creation is refused now: nowhere while a controller replica is ready.
pub fn admission(
    config: Option<&MutatingWebhookConfiguration>,
    controller_ready: bool,
    namespaces: &[ObjectMeta],
) -> Admission {
    let Some(config) = config.filter(|_| !controller_ready) else {
        return Admission::default();
    };
    let labels = namespace_labels(namespaces);
    let mut blocked_namespaces = BTreeSet::new();
    let mut blocked_labelled_pods = false;
    let unlabelled_pod = BTreeMap::new();
    for hook in config.webhooks.iter().flatten().filter(|h| fails_closed(h)) {
        let default_selector = Default::default();
        let ns_selector = hook
            .namespace_selector
            .as_ref()
            .unwrap_or(&default_selector);
        let pod_selector = hook.object_selector.as_ref().unwrap_or(&default_selector);
        let selected: Vec<&String> = labels
            .iter()
            .filter(|(_, l)| selector_matches(ns_selector, l))
            .map(|(n, _)| n)
            .collect();
        if selector_matches(pod_selector, &unlabelled_pod) {
            blocked_namespaces.extend(selected.into_iter().cloned());
        } else {
            // Only pods carrying a label are sent: those opted in one by one.
            blocked_labelled_pods |= !selected.is_empty();
        }
    }
    Admission {
        blocked: !blocked_namespaces.is_empty() || blocked_labelled_pods,
        blocked_namespaces: blocked_namespaces.into_iter().collect(),
        blocked_labelled_pods,
        ca_bundle_mismatch: false,
    }
}

/// Pods some webhook selects that carry no sidecar (`ns/name`).
fn pods_without_sidecar(observed: &Observed) -> Vec<String> {
    let Some(config) = &observed.webhook else {
        return Vec::new();
    };
    let labels = namespace_labels(&observed.namespaces);
    let none = BTreeMap::new();
    let default_selector = Default::default();
    observed
        .pods
        .iter()
        .filter(|p| !is_injected(p) && p.deletion_timestamp.is_none())
        .filter(|p| {
            let Some(ns_labels) = p.namespace.as_ref().and_then(|n| labels.get(n)) else {
                return false;
            };
            let pod_labels = p.labels.as_ref().unwrap_or(&none);
            config.webhooks.iter().flatten().any(|h| {
                selector_matches(
                    h.namespace_selector.as_ref().unwrap_or(&default_selector),
                    ns_labels,
                ) && selector_matches(
                    h.object_selector.as_ref().unwrap_or(&default_selector),
                    pod_labels,
                )
            })
        })
        .filter_map(|p| Some(format!("{}/{}", p.namespace.clone()?, p.name.clone()?)))
        .collect()
}

#[cfg(test)]
mod tests;
