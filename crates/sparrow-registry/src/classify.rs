//! Turns what the client reports into an [`Outcome`] a person can act on. Pure: the network
//! part is done by the time an error reaches here.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use oci_client::errors::{OciDistributionError, OciEnvelope, OciErrorCode};
use rustls::CertificateError;

use crate::outcome::Outcome;

/// What the classification needs to know about the request that failed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// `HOST[:PORT]` of the image's registry.
    pub registry: &'a str,
    /// `team/mesh/sparrow-proxy`.
    pub repository: &'a str,
    /// The tag or digest asked for.
    pub version: &'a str,
    /// Whether credentials were sent to this registry.
    pub credentials_sent: bool,
    /// The time allowed.
    pub timeout: Duration,
}

impl Context<'_> {
    fn unauthorized(&self) -> Outcome {
        Outcome::Unauthorized {
            registry: self.registry.to_owned(),
            credentials_sent: self.credentials_sent,
        }
    }

    fn forbidden(&self) -> Outcome {
        Outcome::Forbidden {
            registry: self.registry.to_owned(),
        }
    }

    fn manifest_unknown(&self) -> Outcome {
        Outcome::NotFound {
            detail: format!(
                "{registry} has no manifest {version} in {repository}",
                registry = self.registry,
                version = self.version,
                repository = self.repository
            ),
        }
    }

    fn name_unknown(&self) -> Outcome {
        Outcome::NotFound {
            detail: format!(
                "{registry} has no repository {repository}",
                registry = self.registry,
                repository = self.repository
            ),
        }
    }

    /// Nothing came back in time.
    pub fn timed_out(&self) -> Outcome {
        Outcome::Unreachable {
            detail: format!(
                "no answer from {registry} within {timeout}",
                registry = self.registry,
                timeout = human_duration(self.timeout)
            ),
        }
    }
}

/// Classifies a failed authentication or manifest request.
pub(crate) fn classify(error: &OciDistributionError, ctx: &Context<'_>) -> Outcome {
    use OciDistributionError as E;
    match error {
        // `AuthenticationFailure` is the token endpoint of a Bearer challenge refusing.
        E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => ctx.unauthorized(),
        E::RegistryError { envelope, .. } => classify_envelope(envelope, ctx),
        E::ServerError { code, message, .. } => classify_status(*code, message, ctx),
        E::ImageManifestNotFoundError(_) => ctx.manifest_unknown(),
        E::RequestError(request) => classify_transport(request, request.is_timeout(), ctx),
        other => Outcome::Other {
            detail: other.to_string(),
        },
    }
}

/// The registry's JSON error envelope: the first error that says something decides.
fn classify_envelope(envelope: &OciEnvelope, ctx: &Context<'_>) -> Outcome {
    for error in &envelope.errors {
        match error.code {
            OciErrorCode::ManifestUnknown | OciErrorCode::NotFound => {
                return ctx.manifest_unknown();
            }
            OciErrorCode::NameUnknown => return ctx.name_unknown(),
            OciErrorCode::Unauthorized => return ctx.unauthorized(),
            OciErrorCode::Denied => return ctx.forbidden(),
            _ => {}
        }
    }
    let messages: Vec<String> = envelope
        .errors
        .iter()
        .map(|error| format!("{:?}: {}", error.code, error.message))
        .collect();
    Outcome::Other {
        detail: format!("{} answered {}", ctx.registry, messages.join("; ")),
    }
}

/// A status without a parsable error envelope.
pub(crate) fn classify_status(code: u16, message: &str, ctx: &Context<'_>) -> Outcome {
    match code {
        401 => ctx.unauthorized(),
        403 => ctx.forbidden(),
        404 => ctx.manifest_unknown(),
        _ => {
            let message = envelope_messages(message).unwrap_or_else(|| message.trim().to_owned());
            let shown: String = message.chars().take(200).collect();
            let what = if code == 413 {
                format!(
                    "{} refused the upload as too large or over its quota (HTTP 413)",
                    ctx.registry
                )
            } else {
                format!("{} answered HTTP {code}", ctx.registry)
            };
            Outcome::Other {
                detail: if shown.is_empty() {
                    what
                } else {
                    format!("{what}: {shown}")
                },
            }
        }
    }
}

