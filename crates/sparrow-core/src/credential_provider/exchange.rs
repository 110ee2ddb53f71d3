//! What a plugin reads on stdin (`CredentialProviderRequest`) and prints on stdout
//! (`CredentialProviderResponse`), in `credentialprovider.kubelet.k8s.io/v1`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::Value;

use super::duration::{GoDurationError, parse_go_duration};
use super::{PROTOCOL_API_VERSION, shown};

/// The request's kind.
pub const REQUEST_KIND: &str = "CredentialProviderRequest";
/// The response's kind.
pub const RESPONSE_KIND: &str = "CredentialProviderResponse";

/// What the plugin is asked: credentials for one image.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialProviderRequest {
    /// The image, as the pod spec names it.
    pub image: String,
    /// A ServiceAccount token (token mode only).
    pub service_account_token: Option<String>,
    /// The ServiceAccount's annotations named in `tokenAttributes` (token mode only).
    pub service_account_annotations: BTreeMap<String, String>,
}

impl CredentialProviderRequest {
    /// A request for `image`, without a token.
    pub fn new(image: &str) -> Self {
        Self {
            image: image.to_owned(),
            service_account_token: None,
            service_account_annotations: BTreeMap::new(),
        }
    }

    /// The JSON written to the plugin's stdin. The token and annotations are left out when
    /// there are none, as the kubelet's `omitempty` leaves them out.
    pub fn to_json(&self) -> Vec<u8> {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire<'a> {
            api_version: &'a str,
            kind: &'a str,
            image: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            service_account_token: Option<&'a str>,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            service_account_annotations: &'a BTreeMap<String, String>,
        }
        let wire = Wire {
            api_version: PROTOCOL_API_VERSION,
            kind: REQUEST_KIND,
            image: &self.image,
            service_account_token: self
                .service_account_token
                .as_deref()
                .filter(|t| !t.is_empty()),
            service_account_annotations: &self.service_account_annotations,
        };
        // A struct of strings and a map of strings always serializes.
        serde_json::to_vec(&wire).unwrap_or_default()
    }
}

/// Redacted: the token is a credential.
impl fmt::Debug for CredentialProviderRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialProviderRequest")
            .field("image", &self.image)
            .field(
                "service_account_token",
                &self.service_account_token.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "service_account_annotations",
                &self.service_account_annotations,
            )
            .finish()
    }
}

/// `cacheKeyType`: what the answer is good for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKeyType {
    /// This image only.
    Image,
    /// Every image of the registry.
    Registry,
    /// Every image the provider matches.
    Global,
}

/// One `auth` entry.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: String,
}

/// Redacted: the password is a credential.
impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A plugin's valid answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialProviderResponse {
    /// What the answer is good for.
    pub cache_key_type: CacheKeyType,
    /// How long it is good for: `None` when the plugin left it to the config's default,
    /// `Some(ZERO)` for "do not cache".
    pub cache_duration: Option<Duration>,
    /// Credentials by image glob (the same globs as `matchImages`).
    pub auth: BTreeMap<String, AuthConfig>,
}

