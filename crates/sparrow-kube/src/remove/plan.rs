//! What `remove` may delete, decided from what was read, with no I/O: only objects that
//! carry the mesh's marker, copies the controller proves it made (labels only find the
//! candidates), the key they are proven with once they are gone, and the namespace only when
//! deploy created it, it is not a protected namespace and it holds nothing else. With
//! [`Unmarked::Adopt`] (`--adopt-unmarked`) also the parts of an install made before the
//! marker existed: objects named like ours that carry no marker at all, never one marked for
//! another mesh.

use std::collections::BTreeMap;

use sparrow_core::names::PULL_SECRET_NAME;
use sparrow_core::ownership::{
    CopyIdentity, CopyKey, belongs_to, is_copy_of, is_protected_namespace, is_proven_copy, mesh_of,
};
use sparrow_core::{Kind, Part};

/// What `remove` does with objects named like its parts that carry no mesh marker at all
/// (installs made before the marker existed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unmarked {
    /// Leave them, and say that `--adopt-unmarked` would remove them.
    #[default]
    Leave,
    /// Delete them with the mesh's own parts (`--adopt-unmarked`).
    Adopt,
}

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
    /// The namespaces its spec points at (a binding's subjects, a webhook's Service): where
    /// the install a cluster-wide object serves lives ([`referenced_namespaces`]).
    pub refers_to: Vec<String>,
}

/// True for the kinds whose spec names the namespace they serve: `remove` reads them whole.
pub fn names_its_namespace(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::ClusterRoleBinding | Kind::MutatingWebhookConfiguration
    )
}

/// The namespaces the spec of a `kind` object (its fields besides metadata) points at: a
/// ClusterRoleBinding's subjects, a MutatingWebhookConfiguration's Services. Sorted, once each.
pub fn referenced_namespaces(kind: Kind, spec: &serde_json::Value) -> Vec<String> {
    let namespaces = |list: &str, path: &[&str]| -> Vec<String> {
        spec[list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| path.iter().try_fold(item, |v, key| v.get(key)))
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let mut found = match kind {
        Kind::ClusterRoleBinding => namespaces("subjects", &["namespace"]),
        Kind::MutatingWebhookConfiguration => {
            namespaces("webhooks", &["clientConfig", "service", "namespace"])
        }
        _ => Vec::new(),
    };
    found.sort();
    found.dedup();
    found
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
    /// It carries no mesh marker: a part of an install from before the marker, adopted.
    pub unmarked: bool,
}

impl Target {
    fn of(kind: Kind, found: &Found) -> Self {
        Self {
            kind,
            namespace: found.namespace.clone(),
            name: found.name.clone(),
            uid: found.uid.clone(),
            unmarked: false,
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
        /// Objects named like ours that carry no marker, left untouched (`Kind ns/name`,
        /// and what `--adopt-unmarked` would do with them).
        unmarked: Vec<String>,
    },
    /// With [`Unmarked::Adopt`]: an object named like ours carries the marker of another
    /// mesh. That is another mesh, not an install from before the marker: nothing is deleted.
    OtherMesh {
        /// The object, `Kind ns/name`.
        object: String,
        /// The namespace of the mesh its marker names.
        owner: String,
    },
    /// Delete these, in this order, then decide the namespace.
    Remove(Box<Removal>),
}

/// What a `remove` deletes and keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The parts that are ours (and, adopting, the unmarked ones: [`Target::unmarked`]),
    /// the webhook first, then in reverse apply order.
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

/// Decides what `remove` does with what it observed; `unmarked` says what becomes of parts
/// that carry no marker (an install from before the marker).
pub fn plan(observed: &Observed, unmarked: Unmarked) -> Plan {
    let mesh = observed.mesh.as_str();
    let found = || {
        observed
            .parts
            .iter()
            .filter_map(|(p, f)| Some((p, f.as_ref()?)))
    };
    if unmarked == Unmarked::Adopt {
        // Adopting is for objects nobody claims; one another mesh claims stops it all.
        let claimed = found().find_map(|(p, f)| match claim(f, mesh) {
            Claim::OtherMesh(owner) => Some((p, f, owner.to_owned())),
            Claim::Ours | Claim::Unmarked => None,
        });
        if let Some((part, f, owner)) = claimed {
            return Plan::OtherMesh {
                object: describe_found(part.kind, f),
                owner,
            };
        }
    }
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
            describe_found(Kind::Secret, s)
        )
    });
    let fate = |part: &Part, f: &Found| part_fate(observed, unmarked, part, f);
    let deleted = |part: &Part, f: &Found| matches!(fate(part, f), PartFate::Delete { .. });
    if !found().any(|(p, f)| deleted(p, f)) && copies.is_empty() && observed.copy_key.is_none() {
        let elsewhere = found()
            .filter_map(|(_, f)| mesh_of(Some(&f.labels)))
            .find(|m| *m != mesh)
            .map(str::to_owned);
        let named_like_ours = found().any(|(p, _)| !p.is_namespace());
        let left = found()
            .filter(|(p, f)| !p.is_namespace() && claim(f, mesh) == Claim::Unmarked)
            .filter_map(|(p, f)| match fate(p, f) {
                PartFate::Keep(why) => Some(why),
                PartFate::Delete { .. } => None,
            })
            .collect();
        return match (elsewhere, named_like_ours) {
            (None, false) => Plan::NothingInstalled,
            (elsewhere, _) => Plan::NotHere {
                elsewhere,
                unmarked: left,
            },
        };
    }
    let mut parts = Vec::new();
    let mut kept: Vec<String> = unproven.collect();
    // The webhook first, so no pod creation waits on a controller about to go.
    let mut order: Vec<_> = found().filter(|(p, _)| !p.is_namespace()).collect();
    order.reverse();
    order.sort_by_key(|(p, _)| !p.gates_admission());
    for (part, f) in order {
        match fate(part, f) {
            PartFate::Delete { unmarked } => parts.push(Target {
                unmarked,
                ..Target::of(part.kind, f)
            }),
            PartFate::Keep(why) => kept.push(why),
        }
    }
    let namespace = namespace_fate(observed, &parts);
    Plan::Remove(Box::new(Removal {
        parts,
        copies,
        copy_key: observed
            .copy_key
            .as_ref()
            .map(|(_, found)| Target::of(Kind::Secret, found)),
        kept,
        namespace,
    }))
}

