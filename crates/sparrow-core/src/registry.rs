//! `--registry-server HOST[:PORT][/PATH]`: where images are pulled from, and the key
//! under which credentials are stored ("only the domain is used for authentication").

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// The key every client (kubelet, containerd, docker, skopeo) uses for Docker Hub.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";
const DOCKER_HUB_HOSTS: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];

/// Why a `--registry-server` value was refused. Every message names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryServerError {
    /// Nothing was given.
    #[error(
        "--registry-server is empty: give HOST[:PORT][/PATH], for example registry.example.com:5000/mesh"
    )]
    Empty,
    /// Spaces, tabs or newlines anywhere in the value.
    #[error("--registry-server {0:?} contains whitespace: give HOST[:PORT][/PATH] without spaces")]
    Whitespace(String),
    /// `user@host`: credentials belong in --registry-username/--registry-key.
    /// The value is shown with the user information masked.
    #[error(
        "--registry-server {0:?} contains user information (user@host): pass credentials with --registry-username or --registry-key instead"
    )]
    UserInfo(String),
    /// `host/path:tag`.
    #[error(
        "--registry-server {0:?} contains an image tag: give only HOST[:PORT][/PATH]; the tag is --image-tag"
    )]
    Tag(String),
    /// `host/path@sha256:...`. The digest is masked: a password pasted there must not show.
    #[error("--registry-server {0:?} contains a digest: give only HOST[:PORT][/PATH]")]
    Digest(String),
    /// `?query` or `#fragment`: no part of a registry, and often a token. The value is shown
    /// with everything after the `?` or `#` masked.
    #[error(
        "--registry-server {0:?} contains a query or fragment (?... or #...): give only HOST[:PORT][/PATH]"
    )]
    Query(String),
    /// A URL scheme other than http(s).
    #[error(
        "--registry-server {0:?} has an unsupported scheme: give HOST[:PORT][/PATH], optionally prefixed with https://"
    )]
    Scheme(String),
    /// The host is not a DNS name, IPv4 address or bracketed IPv6 address.
    #[error(
        "--registry-server {value:?} has an invalid host {host:?}: use a DNS name, an IPv4 address or a bracketed IPv6 address such as [::1]"
    )]
    Host {
        /// The whole value as given.
        value: String,
        /// The host part that failed.
        host: String,
    },
    /// A host of one label without a port (`harbor`): container runtimes read the first
    /// component of `harbor/sparrow-proxy` as a Docker Hub namespace, not a registry.
    #[error(
        "--registry-server {value:?}: the single-label host {host:?} would be read as a Docker Hub namespace by container runtimes; give its full name (such as {host}.example.com), add the port ({host}:443) or use localhost"
    )]
    SingleLabel {
        /// The whole value as given.
        value: String,
        /// The host part.
        host: String,
    },
    /// A port that is not a number in 1..=65535.
    #[error(
        "--registry-server {value:?} has an invalid port {port:?}: the port must be a number from 1 to 65535"
    )]
    Port {
        /// The whole value as given.
        value: String,
        /// The port text that failed.
        port: String,
    },
    /// `host//path` or `host/a//b`.
    #[error("--registry-server {0:?} has an empty path segment (\"//\"): remove the extra slash")]
    EmptyPathSegment(String),
    /// Path segments must be lowercase alphanumerics with `.`, `_`, `__` or `-` separators.
    #[error(
        "--registry-server {value:?} has an invalid path segment {segment:?}: path segments use lowercase letters, digits and the separators . _ __ -"
    )]
    Path {
        /// The whole value as given.
        value: String,
        /// The segment that failed.
        segment: String,
    },
}

/// A validated registry server: `HOST[:PORT][/PATH]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegistryServer {
    host: String,
    port: Option<u16>,
    path: Vec<String>,
}

