//! What the check found for each image, and the one line a person reads for it.

use std::fmt;

/// What the registry said about one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The manifest exists; `digest` is what a pull by tag resolves to today.
    Found {
        /// `sha256:…`, from `Docker-Content-Digest` or computed over the manifest.
        digest: String,
    },
    /// No such repository, or no such tag in it.
    NotFound {
        /// Which of the two, as far as the registry said.
        detail: String,
    },
    /// The registry wants (other) credentials.
    Unauthorized {
        /// `HOST[:PORT]` that refused.
        registry: String,
        /// Whether credentials were sent to it (they go only to the `--registry-server` host).
        credentials_sent: bool,
    },
    /// The credentials are accepted, but may not pull this image.
    Forbidden {
        /// `HOST[:PORT]` that refused.
        registry: String,
    },
    /// The TLS handshake failed, typically a certificate from an unknown authority.
    Tls {
        /// What was wrong with the handshake or certificate.
        detail: String,
    },
    /// No answer: DNS failure, connection refused, or nothing within the timeout.
    Unreachable {
        /// Which of these, and where.
        detail: String,
    },
    /// The image reference itself cannot be parsed (an override flag's value).
    InvalidReference {
        /// The parser's complaint.
        detail: String,
    },
    /// Anything else the registry answered (5xx, a protocol violation).
    Other {
        /// What happened.
        detail: String,
    },
}

impl Outcome {
    /// True only for [`Outcome::Found`].
    pub fn passed(&self) -> bool {
        matches!(self, Self::Found { .. })
    }

    /// The manifest digest, when found.
    pub fn digest(&self) -> Option<&str> {
        match self {
            Self::Found { digest } => Some(digest),
            _ => None,
        }
    }

    /// Replaces every form of the credential in the free-text details: the registry's own
    /// messages are echoed and must never carry it to a terminal or a log. The forms are the
    /// password itself, the base64 `user:password` of a Basic header or an `auth` field, and
    /// the password as escaped inside JSON (a key file's text).
    pub(crate) fn redact(self, auth: Option<&sparrow_core::RegistryAuth>) -> Self {
        let Some(auth) = auth else {
            return self;
        };
        let password = auth.password();
        if password.is_empty() {
            return self;
        }
        let basic = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{password}", auth.username()))
        };
        let json_escaped = serde_json::to_string(password).unwrap_or_default();
        let json_escaped = json_escaped.trim_matches('"').to_owned();
        let forms = [password.to_owned(), basic, json_escaped];
        let clean = |mut detail: String| {
            for form in forms.iter().filter(|f| !f.is_empty()) {
                detail = detail.replace(form.as_str(), "<redacted>");
            }
            detail
        };
        match self {
            Self::NotFound { detail } => Self::NotFound {
                detail: clean(detail),
            },
            Self::Tls { detail } => Self::Tls {
                detail: clean(detail),
            },
            Self::Unreachable { detail } => Self::Unreachable {
                detail: clean(detail),
            },
            Self::InvalidReference { detail } => Self::InvalidReference {
                detail: clean(detail),
            },
            Self::Other { detail } => Self::Other {
                detail: clean(detail),
            },
            kept @ (Self::Found { .. } | Self::Unauthorized { .. } | Self::Forbidden { .. }) => {
                kept
            }
        }
    }
}

/// The hint printed with every TLS failure.
pub const REGISTRY_CA_HINT: &str = "pass --registry-ca FILE with the registry's CA certificate";

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Found { digest } => write!(f, "found {digest}"),
            Self::NotFound { detail } => write!(f, "not found: {detail}"),
            Self::Unauthorized {
                registry,
                credentials_sent: true,
            } => write!(
                f,
                "unauthorized: the registry refused the credentials for {registry}"
            ),
            Self::Unauthorized {
                registry,
                credentials_sent: false,
            } => write!(
                f,
                "unauthorized: {registry} requires credentials and none were sent to it (credentials go only to the --registry-server host)"
            ),
            Self::Forbidden { registry } => write!(
                f,
                "forbidden: {registry} accepted the credentials but does not allow pulling this image"
            ),
            Self::Tls { detail } => write!(f, "TLS failure: {detail}; {REGISTRY_CA_HINT}"),
            Self::Unreachable { detail } => write!(f, "unreachable: {detail}"),
            Self::InvalidReference { detail } => write!(f, "invalid image reference: {detail}"),
            Self::Other { detail } => write!(f, "{detail}"),
        }
    }
}

