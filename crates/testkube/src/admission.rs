//! Mutating admission of CREATE requests: matching MutatingWebhookConfigurations, calling
//! Service webhooks with an AdmissionReview v1 over HTTPS (trusting only the webhook's
//! caBundle), applying JSONPatch responses, and turning failures into the real API's errors.
//! The product's webhooks are Service-based and CREATE-only; `url` webhooks and UPDATE
//! admission are left to the real node.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::ApiError;
use crate::resources::{MUTATING_WEBHOOKS, NAMESPACES, RESOURCES};
use crate::selectors::LabelSelector;
use crate::store::{Store, meta_str};
use crate::util;

/// Map from (namespace, service name) to the address its webhook really listens on.
pub type ServiceEndpoints = HashMap<(String, String), SocketAddr>;

/// What is being created.
pub struct Attributes<'a> {
    /// Index into [`RESOURCES`].
    pub resource: usize,
    /// Namespace of the object ("" if cluster-scoped).
    pub namespace: &'a str,
    /// Name of the object (may be empty on create with generateName).
    pub name: &'a str,
    /// Whether the request is a dry run.
    pub dry_run: bool,
    /// fieldManager of the request, for the options object.
    pub field_manager: Option<&'a str>,
}

/// The admitted object and the warnings webhooks returned.
#[derive(Debug)]
pub struct Outcome {
    /// Object after every patch.
    pub object: Value,
    /// Warnings to return in `Warning` headers.
    pub warnings: Vec<String>,
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `pods`, `*` and `*/*` match the main resource; `pods/status` does not.
fn resource_matches(pattern: &str, plural: &str) -> bool {
    let (res, sub) = pattern.split_once('/').unwrap_or((pattern, ""));
    (res == "*" || res == plural) && (sub.is_empty() || sub == "*")
}

fn rule_matches(rule: &Value, attrs: &Attributes<'_>) -> bool {
    let def = &RESOURCES[attrs.resource];
    let any = |list: Vec<String>, want: &str| list.iter().any(|x| x == "*" || x == want);
    let scope_ok = match rule.get("scope").and_then(Value::as_str).unwrap_or("*") {
        "Cluster" => !def.namespaced,
        "Namespaced" => def.namespaced,
        _ => true,
    };
    scope_ok
        && any(strings(rule, "operations"), "CREATE")
        && any(strings(rule, "apiGroups"), def.group)
        && any(strings(rule, "apiVersions"), def.version)
        && strings(rule, "resources")
            .iter()
            .any(|r| resource_matches(r, def.plural))
}

fn selector_matches(selector: Option<&Value>, labels: Option<&Value>) -> Result<bool, String> {
    Ok(LabelSelector::from_object(selector)?.matches(labels))
}

fn webhook_applies(
    store: &Store,
    hook: &Value,
    attrs: &Attributes<'_>,
    object: &Value,
) -> Result<bool, String> {
    let rules = hook
        .get("rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !rules.iter().any(|r| rule_matches(r, attrs)) {
        return Ok(false);
    }
    let def = &RESOURCES[attrs.resource];
    let ns_selector = hook.get("namespaceSelector");
    let ns_ok = if attrs.resource == NAMESPACES {
        selector_matches(ns_selector, object.pointer("/metadata/labels"))?
    } else if def.namespaced {
        let ns = store.get(NAMESPACES, "", attrs.namespace);
        selector_matches(
            ns_selector,
            ns.as_ref().and_then(|n| n.pointer("/metadata/labels")),
        )?
    } else {
        true
    };
    if !ns_ok {
        return Ok(false);
    }
    selector_matches(
        hook.get("objectSelector"),
        object.pointer("/metadata/labels"),
    )
}

/// Runs every matching mutating webhook over `object`, in configuration-name order.
pub async fn admit(
    store: &Store,
    endpoints: &ServiceEndpoints,
    attrs: &Attributes<'_>,
    mut object: Value,
) -> Result<Outcome, ApiError> {
    let mut warnings = Vec::new();
    // Webhook configurations are never subject to webhooks themselves, as in the real API.
    if attrs.resource == MUTATING_WEBHOOKS {
        return Ok(Outcome { object, warnings });
    }
    let (configs, _) = store.list(MUTATING_WEBHOOKS, None);
    if configs.is_empty() {
        return Ok(Outcome { object, warnings });
    }
    for config in configs.iter() {
        let hooks = config
            .get("webhooks")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for hook in hooks {
            let name = hook
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let applies = webhook_applies(store, &hook, attrs, &object).map_err(|e| {
                ApiError::internal(format!("webhook {name:?} has an invalid selector: {e}"))
            })?;
            if !applies {
                continue;
            }
            let side_effects = hook
                .get("sideEffects")
                .and_then(Value::as_str)
                .unwrap_or("Unknown");
            if attrs.dry_run && !matches!(side_effects, "None" | "NoneOnDryRun") {
                return Err(ApiError::bad_request(format!(
                    "admission webhook {name:?} does not support dry run"
                )));
            }
            let fail_closed = hook.get("failurePolicy").and_then(Value::as_str) != Some("Ignore");
            match call_webhook(&hook, &name, endpoints, attrs, &object).await {
                Ok(Reply::Allowed { patch, warnings: w }) => {
                    warnings.extend(w);
                    if let Some(patch) = patch {
                        json_patch::patch(&mut object, &patch).map_err(|e| {
                            ApiError::internal(format!(
                                "failed to apply patch from webhook {name:?}: {e}"
                            ))
                        })?;
                    }
                }
                Ok(Reply::Denied(err)) => return Err(err),
                Err(why) if fail_closed => {
                    return Err(ApiError::internal(format!(
                        "failed calling webhook {name:?}: {why}"
                    )));
                }
                Err(why) => {
                    tracing::warn!(webhook = %name, error = %why, "webhook failed; failurePolicy Ignore");
                }
            }
        }
    }
    Ok(Outcome { object, warnings })
}

enum Reply {
    Allowed {
        patch: Option<json_patch::Patch>,
        warnings: Vec<String>,
    },
    Denied(ApiError),
}

struct Target {
    addr: SocketAddr,
    server_name: String,
    url: String,
    path: String,
    host: String,
}

fn resolve(
    hook: &Value,
    endpoints: &ServiceEndpoints,
    timeout: Duration,
) -> Result<Target, String> {
    let svc = hook
        .pointer("/clientConfig/service")
        .ok_or("clientConfig has no service (testkube does not call url webhooks)")?;
    let field = |key: &str| svc.get(key).and_then(Value::as_str);
    let (ns, name) = (
        field("namespace").unwrap_or_default(),
        field("name").unwrap_or_default(),
    );
    let port = svc.get("port").and_then(Value::as_u64).unwrap_or(443);
    let path = format!(
        "{}?timeout={}s",
        field("path").unwrap_or("/"),
        timeout.as_secs()
    );
    let server_name = format!("{name}.{ns}.svc");
    let url = format!("https://{server_name}:{port}{path}");
    let addr = *endpoints.get(&(ns.to_string(), name.to_string())).ok_or_else(|| {
        format!("failed to call webhook: Post {url:?}: service \"{ns}/{name}\" has no endpoint registered with set_service_endpoint")
    })?;
    Ok(Target {
        addr,
        host: format!("{server_name}:{port}"),
        server_name,
        url,
        path,
    })
}

fn tls_connector(hook: &Value) -> Result<TlsConnector, String> {
    let bundle = hook
        .pointer("/clientConfig/caBundle")
        .and_then(Value::as_str)
        .filter(|b| !b.is_empty())
        .ok_or("webhook clientConfig has no caBundle")?;
    let pem = STANDARD
        .decode(bundle)
        .map_err(|e| format!("caBundle is not base64: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| format!("caBundle holds an unreadable certificate: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("caBundle certificate rejected: {e}"))?;
    }
    if roots.is_empty() {
        return Err("caBundle holds no certificate".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn post(target: &Target, connector: TlsConnector, body: Vec<u8>) -> Result<Value, String> {
    let tcp = TcpStream::connect(target.addr)
        .await
        .map_err(|e| e.to_string())?;
    let server_name =
        ServerName::try_from(target.server_name.clone()).map_err(|e| e.to_string())?;
    let tls = connector
        .connect(server_name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        if let Err(error) = conn.await {
            tracing::debug!(%error, "webhook connection ended");
        }
    });
    let request = http::Request::post(&target.path)
        .header(http::header::HOST, &target.host)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json, */*")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let bytes = Limited::new(response.into_body(), 16 << 20)
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("webhook answered HTTP {status}"));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("webhook response is not an AdmissionReview: {e}"))
}

async fn call_webhook(
    hook: &Value,
    name: &str,
    endpoints: &ServiceEndpoints,
    attrs: &Attributes<'_>,
    object: &Value,
) -> Result<Reply, String> {
    let timeout = Duration::from_secs(
        hook.get("timeoutSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(10)
            .clamp(1, 30),
    );
    let target = resolve(hook, endpoints, timeout)?;
    let connector = tls_connector(hook)?;
    let def = &RESOURCES[attrs.resource];
    let uid = util::new_uid();
    let kind = json!({"group": def.group, "version": def.version, "kind": def.kind});
    let resource = json!({"group": def.group, "version": def.version, "resource": def.plural});
    let mut options = json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"});
    if let Some(fm) = attrs.field_manager {
        options["fieldManager"] = json!(fm);
    }
    if attrs.dry_run {
        options["dryRun"] = json!(["All"]);
    }
    let mut request = json!({
        "uid": uid,
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "name": if attrs.name.is_empty() { meta_str(object, "name").unwrap_or_default() } else { attrs.name },
        "operation": "CREATE",
        "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
        "object": object,
        "oldObject": null,
        "dryRun": attrs.dry_run,
        "options": options,
    });
    if def.namespaced {
        request["namespace"] = json!(attrs.namespace);
    }
    let review =
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request});
    let body = serde_json::to_vec(&review).map_err(|e| e.to_string())?;
    let reply = match tokio::time::timeout(timeout, post(&target, connector, body)).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => {
            return Err(format!(
                "failed to call webhook: Post {:?}: {e}",
                target.url
            ));
        }
        Err(_) => {
            return Err(format!(
                "failed to call webhook: Post {:?}: context deadline exceeded",
                target.url
            ));
        }
    };
    let response = reply.get("response").ok_or("webhook response was absent")?;
    let got_uid = response
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if got_uid != uid {
        return Err(format!("expected response.uid={uid:?}, got {got_uid:?}"));
    }
    let warnings = strings(response, "warnings");
    if response.get("allowed").and_then(Value::as_bool) != Some(true) {
        return Ok(Reply::Denied(denied(name, response.get("status"))));
    }
    let patch = match response.get("patch").and_then(Value::as_str) {
        None => None,
        Some(encoded) => {
            let patch_type = response
                .get("patchType")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if patch_type != "JSONPatch" {
                return Err(format!("unsupported patch type {patch_type:?}"));
            }
            let raw = STANDARD
                .decode(encoded)
                .map_err(|e| format!("patch is not base64: {e}"))?;
            Some(
                serde_json::from_slice(&raw)
                    .map_err(|e| format!("patch is not a JSON patch: {e}"))?,
            )
        }
    };
    Ok(Reply::Allowed { patch, warnings })
}

/// The error the real API returns for `allowed: false` (webhookerrors.ToStatusErr).
fn denied(name: &str, status: Option<&Value>) -> ApiError {
    let status = status.cloned().unwrap_or(Value::Null);
    let code = status
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| *c >= 400)
        .unwrap_or(400);
    let reason = status
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = status
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let denied_by = format!("admission webhook {name:?} denied the request");
    let message = if !message.is_empty() {
        format!("{denied_by}: {message}")
    } else if !reason.is_empty() {
        format!("{denied_by}: {reason}")
    } else {
        format!("{denied_by} without explanation")
    };
    ApiError::new(code, reason, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;

    fn attrs(resource: usize) -> Attributes<'static> {
        Attributes {
            resource,
            namespace: "shop",
            name: "p",
            dry_run: false,
            field_manager: None,
        }
    }

    #[test]
    fn rules_match_operation_group_version_resource() {
        let pods = find("", "v1", "pods").expect("pods");
        let rule = json!({"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]});
        assert!(rule_matches(&rule, &attrs(pods)));
        let update = json!({"operations": ["UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]});
        assert!(!rule_matches(&update, &attrs(pods)));
        let secrets = find("", "v1", "secrets").expect("secrets");
        assert!(!rule_matches(&rule, &attrs(secrets)));
        let star = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"], "scope": "Cluster"});
        assert!(!rule_matches(&star, &attrs(pods)));
        assert!(resource_matches("*/*", "pods"));
        assert!(!resource_matches("pods/status", "pods"));
    }

    #[test]
    fn namespace_selector_reads_the_namespace_labels() {
        let store = Store::new(10);
        store
            .create(
                NAMESPACES,
                json!({"metadata": {"name": "shop", "labels": {"inject": "on"}}}),
                false,
            )
            .expect("ns");
        let pods = find("", "v1", "pods").expect("pods");
        let hook = json!({
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
            "namespaceSelector": {"matchExpressions": [{"key": "inject", "operator": "In", "values": ["on"]}]},
            "objectSelector": {"matchLabels": {"app": "web"}}
        });
        let web = json!({"metadata": {"labels": {"app": "web"}}});
        let other = json!({"metadata": {"labels": {"app": "db"}}});
        assert_eq!(webhook_applies(&store, &hook, &attrs(pods), &web), Ok(true));
        assert_eq!(
            webhook_applies(&store, &hook, &attrs(pods), &other),
            Ok(false)
        );
        let mut elsewhere = attrs(pods);
        elsewhere.namespace = "missing";
        assert_eq!(webhook_applies(&store, &hook, &elsewhere, &web), Ok(false));
    }

    #[test]
    fn denial_messages_match_the_real_api() {
        let e = denied(
            "inject.sparrow",
            Some(&json!({"code": 403, "message": "no"})),
        );
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "admission webhook \"inject.sparrow\" denied the request: no"
        );
        let e = denied("w", None);
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "admission webhook \"w\" denied the request without explanation"
        );
        let e = denied("w", Some(&json!({"code": 200, "reason": "Nope"})));
        assert_eq!(e.code, 400);
        assert!(e.message.ends_with(": Nope"));
    }
}