impl RegistryServer {
    /// Parses `HOST[:PORT][/PATH]`, tolerating an `https://`/`http://` prefix and a trailing slash.
    pub fn parse(raw: &str) -> Result<Self, RegistryServerError> {
        use RegistryServerError as E;
        if raw.is_empty() {
            return Err(E::Empty);
        }
        // Every message shows the value with any user information, digest and query masked:
        // a password pasted into the flag must not reach the screen, whichever check fails.
        let masked = shown(raw);
        let input = masked.as_str();
        if raw.chars().any(char::is_whitespace) {
            return Err(E::Whitespace(input.to_owned()));
        }
        let without_scheme = match raw.split_once("://") {
            Some((scheme, rest))
                if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http") =>
            {
                rest
            }
            Some(_) => return Err(E::Scheme(input.to_owned())),
            None => raw,
        };
        let trimmed = without_scheme.strip_suffix('/').unwrap_or(without_scheme);
        if trimmed.is_empty() {
            return Err(E::Empty);
        }
        let (authority, path) = match trimmed.split_once('/') {
            Some((authority, path)) => (authority, Some(path)),
            None => (trimmed, None),
        };
        if let Some((before, after)) = authority.rsplit_once('@') {
            // `reg.com@sha256:abcd` is a digest on a bare host, not user information.
            if digest_on_host(before, after) {
                return Err(E::Digest(input.to_owned()));
            }
            return Err(E::UserInfo(input.to_owned()));
        }
        if trimmed.contains(['?', '#']) {
            return Err(E::Query(input.to_owned()));
        }
        if let Some(path) = path {
            if path.contains('@') {
                return Err(E::Digest(input.to_owned()));
            }
            if path.contains(':') {
                return Err(E::Tag(input.to_owned()));
            }
        }
        let (host, port) = split_host_port(authority).map_err(|bad| match bad {
            HostPortError::Host(host) => E::Host {
                value: input.to_owned(),
                host,
            },
            HostPortError::Port(port) => E::Port {
                value: input.to_owned(),
                port,
            },
        })?;
        // What image references need to name a registry at all (distribution's rule: a first
        // component with a dot, a port, `localhost` or an IPv6 literal).
        if port.is_none() && !host.contains('.') && host != "localhost" && !host.starts_with('[') {
            return Err(E::SingleLabel {
                value: input.to_owned(),
                host,
            });
        }
        let mut segments = Vec::new();
        if let Some(path) = path {
            for segment in path.split('/') {
                if segment.is_empty() {
                    return Err(E::EmptyPathSegment(input.to_owned()));
                }
                if !is_path_component(segment) {
                    return Err(E::Path {
                        value: input.to_owned(),
                        segment: segment.to_owned(),
                    });
                }
                segments.push(segment.to_owned());
            }
        }
        Ok(Self {
            host,
            port,
            path: segments,
        })
    }

    /// The host as given (IPv6 with brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, when one was given.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The path below the host (`team/mesh`), empty when none.
    pub fn path(&self) -> String {
        self.path.join("/")
    }

    /// `HOST[:PORT]`: the part clients authenticate against.
    pub fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }

    /// True for Docker Hub under any of its names.
    pub fn is_docker_hub(&self) -> bool {
        self.port.is_none() && DOCKER_HUB_HOSTS.contains(&self.host.as_str())
    }

    /// The key under `auths` in a `.dockerconfigjson`.
    pub fn auth_key(&self) -> String {
        if self.is_docker_hub() {
            DOCKER_HUB_AUTH_KEY.to_owned()
        } else {
            self.authority()
        }
    }

    /// `HOST[:PORT][/PATH]/name:tag`.
    pub fn image(&self, name: &str, tag: &str) -> String {
        format!("{self}/{name}:{tag}")
    }
}

impl fmt::Display for RegistryServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.authority())?;
        for segment in &self.path {
            write!(f, "/{segment}")?;
        }
        Ok(())
    }
}