/// Whose a part found under our name is, by its marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim<'a> {
    /// It carries this mesh's marker.
    Ours,
    /// It carries no marker: made by hand, or by an install from before the marker.
    Unmarked,
    /// It carries the marker of the mesh in this namespace.
    OtherMesh(&'a str),
}

fn claim<'a>(found: &'a Found, mesh: &str) -> Claim<'a> {
    match mesh_of(Some(&found.labels)) {
        None => Claim::Unmarked,
        Some(owner) if owner == mesh => Claim::Ours,
        Some(owner) => Claim::OtherMesh(owner),
    }
}

/// What becomes of one part (not the namespace) found under our name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PartFate {
    /// Deleted; `unmarked` when it is adopted.
    Delete { unmarked: bool },
    /// Left untouched: the line that says so (`Kind ns/name (why)`).
    Keep(String),
}

fn part_fate(observed: &Observed, unmarked: Unmarked, part: &Part, found: &Found) -> PartFate {
    let mesh = observed.mesh.as_str();
    let object = describe_found(part.kind, found);
    match claim(found, mesh) {
        Claim::Ours => PartFate::Delete { unmarked: false },
        Claim::OtherMesh(owner) => PartFate::Keep(format!(
            "{object} (not created by this mesh: it carries the marker of the mesh in namespace {owner})"
        )),
        Claim::Unmarked => match (why_never_adopted(observed, part), unmarked) {
            (Some(why), _) => {
                PartFate::Keep(format!("{object} (carries no mesh marker, and {why})"))
            }
            (None, Unmarked::Adopt) => PartFate::Delete { unmarked: true },
            (None, Unmarked::Leave) => PartFate::Keep(format!(
                "{object} (carries no mesh marker, as from an install before the marker: --adopt-unmarked would remove it)"
            )),
        },
    }
}

