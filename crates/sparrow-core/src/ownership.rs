//! Who an object belongs to, and whether a pull-secret copy is current: the rules `deploy`,
//! `remove`, `status` and the controller's copier all apply, written once.
//!
//! A copy is the mesh's only when it carries a proof that nobody but the controller can make:
//! `sparrow-mesh.io/proof`, an HMAC-SHA256 over the mesh, the copy's namespace, name and uid,
//! keyed with the bytes of Secret `sparrow-copy-key` in the mesh namespace. Labels,
//! annotations, `managedFields` and `ownerReferences` find candidates; any tenant who may
//! write a Secret can write those too, so none of them decides. The uid is chosen by the API
//! server when the object is created, so the proof of one copy verifies on that object alone:
//! not on its metadata copied into another namespace, not on a Secret re-created in its place.

use std::collections::BTreeMap;
use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::names::{
    MESH_LABEL, PROOF_ANNOTATION, PROTECTED_NAMESPACES, PULL_SECRET_NAME, SOURCE_ANNOTATION,
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

/// True when the labels carry `usage=sparrow-registry-key`. In the mesh namespace (which
/// tenants cannot write) that makes the source ours; anywhere else it only makes a Secret a
/// candidate copy, which [`is_proven_copy`] decides.
pub fn is_pull_secret(labels: Option<&Map>) -> bool {
    labels
        .and_then(|l| l.get(USAGE_LABEL))
        .is_some_and(|v| v == USAGE_LABEL_VALUE)
}

/// `sparrow-mesh.io/source` of the copies made from the Secret `source` (the mesh's own
/// `sparrow-registry-key`, or the one `--registry-secret` names) in the mesh namespace `mesh`.
pub fn source_of(mesh: &str, source: &str) -> String {
    format!("{mesh}/{source}")
}

/// A candidate copy of the pull secret of `mesh`: labelled as a pull secret, and its
/// `sparrow-mesh.io/source` annotation names a Secret of that mesh's namespace (its own
/// source or the external one it copies). Anyone can write both: what is done to a
/// candidate is decided by [`is_proven_copy`].
pub fn is_copy_of(labels: Option<&Map>, annotations: Option<&Map>, mesh: &str) -> bool {
    is_pull_secret(labels)
        && annotations
            .and_then(|a| a.get(SOURCE_ANNOTATION))
            .and_then(|s| s.split_once('/'))
            .is_some_and(|(ns, name)| ns == mesh && !name.is_empty())
}

/// The key copies are proven with: 32 random bytes only the controller (and the cluster's
/// administrators) can read. No `Debug` of its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct CopyKey([u8; CopyKey::LEN]);

/// A copy key that is not [`CopyKey::LEN`] bytes long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the copy key holds {0} bytes, not 32")]
pub struct BadCopyKey(pub usize);

impl CopyKey {
    /// The key's length in bytes.
    pub const LEN: usize = 32;

    /// The key in `bytes`, which must be exactly [`CopyKey::LEN`] long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BadCopyKey> {
        <[u8; Self::LEN]>::try_from(bytes)
            .map(Self)
            .map_err(|_| BadCopyKey(bytes.len()))
    }

    /// The key's bytes, to store them.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn mac(&self, mesh: &str, namespace: &str, name: &str, uid: &str) -> Hmac<Sha256> {
        // Infallible: HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(b"sparrow-mesh.io/proof/v1");
        // Length-prefixed, so no two different tuples hash the same bytes.
        for part in [mesh, namespace, name, uid] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    /// The proof for the copy `namespace/name` with `uid`, of the mesh in `mesh` (hex).
    pub fn proof(&self, mesh: &str, namespace: &str, name: &str, uid: &str) -> String {
        hex::encode(self.mac(mesh, namespace, name, uid).finalize().into_bytes())
    }

    /// True when `proof` is this key's proof for that copy (compared in constant time).
    pub fn verifies(
        &self,
        mesh: &str,
        namespace: &str,
        name: &str,
        uid: &str,
        proof: &str,
    ) -> bool {
        let Ok(bytes) = hex::decode(proof) else {
            return false;
        };
        self.mac(mesh, namespace, name, uid)
            .verify_slice(&bytes)
            .is_ok()
    }
}

impl fmt::Debug for CopyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CopyKey(..)")
    }
}

/// What of an object decides whether it is a proven copy.
#[derive(Debug, Clone, Copy)]
pub struct CopyIdentity<'a> {
    /// Its namespace.
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its uid, as the API server assigned it.
    pub uid: Option<&'a str>,
    /// Its annotations (where the proof is).
    pub annotations: Option<&'a Map>,
}

/// The one ownership rule for copies: true only when `copy` carries the proof that the
/// controller of `mesh` made this very object (its namespace, name and uid), under `key`.
/// Without a key (none was made yet, or it cannot be read) nothing is proven, so nothing is
/// written, rotated, counted or deleted. The source's own namespace holds no copy.
pub fn is_proven_copy(key: Option<&CopyKey>, mesh: &str, copy: CopyIdentity<'_>) -> bool {
    let (Some(key), Some(uid)) = (key, copy.uid) else {
        return false;
    };
    let Some(proof) = copy.annotations.and_then(|a| a.get(PROOF_ANNOTATION)) else {
        return false;
    };
    copy.namespace != mesh
        && copy.name == PULL_SECRET_NAME
        && key.verifies(mesh, copy.namespace, copy.name, uid, proof)
}

