//! Registry credentials and the `.dockerconfigjson` that carries them.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use crate::registry::RegistryServer;

/// The username registries expect with a JSON key (Artifact Registry, GCR).
pub const JSON_KEY_USERNAME: &str = "_json_key";

/// Why credentials were refused. Messages never contain the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryAuthError {
    /// `--registry-username ""`.
    #[error("--registry-username is empty: give the registry user name")]
    EmptyUsername,
    /// A `:` would make the `auth` field (`user:password`) ambiguous. The value is not shown:
    /// `user:password` pasted into the flag would put the password on the screen.
    #[error(
        "--registry-username contains ':', which registries do not allow in a user name (pass the password separately)"
    )]
    UsernameColon,
    /// An empty password (stdin or env var held nothing).
    #[error(
        "the registry password is empty: give it with --registry-password-stdin, SPARROW_REGISTRY_PASSWORD or --registry-password"
    )]
    EmptyPassword,
    /// The `.dockerconfigjson` would not fit in a Secret (Kubernetes stores at most 1 MiB).
    #[error(
        "the registry credentials are too large: the pull secret would hold {bytes} bytes, and a Kubernetes Secret holds at most {MAX_SECRET_DATA_BYTES}; use a smaller key or token"
    )]
    TooLarge {
        /// The size the `.dockerconfigjson` would have.
        bytes: usize,
    },
    /// The key file's text is not a JSON object.
    #[error(
        "the registry key is not a JSON object ({reason}): --registry-key expects a JSON key file such as a service-account key"
    )]
    KeyNotJsonObject {
        /// The parser's complaint, positions only (never the text).
        reason: String,
    },
}

/// Credentials for the private registry.
#[derive(Clone, PartialEq, Eq)]
pub enum RegistryAuth {
    /// A JSON key file's text; the username is `_json_key`.
    JsonKey(String),
    /// A username and password.
    UserPassword {
        /// The user name.
        username: String,
        /// The password (or token).
        password: String,
    },
}

impl RegistryAuth {
    /// A JSON key: the file's text with trailing newlines trimmed; it must be a JSON object.
    pub fn json_key(text: &str) -> Result<Self, RegistryAuthError> {
        let text = text.trim_end_matches(['\n', '\r']);
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(_)) => Ok(Self::JsonKey(text.to_owned())),
            Ok(other) => Err(RegistryAuthError::KeyNotJsonObject {
                reason: format!("found a JSON {}", json_type_name(&other)),
            }),
            Err(error) => Err(RegistryAuthError::KeyNotJsonObject {
                // serde_json's message quotes no input, only line and column.
                reason: format!(
                    "invalid JSON at line {} column {}",
                    error.line(),
                    error.column()
                ),
            }),
        }
    }

    /// A username and password.
    pub fn user_password(username: &str, password: &str) -> Result<Self, RegistryAuthError> {
        if username.is_empty() {
            return Err(RegistryAuthError::EmptyUsername);
        }
        if username.contains(':') {
            return Err(RegistryAuthError::UsernameColon);
        }
        if password.is_empty() {
            return Err(RegistryAuthError::EmptyPassword);
        }
        Ok(Self::UserPassword {
            username: username.to_owned(),
            password: password.to_owned(),
        })
    }

    /// The username sent to the registry.
    pub fn username(&self) -> &str {
        match self {
            Self::JsonKey(_) => JSON_KEY_USERNAME,
            Self::UserPassword { username, .. } => username,
        }
    }

    /// The password sent to the registry.
    pub fn password(&self) -> &str {
        match self {
            Self::JsonKey(key) => key,
            Self::UserPassword { password, .. } => password,
        }
    }

    /// What kind of credential this is, for status output: never the credential.
    pub fn kind(&self) -> CredentialKind {
        match self {
            Self::JsonKey(_) => CredentialKind::JsonKey,
            Self::UserPassword { .. } => CredentialKind::UsernamePassword,
        }
    }
}

/// Redacted: credentials must not reach logs through `{:?}`.
impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::JsonKey(_) => f.write_str("JsonKey(<redacted>)"),
            Self::UserPassword { username, .. } => f
                .debug_struct("UserPassword")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// The kind of credential stored, as `status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialKind {
    /// `--registry-key`.
    JsonKey,
    /// `--registry-username` and a password.
    UsernamePassword,
}

impl CredentialKind {
    /// The kind a stored `.dockerconfigjson` holds, from its username: `_json_key` is a
    /// JSON key, anything else a username and password.
    pub fn from_username(username: &str) -> Self {
        if username == JSON_KEY_USERNAME {
            Self::JsonKey
        } else {
            Self::UsernamePassword
        }
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::JsonKey => "json-key",
            Self::UsernamePassword => "username-password",
        })
    }
}

/// The most data a Kubernetes Secret holds.
pub const MAX_SECRET_DATA_BYTES: usize = 1 << 20;

/// Refuses credentials whose `.dockerconfigjson` would be larger than a Secret can hold, so
/// that `deploy` fails before its first write rather than halfway.
pub fn check_fits_in_secret(
    server: &RegistryServer,
    auth: &RegistryAuth,
) -> Result<(), RegistryAuthError> {
    let bytes = dockerconfigjson(server, auth).len();
    if bytes > MAX_SECRET_DATA_BYTES {
        return Err(RegistryAuthError::TooLarge { bytes });
    }
    Ok(())
}

/// The decoded `.dockerconfigjson`, byte for byte what
/// `kubectl create secret docker-registry` writes:
/// `{"auths":{"<key>":{"username":"…","password":"…","auth":"<base64 user:pass>"}}}`.
pub fn dockerconfigjson(server: &RegistryServer, auth: &RegistryAuth) -> Vec<u8> {
    let basic = BASE64.encode(format!("{}:{}", auth.username(), auth.password()));
    let mut out = String::with_capacity(64 + auth.password().len() * 2);
    out.push_str("{\"auths\":{");
    push_go_json_string(&mut out, &server.auth_key());
    out.push_str(":{\"username\":");
    push_go_json_string(&mut out, auth.username());
    out.push_str(",\"password\":");
    push_go_json_string(&mut out, auth.password());
    out.push_str(",\"auth\":");
    push_go_json_string(&mut out, &basic);
    out.push_str("}}}");
    out.into_bytes()
}

/// Hex sha256 over a Secret's data, keys in order, each key and value length-prefixed so
/// that no two different maps hash alike. Copies carry it in `sparrow-mesh.io/source-hash`.
pub fn secret_data_hash<'a>(data: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in data {
        hasher.update((key.len() as u64).to_be_bytes());
        hasher.update(key.as_bytes());
        hasher.update((value.len() as u64).to_be_bytes());
        hasher.update(value);
    }
    let digest = hasher.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A JSON string as Go's `encoding/json` writes it (kubectl is written in Go): besides the
/// usual escapes, `<`, `>`, `&`, U+2028 and U+2029 become `\u003c`, `\u003e`, `\u0026`,
/// `\u2028`, `\u2029`.
fn push_go_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => push_unicode_escape(out, c),
            c if (c as u32) < 0x20 => push_unicode_escape(out, c),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_unicode_escape(out: &mut String, c: char) {
    out.push_str(&format!("\\u{:04x}", c as u32));
}

fn json_type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests;
