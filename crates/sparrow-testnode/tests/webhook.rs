//! The production webhook path on a real API server: a MutatingWebhookConfiguration whose
//! clientConfig names a Service (no `url`), called through the Service's ClusterIP (kube-proxy's
//! rules) to a pod serving TLS with the caBundle's certificate.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::json;
use sparrow_testnode::{Credentials, Node, TestNamespace, pull_secret, wait_until};

const LIMIT: Duration = Duration::from_secs(300);
const LABEL: &str = "sparrow-mesh.io/mutated-by";

/// A fresh CA (PEM) and a serving certificate and key it signed for `dns_name`.
fn serving_pki(dns_name: &str) -> (String, String, String) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "webhook-test-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_pem = ca.self_signed(&ca_key).expect("CA certificate").pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("serving key");
    let params = CertificateParams::new(vec![dns_name.to_owned()]).expect("serving params");
    let cert = params
        .signed_by(&key, &issuer)
        .expect("serving certificate");
    (ca_pem, cert.pem(), key.serialize_pem())
}

/// Deletes the cluster-scoped configuration when the test ends, pass or fail.
struct WebhookConfiguration<'a>(&'a Node, String);

impl Drop for WebhookConfiguration<'_> {
    fn drop(&mut self) {
        let _ = self.0.kubectl_output(
            &[
                "delete",
                "mutatingwebhookconfiguration",
                &self.1,
                "--wait=false",
            ],
            None,
        );
    }
}

fn deploy_webhook_server(node: &Node, ns: &TestNamespace, cert: &str, key: &str) {
    let creds = Credentials::random(&format!("u-{}", ns.name));
    node.registry_user(&creds).expect("registry user");
    let image = node
        .push_image("webhook", &format!("{}/webhook", ns.name), &creds)
        .expect("push");
    let mut secret = pull_secret("regcred", &node.registry, &creds);
    secret["metadata"]["namespace"] = ns.name.clone().into();
    node.apply(&secret);
    node.apply(&json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": { "name": "hook-tls", "namespace": ns.name },
        "data": { "tls.crt": STANDARD.encode(cert), "tls.key": STANDARD.encode(key) }
    }));
    node.apply(&json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "hook", "namespace": ns.name },
        "spec": {
            "selector": { "matchLabels": { "app": "hook" } },
            "template": {
                "metadata": { "labels": { "app": "hook" } },
                "spec": {
                    "imagePullSecrets": [{ "name": "regcred" }],
                    "containers": [{
                        "name": "webhook", "image": image,
                        "ports": [{ "containerPort": 8443 }],
                        "readinessProbe": { "tcpSocket": { "port": 8443 }, "periodSeconds": 1 },
                        "volumeMounts": [{ "name": "tls", "mountPath": "/tls", "readOnly": true }]
                    }],
                    "volumes": [{ "name": "tls", "secret": { "secretName": "hook-tls" } }]
                }
            }
        }
    }));
    node.apply(&json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "hook", "namespace": ns.name },
        "spec": { "selector": { "app": "hook" }, "ports": [{ "port": 443, "targetPort": 8443 }] }
    }));
    ns.kubectl(&[
        "wait",
        "--for=condition=Available",
        "deployment/hook",
        "--timeout=300s",
    ]);
}

#[test]
fn the_api_server_calls_a_webhook_through_its_service() {
    let node = Node::require();
    let ns = TestNamespace::create(node, "hook");
    let (ca, cert, key) = serving_pki(&format!("hook.{}.svc", ns.name));
    deploy_webhook_server(node, &ns, &cert, &key);
    let pod = ns.get_json(&["pods", "-l", "app=hook"])["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let name = format!("t-{}", ns.name);
    let _guard = WebhookConfiguration(node, name.clone());
    node.apply(&json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": { "name": name },
        "webhooks": [{
            "name": format!("label.{}.sparrow-mesh.io", ns.name),
            "clientConfig": {
                "service": { "namespace": ns.name, "name": "hook", "path": "/mutate", "port": 443 },
                "caBundle": STANDARD.encode(&ca)
            },
            "rules": [{ "operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"] }],
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": ns.name } },
            "admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Fail", "timeoutSeconds": 10
        }]
    }));

    // failurePolicy Fail: once the API server has the configuration, a create succeeds only with the
    // webhook's answer. Until then it is refused (Service rules not yet in place) or admitted
    // unlabelled (configuration not yet seen): retry until a labelled one is admitted.
    let mut attempt = 0;
    let labels = wait_until("a ConfigMap admitted through the webhook", LIMIT, || {
        attempt += 1;
        let probe = format!("probe-{attempt}");
        let out = node
            .kubectl_output(
                &["-n", &ns.name, "create", "configmap", &probe, "-o", "json"],
                None,
            )
            .expect("kubectl runs");
        if !out.status.success() {
            return None;
        }
        let created: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let labels = created["metadata"]["labels"].clone();
        labels.get(LABEL).is_some().then_some(labels)
    });
    assert_eq!(
        labels[LABEL],
        pod.as_str(),
        "the webhook pod {pod} labelled the object: {labels}"
    );
}