/// `CODE: message; ...` of an OCI error envelope (`{"errors":[{"code":..,"message":..}]}`),
/// the body registries answer with; `None` for any other body.
fn envelope_messages(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let errors = value.get("errors")?.as_array()?;
    let parts: Vec<String> = errors
        .iter()
        .map(|error| {
            let code = error.get("code").and_then(|c| c.as_str()).unwrap_or("");
            let message = error.get("message").and_then(|m| m.as_str()).unwrap_or("");
            match (code.is_empty(), message.is_empty()) {
                (false, false) => format!("{code}: {message}"),
                (false, true) => code.to_owned(),
                _ => message.to_owned(),
            }
        })
        .filter(|part| !part.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// A request that got no HTTP answer: TLS, DNS, refused, timed out.
pub(crate) fn classify_transport(
    error: &(dyn StdError + 'static),
    timed_out: bool,
    ctx: &Context<'_>,
) -> Outcome {
    let mut connection_refused = false;
    let mut dns_failure = false;
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return describe_tls(tls, ctx);
        }
        let text = error.to_string();
        if text.starts_with("dns error") || text.contains("failed to lookup address") {
            dns_failure = true;
        }
        current = error.source();
        if let Some(io_error) = error.downcast_ref::<io::Error>() {
            match io_error.kind() {
                io::ErrorKind::ConnectionRefused => connection_refused = true,
                io::ErrorKind::TimedOut => return ctx.timed_out(),
                _ => {}
            }
            // `io::Error::source` skips the error it wraps (tokio-rustls wraps the rustls
            // error in an io::Error, hyper-util that in another): descend into it instead.
            if let Some(inner) = io_error.get_ref() {
                current = Some(inner);
            }
        }
    }
    if timed_out {
        return ctx.timed_out();
    }
    let detail = if connection_refused {
        format!("connection to {} refused", ctx.registry)
    } else if dns_failure {
        format!("cannot resolve the host of {}", ctx.registry)
    } else {
        format!("cannot connect to {}: {}", ctx.registry, error_chain(error))
    };
    Outcome::Unreachable { detail }
}

fn describe_tls(error: &rustls::Error, ctx: &Context<'_>) -> Outcome {
    let registry = ctx.registry;
    let detail = match error {
        rustls::Error::InvalidCertificate(certificate) => match certificate {
            CertificateError::UnknownIssuer => format!(
                "the certificate of {registry} is signed by an unknown certificate authority"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("the certificate of {registry} is not valid for that name")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the certificate of {registry} has expired")
            }
            other => format!("the certificate of {registry} was rejected: {other:?}"),
        },
        rustls::Error::InvalidMessage(_) => {
            format!("the handshake with {registry} failed ({error}); is it serving HTTPS?")
        }
        other => format!("the handshake with {registry} failed: {other}"),
    };
    Outcome::Tls { detail }
}

/// `a: b: c` over an error's sources.
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut current = error.source();
    while let Some(error) = current {
        let text = error.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        current = error.source();
    }
    parts.join(": ")
}

