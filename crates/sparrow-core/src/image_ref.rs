//! Image references as the distribution grammar defines them
//! (`[HOST[:PORT]/]path[:tag][@algorithm:hex]`), for the `--*-image` overrides: a value the
//! kubelet could never pull is refused before anything is written.

use crate::registry::RegistryServer;

/// The longest repository name the distribution spec allows (host and path together).
pub const MAX_NAME_LEN: usize = 255;
/// The longest tag.
pub const MAX_TAG_LEN: usize = 128;

/// Why an image reference was refused. Each message says what a valid one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    /// Nothing given.
    #[error("is empty")]
    Empty,
    /// Whitespace or control characters.
    #[error("contains whitespace or control characters")]
    Whitespace,
    /// The repository name is too long.
    #[error("has a repository name of {0} characters; at most {MAX_NAME_LEN} are allowed")]
    TooLong(usize),
    /// The host part is not a host.
    #[error("has an invalid registry host {0:?}")]
    Host(String),
    /// A path component breaks the grammar.
    #[error(
        "has an invalid path component {0:?}: use lowercase letters, digits and the separators . _ __ -"
    )]
    Path(String),
    /// The tag breaks the grammar.
    #[error(
        "has an invalid tag {0:?}: a tag is 1-128 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
    )]
    Tag(String),
    /// The digest breaks the grammar.
    #[error("has an invalid digest {0:?}: use algorithm:hex, for example sha256:<64 hex digits>")]
    Digest(String),
}

/// Checks `reference` against the distribution grammar.
pub fn validate_image_ref(reference: &str) -> Result<(), ImageRefError> {
    if reference.is_empty() {
        return Err(ImageRefError::Empty);
    }
    if reference
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ImageRefError::Whitespace);
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (reference, None),
    };
    if let Some(digest) = digest
        && !is_digest(digest)
    {
        return Err(ImageRefError::Digest(digest.to_owned()));
    }
    // A tag follows the last ':' that comes after the last '/' (a port comes before it).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(colon) => (
            &rest[..last_slash + colon],
            Some(&rest[last_slash + colon + 1..]),
        ),
        None => (rest, None),
    };
    if let Some(tag) = tag
        && !is_tag(tag)
    {
        return Err(ImageRefError::Tag(tag.to_owned()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(ImageRefError::TooLong(name.len()));
    }
    let mut components: Vec<&str> = name.split('/').collect();
    let first = components[0];
    let has_domain = components.len() > 1
        && (first.contains(['.', ':']) || first == "localhost" || first.starts_with('['));
    if has_domain {
        RegistryServer::parse(first).map_err(|_| ImageRefError::Host(first.to_owned()))?;
        components.remove(0);
    }
    for component in components {
        if !is_path_component(component) {
            return Err(ImageRefError::Path(component.to_owned()));
        }
    }
    Ok(())
}

fn is_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= MAX_TAG_LEN
        && !tag.starts_with(['.', '-'])
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn is_digest(digest: &str) -> bool {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return false;
    };
    !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
        && encoded.len() >= 32
        && encoded.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `[a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*`
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.first().is_some_and(alnum) || !bytes.last().is_some_and(alnum) {
        return false;
    }
    let mut separator = 0usize;
    let mut separator_kind = 0u8;
    for b in bytes {
        if alnum(b) {
            separator = 0;
            continue;
        }
        let allowed = matches!(
            (*b, separator, separator_kind),
            (b'.' | b'_' | b'-', 0, _) | (b'_', 1, b'_') | (b'-', _, b'-')
        );
        if !allowed {
            return false;
        }
        separator_kind = if separator == 0 { *b } else { separator_kind };
        separator += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts() {
        for ok in [
            "nginx",
            "library/nginx:1.25",
            "registry.example.com:5000/mesh/sparrow-proxy:0.1.0",
            "localhost/proxy",
            "[::1]:5000/proxy:v1",
            "ghcr.io/a__b/c-d--e.f:latest",
            "ghcr.io/mesh/proxy@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "ghcr.io/mesh/proxy:1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(validate_image_ref(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses() {
        let long = format!("ghcr.io/{}", "a".repeat(260));
        let table: &[(&str, &str)] = &[
            ("", "is empty"),
            ("UPPER/@@::", "invalid digest"),
            ("UPPER/proxy", "invalid path component \"UPPER\""),
            ("a b", "whitespace"),
            ("ghcr.io/proxy:", "invalid tag \"\""),
            ("ghcr.io/proxy:-x", "invalid tag"),
            ("ghcr.io/proxy@sha256:xyz", "invalid digest"),
            ("ghcr.io//proxy", "invalid path component \"\""),
            ("ghcr.io/proxy/", "invalid path component \"\""),
            ("-bad.io/proxy", "invalid registry host"),
            ("reg.io:99999/proxy", "invalid registry host"),
            ("ghcr.io/a___b", "invalid path component"),
            ("ghcr.io/a_-b", "invalid path component"),
            (&long, "at most 255"),
        ];
        for (input, needle) in table {
            let error = validate_image_ref(input).expect_err(input).to_string();
            assert!(error.contains(needle), "{input:?}: {error}");
        }
    }
}
