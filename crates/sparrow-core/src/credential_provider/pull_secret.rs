//! From a plugin's answer to the pull secret's `.dockerconfigjson`.
//!
//! Only the entry that serves the mesh's images is written, under the registry's own key
//! (`RegistryServer::auth_key`), byte for byte as a static `--registry-username` credential
//! would be: copies look alike whatever the source, consumers that read only exact host keys
//! find it, and other registries' credentials the plugin happened to return do not spread
//! into every namespace.

use crate::auth::{RegistryAuth, RegistryAuthError, check_fits_in_secret, dockerconfigjson};
use crate::registry::RegistryServer;

use super::exchange::{AuthConfig, CredentialProviderResponse};
use super::glob::urls_match;
use super::shown;

/// Why an answer gives no pull secret. Never quotes a username or password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PullSecretError {
    /// `auth` is empty.
    #[error(
        "answered no credentials (an empty auth map) for {registry}: check the plugin's own configuration and permissions for that registry"
    )]
    NoCredentials {
        /// The registry.
        registry: String,
    },
    /// No key matches every mesh image.
    #[error(
        "answered credentials for {keys}, none of which matches all of the mesh's images in {registry}: the plugin serves another registry; check its matchImages"
    )]
    NoMatchingEntry {
        /// The registry.
        registry: String,
        /// The auth keys, comma-separated.
        keys: String,
    },
    /// The entry's username is empty or has a `:`, or its password is empty.
    #[error(
        "answered a credential for {key:?} with {problem}: the plugin is broken, report it to its authors"
    )]
    InvalidCredential {
        /// The auth key.
        key: String,
        /// What is wrong, never the value.
        problem: &'static str,
    },
    /// The `.dockerconfigjson` would not fit in a Secret.
    #[error("answered a credential for {key:?} that is too large for a Secret: {source}")]
    TooLarge {
        /// The auth key.
        key: String,
        /// The size check.
        #[source]
        source: RegistryAuthError,
    },
}

/// The `auth` entry that serves every one of `images`, chosen as the kubelet chooses: keys
/// are normalized (scheme, `/v1/` and `/v2/` prefixes dropped) and tried in reverse
/// lexicographic order, which puts longer keys before their prefixes and a literal label
/// before `*`; the first whose glob matches every image wins.
pub fn matching_auth<'a>(
    response: &'a CredentialProviderResponse,
    images: &[String],
) -> Option<(&'a str, &'a AuthConfig)> {
    best_key(response.auth.iter().map(|(k, a)| (k.as_str(), a)), images)
}

/// Of credentials keyed like a plugin's `auth` map or a `.dockerconfigjson`'s `auths`, the
/// one the kubelet would use for every one of `targets` (images, or `HOST[:PORT][/PATH]`):
/// see [`matching_auth`].
pub fn best_key<'a, T>(
    entries: impl IntoIterator<Item = (&'a str, T)>,
    targets: &[String],
) -> Option<(&'a str, T)> {
    let mut entries: Vec<(String, &str, T)> = entries
        .into_iter()
        .map(|(key, value)| (normalized_key(key), key, value))
        .collect();
    entries.sort_by(|a, b| b.0.cmp(&a.0));
    entries
        .into_iter()
        .find(|(normalized, _, _)| targets.iter().all(|t| urls_match(normalized, t)))
        .map(|(_, key, value)| (key, value))
}

/// The `.dockerconfigjson` for `server` from the entry of `response` that serves `images`
/// (the mesh's images; when empty, the server itself, `HOST[:PORT][/PATH]`, is matched).
/// The credential is checked as a static one is (a username without `:`, a password).
pub fn pull_secret(
    response: &CredentialProviderResponse,
    server: &RegistryServer,
    images: &[String],
) -> Result<Vec<u8>, PullSecretError> {
    let registry = server.to_string();
    if response.auth.is_empty() {
        return Err(PullSecretError::NoCredentials { registry });
    }
    let fallback = [registry.clone()];
    let targets = if images.is_empty() {
        &fallback[..]
    } else {
        images
    };
    let (key, entry) =
        matching_auth(response, targets).ok_or_else(|| PullSecretError::NoMatchingEntry {
            keys: response
                .auth
                .keys()
                .map(|k| shown(k))
                .collect::<Vec<_>>()
                .join(", "),
            registry: registry.clone(),
        })?;
    let invalid = |problem| PullSecretError::InvalidCredential {
        key: shown(key),
        problem,
    };
    let auth =
        RegistryAuth::user_password(&entry.username, &entry.password).map_err(
            |error| match error {
                RegistryAuthError::EmptyUsername => invalid("an empty username"),
                RegistryAuthError::UsernameColon => invalid("a ':' in the username"),
                _ => invalid("an empty password"),
            },
        )?;
    check_fits_in_secret(server, &auth).map_err(|source| PullSecretError::TooLarge {
        key: shown(key),
        source,
    })?;
    Ok(dockerconfigjson(server, &auth))
}

/// An auth key as the kubelet's keyring indexes it: without `https://`/`http://`, with a
/// `/v1/` or `/v2/` path dropped to the host, and without a bare `/`.
fn normalized_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let (host, path) = match key.find('/') {
        Some(at) => key.split_at(at),
        None => (key, ""),
    };
    let path = path
        .strip_prefix("/v2")
        .or_else(|| path.strip_prefix("/v1"))
        .filter(|rest| rest.starts_with('/'))
        .unwrap_or(path);
    if path == "/" || path.is_empty() {
        host.to_owned()
    } else {
        format!("{host}{path}")
    }
}

#[cfg(test)]
mod tests;