/// True for the namespaces `remove` never deletes.
pub fn is_protected_namespace(name: &str) -> bool {
    PROTECTED_NAMESPACES.contains(&name)
}

/// Where a copy stands against its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyState {
    /// It holds the source's data: no write needed.
    Current,
    /// Its data differs from the source's (rotated since, or edited by hand).
    Stale,
    /// There is no source to compare with.
    NoSource,
}

/// The staleness rule: a copy is current exactly when the hash of the data it holds
/// ([`crate::secret_data_hash`]) is the hash of the source's data. The
/// `sparrow-mesh.io/source-hash` annotation says what was written; only the data says what
/// is there.
pub fn copy_state(copy_data_hash: Option<&str>, source_hash: Option<&str>) -> CopyState {
    let Some(source_hash) = source_hash else {
        return CopyState::NoSource;
    };
    if copy_data_hash == Some(source_hash) {
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
    fn staleness_is_read_from_the_data() {
        let table = [
            (Some("abc"), Some("abc"), CopyState::Current),
            (Some("abc"), Some("def"), CopyState::Stale),
            (None, Some("def"), CopyState::Stale),
            (Some("abc"), None, CopyState::NoSource),
        ];
        for (data, source, want) in table {
            assert_eq!(copy_state(data, source), want, "{data:?} {source:?}");
        }
    }

    fn key(byte: u8) -> CopyKey {
        CopyKey::from_bytes(&[byte; CopyKey::LEN]).expect("32 bytes")
    }

    fn proven(key: &CopyKey, namespace: &str, uid: &str) -> Map {
        map(&[(
            PROOF_ANNOTATION,
            &key.proof("mesh", namespace, PULL_SECRET_NAME, uid),
        )])
    }

    fn identity<'a>(namespace: &'a str, uid: &'a str, annotations: &'a Map) -> CopyIdentity<'a> {
        CopyIdentity {
            namespace,
            name: PULL_SECRET_NAME,
            uid: Some(uid),
            annotations: Some(annotations),
        }
    }

    #[test]
    fn only_the_object_the_proof_was_made_for_is_proven() {
        let k = key(7);
        let genuine = proven(&k, "shop", "uid-1");
        assert!(is_proven_copy(
            Some(&k),
            "mesh",
            identity("shop", "uid-1", &genuine)
        ));
        // A genuine copy's metadata copied into another namespace: other namespace and uid.
        assert!(!is_proven_copy(
            Some(&k),
            "mesh",
            identity("tenant", "uid-2", &genuine)
        ));
        // The genuine copy deleted and a Secret with the same metadata created in its place.
        assert!(!is_proven_copy(
            Some(&k),
            "mesh",
            identity("shop", "uid-3", &genuine)
        ));
        // Another mesh's key, or the same key for another mesh.
        assert!(!is_proven_copy(
            Some(&key(8)),
            "mesh",
            identity("shop", "uid-1", &genuine)
        ));
        assert!(!is_proven_copy(
            Some(&k),
            "other",
            identity("shop", "uid-1", &genuine)
        ));
        // No key, no uid, no proof, a proof that is not hex, another name.
        assert!(!is_proven_copy(
            None,
            "mesh",
            identity("shop", "uid-1", &genuine)
        ));
        let no_uid = CopyIdentity {
            uid: None,
            ..identity("shop", "uid-1", &genuine)
        };
        assert!(!is_proven_copy(Some(&k), "mesh", no_uid));
        let empty = map(&[]);
        assert!(!is_proven_copy(
            Some(&k),
            "mesh",
            identity("shop", "uid-1", &empty)
        ));
        let garbage = map(&[(PROOF_ANNOTATION, "not hex")]);
        assert!(!is_proven_copy(
            Some(&k),
            "mesh",
            identity("shop", "uid-1", &garbage)
        ));
        let renamed = CopyIdentity {
            name: "other-name",
            ..identity("shop", "uid-1", &genuine)
        };
        assert!(!is_proven_copy(Some(&k), "mesh", renamed));
        // The source's own namespace holds no copy.
        let in_mesh = proven(&k, "mesh", "uid-1");
        assert!(!is_proven_copy(
            Some(&k),
            "mesh",
            identity("mesh", "uid-1", &in_mesh)
        ));
    }

    #[test]
    fn proofs_do_not_collide_across_field_boundaries() {
        let k = key(1);
        assert_ne!(k.proof("ab", "c", "d", "e"), k.proof("a", "bc", "d", "e"));
        assert_eq!(k.proof("m", "n", "x", "u").len(), 64);
    }

    #[test]
    fn a_key_must_be_32_bytes_and_never_prints() {
        assert_eq!(CopyKey::from_bytes(&[0; 16]), Err(BadCopyKey(16)));
        assert_eq!(format!("{:?}", key(9)), "CopyKey(..)");
    }

    #[test]
    fn protected_namespaces() {
        for ns in ["kube-system", "kube-public", "kube-node-lease", "default"] {
            assert!(is_protected_namespace(ns), "{ns}");
        }
        assert!(!is_protected_namespace("sparrow-mesh"));
    }
}
