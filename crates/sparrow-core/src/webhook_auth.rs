//! What a cluster administrator gives `kube-apiserver --admission-control-config-file` so that
//! the API server presents a client certificate to the mesh's webhook (`sparrowctl
//! webhook-auth`): an `AdmissionConfiguration` whose `MutatingAdmissionWebhook` plugin names
//! a kubeconfig, and that kubeconfig, whose user is named after the host the API server dials
//! (`sparrow-controller.<ns>.svc`; the Service's port is 443, so no `:port`).

use base64::Engine as _;
use serde_json::{Value, json};

use crate::names::CONTROLLER_NAME;

/// The file name `webhook-auth` writes the `AdmissionConfiguration` to.
pub const ADMISSION_CONFIG_FILE: &str = "admission-config.yaml";
/// The file name `webhook-auth` writes the webhook kubeconfig to.
pub const WEBHOOK_KUBECONFIG_FILE: &str = "webhook-kubeconfig.yaml";

/// The host the API server dials for the mesh in `mesh`: the kubeconfig's user name.
pub fn webhook_host(mesh: &str) -> String {
    format!("{CONTROLLER_NAME}.{mesh}.svc")
}

/// The API server's client certificate and key, as the kubeconfig refers to them.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientCredential {
    /// Paths on the API server's host (`client-certificate`, `client-key`).
    Files {
        /// The certificate's path.
        cert: String,
        /// The key's path.
        key: String,
    },
    /// PEM text inlined (`client-certificate-data`, `client-key-data`).
    Embedded {
        /// The certificate (chain) PEM.
        cert_pem: String,
        /// The key PEM.
        key_pem: String,
    },
}

impl std::fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Files { cert, key } => f
                .debug_struct("Files")
                .field("cert", cert)
                .field("key", key)
                .finish(),
            Self::Embedded { .. } => f.write_str("Embedded { <redacted> }"),
        }
    }
}

/// The `AdmissionConfiguration` (`apiserver.config.k8s.io/v1`) pointing the
/// `MutatingAdmissionWebhook` plugin at `kubeconfig_path` (a path on the API server's host).
pub fn admission_configuration(kubeconfig_path: &str) -> Value {
    json!({
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AdmissionConfiguration",
        "plugins": [{
            "name": "MutatingAdmissionWebhook",
            "configuration": {
                "apiVersion": "apiserver.config.k8s.io/v1",
                "kind": "WebhookAdmissionConfiguration",
                "kubeConfigFile": kubeconfig_path,
            },
        }],
    })
}

/// The kubeconfig whose only user, named after the mesh's webhook host, presents `credential`.
pub fn webhook_kubeconfig(mesh: &str, credential: &ClientCredential) -> Value {
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let user = match credential {
        ClientCredential::Files { cert, key } => json!({
            "client-certificate": cert,
            "client-key": key,
        }),
        ClientCredential::Embedded { cert_pem, key_pem } => json!({
            "client-certificate-data": b64(cert_pem),
            "client-key-data": b64(key_pem),
        }),
    };
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "users": [{ "name": webhook_host(mesh), "user": user }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admission_configuration_names_the_mutating_webhook_plugin_and_the_kubeconfig() {
        let config = admission_configuration("/etc/kubernetes/sparrow/webhook-kubeconfig.yaml");
        assert_eq!(config["apiVersion"], "apiserver.config.k8s.io/v1");
        assert_eq!(config["kind"], "AdmissionConfiguration");
        let plugins = config["plugins"].as_array().expect("plugins");
        assert_eq!(plugins.len(), 1);
        assert_eq!(plugins[0]["name"], "MutatingAdmissionWebhook");
        let webhook = &plugins[0]["configuration"];
        assert_eq!(webhook["kind"], "WebhookAdmissionConfiguration");
        assert_eq!(webhook["apiVersion"], "apiserver.config.k8s.io/v1");
        assert_eq!(
            webhook["kubeConfigFile"],
            "/etc/kubernetes/sparrow/webhook-kubeconfig.yaml"
        );
    }

    #[test]
    fn the_kubeconfig_user_is_the_host_the_api_server_dials() {
        let files = ClientCredential::Files {
            cert: "/pki/webhook-client.crt".to_owned(),
            key: "/pki/webhook-client.key".to_owned(),
        };
        let config = webhook_kubeconfig("team", &files);
        assert_eq!(config["kind"], "Config");
        let users = config["users"].as_array().expect("users");
        assert_eq!(users.len(), 1);
        assert_eq!(users[0]["name"], "sparrow-controller.team.svc");
        assert_eq!(
            users[0]["user"],
            json!({"client-certificate": "/pki/webhook-client.crt", "client-key": "/pki/webhook-client.key"})
        );
    }

    #[test]
    fn embedded_credentials_are_base64_and_never_debug_printed() {
        let embedded = ClientCredential::Embedded {
            cert_pem: "CERT".to_owned(),
            key_pem: "KEY-SECRET".to_owned(),
        };
        let config = webhook_kubeconfig("sparrow-mesh", &embedded);
        let user = &config["users"][0]["user"];
        assert_eq!(user["client-certificate-data"], "Q0VSVA==");
        assert_eq!(user["client-key-data"], "S0VZLVNFQ1JFVA==");
        assert!(!format!("{embedded:?}").contains("KEY-SECRET"));
    }
}