/// Why an unmarked part is never deleted, even with `--adopt-unmarked`; `None` when it may be.
fn why_never_adopted(observed: &Observed, part: &Part) -> Option<String> {
    let mesh = observed.mesh.as_str();
    if part.is_namespace() {
        return Some("Sparrow deletes only a namespace it created".to_owned());
    }
    if part.kind == Kind::Secret && part.fixed_name == Some(PULL_SECRET_NAME) {
        // The copy rules stay: a Secret of this name goes only when Sparrow proves it made it.
        return Some(format!(
            "a Secret {PULL_SECRET_NAME} is deleted only when Sparrow can prove it made it"
        ));
    }
    if !part.kind.namespaced() && !holds_an_install(observed) {
        // Cluster-wide names are shared by every namespace: with nothing tying the install
        // to `-n`, this may be the install of another namespace.
        return Some(format!(
            "nothing ties it to namespace {mesh}: it may belong to an install in another namespace (remove with that -n)"
        ));
    }
    None
}

/// True when the install was made with this `-n`: the mesh namespace holds a part of ours
/// or an unmarked one named like it (the pull secret aside: anyone may name a Secret that),
/// or a cluster-wide part points at the mesh namespace (what a namespace's removal leaves).
fn holds_an_install(observed: &Observed) -> bool {
    let mesh = observed.mesh.as_str();
    observed.parts.iter().any(|(part, found)| {
        let Some(found) = found else {
            return false;
        };
        let in_namespace = part.kind.namespaced() && part.fixed_name != Some(PULL_SECRET_NAME);
        let points_here = found.refers_to.iter().any(|ns| ns == mesh);
        (in_namespace || points_here) && matches!(claim(found, mesh), Claim::Ours | Claim::Unmarked)
    })
}

fn describe_found(kind: Kind, found: &Found) -> String {
    sparrow_core::inventory::describe(kind, found.namespace.as_deref(), &found.name)
}

/// Copies listed by name before asking; more are counted.
const LISTED_COPIES: usize = 20;

impl Removal {
    /// What will be deleted, one line each in the order it goes, the adopted parts flagged:
    /// shown before asking, with `--adopt-unmarked`.
    pub fn listing(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .parts
            .iter()
            .map(|t| {
                if t.unmarked {
                    format!(
                        "{} (unmarked, from an install before the marker)",
                        t.describe()
                    )
                } else {
                    t.describe()
                }
            })
            .collect();
        lines.extend(
            self.copies
                .iter()
                .take(LISTED_COPIES)
                .map(|t| format!("{} (a copy the controller proves it made)", t.describe())),
        );
        if self.copies.len() > LISTED_COPIES {
            lines.push(format!(
                "and {} more proven copies of Secret {PULL_SECRET_NAME}",
                self.copies.len() - LISTED_COPIES
            ));
        }
        lines.extend(self.copy_key.iter().map(Target::describe));
        if let NamespaceFate::Delete(namespace) = &self.namespace {
            lines.push(namespace.describe());
        }
        lines
    }

    /// How many of the parts are adopted (carry no marker).
    pub fn unmarked_parts(&self) -> usize {
        self.parts.iter().filter(|t| t.unmarked).count()
    }
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

/// The namespace's fate, once `deleted` (the parts deleted before it) are gone.
fn namespace_fate(observed: &Observed, deleted: &[Target]) -> NamespaceFate {
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
    // Adopted parts are listed as foreign (no marker), but they go first.
    let deleted: Vec<String> = deleted.iter().map(Target::describe).collect();
    let foreign: Vec<&String> = observed
        .foreign_in_namespace
        .iter()
        .filter(|o| !deleted.contains(o))
        .collect();
    if let Some(first) = foreign.first() {
        let more = foreign.len() - 1;
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
