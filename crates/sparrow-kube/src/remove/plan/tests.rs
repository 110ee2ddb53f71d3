use std::collections::BTreeMap;

use sparrow_core::PARTS;
use sparrow_core::names::{
    MESH_LABEL, PROOF_ANNOTATION, SOURCE_ANNOTATION, USAGE_LABEL, USAGE_LABEL_VALUE,
};

use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Every part found, carrying the marker of `owner` (none when `None`).
fn installed(mesh: &str, owner: Option<&str>) -> Observed {
    let labels = owner.map(|o| map(&[(MESH_LABEL, o)])).unwrap_or_default();
    Observed {
        mesh: mesh.to_owned(),
        parts: PARTS
            .iter()
            .map(|p| {
                let found = Found {
                    namespace: p.namespace(mesh).map(str::to_owned),
                    name: p.name(mesh).to_owned(),
                    uid: Some(format!("uid-{}", p.describe(mesh))),
                    labels: labels.clone(),
                    ..Found::default()
                };
                (*p, Some(found))
            })
            .collect(),
        ..Observed::default()
    }
}

fn empty(mesh: &str) -> Observed {
    Observed {
        mesh: mesh.to_owned(),
        parts: PARTS.iter().map(|p| (*p, None)).collect(),
        ..Observed::default()
    }
}

/// The cluster-wide parts of `owner`'s mesh, seen while removing `mesh`.
fn other_mesh(mesh: &str, owner: &str) -> Observed {
    let mut observed = empty(mesh);
    for (part, found) in &mut observed.parts {
        if !part.kind.namespaced() && !part.is_namespace() {
            *found = Some(Found {
                name: part.name(mesh).to_owned(),
                labels: map(&[(MESH_LABEL, owner)]),
                ..Found::default()
            });
        }
    }
    observed
}

fn key() -> CopyKey {
    CopyKey::from_bytes(&[5; CopyKey::LEN]).expect("32 bytes")
}

/// The key of the mesh in `mesh`, as `remove` reads it.
fn with_key(mut observed: Observed) -> Observed {
    let mesh = observed.mesh.clone();
    observed.copy_key = Some((
        key(),
        Found {
            namespace: Some(mesh.clone()),
            name: "sparrow-copy-key".to_owned(),
            uid: Some("uid-key".to_owned()),
            labels: map(&[(MESH_LABEL, &mesh)]),
            ..Found::default()
        },
    ));
    observed
}

/// A Secret labelled like a copy in `namespace` whose source annotation names `source`; with
/// the proof of the mesh in `proven_for` (computed with the test key) when given.
fn copy(namespace: &str, source: Option<&str>, proven_for: Option<&str>) -> Found {
    let uid = format!("uid-{namespace}");
    let mut annotations = source
        .map(|s| map(&[(SOURCE_ANNOTATION, s)]))
        .unwrap_or_default();
    if let Some(mesh) = proven_for {
        let proof = key().proof(mesh, namespace, "sparrow-registry-key", &uid);
        annotations.insert(PROOF_ANNOTATION.to_owned(), proof);
    }
    Found {
        namespace: Some(namespace.to_owned()),
        name: "sparrow-registry-key".to_owned(),
        uid: Some(uid),
        labels: map(&[(USAGE_LABEL, USAGE_LABEL_VALUE)]),
        annotations,
        ..Found::default()
    }
}

fn removal(plan: Plan) -> Removal {
    match plan {
        Plan::Remove(removal) => *removal,
        other => panic!("expected a removal, got {other:?}"),
    }
}

#[test]
fn a_full_install_is_removed_webhook_first_namespace_last() {
    let removal = removal(plan(&installed("team", Some("team"))));
    let order: Vec<String> = removal.parts.iter().map(Target::describe).collect();
    assert_eq!(
        order,
        [
            "MutatingWebhookConfiguration sparrow-sidecar-injector",
            "Service team/sparrow-controller",
            "Deployment team/sparrow-controller",
            "RoleBinding team/sparrow-controller",
            "Role team/sparrow-controller",
            "ClusterRoleBinding sparrow-controller",
            "ClusterRole sparrow-controller",
            "ServiceAccount team/sparrow-controller",
            "ConfigMap team/sparrow-webhook-client-ca",
            "Secret team/sparrow-controller-ca",
            "Secret team/sparrow-controller-tls",
            "Secret team/sparrow-registry-key",
        ]
    );
    assert!(removal.kept.is_empty());
    assert!(
        matches!(&removal.namespace, NamespaceFate::Delete(t) if t.name == "team" && t.uid.as_deref() == Some("uid-Namespace team")),
        "{:?}",
        removal.namespace
    );
}

#[test]
fn nothing_anywhere_is_nothing_installed() {
    assert_eq!(plan(&empty("team")), Plan::NothingInstalled);
    // The namespace alone (someone's) is not an installation either.
    let mut observed = empty("team");
    observed.parts[0].1 = Some(Found {
        name: "team".to_owned(),
        ..Found::default()
    });
    assert_eq!(plan(&observed), Plan::NothingInstalled);
}