/// Why a plugin's answer was refused. Each message continues "the plugin NAME …"; none
/// quotes a username or password, and values shown are at most 64 characters of the fields
/// that carry no credential (apiVersion, kind, cacheKeyType, cacheDuration, auth keys).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// Not JSON.
    #[error(
        "printed no JSON on stdout (error at line {line}, column {column}): a credential provider prints a CredentialProviderResponse there, and its diagnostics on stderr"
    )]
    NotJson {
        /// Where the parser stopped.
        line: usize,
        /// Where the parser stopped.
        column: usize,
    },
    /// JSON, but not an object.
    #[error("printed a JSON {found} on stdout, not a CredentialProviderResponse object")]
    NotAnObject {
        /// The JSON type printed.
        found: &'static str,
    },
    /// Another protocol version.
    #[error(
        "answered apiVersion {found:?}; this provider is configured for {expected}: use a plugin version that speaks it, or set the provider's apiVersion to what the plugin speaks"
    )]
    ApiVersion {
        /// What it answered (empty when nothing).
        found: String,
        /// What the provider is configured for.
        expected: String,
    },
    /// Another kind.
    #[error(
        "answered kind {found:?}, not CredentialProviderResponse: the plugin is not a kubelet credential provider"
    )]
    Kind {
        /// What it answered (empty when nothing).
        found: String,
    },
    /// A `cacheKeyType` the kubelet would ignore the answer for.
    #[error(
        "answered cacheKeyType {found:?}; the kubelet accepts only Image, Registry or Global: the plugin is broken, report it to its authors"
    )]
    CacheKeyType {
        /// What it answered (empty when nothing).
        found: String,
    },
    /// A `cacheDuration` that is not a Go duration.
    #[error("answered an invalid cacheDuration: {0}")]
    CacheDuration(#[source] GoDurationError),
    /// A `cacheDuration` that is not a string.
    #[error("answered a cacheDuration that is not a string such as \"12h0m0s\"")]
    CacheDurationType,
    /// `auth` is not an object of objects with a string username and password.
    #[error(
        "answered an auth entry {key:?} without a username and password string: the plugin is broken, report it to its authors"
    )]
    AuthEntry {
        /// The auth key (an image glob; empty when `auth` itself is malformed).
        key: String,
    },
}

impl CredentialProviderResponse {
    /// Reads the plugin's stdout, which must be a response in `expected_api_version` (the
    /// provider's `apiVersion`). Checked as the kubelet checks it: the apiVersion first, then
    /// kind, `cacheKeyType`, `cacheDuration` and `auth` (extra fields are ignored).
    pub fn parse(stdout: &[u8], expected_api_version: &str) -> Result<Self, ResponseError> {
        // serde_json's syntax errors carry a position only, never the text.
        let value: Value = serde_json::from_slice(stdout).map_err(|e| ResponseError::NotJson {
            line: e.line(),
            column: e.column(),
        })?;
        let Value::Object(object) = value else {
            return Err(ResponseError::NotAnObject {
                found: json_type(&value),
            });
        };
        let text = |field: &str| {
            object
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        if text("apiVersion") != expected_api_version {
            return Err(ResponseError::ApiVersion {
                found: shown(text("apiVersion")),
                expected: expected_api_version.to_owned(),
            });
        }
        if text("kind") != RESPONSE_KIND {
            return Err(ResponseError::Kind {
                found: shown(text("kind")),
            });
        }
        let cache_key_type = match text("cacheKeyType") {
            "Image" => CacheKeyType::Image,
            "Registry" => CacheKeyType::Registry,
            "Global" => CacheKeyType::Global,
            other => {
                return Err(ResponseError::CacheKeyType {
                    found: shown(other),
                });
            }
        };
        let cache_duration = match object.get("cacheDuration") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => {
                Some(parse_go_duration(text).map_err(ResponseError::CacheDuration)?)
            }
            Some(_) => return Err(ResponseError::CacheDurationType),
        };
        let auth = match object.get("auth") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(entries)) => entries
                .iter()
                .map(|(key, entry)| {
                    auth_entry(entry)
                        .map(|auth| (key.clone(), auth))
                        .ok_or_else(|| ResponseError::AuthEntry { key: shown(key) })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(ResponseError::AuthEntry { key: String::new() }),
        };
        Ok(Self {
            cache_key_type,
            cache_duration,
            auth,
        })
    }

    /// How long the answer lasts: its `cacheDuration`, or `default` (the provider's
    /// `defaultCacheDuration`) when it gave none; `None` for `0s`, "do not cache".
    pub fn lifetime(&self, default: Duration) -> Option<Duration> {
        match self.cache_duration {
            None => Some(default),
            Some(duration) if duration.is_zero() => None,
            Some(duration) => Some(duration),
        }
    }
}

/// `{"username": "...", "password": "..."}`; a missing field is empty, as in Go.
fn auth_entry(entry: &Value) -> Option<AuthConfig> {
    let entry = entry.as_object()?;
    let field = |name: &str| match entry.get(name) {
        None | Some(Value::Null) => Some(String::new()),
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => None,
    };
    Some(AuthConfig {
        username: field("username")?,
        password: field("password")?,
    })
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests;
