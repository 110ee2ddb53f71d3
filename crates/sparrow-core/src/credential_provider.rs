//! Kubelet credential-provider plugins (KEP-2133, and KEP-4412's service-account tokens),
//! the pure half: the `CredentialProviderConfig` and its validation, the kubelet's image
//! globs, the request and response a plugin exchanges on stdin and stdout, the pull secret
//! made from an answer, and when to run the plugin again. Running the plugin is
//! `sparrow-credential-provider`'s; here nothing reads a clock or draws a random number:
//! time and jitter are passed in.
//!
//! No credential (password, token, their base64) reaches an error message or `{:?}`.

mod config;
mod duration;
mod exchange;
mod glob;
mod pull_secret;
mod schedule;

pub use config::{
    CONFIG_API_VERSION, CONFIG_API_VERSIONS, CONFIG_KIND, ConfigError, CredentialProviderConfig,
    EnvVar, NoProviderError, Provider, TokenAttributes, TokenCacheType,
};
pub use duration::{GoDurationError, format_go_duration, parse_go_duration};
pub use exchange::{
    AuthConfig, CacheKeyType, CredentialProviderRequest, CredentialProviderResponse, REQUEST_KIND,
    RESPONSE_KIND, ResponseError,
};
pub use glob::urls_match;
pub use pull_secret::{PullSecretError, best_key, matching_auth, pull_secret};
pub use schedule::{
    EXPIRY_MARGIN, JITTER_FRACTION, MAX_RETRY_DELAY, MIN_REFRESH_INTERVAL, RETRY_EXPIRY_MARGIN,
    expires_at, next_refresh, retry_after_failure,
};

/// The protocol version Sparrow speaks with a plugin (the kubelet's current one).
pub const PROTOCOL_API_VERSION: &str = "credentialprovider.kubelet.k8s.io/v1";

/// A configuration value as messages show it: at most 64 characters.
fn shown(value: &str) -> String {
    let mut out: String = value.chars().take(64).collect();
    if out.len() < value.len() {
        out.push('…');
    }
    out
}
