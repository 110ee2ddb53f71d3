//! Checks on the fields of a review that the webhook uses (uid, kind, namespace, name), made
//! before any of them is used: a namespace reaches the cache lookup and the API's URLs only
//! once it is a valid namespace name. Each check says what is wrong in one line, quoting at
//! most a short prefix of what was sent.

use k8s_openapi::api::core::v1::Pod;
use sparrow_core::config::validate_namespace;

use crate::review::GroupVersionKind;

/// The longest uid echoed back (Kubernetes sends a 36-character UUID).
pub(crate) const MAX_UID_LEN: usize = 128;
/// A DNS-1123 subdomain's length limit (pod names).
const MAX_NAME_LEN: usize = 253;
/// How much of a bad value a message quotes.
const QUOTED_CHARS: usize = 64;

/// `value`, quoted, cut to [`QUOTED_CHARS`] characters.
pub(crate) fn quoted(value: &str) -> String {
    match value.char_indices().nth(QUOTED_CHARS) {
        Some((cut, _)) => format!("{:?}...", &value[..cut]),
        None => format!("{value:?}"),
    }
}

/// The uid is echoed in the response: it must be short and printable.
pub(crate) fn check_uid(uid: &str) -> Result<(), String> {
    if uid.is_empty() {
        return Err("the AdmissionReview request has an empty uid".to_owned());
    }
    if uid.len() > MAX_UID_LEN || !uid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "the AdmissionReview request's uid {} is not a uid (at most {MAX_UID_LEN} printable ASCII characters)",
            quoted(uid)
        ));
    }
    Ok(())
}

/// `request.kind`: a group (empty or a DNS subdomain), a version and a kind as Kubernetes
/// names them.
pub(crate) fn check_kind(kind: &GroupVersionKind) -> Result<(), String> {
    let kind_ok = kind.kind.len() <= 63
        && kind.kind.starts_with(|c: char| c.is_ascii_alphabetic())
        && kind.kind.chars().all(|c| c.is_ascii_alphanumeric());
    let version_ok = !kind.version.is_empty()
        && kind.version.len() <= 63
        && kind
            .version
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let group_ok = kind.group.is_empty() || is_dns_subdomain(&kind.group);
    if kind_ok && version_ok && group_ok {
        Ok(())
    } else {
        Err(format!(
            "the request's kind (group {}, version {}, kind {}) is not a Kubernetes kind",
            quoted(&kind.group),
            quoted(&kind.version),
            quoted(&kind.kind)
        ))
    }
}

/// The pod's namespace: `request.namespace`, which must be a valid namespace name and agree
/// with the object's own `metadata.namespace` when that is set.
pub(crate) fn pod_namespace<'a>(
    request: Option<&'a str>,
    object: Option<&str>,
) -> Result<&'a str, String> {
    let Some(namespace) = request.filter(|ns| !ns.is_empty()) else {
        return Err("the request has no namespace; a Pod is always in one".to_owned());
    };
    if validate_namespace(namespace).is_err() {
        return Err(format!(
            "the request's namespace {} is not a valid namespace name (RFC 1123 label: at most 63 lowercase letters, digits and '-')",
            quoted(namespace)
        ));
    }
    if let Some(object) = object.filter(|ns| !ns.is_empty())
        && object != namespace
    {
        return Err(format!(
            "the Pod's metadata.namespace {} is not the request's namespace {}",
            quoted(object),
            quoted(namespace)
        ));
    }
    Ok(namespace)
}

/// The pod's `metadata.name`, or its `generateName` when it has no name yet (pods of a
/// ReplicaSet): a DNS-1123 subdomain, or the prefix of one.
pub(crate) fn check_pod_name(
    name: Option<&str>,
    generate_name: Option<&str>,
) -> Result<(), String> {
    match (
        name.filter(|n| !n.is_empty()),
        generate_name.filter(|n| !n.is_empty()),
    ) {
        (Some(name), _) if is_dns_subdomain(name) => Ok(()),
        (Some(name), _) => Err(format!(
            "the Pod's name {} is not a valid name (RFC 1123 subdomain: at most {MAX_NAME_LEN} lowercase letters, digits, '-' and '.')",
            quoted(name)
        )),
        (None, Some(prefix)) if is_dns_subdomain_prefix(prefix) => Ok(()),
        (None, Some(prefix)) => Err(format!(
            "the Pod's generateName {} is not a valid name prefix (lowercase letters, digits, '-' and '.')",
            quoted(prefix)
        )),
        (None, None) => Err("the Pod has neither a name nor a generateName".to_owned()),
    }
}