/// One image's result: `label` is `controller`, `proxy` or `init`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageCheck {
    /// Which of the mesh's images.
    pub label: String,
    /// The full reference that was checked.
    pub image: String,
    /// What the registry said.
    pub outcome: Outcome,
}

impl ImageCheck {
    /// True when the image was found.
    pub fn passed(&self) -> bool {
        self.outcome.passed()
    }
}

/// `✓ controller  127.0.0.1:5000/team/mesh/sparrow-controller:0.1.0  found sha256:…`
impl fmt::Display for ImageCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.passed() { '✓' } else { '✗' };
        write!(
            f,
            "{mark} {label:<10}  {image}  {outcome}",
            label = self.label,
            image = self.image,
            outcome = self.outcome
        )
    }
}

/// True when every image was found (and there was at least one to check).
pub fn all_passed(checks: &[ImageCheck]) -> bool {
    !checks.is_empty() && checks.iter().all(ImageCheck::passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(label: &str, outcome: Outcome) -> ImageCheck {
        ImageCheck {
            label: label.to_owned(),
            image: "127.0.0.1:5000/team/mesh/sparrow-controller:0.1.0".to_owned(),
            outcome,
        }
    }

    #[test]
    fn found_line() {
        let line = check(
            "controller",
            Outcome::Found {
                digest: "sha256:abc".to_owned(),
            },
        )
        .to_string();
        assert_eq!(
            line,
            "✓ controller  127.0.0.1:5000/team/mesh/sparrow-controller:0.1.0  found sha256:abc"
        );
    }

    #[test]
    fn labels_are_aligned() {
        let line = check(
            "proxy",
            Outcome::Unauthorized {
                registry: "127.0.0.1:5000".to_owned(),
                credentials_sent: true,
            },
        )
        .to_string();
        assert_eq!(
            line,
            "✗ proxy       127.0.0.1:5000/team/mesh/sparrow-controller:0.1.0  unauthorized: the registry refused the credentials for 127.0.0.1:5000"
        );
    }

    #[test]
    fn tls_line_carries_the_hint() {
        let line = check(
            "init",
            Outcome::Tls {
                detail: "unknown authority".to_owned(),
            },
        )
        .to_string();
        assert!(line.ends_with(REGISTRY_CA_HINT), "{line}");
        assert!(line.starts_with('✗'));
    }

    #[test]
    fn anonymous_refusal_says_no_credentials_were_sent() {
        let outcome = Outcome::Unauthorized {
            registry: "other.example".to_owned(),
            credentials_sent: false,
        };
        assert!(outcome.to_string().contains("none were sent"));
    }

    #[test]
    fn all_passed_needs_every_image_and_at_least_one() {
        let found = check(
            "controller",
            Outcome::Found {
                digest: "sha256:1".to_owned(),
            },
        );
        let missing = check(
            "proxy",
            Outcome::NotFound {
                detail: "no tag".to_owned(),
            },
        );
        assert!(all_passed(std::slice::from_ref(&found)));
        assert!(!all_passed(&[found, missing]));
        assert!(!all_passed(&[]));
    }

    #[test]
    fn redact_scrubs_every_detail() {
        let auth = sparrow_core::RegistryAuth::user_password("robot", "hunter2").expect("valid");
        let outcome = Outcome::Other {
            detail: "server said: bad password hunter2 for user, header Basic cm9ib3Q6aHVudGVyMg=="
                .to_owned(),
        }
        .redact(Some(&auth));
        assert_eq!(
            outcome,
            Outcome::Other {
                detail: "server said: bad password <redacted> for user, header Basic <redacted>"
                    .to_owned()
            }
        );
        let key = sparrow_core::RegistryAuth::json_key("{\"private_key\": \"line1\\nline2\"}")
            .expect("valid");
        let escaped = Outcome::Other {
            detail: r#"echo: {\"private_key\": \"line1\\nline2\"}"#.to_owned(),
        }
        .redact(Some(&key));
        assert_eq!(
            escaped,
            Outcome::Other {
                detail: "echo: <redacted>".to_owned()
            }
        );
    }
}
