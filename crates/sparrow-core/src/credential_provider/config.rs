//! The kubelet's `CredentialProviderConfig` (`--image-credential-provider-config`), read and
//! validated as the kubelet validates it, so that a file Sparrow takes is one the kubelet takes
//! (with one deliberate difference: `defaultCacheDuration` must be more than zero, since
//! Sparrow keeps the credential in a Secret and refreshes it at half that lifetime).

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::{GoDurationError, format_go_duration, parse_go_duration};
use super::glob::urls_match;
use super::{PROTOCOL_API_VERSION, shown};

/// The config's kind.
pub const CONFIG_KIND: &str = "CredentialProviderConfig";
/// The config's apiVersion as Sparrow writes it.
pub const CONFIG_API_VERSION: &str = "kubelet.config.k8s.io/v1";
/// The config apiVersions read: v1 and v1beta1 have the same fields (v1alpha1 is gone from
/// current kubelets).
pub const CONFIG_API_VERSIONS: &[&str] = &[CONFIG_API_VERSION, "kubelet.config.k8s.io/v1beta1"];

/// Why a credential provider config was refused. One line each, naming the provider and the
/// field. Env values, which may be keys, are never shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not YAML or JSON at all.
    #[error(
        "the credential provider config is not YAML or JSON{at}: give the kubelet's CredentialProviderConfig file"
    )]
    Syntax {
        /// ` (error at line L, column C)` when known; the text itself is never quoted.
        at: String,
    },
    /// Not a mapping with `kind: CredentialProviderConfig`.
    #[error(
        "the credential provider config is {found}, not a CredentialProviderConfig: give the file the kubelet reads with --image-credential-provider-config"
    )]
    Kind {
        /// What it is instead (`a document of kind "ConfigMap"`, `a list`, …).
        found: String,
    },
    /// A kind right but an apiVersion the kubelet does not read.
    #[error(
        "the credential provider config has apiVersion {found:?}; expected kubelet.config.k8s.io/v1 (or v1beta1)"
    )]
    ApiVersion {
        /// The apiVersion given (shortened).
        found: String,
    },
    /// Fields of the wrong name or type.
    #[error("the credential provider config is not a valid CredentialProviderConfig: {problem}")]
    Shape {
        /// The parser's complaint, field names and expected types only.
        problem: String,
    },
    /// `providers: []`.
    #[error(
        "the credential provider config has no providers: add one with name, matchImages, defaultCacheDuration and apiVersion"
    )]
    NoProviders,
    /// A provider without a name.
    #[error(
        "provider {index} of the credential provider config has no name: give the plugin binary's file name"
    )]
    EmptyName {
        /// Its position, from 1.
        index: usize,
    },
    /// `name: /usr/bin/x`, `name: ../x`, `name: .`.
    #[error(
        "provider name {name:?} has a path in it: give only the binary's file name; the binary itself goes in the plugin directory (--credential-provider-bin-dir, as the kubelet's --image-credential-provider-bin-dir)"
    )]
    NameHasPath {
        /// The name (shortened).
        name: String,
    },
    /// Spaces or control characters in the name.
    #[error(
        "provider name {name:?} contains whitespace: give the plugin binary's file name, which the kubelet requires to have none"
    )]
    NameWhitespace {
        /// The name (shortened).
        name: String,
    },
    /// Two providers of one name.
    #[error(
        "provider name {name:?} appears twice in the credential provider config: each provider names a different binary"
    )]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// `matchImages: []`.
    #[error(
        "provider {name:?} has no matchImages: give the registries it serves, such as \"*.dkr.ecr.*.amazonaws.com\""
    )]
    NoMatchImages {
        /// The provider.
        name: String,
    },
    /// An empty or whitespace-holding pattern.
    #[error(
        "provider {name:?} has an invalid matchImages entry {pattern:?}: give HOST[:PORT][/PATH], with * for any part of a host label"
    )]
    MatchImage {
        /// The provider.
        name: String,
        /// The pattern (shortened).
        pattern: String,
    },
    /// No `defaultCacheDuration`.
    #[error(
        "provider {name:?} has no defaultCacheDuration: give how long its credentials last, such as 12h"
    )]
    NoDefaultCacheDuration {
        /// The provider.
        name: String,
    },
    /// A `defaultCacheDuration` that is not a Go duration.
    #[error("provider {name:?} has an invalid defaultCacheDuration: {source}")]
    DefaultCacheDuration {
        /// The provider.
        name: String,
        /// What is wrong with it.
        #[source]
        source: GoDurationError,
    },
    /// `defaultCacheDuration: 0s`.
    #[error(
        "provider {name:?} has defaultCacheDuration 0s: Sparrow keeps its credential in a Secret and refreshes it at half this lifetime; give how long the credentials last, such as 12h"
    )]
    ZeroDefaultCacheDuration {
        /// The provider.
        name: String,
    },
    /// A provider apiVersion other than v1.
    #[error(
        "provider {name:?} has apiVersion {found:?}; Sparrow speaks credentialprovider.kubelet.k8s.io/v1: set apiVersion to it, with a plugin that answers in v1"
    )]
    ProviderApiVersion {
        /// The provider.
        name: String,
        /// The apiVersion given (shortened; empty when none).
        found: String,
    },
    /// `tokenAttributes` without `serviceAccountTokenAudience`.
    #[error(
        "provider {name:?} has tokenAttributes without serviceAccountTokenAudience: give the audience its plugin expects in the token"
    )]
    NoAudience {
        /// The provider.
        name: String,
    },
    /// `tokenAttributes` without `requireServiceAccount`.
    #[error(
        "provider {name:?} has tokenAttributes without requireServiceAccount: set it to true or false"
    )]
    NoRequireServiceAccount {
        /// The provider.
        name: String,
    },
    /// `tokenAttributes.cacheType` missing or not `Token`/`ServiceAccount`.
    #[error(
        "provider {name:?} has tokenAttributes.cacheType {found:?}: set it to ServiceAccount or Token"
    )]
    CacheType {
        /// The provider.
        name: String,
        /// The value given (empty when none).
        found: String,
    },
    /// Required annotation keys while `requireServiceAccount: false`.
    #[error(
        "provider {name:?} has requiredServiceAccountAnnotationKeys but requireServiceAccount false: set requireServiceAccount to true or drop the required keys"
    )]
    RequiredKeysWithoutServiceAccount {
        /// The provider.
        name: String,
    },
    /// A key both required and optional, or listed twice, or empty.
    #[error(
        "provider {name:?} has a bad service account annotation key {key:?}: each key appears once, in requiredServiceAccountAnnotationKeys or optionalServiceAccountAnnotationKeys, not empty"
    )]
    AnnotationKey {
        /// The provider.
        name: String,
        /// The key.
        key: String,
    },
}