#[test]
fn a_mistyped_namespace_deletes_nothing_and_names_the_real_mesh() {
    for typo in ["sparrow-msh", "kube-system", "default"] {
        assert_eq!(
            plan(&other_mesh(typo, "sparrow-mesh")),
            Plan::NotHere {
                elsewhere: Some("sparrow-mesh".to_owned())
            },
            "{typo}"
        );
    }
}

#[test]
fn objects_named_like_ours_without_the_marker_are_not_a_control_plane() {
    assert_eq!(
        plan(&installed("team", None)),
        Plan::NotHere { elsewhere: None }
    );
}

#[test]
fn only_proven_copies_of_this_mesh_are_deleted_and_the_key_after_them() {
    let mut observed = with_key(installed("team", Some("team")));
    let source = Some("team/sparrow-registry-key");
    observed.labelled_secrets = vec![
        copy("shop", source, Some("team")),
        copy(
            "other",
            Some("elsewhere/sparrow-registry-key"),
            Some("elsewhere"),
        ),
        copy("legacy", None, None),
        // A tenant's Secret with every label and annotation of a copy, but no proof.
        copy("tenant", source, None),
        // Another mesh's proof is no proof of this one.
        copy("mixed", source, Some("elsewhere")),
        // The source itself is a part, not a copy.
        copy("team", source, Some("team")),
    ];
    let removal = removal(plan(&observed));
    let copies: Vec<String> = removal.copies.iter().map(Target::describe).collect();
    assert_eq!(copies, ["Secret shop/sparrow-registry-key"]);
    assert_eq!(
        removal.copy_key.as_ref().map(Target::describe).as_deref(),
        Some("Secret team/sparrow-copy-key")
    );
    assert_eq!(
        removal.kept,
        [
            "Secret tenant/sparrow-registry-key (labelled like a copy of this mesh's, but the controller's proof is not on it)",
            "Secret mixed/sparrow-registry-key (labelled like a copy of this mesh's, but the controller's proof is not on it)",
        ]
    );
}

#[test]
fn without_the_key_no_copy_is_deleted() {
    let mut observed = installed("team", Some("team"));
    observed.labelled_secrets = vec![copy(
        "shop",
        Some("team/sparrow-registry-key"),
        Some("team"),
    )];
    let removal = removal(plan(&observed));
    assert!(removal.copies.is_empty());
    assert_eq!(removal.copy_key, None);
    assert_eq!(removal.kept.len(), 1, "{:?}", removal.kept);
}

#[test]
fn orphaned_copies_alone_are_still_removed() {
    let mut observed = with_key(empty("team"));
    observed.labelled_secrets = vec![copy(
        "shop",
        Some("team/sparrow-registry-key"),
        Some("team"),
    )];
    let removal = removal(plan(&observed));
    assert!(removal.parts.is_empty());
    assert_eq!(removal.copies.len(), 1);
    assert_eq!(removal.namespace, NamespaceFate::Gone);
}

#[test]
fn foreign_parts_are_kept_and_reported() {
    let mut observed = installed("team", Some("team"));
    // Someone else's ClusterRole of the same name.
    for (part, found) in &mut observed.parts {
        if part.kind == Kind::ClusterRole {
            found.as_mut().expect("found").labels.clear();
        }
    }
    let removal = removal(plan(&observed));
    assert_eq!(
        removal.kept,
        ["ClusterRole sparrow-controller (not created by this mesh)"]
    );
    assert!(!removal.parts.iter().any(|t| t.kind == Kind::ClusterRole));
}

#[test]
fn the_namespace_goes_only_when_sparrow_created_it_and_it_holds_nothing_else() {
    let fate = |observed: &Observed| removal(plan(observed)).namespace;
    // Not created by Sparrow.
    let mut observed = installed("team", Some("team"));
    observed.parts[0].1.as_mut().expect("ns").labels.clear();
    assert_eq!(
        fate(&observed),
        NamespaceFate::Kept("Sparrow did not create it".to_owned())
    );
    // Holding someone's objects.
    let mut observed = installed("team", Some("team"));
    observed.foreign_in_namespace = vec![
        "ConfigMap team/app".to_owned(),
        "Deployment team/web".to_owned(),
    ];
    assert_eq!(
        fate(&observed),
        NamespaceFate::Kept(
            "it holds objects Sparrow did not create: ConfigMap team/app and 1 more".to_owned()
        )
    );
    // Protected, even when labelled.
    for system in ["kube-system", "kube-public", "kube-node-lease", "default"] {
        let observed = installed(system, Some(system));
        assert_eq!(
            fate(&observed),
            NamespaceFate::Kept(format!("{system} is a system namespace")),
            "{system}"
        );
    }
    // Already terminating.
    let mut observed = installed("team", Some("team"));
    observed.parts[0].1.as_mut().expect("ns").terminating = true;
    assert_eq!(fate(&observed), NamespaceFate::Terminating);
}
