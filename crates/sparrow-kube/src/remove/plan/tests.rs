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

/// Gives the part of `kind` the marker of `owner`.
fn mark(observed: &mut Observed, kind: Kind, owner: &str) {
    for (part, found) in &mut observed.parts {
        if part.kind == kind {
            found.as_mut().expect("found").labels = map(&[(MESH_LABEL, owner)]);
        }
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
    let removal = removal(plan(&installed("team", Some("team")), Unmarked::Leave));
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
            "Secret team/sparrow-credential-provider",
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
    assert_eq!(
        plan(&empty("team"), Unmarked::Leave),
        Plan::NothingInstalled
    );
    // The namespace alone (someone's) is not an installation either.
    let mut observed = empty("team");
    observed.parts[0].1 = Some(Found {
        name: "team".to_owned(),
        ..Found::default()
    });
    assert_eq!(plan(&observed, Unmarked::Leave), Plan::NothingInstalled);
}

#[test]
fn a_mistyped_namespace_deletes_nothing_and_names_the_real_mesh() {
    for typo in ["sparrow-msh", "kube-system", "default"] {
        assert_eq!(
            plan(&other_mesh(typo, "sparrow-mesh"), Unmarked::Leave),
            Plan::NotHere {
                elsewhere: Some("sparrow-mesh".to_owned()),
                unmarked: Vec::new(),
            },
            "{typo}"
        );
    }
}

/// The lines a pre-marker install in `team` is left with, without `--adopt-unmarked`.
const LEFT_WITHOUT_THE_FLAG: &[&str] = &[
    "MutatingWebhookConfiguration sparrow-sidecar-injector (carries no mesh marker, as from an install before the marker: --adopt-unmarked would remove it)",
    "Service team/sparrow-controller (carries no mesh marker, as from an install before the marker: --adopt-unmarked would remove it)",
    "Deployment team/sparrow-controller (carries no mesh marker, as from an install before the marker: --adopt-unmarked would remove it)",
    "RoleBinding team/sparrow-controller (carries no mesh marker, as from an install before the marker: --adopt-unmarked would remove it)",
    "Role team/sparrow-controller (carries no mesh marker, as from an install before the marker: --adopt-unmarked would remove it)",
    "ClusterRoleBinding sparrow-controller (carries no mesh marker, as from an install before the marker: --adopt-unmarked would remove it)",
    "ClusterRole sparrow-controller (carries no mesh marker, as from an install before the marker: --adopt-unmarked would remove it)",
    "ServiceAccount team/sparrow-controller (carries no mesh marker, as from an install before the marker: --adopt-unmarked would remove it)",
    "ConfigMap team/sparrow-webhook-client-ca (carries no mesh marker, as from an install before the marker: --adopt-unmarked would remove it)",
    "Secret team/sparrow-controller-ca (carries no mesh marker, as from an install before the marker: --adopt-unmarked would remove it)",
    "Secret team/sparrow-controller-tls (carries no mesh marker, as from an install before the marker: --adopt-unmarked would remove it)",
    "Secret team/sparrow-credential-provider (carries no mesh marker, as from an install before the marker: --adopt-unmarked would remove it)",
    "Secret team/sparrow-registry-key (carries no mesh marker, and a Secret sparrow-registry-key is deleted only when Sparrow can prove it made it)",
];

#[test]
fn objects_named_like_ours_without_the_marker_are_not_a_control_plane_but_are_named() {
    let Plan::NotHere {
        elsewhere,
        mut unmarked,
    } = plan(&installed("team", None), Unmarked::Leave)
    else {
        panic!("a pre-marker install is no control plane without --adopt-unmarked");
    };
    assert_eq!(elsewhere, None);
    // Named in apply order here; what matters is one line each.
    unmarked.sort();
    let mut expected: Vec<&str> = LEFT_WITHOUT_THE_FLAG.to_vec();
    expected.sort_unstable();
    assert_eq!(unmarked, expected);
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
    let removal = removal(plan(&observed, Unmarked::Leave));
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
    let removal = removal(plan(&observed, Unmarked::Leave));
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
    let removal = removal(plan(&observed, Unmarked::Leave));
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
    let removal = removal(plan(&observed, Unmarked::Leave));
    assert_eq!(
        removal.kept,
        [
            "ClusterRole sparrow-controller (carries no mesh marker, as from an install before the marker: --adopt-unmarked would remove it)"
        ]
    );
    assert!(!removal.parts.iter().any(|t| t.kind == Kind::ClusterRole));
    // Another mesh's is kept too, and says whose it is.
    mark(&mut observed, Kind::ClusterRole, "elsewhere");
    assert_eq!(
        self::removal(plan(&observed, Unmarked::Leave)).kept,
        [
            "ClusterRole sparrow-controller (not created by this mesh: it carries the marker of the mesh in namespace elsewhere)"
        ]
    );
}

#[test]
fn the_namespace_goes_only_when_sparrow_created_it_and_it_holds_nothing_else() {
    let fate = |observed: &Observed| removal(plan(observed, Unmarked::Leave)).namespace;
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

#[test]
fn adopting_a_pre_marker_install_deletes_its_parts_flagged_but_not_its_namespace_or_pull_secret() {
    let removal = removal(plan(&installed("team", None), Unmarked::Adopt));
    assert_eq!(
        removal.listing(),
        [
            "MutatingWebhookConfiguration sparrow-sidecar-injector (unmarked, from an install before the marker)",
            "Service team/sparrow-controller (unmarked, from an install before the marker)",
            "Deployment team/sparrow-controller (unmarked, from an install before the marker)",
            "RoleBinding team/sparrow-controller (unmarked, from an install before the marker)",
            "Role team/sparrow-controller (unmarked, from an install before the marker)",
            "ClusterRoleBinding sparrow-controller (unmarked, from an install before the marker)",
            "ClusterRole sparrow-controller (unmarked, from an install before the marker)",
            "ServiceAccount team/sparrow-controller (unmarked, from an install before the marker)",
            "ConfigMap team/sparrow-webhook-client-ca (unmarked, from an install before the marker)",
            "Secret team/sparrow-controller-ca (unmarked, from an install before the marker)",
            "Secret team/sparrow-controller-tls (unmarked, from an install before the marker)",
            "Secret team/sparrow-credential-provider (unmarked, from an install before the marker)",
        ]
    );
    assert_eq!(removal.unmarked_parts(), 12);
    // Each is deleted as it was read.
    assert!(
        removal
            .parts
            .iter()
            .all(|t| t.uid.as_deref() == Some(format!("uid-{}", t.describe()).as_str())),
        "{:?}",
        removal.parts
    );
    assert_eq!(
        removal.kept,
        [
            "Secret team/sparrow-registry-key (carries no mesh marker, and a Secret sparrow-registry-key is deleted only when Sparrow can prove it made it)"
        ]
    );
    assert_eq!(
        removal.namespace,
        NamespaceFate::Kept("Sparrow did not create it".to_owned())
    );
}

#[test]
fn adopting_takes_the_unmarked_parts_of_a_marked_install_too() {
    let mut observed = installed("team", Some("team"));
    for (part, found) in &mut observed.parts {
        if matches!(part.kind, Kind::ClusterRole | Kind::Service) {
            found.as_mut().expect("found").labels.clear();
        }
    }
    let removal = removal(plan(&observed, Unmarked::Adopt));
    let unmarked: Vec<String> = removal
        .parts
        .iter()
        .filter(|t| t.unmarked)
        .map(Target::describe)
        .collect();
    assert_eq!(
        unmarked,
        [
            "Service team/sparrow-controller",
            "ClusterRole sparrow-controller"
        ]
    );
    assert_eq!(removal.parts.len(), 13, "{:?}", removal.parts);
    assert!(removal.kept.is_empty(), "{:?}", removal.kept);
    assert_eq!(
        removal.listing()[1],
        "Service team/sparrow-controller (unmarked, from an install before the marker)"
    );
    assert_eq!(removal.listing()[2], "Deployment team/sparrow-controller");
}

#[test]
fn adopted_parts_do_not_keep_a_namespace_sparrow_created() {
    let mut observed = installed("team", None);
    mark(&mut observed, Kind::Namespace, "team");
    // `contents` lists the unmarked parts as foreign: they are deleted before the namespace.
    observed.foreign_in_namespace = vec![
        "Deployment team/sparrow-controller".to_owned(),
        "Secret team/sparrow-controller-tls".to_owned(),
    ];
    let fate = |observed: &Observed| removal(plan(observed, Unmarked::Adopt)).namespace;
    assert!(
        matches!(fate(&observed), NamespaceFate::Delete(t) if t.name == "team"),
        "{:?}",
        fate(&observed)
    );
    // The unmarked pull secret is not adopted, so it keeps the namespace; so does a team's object.
    observed.foreign_in_namespace.extend([
        "Secret team/sparrow-registry-key".to_owned(),
        "ConfigMap team/app".to_owned(),
    ]);
    assert_eq!(
        fate(&observed),
        NamespaceFate::Kept(
            "it holds objects Sparrow did not create: Secret team/sparrow-registry-key and 1 more"
                .to_owned()
        )
    );
    // Without the flag nothing changes: the unmarked parts keep it.
    let mut observed = installed("team", Some("team"));
    observed.parts[4].1.as_mut().expect("ca").labels.clear();
    observed.foreign_in_namespace = vec!["Secret team/sparrow-controller-ca".to_owned()];
    assert_eq!(
        removal(plan(&observed, Unmarked::Leave)).namespace,
        NamespaceFate::Kept(
            "it holds objects Sparrow did not create: Secret team/sparrow-controller-ca".to_owned()
        )
    );
}

#[test]
fn an_object_marked_for_another_mesh_stops_adopting() {
    // A namespaced part of another mesh among unmarked ones.
    let mut observed = installed("team", None);
    mark(&mut observed, Kind::Deployment, "elsewhere");
    assert_eq!(
        plan(&observed, Unmarked::Adopt),
        Plan::OtherMesh {
            object: "Deployment team/sparrow-controller".to_owned(),
            owner: "elsewhere".to_owned(),
        }
    );
    // A mistyped -n next to a marked mesh: its cluster-wide parts are named.
    assert_eq!(
        plan(&other_mesh("sparrow-msh", "sparrow-mesh"), Unmarked::Adopt),
        Plan::OtherMesh {
            object: "ClusterRole sparrow-controller".to_owned(),
            owner: "sparrow-mesh".to_owned(),
        }
    );
    // Even next to this mesh's own install.
    let mut observed = installed("team", Some("team"));
    mark(
        &mut observed,
        Kind::MutatingWebhookConfiguration,
        "elsewhere",
    );
    assert!(
        matches!(plan(&observed, Unmarked::Adopt), Plan::OtherMesh { ref object, .. } if object == "MutatingWebhookConfiguration sparrow-sidecar-injector")
    );
}

#[test]
fn cluster_wide_lookalikes_alone_are_not_adopted_from_a_namespace_without_an_install() {
    // A pre-marker install in sparrow-mesh, seen from a mistyped -n.
    let observed = cluster_wide_unmarked("sparrow-msh", "sparrow-mesh");
    for unmarked in [Unmarked::Leave, Unmarked::Adopt] {
        let Plan::NotHere {
            elsewhere: None,
            unmarked: lines,
        } = plan(&observed, unmarked)
        else {
            panic!("{unmarked:?}: nothing to adopt from sparrow-msh");
        };
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(
            lines.contains(&"ClusterRole sparrow-controller (carries no mesh marker, and nothing ties it to namespace sparrow-msh: it may belong to an install in another namespace (remove with that -n))".to_owned()),
            "{lines:?}"
        );
    }
}

#[test]
fn cluster_wide_leftovers_that_point_at_the_mesh_namespace_are_adopted() {
    // What a pre-marker install leaves once its namespace is gone.
    let observed = cluster_wide_unmarked("sparrow-mesh", "sparrow-mesh");
    let Plan::NotHere { unmarked, .. } = plan(&observed, Unmarked::Leave) else {
        panic!("no control plane without the flag");
    };
    assert_eq!(
        unmarked
            .iter()
            .filter(|l| l.ends_with("--adopt-unmarked would remove it)"))
            .count(),
        3,
        "{unmarked:?}"
    );
    let removal = removal(plan(&observed, Unmarked::Adopt));
    let adopted: Vec<String> = removal.parts.iter().map(Target::describe).collect();
    assert_eq!(
        adopted,
        [
            "MutatingWebhookConfiguration sparrow-sidecar-injector",
            "ClusterRoleBinding sparrow-controller",
            "ClusterRole sparrow-controller",
        ]
    );
    assert!(removal.parts.iter().all(|t| t.unmarked));
    assert_eq!(removal.namespace, NamespaceFate::Gone);
}

#[test]
fn the_namespaces_a_binding_and_a_webhook_point_at() {
    let binding = serde_json::json!({
        "roleRef": {"kind": "ClusterRole", "name": "sparrow-controller"},
        "subjects": [
            {"kind": "ServiceAccount", "name": "sparrow-controller", "namespace": "mesh"},
            {"kind": "Group", "name": "ops"},
            {"kind": "ServiceAccount", "name": "other", "namespace": "audit"},
            {"kind": "ServiceAccount", "name": "again", "namespace": "mesh"},
        ]
    });
    assert_eq!(
        referenced_namespaces(Kind::ClusterRoleBinding, &binding),
        ["audit", "mesh"]
    );
    let webhook = serde_json::json!({
        "webhooks": [
            {"clientConfig": {"service": {"name": "sparrow-controller", "namespace": "mesh"}}},
            {"clientConfig": {"url": "https://elsewhere.example"}},
        ]
    });
    assert_eq!(
        referenced_namespaces(Kind::MutatingWebhookConfiguration, &webhook),
        ["mesh"]
    );
    assert!(referenced_namespaces(Kind::ClusterRoleBinding, &serde_json::json!({})).is_empty());
    assert!(referenced_namespaces(Kind::ClusterRole, &binding).is_empty());
}

/// The unmarked cluster-wide parts of an install in `install`, and an unmarked pull secret
/// in `mesh` (a name anyone may use), seen while removing `mesh`.
fn cluster_wide_unmarked(mesh: &str, install: &str) -> Observed {
    let mut observed = empty(mesh);
    for (part, found) in &mut observed.parts {
        if !part.kind.namespaced() && !part.is_namespace() {
            let refers_to = if names_its_namespace(part.kind) {
                vec![install.to_owned()]
            } else {
                Vec::new()
            };
            *found = Some(Found {
                name: part.name(mesh).to_owned(),
                refers_to,
                ..Found::default()
            });
        }
    }
    // The pull secret's name alone is no install either.
    observed.parts[1].1 = Some(Found {
        namespace: Some(mesh.to_owned()),
        name: "sparrow-registry-key".to_owned(),
        ..Found::default()
    });
    observed
}

#[test]
fn adopting_keeps_the_copy_rules() {
    let mut observed = with_key(installed("team", None));
    let source = Some("team/sparrow-registry-key");
    observed.labelled_secrets = vec![
        copy("shop", source, Some("team")),
        copy("tenant", source, None),
    ];
    let removal = removal(plan(&observed, Unmarked::Adopt));
    let copies: Vec<String> = removal.copies.iter().map(Target::describe).collect();
    assert_eq!(copies, ["Secret shop/sparrow-registry-key"]);
    assert!(
        removal
            .kept
            .iter()
            .any(|k| k.starts_with("Secret tenant/sparrow-registry-key (labelled like a copy")),
        "{:?}",
        removal.kept
    );
    let listing = removal.listing();
    assert_eq!(
        listing[listing.len() - 2..],
        [
            "Secret shop/sparrow-registry-key (a copy the controller proves it made)",
            "Secret team/sparrow-copy-key",
        ]
    );
}

#[test]
fn the_listing_names_twenty_copies_and_counts_the_rest() {
    let mut observed = with_key(installed("team", Some("team")));
    let source = Some("team/sparrow-registry-key");
    observed.labelled_secrets = (0..25)
        .map(|i| copy(&format!("ns-{i:02}"), source, Some("team")))
        .collect();
    let listing = removal(plan(&observed, Unmarked::Adopt)).listing();
    let copies: Vec<&String> = listing
        .iter()
        .filter(|l| l.contains("a copy the controller"))
        .collect();
    assert_eq!(copies.len(), 20);
    assert_eq!(
        copies[0],
        "Secret ns-00/sparrow-registry-key (a copy the controller proves it made)"
    );
    assert!(
        listing.contains(&"and 5 more proven copies of Secret sparrow-registry-key".to_owned()),
        "{listing:?}"
    );
    assert_eq!(listing.last().map(String::as_str), Some("Namespace team"));
}