/// A validated `CredentialProviderConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialProviderConfig {
    /// The providers, in the file's order.
    pub providers: Vec<Provider>,
}

/// One `providers[]` entry: a plugin binary and when to run it.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    /// The binary's file name in the bin dir (no path).
    pub name: String,
    /// Globs of the images it serves (see [`super::urls_match`]).
    pub match_images: Vec<String>,
    /// How long a credential lasts when the plugin's answer does not say.
    #[serde(serialize_with = "serialize_go_duration")]
    pub default_cache_duration: Duration,
    /// The protocol version: always [`PROTOCOL_API_VERSION`] once validated.
    pub api_version: String,
    /// Arguments passed to the binary.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Variables added to the binary's environment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Service-account token mode (KEP-4412).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_attributes: Option<TokenAttributes>,
}

/// Redacted: an env value may be a key (`AWS_SECRET_ACCESS_KEY`). Args are shown: they are
/// flags, and a secret belongs in the environment or a file.
impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("match_images", &self.match_images)
            .field(
                "default_cache_duration",
                &format_go_duration(self.default_cache_duration),
            )
            .field("api_version", &self.api_version)
            .field("args", &self.args)
            .field("env", &self.env)
            .field("token_attributes", &self.token_attributes)
            .finish()
    }
}

/// `env[]`: a name and a value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    /// The variable's name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// Redacted: the value may be a key.
impl fmt::Debug for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=<redacted>", self.name)
    }
}

/// `tokenAttributes` (KEP-4412): the plugin gets a ServiceAccount token for this audience.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenAttributes {
    /// The audience the token is requested for.
    pub service_account_token_audience: String,
    /// Whether the plugin needs a ServiceAccount at all.
    pub require_service_account: bool,
    /// Annotations of the ServiceAccount that must be present and are passed on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub required_service_account_annotation_keys: Vec<String>,
    /// Annotations passed on when present.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub optional_service_account_annotation_keys: Vec<String>,
    /// What the kubelet keys its cache by in this mode.
    pub cache_type: TokenCacheType,
}

