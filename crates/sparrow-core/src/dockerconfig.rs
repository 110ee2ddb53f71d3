//! Reading a stored `.dockerconfigjson` back: which registry it is for, as whom, and so which
//! kind of credential it holds. Typed, so a malformed Secret is a precise error.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::auth::{CredentialKind, JSON_KEY_USERNAME};

/// The parts of a `.dockerconfigjson` Sparrow reads back (never the password).
#[derive(Debug, Deserialize)]
struct DockerConfig {
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Debug, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    username: String,
}

/// The registry and user a `.dockerconfigjson` holds credentials for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCredential {
    /// The key under `auths` (`HOST[:PORT]`, or Docker Hub's `https://index.docker.io/v1/`).
    pub registry: String,
    /// The user name (`_json_key` for a JSON key).
    pub username: String,
}

impl StoredCredential {
    /// JSON key or user name and password.
    pub fn kind(&self) -> CredentialKind {
        if self.username == JSON_KEY_USERNAME {
            CredentialKind::JsonKey
        } else {
            CredentialKind::UsernamePassword
        }
    }
}

/// Why a stored `.dockerconfigjson` cannot be read back. Never quotes the content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerConfigError {
    /// Not JSON, or not the shape `{"auths":{...}}`.
    #[error("invalid JSON at line {line} column {column}: {detail}")]
    Invalid {
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
        /// serde's classification of the error, without the input.
        detail: &'static str,
    },
    /// `auths` has no entry.
    #[error("\"auths\" is empty")]
    NoAuths,
}

/// The first (Sparrow writes exactly one) registry entry of `bytes`.
pub fn stored_credential(bytes: &[u8]) -> Result<StoredCredential, DockerConfigError> {
    let config: DockerConfig =
        serde_json::from_slice(bytes).map_err(|e| DockerConfigError::Invalid {
            line: e.line(),
            column: e.column(),
            detail: match e.classify() {
                serde_json::error::Category::Data => "not a {\"auths\":{...}} object",
                serde_json::error::Category::Eof => "the text ends early",
                serde_json::error::Category::Syntax | serde_json::error::Category::Io => "not JSON",
            },
        })?;
    let (registry, entry) = config
        .auths
        .into_iter()
        .next()
        .ok_or(DockerConfigError::NoAuths)?;
    Ok(StoredCredential {
        registry,
        username: entry.username,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RegistryAuth, RegistryServer, dockerconfigjson};

    #[test]
    fn reads_back_what_deploy_writes() {
        let server = RegistryServer::parse("registry.example.com:5000/mesh").expect("server");
        let auth = RegistryAuth::user_password("robot", "s3cret").expect("auth");
        let stored = stored_credential(&dockerconfigjson(&server, &auth)).expect("parse");
        assert_eq!(stored.registry, "registry.example.com:5000");
        assert_eq!(stored.username, "robot");
        assert_eq!(stored.kind(), CredentialKind::UsernamePassword);
        let key = RegistryAuth::json_key(r#"{"type":"service_account"}"#).expect("key");
        let stored = stored_credential(&dockerconfigjson(&server, &key)).expect("parse");
        assert_eq!(stored.kind(), CredentialKind::JsonKey);
    }

    #[test]
    fn a_malformed_config_is_a_precise_error_without_its_content() {
        let cases: [(&[u8], &str); 5] = [
            (b"{\"auths\":{}}", "\"auths\" is empty"),
            (b"not json", "invalid JSON at line 1 column 2: not JSON"),
            (
                b"{\"auths\":",
                "invalid JSON at line 1 column 9: the text ends early",
            ),
            (
                b"{\"other\":\"s3cret\"}",
                "invalid JSON at line 1 column 18: not a {\"auths\":{...}} object",
            ),
            (
                b"{\"auths\":{\"r\":{\"username\":7}}}",
                "invalid JSON at line 1 column 27: not a {\"auths\":{...}} object",
            ),
        ];
        for (bytes, expected) in cases {
            let error = stored_credential(bytes).expect_err("malformed");
            assert_eq!(error.to_string(), expected);
            assert!(!error.to_string().contains("s3cret"));
        }
    }
}
