//! What `remove` may delete, decided from what was read, with no I/O: only objects that
//! carry the mesh's marker, copies the controller proves it made (labels only find the
//! candidates), the key they are proven with once they are gone, and the namespace only when
//! deploy created it, it is not a protected namespace and it holds nothing else.

use std::collections::BTreeMap;

use sparrow_core::ownership::{
    CopyIdentity, CopyKey, belongs_to, is_copy_of, is_protected_namespace, is_proven_copy, mesh_of,
};
use sparrow_core::{Kind, Part};

/// An object as read: enough to judge whose it is and to delete exactly it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// Its namespace, for namespaced kinds.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// Its uid: the delete is conditional on it.
    pub uid: Option<String>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// It is being deleted already.
    pub terminating: bool,
}

/// Everything `remove` read before deciding.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The mesh namespace named by `-n`.
    pub mesh: String,
    /// Each part of the control plane, as found (or not).
    pub parts: Vec<(Part, Option<Found>)>,
    /// Every Secret labelled `usage=sparrow-registry-key`, in every namespace.
    pub labelled_secrets: Vec<Found>,
    /// The key copies are proven with, and its Secret (`None`: there is none of this mesh).
    pub copy_key: Option<(CopyKey, Found)>,
    /// Objects in the mesh namespace that Sparrow did not create (`Kind ns/name`).
    pub foreign_in_namespace: Vec<String>,
}

/// One object to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its kind.
    pub kind: Kind,
    /// Its namespace, for namespaced kinds.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// The uid it must still have.
    pub uid: Option<String>,
}

impl Target {
    fn of(kind: Kind, found: &Found) -> Self {
        Self {
            kind,
            namespace: found.namespace.clone(),
            name: found.name.clone(),
            uid: found.uid.clone(),
        }
    }

    /// `Kind name` or `Kind ns/name`.
    pub fn describe(&self) -> String {
        sparrow_core::inventory::describe(self.kind, self.namespace.as_deref(), &self.name)
    }
}

/// What happens to the mesh namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceFate {
    /// Deploy created it and it holds nothing else: deleted last.
    Delete(Target),
    /// Kept, and why.
    Kept(String),
    /// It does not exist.
    Gone,
    /// It is being deleted already.
    Terminating,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing of any Sparrow mesh exists: a second `remove`.
    NothingInstalled,
    /// `-n` names no Sparrow control plane; `elsewhere` is where one is, if anywhere.
    NotHere {
        /// The namespace of the mesh the cluster-wide objects belong to.
        elsewhere: Option<String>,
    },
    /// Delete these, in this order, then decide the namespace.
    Remove(Box<Removal>),
}

/// What a `remove` deletes and keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The parts that are ours, the webhook first, then in reverse apply order.
    pub parts: Vec<Target>,
    /// Copies of the mesh's pull secret in other namespaces.
    pub copies: Vec<Target>,
    /// The Secret holding the key the copies are proven with: deleted after them.
    pub copy_key: Option<Target>,
    /// Objects named like ours that are not ours, left untouched (`Kind ns/name`), and why.
    pub kept: Vec<String>,
    /// The namespace.
    pub namespace: NamespaceFate,
}

/// Decides what `remove` does with what it observed.
pub fn plan(observed: &Observed) -> Plan {
    let mesh = observed.mesh.as_str();
    let ours = |f: &Found| belongs_to(Some(&f.labels), mesh);
    let found = || {
        observed
            .parts
            .iter()
            .filter_map(|(p, f)| Some((p, f.as_ref()?)))
    };
    let key = observed.copy_key.as_ref().map(|(key, _)| key);
    let candidates = || {
        observed
            .labelled_secrets
            .iter()
            .filter(|s| s.namespace.as_deref() != Some(mesh))
            .filter(|s| is_copy_of(Some(&s.labels), Some(&s.annotations), mesh))
    };
    let copies: Vec<Target> = candidates()
        .filter(|s| is_proven(key, mesh, s))
        .map(|s| Target::of(Kind::Secret, s))
        .collect();
    let unproven = candidates().filter(|s| !is_proven(key, mesh, s)).map(|s| {
        format!(
            "{} (labelled like a copy of this mesh's, but the controller's proof is not on it)",
            sparrow_core::inventory::describe(Kind::Secret, s.namespace.as_deref(), &s.name)
        )
    });
    if !found().any(|(_, f)| ours(f)) && copies.is_empty() && observed.copy_key.is_none() {
        let elsewhere = found()
            .filter_map(|(_, f)| mesh_of(Some(&f.labels)))
            .find(|m| *m != mesh)
            .map(str::to_owned);
        let named_like_ours = found().any(|(p, _)| !p.is_namespace());
        return match (elsewhere, named_like_ours) {
            (None, false) => Plan::NothingInstalled,
            (elsewhere, _) => Plan::NotHere { elsewhere },
        };
    }
    let mut parts = Vec::new();
    let mut kept: Vec<String> = unproven.collect();
    // The webhook first, so no pod creation waits on a controller about to go.
    let mut order: Vec<_> = found().filter(|(p, _)| !p.is_namespace()).collect();
    order.reverse();
    order.sort_by_key(|(p, _)| !p.gates_admission());
    for (part, f) in order {
        if ours(f) {
            parts.push(Target::of(part.kind, f));
        } else {
            kept.push(format!(
                "{} (not created by this mesh)",
                sparrow_core::inventory::describe(part.kind, f.namespace.as_deref(), &f.name)
            ));
        }
    }
    Plan::Remove(Box::new(Removal {
        parts,
        copies,
        copy_key: observed
            .copy_key
            .as_ref()
            .map(|(_, found)| Target::of(Kind::Secret, found)),
        kept,
        namespace: namespace_fate(observed),
    }))
}

/// [`is_proven_copy`] on what was read of a Secret.
pub fn is_proven(key: Option<&CopyKey>, mesh: &str, secret: &Found) -> bool {
    is_proven_copy(
        key,
        mesh,
        CopyIdentity {
            namespace: secret.namespace.as_deref().unwrap_or_default(),
            name: &secret.name,
            uid: secret.uid.as_deref(),
            annotations: Some(&secret.annotations),
        },
    )
}

fn namespace_fate(observed: &Observed) -> NamespaceFate {
    let mesh = observed.mesh.as_str();
    let Some(found) = observed
        .parts
        .iter()
        .find(|(p, _)| p.is_namespace())
        .and_then(|(_, f)| f.as_ref())
    else {
        return NamespaceFate::Gone;
    };
    if found.terminating {
        return NamespaceFate::Terminating;
    }
    if is_protected_namespace(mesh) {
        return NamespaceFate::Kept(format!("{mesh} is a system namespace"));
    }
    if !belongs_to(Some(&found.labels), mesh) {
        return NamespaceFate::Kept("Sparrow did not create it".to_owned());
    }
    if let Some(first) = observed.foreign_in_namespace.first() {
        let more = observed.foreign_in_namespace.len() - 1;
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        return NamespaceFate::Kept(format!(
            "it holds objects Sparrow did not create: {first}{tail}"
        ));
    }
    NamespaceFate::Delete(Target::of(Kind::Namespace, found))
}

#[cfg(test)]
mod tests;