/// `tokenAttributes.cacheType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TokenCacheType {
    /// Cached per token.
    Token,
    /// Cached per ServiceAccount.
    ServiceAccount,
}

/// Why no provider serves the mesh's images.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no provider in the credential provider config matches all of the mesh's images ({images}); its matchImages are {patterns}: add a pattern that covers them, such as {suggestion:?}"
)]
pub struct NoProviderError {
    /// The images, comma-separated.
    pub images: String,
    /// Each provider's patterns: `ecr: [*.dkr.ecr.*.amazonaws.com]; gcr: [gcr.io]`.
    pub patterns: String,
    /// A pattern that would do: the first image's registry.
    pub suggestion: String,
}

impl CredentialProviderConfig {
    /// Reads and validates the config from YAML or JSON text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        // Through a generic value first: the kind and apiVersion get their own messages, and
        // the parser's messages (which can quote values, such as an env value) are reduced
        // to field names and types.
        let value: serde_json::Value =
            serde_saphyr::from_str(text).map_err(|error| ConfigError::Syntax {
                at: error
                    .location()
                    .map(|at| format!(" (error at line {}, column {})", at.line(), at.column()))
                    .unwrap_or_default(),
            })?;
        check_kind(&value)?;
        let raw: RawConfig = serde_json::from_value(value).map_err(|error| ConfigError::Shape {
            problem: shape_problem(&error.to_string()),
        })?;
        if raw.providers.is_empty() {
            return Err(ConfigError::NoProviders);
        }
        let mut seen = BTreeSet::new();
        let mut providers = Vec::with_capacity(raw.providers.len());
        for (index, raw) in raw.providers.into_iter().enumerate() {
            let provider = raw.validate(index + 1)?;
            if !seen.insert(provider.name.clone()) {
                return Err(ConfigError::DuplicateName {
                    name: provider.name,
                });
            }
            providers.push(provider);
        }
        Ok(Self { providers })
    }

    /// The first provider whose `matchImages` covers every one of `images` (the mesh's
    /// images, which one plugin run per refresh serves).
    pub fn provider_for(&self, images: &[String]) -> Result<&Provider, NoProviderError> {
        self.providers
            .iter()
            .find(|provider| images.iter().all(|image| provider.matches(image)))
            .ok_or_else(|| NoProviderError {
                images: images.join(", "),
                patterns: self
                    .providers
                    .iter()
                    .map(|p| format!("{}: [{}]", p.name, p.match_images.join(", ")))
                    .collect::<Vec<_>>()
                    .join("; "),
                suggestion: images
                    .first()
                    .map(|image| image.split('/').next().unwrap_or_default().to_owned())
                    .unwrap_or_default(),
            })
    }

    /// The config as the kubelet reads it (JSON), for a node or a test to use.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "apiVersion": CONFIG_API_VERSION,
            "kind": CONFIG_KIND,
            "providers": self.providers,
        })
        .to_string()
    }
}

impl Provider {
    /// True when one of `matchImages` matches `image` by the kubelet's rules.
    pub fn matches(&self, image: &str) -> bool {
        self.match_images
            .iter()
            .any(|pattern| urls_match(pattern, image))
    }
}

fn check_kind(value: &serde_json::Value) -> Result<(), ConfigError> {
    let Some(object) = value.as_object() else {
        return Err(ConfigError::Kind {
            found: match value {
                serde_json::Value::Array(_) => "a list".to_owned(),
                serde_json::Value::Null => "empty".to_owned(),
                _ => "a single value".to_owned(),
            },
        });
    };
    match object.get("kind").and_then(|kind| kind.as_str()) {
        Some(CONFIG_KIND) => {}
        Some(kind) => {
            return Err(ConfigError::Kind {
                found: format!("a document of kind {:?}", shown(kind)),
            });
        }
        None => {
            return Err(ConfigError::Kind {
                found: "a document without a kind".to_owned(),
            });
        }
    }
    let api_version = object
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if !CONFIG_API_VERSIONS.contains(&api_version) {
        return Err(ConfigError::ApiVersion {
            found: shown(api_version),
        });
    }
    Ok(())
}