impl FromStr for RegistryServer {
    type Err = RegistryServerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Default for RegistryServer {
    fn default() -> Self {
        Self {
            host: "ghcr.io".to_owned(),
            port: None,
            path: vec!["sparrow-mesh".to_owned()],
        }
    }
}

enum HostPortError {
    Host(String),
    Port(String),
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), HostPortError> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or_else(|| HostPortError::Host(authority.to_owned()))?;
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err(HostPortError::Host(authority.to_owned()));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| HostPortError::Host(authority.to_owned()))?,
            ),
        };
        (format!("[{inside}]"), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if !is_dns_name(host) {
            return Err(HostPortError::Host(host.to_owned()));
        }
        (host.to_owned(), port)
    };
    let port = match port {
        None => None,
        Some(text) => match text.parse::<u16>() {
            // At most five digits: `:0000000000002` is no port (and, before an `@`, is
            // rather the tail of a password).
            Ok(port)
                if port != 0 && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Some(port)
            }
            _ => return Err(HostPortError::Port(text.to_owned())),
        },
    };
    Ok((host, port))
}

/// DNS names, `localhost` and IPv4 addresses (which are valid label sequences).
fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The distribution reference grammar:
/// `[a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*`.
fn is_path_component(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    let run = |i: &mut usize| {
        let start = *i;
        while *i < bytes.len() && alnum(bytes[*i]) {
            *i += 1;
        }
        *i > start
    };
    if !run(&mut i) {
        return false;
    }
    while i < bytes.len() {
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if !run(&mut i) {
            return false;
        }
    }
    true
}

/// `algorithm:encoded`, as after the `@` of an image digest.
fn is_digest(text: &str) -> bool {
    match text.split_once(':') {
        Some((algorithm, encoded)) => {
            !algorithm.is_empty()
                && algorithm
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
                && !encoded.is_empty()
                && encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
        }
        None => false,
    }
}

/// The value as messages show it: user information, a digest (what follows an `@` that is
/// not user information) and a query or fragment are masked, since each may be a password.
fn shown(value: &str) -> String {
    let masked = mask_userinfo(value);
    let masked = match masked.find(['?', '#']) {
        Some(at) => format!("{}***", &masked[..=at]),
        None => masked,
    };
    match masked.rfind('@') {
        Some(at) if !masked[..at].ends_with("***") => format!("{}@***", &masked[..at]),
        _ => masked,
    }
}

/// `scheme://***@host/path` for any value with user information before the host.
fn mask_userinfo(value: &str) -> String {
    let (scheme, rest) = match value.split_once("://") {
        // Anything but a scheme's letters before `://` (`robot:s3cret@https://...`) may be
        // credentials pasted in front: never shown.
        Some((scheme, rest))
            if scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-')) =>
        {
            (format!("{scheme}://"), rest)
        }
        Some((_, rest)) => ("***://".to_owned(), rest),
        None => (String::new(), value),
    };
    // User information ends at the last '@' (a password may contain '/'), unless what follows
    // that '@' is a digest (`sha256:...`), which is refused with its own message.
    let end_of_authority = match rest.rfind('@') {
        Some(at) if !digest_on_host(&rest[..at], &rest[at + 1..]) => {
            rest[at..].find('/').map_or(rest.len(), |slash| at + slash)
        }
        _ => return format!("{scheme}{rest}"),
    };
    let authority = &rest[..end_of_authority];
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}***@{host}{}", &rest[end_of_authority..]),
        None => format!("{scheme}{rest}"),
    }
}

/// `HOST[:PORT]@DIGEST`: what precedes the `@` is a host (and port), so the `@` starts a
/// digest. `robot:s3cret@registry:5000` is user information even though `registry:5000` has
/// a digest's shape: its password must be masked like any other.
fn digest_on_host(before: &str, after: &str) -> bool {
    let authority = before.split('/').next().unwrap_or_default();
    is_digest(after) && split_host_port(authority).is_ok()
}

#[cfg(test)]
mod tests;