/// `2s`, `1500ms`.
pub(crate) fn human_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(credentials_sent: bool) -> Context<'static> {
        Context {
            registry: "127.0.0.1:5000",
            repository: "team/mesh/sparrow-proxy",
            version: "0.1.0",
            credentials_sent,
            timeout: Duration::from_secs(2),
        }
    }

    fn envelope(json: &str) -> OciDistributionError {
        OciDistributionError::RegistryError {
            envelope: serde_json::from_str(json).expect("envelope"),
            url: "https://127.0.0.1:5000/v2/team/mesh/sparrow-proxy/manifests/0.1.0".to_owned(),
        }
    }

    fn server_error(code: u16, message: &str) -> OciDistributionError {
        OciDistributionError::ServerError {
            code,
            url: "https://127.0.0.1:5000/v2/".to_owned(),
            message: message.to_owned(),
        }
    }

    #[test]
    fn http_401_is_unauthorized() {
        let error = OciDistributionError::UnauthorizedError {
            url: "https://127.0.0.1:5000/v2/".to_owned(),
        };
        assert_eq!(
            classify(&error, &ctx(true)),
            Outcome::Unauthorized {
                registry: "127.0.0.1:5000".to_owned(),
                credentials_sent: true
            }
        );
        assert!(matches!(
            classify(&server_error(401, ""), &ctx(false)),
            Outcome::Unauthorized {
                credentials_sent: false,
                ..
            }
        ));
    }

    #[test]
    fn a_refusing_token_endpoint_is_unauthorized() {
        let error = OciDistributionError::AuthenticationFailure("{\"details\":\"bad\"}".into());
        assert!(matches!(
            classify(&error, &ctx(true)),
            Outcome::Unauthorized { .. }
        ));
    }

    #[test]
    fn http_403_and_denied_are_forbidden() {
        let forbidden = Outcome::Forbidden {
            registry: "127.0.0.1:5000".to_owned(),
        };
        assert_eq!(classify(&server_error(403, "no"), &ctx(true)), forbidden);
        let denied = envelope(
            r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#,
        );
        assert_eq!(classify(&denied, &ctx(true)), forbidden);
    }

    #[test]
    fn manifest_unknown_names_the_tag() {
        let error = envelope(
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"0.1.0"}}]}"#,
        );
        assert_eq!(
            classify(&error, &ctx(true)),
            Outcome::NotFound {
                detail: "127.0.0.1:5000 has no manifest 0.1.0 in team/mesh/sparrow-proxy"
                    .to_owned()
            }
        );
    }

    #[test]
    fn name_unknown_names_the_repository() {
        let error = envelope(
            r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#,
        );
        assert_eq!(
            classify(&error, &ctx(true)),
            Outcome::NotFound {
                detail: "127.0.0.1:5000 has no repository team/mesh/sparrow-proxy".to_owned()
            }
        );
    }

    #[test]
    fn bare_404_is_not_found() {
        assert!(matches!(
            classify(&server_error(404, ""), &ctx(true)),
            Outcome::NotFound { .. }
        ));
    }

    #[test]
    fn other_statuses_keep_a_bounded_message() {
        let long = "x".repeat(1000);
        let Outcome::Other { detail } = classify(&server_error(503, &long), &ctx(true)) else {
            panic!("503 is Other");
        };
        assert!(detail.starts_with("127.0.0.1:5000 answered HTTP 503: xxx"));
        assert!(detail.len() < 300, "{detail}");
    }

    #[test]
    fn a_413_says_too_large_or_over_quota_with_the_registry_s_words() {
        let body = r#"{"errors":[{"code":"DENIED","message":"quota exceeded"}]}"#;
        let Outcome::Other { detail } = classify(&server_error(413, body), &ctx(true)) else {
            panic!("413 is Other");
        };
        assert_eq!(
            detail,
            "127.0.0.1:5000 refused the upload as too large or over its quota (HTTP 413): DENIED: quota exceeded"
        );
    }

    #[test]
    fn unknown_envelope_codes_are_other_with_the_message() {
        let error = envelope(r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#);
        let Outcome::Other { detail } = classify(&error, &ctx(true)) else {
            panic!("rate limit is Other");
        };
        assert!(detail.contains("slow down"), "{detail}");
    }

    #[test]
    fn unknown_issuer_is_tls() {
        let error = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert_eq!(
            classify_transport(&error, false, &ctx(true)),
            Outcome::Tls {
                detail:
                    "the certificate of 127.0.0.1:5000 is signed by an unknown certificate authority"
                        .to_owned()
            }
        );
    }

    #[test]
    fn plain_http_answer_to_a_handshake_is_tls() {
        let error = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        let Outcome::Tls { detail } = classify_transport(&error, false, &ctx(true)) else {
            panic!("is TLS");
        };
        assert!(detail.contains("is it serving HTTPS?"), "{detail}");
    }

    #[test]
    fn refused_connection_is_unreachable() {
        let error = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            classify_transport(&error, false, &ctx(true)),
            Outcome::Unreachable {
                detail: "connection to 127.0.0.1:5000 refused".to_owned()
            }
        );
    }

    #[test]
    fn timeouts_are_unreachable_with_the_limit() {
        let error = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(
            classify_transport(&error, false, &ctx(true)),
            Outcome::Unreachable {
                detail: "no answer from 127.0.0.1:5000 within 2s".to_owned()
            }
        );
        let other = io::Error::other("deadline");
        assert!(matches!(
            classify_transport(&other, true, &ctx(true)),
            Outcome::Unreachable { .. }
        ));
    }

    #[test]
    fn dns_failures_are_unreachable() {
        #[derive(Debug)]
        struct Dns(io::Error);
        impl std::fmt::Display for Dns {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("dns error")
            }
        }
        impl StdError for Dns {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let error = Dns(io::Error::other(
            "failed to lookup address information: Name or service not known",
        ));
        assert_eq!(
            classify_transport(&error, false, &ctx(true)),
            Outcome::Unreachable {
                detail: "cannot resolve the host of 127.0.0.1:5000".to_owned()
            }
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(10)), "10s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1500ms");
    }
}