/// A pod the API server would refuse for want of containers is refused here: the patch
/// appends to `spec.containers`, which must exist (`"spec": {}` broke the fuzz target's
/// invariant that every patch applies).
pub(crate) fn check_pod_spec(pod: &Pod) -> Result<(), String> {
    match &pod.spec {
        None => Err("the Pod has no spec".to_owned()),
        Some(spec) if spec.containers.is_empty() => {
            Err("the Pod has no containers (Kubernetes requires at least one)".to_owned())
        }
        Some(_) => Ok(()),
    }
}

fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= MAX_NAME_LEN
        && !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A `generateName`: the API server appends five characters, so it may end in '-' or '.'.
fn is_dns_subdomain_prefix(prefix: &str) -> bool {
    let trimmed = prefix.trim_end_matches(['-', '.']);
    prefix.len() <= MAX_NAME_LEN - 5 && !trimmed.is_empty() && is_dns_subdomain(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gvk(group: &str, version: &str, kind: &str) -> GroupVersionKind {
        GroupVersionKind {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
        }
    }

    #[test]
    fn namespaces() {
        let long = "a".repeat(64);
        for (request, object, want) in [
            (Some("shop"), None, Ok("shop")),
            (Some("shop"), Some("shop"), Ok("shop")),
            (Some("shop"), Some(""), Ok("shop")),
            (Some("a-1"), None, Ok("a-1")),
            (None, Some("shop"), Err("has no namespace")),
            (Some(""), None, Err("has no namespace")),
            (
                Some("kube-system/secrets?x="),
                None,
                Err("not a valid namespace name"),
            ),
            (Some("Shop"), None, Err("not a valid namespace name")),
            (Some("-shop"), None, Err("not a valid namespace name")),
            (Some("shop-"), None, Err("not a valid namespace name")),
            (Some("sh.op"), None, Err("not a valid namespace name")),
            (Some("../etc"), None, Err("not a valid namespace name")),
            (Some("shop%2F"), None, Err("not a valid namespace name")),
            (Some(long.as_str()), None, Err("not a valid namespace name")),
            (
                Some("shop"),
                Some("other"),
                Err("is not the request's namespace"),
            ),
        ] {
            let got = pod_namespace(request, object);
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want),
                (Err(got), Err(want)) => assert!(got.contains(want), "{request:?}: {got}"),
                (got, want) => panic!("{request:?} {object:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn names_and_prefixes() {
        let long = "a".repeat(254);
        for (name, generate, ok) in [
            (Some("web"), None, true),
            (Some("web.v1-2"), None, true),
            (None, Some("web-7d9f-"), true),
            (None, Some("web."), true),
            (Some(""), Some("web-"), true),
            (Some("Web"), None, false),
            (Some("web_1"), None, false),
            (Some(long.as_str()), None, false),
            (Some("a..b"), None, false),
            (None, Some("-"), false),
            (None, Some("WEB-"), false),
            (None, None, false),
            (Some(""), Some(""), false),
        ] {
            assert_eq!(
                check_pod_name(name, generate).is_ok(),
                ok,
                "{name:?} {generate:?}"
            );
        }
    }

    #[test]
    fn kinds_and_uids() {
        assert!(check_kind(&gvk("", "v1", "Pod")).is_ok());
        assert!(check_kind(&gvk("apps", "v1", "Deployment")).is_ok());
        assert!(check_kind(&gvk("example.com", "v1beta1", "Widget")).is_ok());
        for bad in [
            gvk("", "", "Pod"),
            gvk("", "v1", ""),
            gvk("", "v1", "Pod/status"),
            gvk("", "V1", "Pod"),
            gvk("Apps", "v1", "Deployment"),
            gvk("", "v1", &"P".repeat(64)),
        ] {
            let message = check_kind(&bad).expect_err("accepted");
            assert!(message.contains("is not a Kubernetes kind"), "{message}");
        }
        assert!(check_uid("8f7c2b1e-3d4a-4c5b-9e6f-1a2b3c4d5e6f").is_ok());
        assert!(check_uid("").is_err());
        assert!(check_uid("a b").is_err());
        assert!(check_uid(&"u".repeat(129)).is_err());
        let message = check_uid(&"u".repeat(10_000)).expect_err("accepted");
        assert!(message.len() < 200, "quotes a short prefix: {message}");
    }
}
