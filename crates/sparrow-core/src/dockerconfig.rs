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

fn invalid(e: &serde_json::Error) -> DockerConfigError {
    DockerConfigError::Invalid {
        line: e.line(),
        column: e.column(),
        detail: match e.classify() {
            serde_json::error::Category::Data => "not a {\"auths\":{...}} object",
            serde_json::error::Category::Eof => "the text ends early",
            serde_json::error::Category::Syntax | serde_json::error::Category::Io => "not JSON",
        },
    }
}

/// The first (Sparrow writes exactly one) registry entry of `bytes`.
pub fn stored_credential(bytes: &[u8]) -> Result<StoredCredential, DockerConfigError> {
    let config: DockerConfig = serde_json::from_slice(bytes).map_err(|e| invalid(&e))?;
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

/// One `auths` entry as the kubelet reads it: `auth` (base64 of `user:password`) wins over
/// `username`/`password` when both are there.
#[derive(Deserialize)]
struct LoginEntry {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    auth: Option<String>,
}

#[derive(Deserialize)]
struct LoginConfig {
    auths: BTreeMap<String, LoginEntry>,
}

/// Why a `.dockerconfigjson` kept by another tool gives no login for the mesh's registry.
/// Never quotes a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// Unreadable, or no entry at all.
    #[error(transparent)]
    Config(#[from] DockerConfigError),
    /// No key under `auths` covers the registry.
    #[error("no entry under \"auths\" covers {registry} (it has {keys})")]
    NotCovered {
        /// The registry's `HOST[:PORT][/PATH]`.
        registry: String,
        /// The keys it has, quoted and comma-separated.
        keys: String,
    },
    /// The entry for the registry has no usable user and password.
    #[error(
        "the entry \"{key}\" under \"auths\" has no user name and password (neither \"auth\" nor \"username\" and \"password\")"
    )]
    Empty {
        /// The entry's key.
        key: String,
    },
    /// `auth` is not base64 of `user:password`.
    #[error(
        "the entry \"{key}\" under \"auths\" has an \"auth\" that is not base64 of user:password"
    )]
    BadAuth {
        /// The entry's key.
        key: String,
    },
}

/// The user and password a `.dockerconfigjson` holds for a registry. No `Debug`: it holds
/// the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryLogin {
    /// The `auths` key it was found under.
    pub key: String,
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: String,
}

/// The login `bytes` (a `.dockerconfigjson`) holds for `server`, found as the kubelet finds
/// it: keys with or without a scheme or `/v1/`, path prefixes and `*` label globs, the most
/// specific key first ([`crate::credential_provider::best_key`]).
pub fn login_for(
    bytes: &[u8],
    server: &crate::RegistryServer,
) -> Result<RegistryLogin, LoginError> {
    let config: LoginConfig = serde_json::from_slice(bytes).map_err(|e| invalid(&e))?;
    if config.auths.is_empty() {
        return Err(DockerConfigError::NoAuths.into());
    }
    // The kubelet's keyring knows Docker Hub as index.docker.io.
    let target = if server.is_docker_hub() {
        match server.path().as_str() {
            "" => "index.docker.io".to_owned(),
            path => format!("index.docker.io/{path}"),
        }
    } else {
        server.to_string()
    };
    let entries = config.auths.iter().map(|(k, e)| (k.as_str(), e));
    let Some((key, entry)) = crate::credential_provider::best_key(entries, &[target]) else {
        let keys: Vec<String> = config.auths.keys().map(|k| format!("\"{k}\"")).collect();
        return Err(LoginError::NotCovered {
            registry: server.to_string(),
            keys: keys.join(", "),
        });
    };
    let key = key.to_owned();
    let (username, password) = match &entry.auth {
        Some(auth) if !auth.is_empty() => {
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| LoginError::BadAuth { key: key.clone() })?;
            let (user, password) = decoded
                .split_once(':')
                .ok_or_else(|| LoginError::BadAuth { key: key.clone() })?;
            (user.to_owned(), password.to_owned())
        }
        _ => (entry.username.clone(), entry.password.clone()),
    };
    if username.is_empty() || password.is_empty() {
        return Err(LoginError::Empty { key });
    }
    Ok(RegistryLogin {
        key,
        username,
        password,
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

    fn server(text: &str) -> RegistryServer {
        RegistryServer::parse(text).expect("server")
    }

    fn login(config: &str, registry: &str) -> Result<(String, String, String), LoginError> {
        login_for(config.as_bytes(), &server(registry)).map(|l| (l.key, l.username, l.password))
    }

    #[test]
    fn a_login_is_found_under_any_spelling_the_kubelet_accepts() {
        let auth = "cm9ib3Q6czNjcmV0"; // robot:s3cret
        for key in [
            "registry.example.com:5000",
            "https://registry.example.com:5000",
            "https://registry.example.com:5000/v2/",
            "registry.example.com:5000/team",
            "*.example.com:5000",
        ] {
            let config = format!(r#"{{"auths":{{"{key}":{{"auth":"{auth}"}}}}}}"#);
            let found = login(&config, "registry.example.com:5000/team/mesh").expect(key);
            assert_eq!(found.1, "robot", "{key}");
            assert_eq!(found.2, "s3cret", "{key}");
        }
        let plain = r#"{"auths":{"r.example":{"username":"u","password":"p"}}}"#;
        assert_eq!(
            login(plain, "r.example/mesh").expect("plain").1,
            "u".to_owned()
        );
        let hub = r#"{"auths":{"https://index.docker.io/v1/":{"username":"u","password":"p"}}}"#;
        assert!(login(hub, "docker.io/acme").is_ok());
    }

    #[test]
    fn the_most_specific_key_wins() {
        let config = r#"{"auths":{
            "*.example.com":{"username":"glob","password":"p"},
            "r.example.com":{"username":"host","password":"p"},
            "r.example.com/team":{"username":"path","password":"p"}}}"#;
        assert_eq!(
            login(config, "r.example.com/team/mesh").expect("path").1,
            "path"
        );
        assert_eq!(
            login(config, "r.example.com/other").expect("host").1,
            "host"
        );
        assert_eq!(login(config, "q.example.com").expect("glob").1, "glob");
    }

    #[test]
    fn a_config_without_a_login_for_the_registry_says_what_it_has() {
        let cases = [
            (
                r#"{"auths":{"other.example":{"username":"u","password":"s3cret"}}}"#,
                "no entry under \"auths\" covers r.example:5000/mesh (it has \"other.example\")",
            ),
            (
                r#"{"auths":{"r.example":{"username":"u","password":"s3cret"}}}"#,
                "no entry under \"auths\" covers r.example:5000/mesh (it has \"r.example\")",
            ),
            (
                r#"{"auths":{"r.example:5000/team":{"username":"u","password":"s3cret"}}}"#,
                "no entry under \"auths\" covers r.example:5000/mesh (it has \"r.example:5000/team\")",
            ),
            (
                r#"{"auths":{"r.example:5000":{}}}"#,
                "the entry \"r.example:5000\" under \"auths\" has no user name and password (neither \"auth\" nor \"username\" and \"password\")",
            ),
            (
                r#"{"auths":{"r.example:5000":{"auth":"!!s3cret"}}}"#,
                "the entry \"r.example:5000\" under \"auths\" has an \"auth\" that is not base64 of user:password",
            ),
            (r#"{"auths":{}}"#, "\"auths\" is empty"),
        ];
        for (config, expected) in cases {
            let error = login(config, "r.example:5000/mesh").expect_err(config);
            assert_eq!(error.to_string(), expected);
            assert!(!error.to_string().contains("s3cret"));
        }
    }
}