/// serde's message without any quoted value: `invalid type: string "s3cret", expected a
/// sequence` becomes `a value has the wrong type (expected a sequence)`.
fn shape_problem(message: &str) -> String {
    let message = message.split(" at line ").next().unwrap_or(message);
    if message.starts_with("invalid ") {
        match message.split_once(", expected ") {
            Some((_, expected)) => format!("a value has the wrong type (expected {expected})"),
            None => "a value has the wrong type".to_owned(),
        }
    } else {
        message.to_owned()
    }
}

fn serialize_go_duration<S: serde::Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_go_duration(*duration))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    providers: Vec<RawProvider>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawProvider {
    #[serde(default)]
    name: String,
    #[serde(default)]
    match_images: Vec<String>,
    default_cache_duration: Option<String>,
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: Vec<EnvVar>,
    token_attributes: Option<RawTokenAttributes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawTokenAttributes {
    #[serde(default)]
    service_account_token_audience: String,
    require_service_account: Option<bool>,
    #[serde(default)]
    required_service_account_annotation_keys: Vec<String>,
    #[serde(default)]
    optional_service_account_annotation_keys: Vec<String>,
    #[serde(default)]
    cache_type: String,
}

impl RawProvider {
    fn validate(self, index: usize) -> Result<Provider, ConfigError> {
        let name = self.name;
        if name.is_empty() {
            return Err(ConfigError::EmptyName { index });
        }
        if name.contains(['/', '\\']) || name == "." || name == ".." {
            return Err(ConfigError::NameHasPath { name: shown(&name) });
        }
        if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::NameWhitespace { name: shown(&name) });
        }
        if self.match_images.is_empty() {
            return Err(ConfigError::NoMatchImages { name });
        }
        if let Some(pattern) = self
            .match_images
            .iter()
            .find(|p| p.is_empty() || p.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(ConfigError::MatchImage {
                pattern: shown(pattern),
                name,
            });
        }
        let default_cache_duration = match self.default_cache_duration.as_deref() {
            None => return Err(ConfigError::NoDefaultCacheDuration { name }),
            Some(text) => match parse_go_duration(text) {
                Ok(duration) if duration.is_zero() => {
                    return Err(ConfigError::ZeroDefaultCacheDuration { name });
                }
                Ok(duration) => duration,
                Err(source) => return Err(ConfigError::DefaultCacheDuration { name, source }),
            },
        };
        if self.api_version != PROTOCOL_API_VERSION {
            return Err(ConfigError::ProviderApiVersion {
                found: shown(&self.api_version),
                name,
            });
        }
        let token_attributes = match self.token_attributes {
            None => None,
            Some(raw) => Some(raw.validate(&name)?),
        };
        Ok(Provider {
            name,
            match_images: self.match_images,
            default_cache_duration,
            api_version: self.api_version,
            args: self.args,
            env: self.env,
            token_attributes,
        })
    }
}

impl RawTokenAttributes {
    fn validate(self, name: &str) -> Result<TokenAttributes, ConfigError> {
        let name = || name.to_owned();
        if self.service_account_token_audience.is_empty() {
            return Err(ConfigError::NoAudience { name: name() });
        }
        let Some(require_service_account) = self.require_service_account else {
            return Err(ConfigError::NoRequireServiceAccount { name: name() });
        };
        if !require_service_account && !self.required_service_account_annotation_keys.is_empty() {
            return Err(ConfigError::RequiredKeysWithoutServiceAccount { name: name() });
        }
        let mut seen = BTreeSet::new();
        for key in self
            .required_service_account_annotation_keys
            .iter()
            .chain(&self.optional_service_account_annotation_keys)
        {
            if key.is_empty() || !seen.insert(key.as_str()) {
                return Err(ConfigError::AnnotationKey {
                    name: name(),
                    key: shown(key),
                });
            }
        }
        let cache_type = match self.cache_type.as_str() {
            "Token" => TokenCacheType::Token,
            "ServiceAccount" => TokenCacheType::ServiceAccount,
            other => {
                return Err(ConfigError::CacheType {
                    name: name(),
                    found: shown(other),
                });
            }
        };
        Ok(TokenAttributes {
            service_account_token_audience: self.service_account_token_audience,
            require_service_account,
            required_service_account_annotation_keys: self.required_service_account_annotation_keys,
            optional_service_account_annotation_keys: self.optional_service_account_annotation_keys,
            cache_type,
        })
    }
}

#[cfg(test)]
mod tests;
