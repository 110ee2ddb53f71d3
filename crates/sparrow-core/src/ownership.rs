//! Who an object belongs to, and whether a pull-secret copy is current: the rules `deploy`,
//! `remove`, `status` and the controller's copier all apply, written once.

use std::collections::BTreeMap;

use crate::names::{
    MESH_LABEL, PROTECTED_NAMESPACES, PULL_SECRET_NAME, SOURCE_ANNOTATION, SOURCE_HASH_ANNOTATION,
    USAGE_LABEL, USAGE_LABEL_VALUE,
};

type Map = BTreeMap<String, String>;

/// The mesh (its namespace) an object's labels say it belongs to.
pub fn mesh_of(labels: Option<&Map>) -> Option<&str> {
    labels?.get(MESH_LABEL).map(String::as_str)
}

/// True when the labels carry `sparrow-mesh.io/mesh=<mesh>`.
pub fn belongs_to(labels: Option<&Map>, mesh: &str) -> bool {
    mesh_of(labels) == Some(mesh)
}

/// True when the labels carry `usage=sparrow-registry-key`: a pull secret (source or copy)
/// that Sparrow made. Anything else of that name is someone else's and is never touched.
pub fn is_pull_secret(labels: Option<&Map>) -> bool {
    labels
        .and_then(|l| l.get(USAGE_LABEL))
        .is_some_and(|v| v == USAGE_LABEL_VALUE)
}

/// `sparrow-mesh.io/source` of the copies made from the pull secret of `mesh`.
pub fn source_of(mesh: &str) -> String {
    format!("{mesh}/{PULL_SECRET_NAME}")
}

/// True for a copy of the pull secret of `mesh`: labelled as a pull secret, and its
/// `sparrow-mesh.io/source` annotation names that mesh's source.
pub fn is_copy_of(labels: Option<&Map>, annotations: Option<&Map>, mesh: &str) -> bool {
    is_pull_secret(labels)
        && annotations
            .and_then(|a| a.get(SOURCE_ANNOTATION))
            .is_some_and(|s| *s == source_of(mesh))
}

/// True for the namespaces `remove` never deletes.
pub fn is_protected_namespace(name: &str) -> bool {
    PROTECTED_NAMESPACES.contains(&name)
}

/// Where a copy stands against its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyState {
    /// Its `sparrow-mesh.io/source-hash` is the source's data hash: no write needed.
    Current,
    /// It records another hash, or none: it must be rewritten from the source.
    Stale,
    /// There is no source to compare with.
    NoSource,
}

/// The staleness rule: a copy is current exactly when the hash it records
/// (`sparrow-mesh.io/source-hash`) is the hash of the source's data.
pub fn copy_state(copy_annotations: Option<&Map>, source_hash: Option<&str>) -> CopyState {
    let Some(source_hash) = source_hash else {
        return CopyState::NoSource;
    };
    let recorded = copy_annotations.and_then(|a| a.get(SOURCE_HASH_ANNOTATION));
    if recorded.is_some_and(|h| h == source_hash) {
        CopyState::Current
    } else {
        CopyState::Stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn ownership_needs_the_exact_mesh() {
        let ours = map(&[(MESH_LABEL, "team")]);
        assert!(belongs_to(Some(&ours), "team"));
        assert!(!belongs_to(Some(&ours), "team2"));
        assert!(!belongs_to(Some(&map(&[])), "team"));
        assert!(!belongs_to(None, "team"));
        let legacy = map(&[("app.kubernetes.io/part-of", "sparrow-mesh")]);
        assert!(!belongs_to(Some(&legacy), "team"), "part-of grants nothing");
    }

    #[test]
    fn copies_are_recognised_by_label_and_source() {
        let labelled = map(&[(USAGE_LABEL, USAGE_LABEL_VALUE)]);
        let from_team = map(&[(SOURCE_ANNOTATION, "team/sparrow-registry-key")]);
        let from_other = map(&[(SOURCE_ANNOTATION, "other/sparrow-registry-key")]);
        let table = [
            (Some(&labelled), Some(&from_team), true),
            (Some(&labelled), Some(&from_other), false),
            (Some(&labelled), None, false),
            (None, Some(&from_team), false),
        ];
        for (labels, annotations, want) in table {
            assert_eq!(
                is_copy_of(labels, annotations, "team"),
                want,
                "{labels:?} {annotations:?}"
            );
        }
    }

    #[test]
    fn staleness() {
        let with = |h: &str| map(&[(SOURCE_HASH_ANNOTATION, h)]);
        let table = [
            (Some(with("abc")), Some("abc"), CopyState::Current),
            (Some(with("abc")), Some("def"), CopyState::Stale),
            (Some(map(&[])), Some("def"), CopyState::Stale),
            (None, Some("def"), CopyState::Stale),
            (Some(with("abc")), None, CopyState::NoSource),
        ];
        for (annotations, source, want) in table {
            assert_eq!(copy_state(annotations.as_ref(), source), want);
        }
    }

    #[test]
    fn protected_namespaces() {
        for ns in ["kube-system", "kube-public", "kube-node-lease", "default"] {
            assert!(is_protected_namespace(ns), "{ns}");
        }
        assert!(!is_protected_namespace("sparrow-mesh"));
    }
}
