//! Every transition of the copy index, without an API server: watch events and write results
//! built by hand (`mk_source`, `mk_copy`), answers and planned writes checked.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::watcher::Event;
use sparrow_core::names::{
    PROOF_ANNOTATION, SOURCE_ANNOTATION, SOURCE_HASH_ANNOTATION, USAGE_LABEL, USAGE_LABEL_VALUE,
};

use super::*;

const MESH: &str = "mesh";

fn key() -> Arc<CopyKey> {
    Arc::new(CopyKey::from_bytes(&[42; CopyKey::LEN]).expect("32 bytes"))
}

fn data_of(password: &str) -> BTreeMap<String, ByteString> {
    BTreeMap::from([(
        ".dockerconfigjson".to_owned(),
        ByteString(password.as_bytes().to_vec()),
    )])
}

/// The source secret holding `password`, ours unless `ours` is false.
fn mk_source(password: &str, ours: bool) -> Secret {
    let labels =
        ours.then(|| BTreeMap::from([(USAGE_LABEL.to_owned(), USAGE_LABEL_VALUE.to_owned())]));
    Secret {
        metadata: ObjectMeta {
            name: Some("sparrow-registry-key".to_owned()),
            namespace: Some(MESH.to_owned()),
            labels,
            ..ObjectMeta::default()
        },
        data: Some(data_of(password)),
        ..Secret::default()
    }
}

fn hash_of(password: &str) -> String {
    data_hash(&mk_source(password, true))
}

fn uid_of(ns: &str) -> String {
    format!("uid-{ns}")
}

/// A Secret of the copies' name in `ns` as the watch delivers it: labelled and annotated like
/// a copy of the mesh's source, holding `password` (none: no data), at `version`; `proven`
/// when it carries the controller's proof for its uid, otherwise it is what a tenant can
/// write (every label and annotation of a genuine copy, but no valid proof).
fn mk_copy(ns: &str, proven: bool, password: Option<&str>, version: u64) -> Secret {
    let uid = uid_of(ns);
    let mut annotations = BTreeMap::from([
        (
            SOURCE_ANNOTATION.to_owned(),
            format!("{MESH}/sparrow-registry-key"),
        ),
        (
            SOURCE_HASH_ANNOTATION.to_owned(),
            password.map(hash_of).unwrap_or_default(),
        ),
    ]);
    if proven {
        let proof = key().proof(MESH, ns, "sparrow-registry-key", &uid);
        annotations.insert(PROOF_ANNOTATION.to_owned(), proof);
    }
    Secret {
        metadata: ObjectMeta {
            name: Some("sparrow-registry-key".to_owned()),
            namespace: Some(ns.to_owned()),
            uid: Some(uid),
            labels: Some(BTreeMap::from([(
                USAGE_LABEL.to_owned(),
                USAGE_LABEL_VALUE.to_owned(),
            )])),
            annotations: Some(annotations),
            resource_version: Some(version.to_string()),
            ..ObjectMeta::default()
        },
        data: password.map(data_of),
        ..Secret::default()
    }
}

/// An index whose watches listed `source` (its password) and `copies`.
fn mk_index(source: Option<&str>, copies: Vec<Secret>) -> CopyIndex {
    let mut index = CopyIndex::new(MESH, key(), SourceSecret::Own);
    index.apply_source(Event::Init);
    if let Some(password) = source {
        index.apply_source(Event::InitApply(mk_source(password, true)));
    }
    index.apply_source(Event::InitDone);
    index.apply_copy(Event::Init);
    for copy in copies {
        index.apply_copy(Event::InitApply(copy));
    }
    index.apply_copy(Event::InitDone);
    index
}

fn action(index: &CopyIndex, ns: &str) -> Option<WriteAction> {
    match index.plan(ns) {
        Plan::Write(write) => Some(write.action),
        Plan::Answer(_) => None,
    }
}

fn planned(index: &CopyIndex, ns: &str) -> PlannedWrite {
    match index.plan(ns) {
        Plan::Write(write) => write,
        Plan::Answer(outcome) => panic!("{ns}: answered {outcome:?}, expected a write"),
    }
}

fn update_from(ns: &str, version: u64) -> Option<WriteAction> {
    Some(WriteAction::Update {
        uid: uid_of(ns),
        resource_version: Some(version.to_string()),
    })
}

fn seen(proven: bool, password: Option<&str>, version: u64) -> Option<Box<Secret>> {
    Some(Box::new(mk_copy("ns", proven, password, version)))
}

#[test]
fn answers_without_an_api_call_and_plans_the_rest() {
    let index = mk_index(
        Some("pw1"),
        vec![
            mk_copy("current", true, Some("pw1"), 5),
            mk_copy("stale", true, Some("old"), 6),
            mk_copy("unannotated", true, None, 7),
            mk_copy("theirs", false, Some("pw1"), 8),
        ],
    );
    assert!(index.is_synced());
    let cases = [
        (MESH, Some(EnsureOutcome::SourceNamespace), None),
        ("current", Some(EnsureOutcome::Current), None),
        ("theirs", Some(EnsureOutcome::Foreign), None),
        ("stale", None, update_from("stale", 6)),
        ("unannotated", None, update_from("unannotated", 7)),
        ("missing", None, Some(WriteAction::Create)),
    ];
    for (ns, answer, write) in cases {
        assert_eq!(index.answer(ns), answer, "{ns}");
        assert_eq!(action(&index, ns), write, "{ns}");
    }
    assert_eq!(planned(&index, "stale").source.hash, hash_of("pw1"));
    assert_eq!(index.stale(), ["stale", "unannotated"]);
    assert_eq!(index.stale_count(), 2);
}

#[test]
fn without_a_source_nothing_is_written() {
    let index = mk_index(None, vec![mk_copy("shop", true, Some("old"), 3)]);
    assert_eq!(index.answer("shop"), Some(EnsureOutcome::NoSource));
    assert_eq!(index.answer("new"), Some(EnsureOutcome::NoSource));
    assert!(index.stale().is_empty());
    let theirs = mk_index(None, vec![]);
    let mut index = theirs;
    assert!(
        !index.apply_source(Event::Apply(mk_source("pw", false))),
        "not ours: no source"
    );
    assert_eq!(index.answer("shop"), Some(EnsureOutcome::NoSource));
}

#[test]
fn synced_only_once_both_watches_listed() {
    let mut index = CopyIndex::new(MESH, key(), SourceSecret::Own);
    assert!(!index.source_synced() && !index.is_synced());
    index.apply_source(Event::Init);
    index.apply_source(Event::InitDone);
    assert!(index.source_synced() && !index.is_synced());
    index.apply_copy(Event::Init);
    assert!(!index.is_synced());
    index.apply_copy(Event::InitDone);
    assert!(index.is_synced());
}

#[test]
fn a_source_change_schedules_every_stale_copy_and_a_deletion_clears_it() {
    let mut index = mk_index(
        Some("pw1"),
        vec![
            mk_copy("a", true, Some("pw1"), 1),
            mk_copy("b", true, Some("pw1"), 2),
            mk_copy("theirs", false, None, 3),
        ],
    );
    assert!(index.take_work().is_empty(), "every copy current");
    assert!(index.apply_source(Event::Apply(mk_source("pw2", true))));
    assert!(
        !index.apply_source(Event::Apply(mk_source("pw2", true))),
        "same data: no change"
    );
    assert!(index.has_work());
    assert_eq!(index.take_work().repair, ["a", "b"]);
    assert!(!index.has_work(), "taken");
    assert_eq!(action(&index, "a"), update_from("a", 1));

    assert!(index.apply_source(Event::Delete(mk_source("pw2", true))));
    assert_eq!(index.source().map(|s| s.hash.clone()), None);
    assert_eq!(index.answer("a"), Some(EnsureOutcome::NoSource));
    assert!(index.take_work().is_empty());
}

#[test]
fn a_relist_without_the_source_means_it_is_gone() {
    let mut index = mk_index(Some("pw1"), vec![]);
    assert!(index.source().is_some());
    index.apply_source(Event::Init);
    assert!(index.source().is_some(), "kept until the relist completes");
    assert!(
        index.apply_source(Event::InitDone),
        "not listed: deleted while the watch was down"
    );
    assert!(index.source().is_none());
    // A relist that lists it again keeps it.
    let mut index = mk_index(Some("pw1"), vec![]);
    index.apply_source(Event::Init);
    assert!(!index.apply_source(Event::InitApply(mk_source("pw1", true))));
    assert!(!index.apply_source(Event::InitDone));
    assert!(index.source().is_some());
}

#[test]
fn a_watch_event_showing_a_stale_copy_schedules_its_repair_at_once() {
    let mut index = mk_index(Some("pw1"), vec![mk_copy("shop", true, Some("pw1"), 4)]);
    // Someone (an older replica, a hand edit) wrote another source's data into the copy.
    index.apply_copy(Event::Apply(mk_copy("shop", true, Some("older"), 9)));
    assert_eq!(index.take_work().repair, ["shop"]);
    assert_eq!(
        action(&index, "shop"),
        update_from("shop", 9),
        "guarded by the version seen"
    );
    // A copy that turned foreign is left alone, and one of ours that is current needs nothing.
    index.apply_copy(Event::Apply(mk_copy("cart", false, Some("older"), 10)));
    index.apply_copy(Event::Apply(mk_copy("web", true, Some("pw1"), 11)));
    assert!(index.take_work().is_empty());
}

#[test]
fn an_event_older_than_the_copy_held_is_ignored() {
    let mut index = mk_index(Some("pw1"), vec![mk_copy("shop", true, Some("old"), 4)]);
    let write = planned(&index, "shop");
    let step = index.record(
        &write,
        WriteResult::Written {
            uid: Some(uid_of("shop")),
            resource_version: Some("12".to_owned()),
        },
    );
    assert_eq!(step, Step::Done(EnsureOutcome::Updated));
    index.take_work();
    // The watch, lagging, delivers the version before our write, then ours.
    index.apply_copy(Event::Apply(mk_copy("shop", true, Some("old"), 4)));
    assert_eq!(index.answer("shop"), Some(EnsureOutcome::Current));
    index.apply_copy(Event::Apply(mk_copy("shop", true, Some("pw1"), 12)));
    assert!(
        index.take_work().is_empty(),
        "no repair of a copy that is current"
    );
    // The deletion of an older version says nothing about the copy there now.
    index.apply_copy(Event::Delete(mk_copy("shop", true, Some("old"), 3)));
    assert_eq!(index.answer("shop"), Some(EnsureOutcome::Current));
    assert!(index.take_work().is_empty());
}

#[test]
fn a_deleted_copy_of_ours_is_scheduled_for_restoring() {
    let mut index = mk_index(
        Some("pw1"),
        vec![
            mk_copy("shop", true, Some("pw1"), 4),
            mk_copy("theirs", false, None, 5),
        ],
    );
    index.apply_copy(Event::Delete(mk_copy("shop", true, Some("pw1"), 6)));
    index.apply_copy(Event::Delete(mk_copy("theirs", false, None, 7)));
    let work = index.take_work();
    assert_eq!(work.restore, ["shop"], "never someone else's");
    assert!(work.repair.is_empty());
    assert_eq!(action(&index, "shop"), Some(WriteAction::Create));
    assert_eq!(action(&index, "theirs"), Some(WriteAction::Create));
}

#[test]
fn a_relist_restores_copies_deleted_while_the_watch_was_down() {
    let mut index = mk_index(
        Some("pw1"),
        vec![
            mk_copy("kept", true, Some("pw1"), 1),
            mk_copy("gone", true, Some("pw1"), 2),
            mk_copy("theirs-gone", false, None, 3),
        ],
    );
    index.apply_copy(Event::Init);
    index.apply_copy(Event::InitApply(mk_copy("kept", true, Some("pw1"), 1)));
    index.apply_copy(Event::InitApply(mk_copy("stale", true, Some("old"), 8)));
    assert_eq!(
        index.answer("gone"),
        Some(EnsureOutcome::Current),
        "until the relist is done"
    );
    index.apply_copy(Event::InitDone);
    let work = index.take_work();
    assert_eq!(work.restore, ["gone"]);
    assert_eq!(work.repair, ["stale"]);
    assert_eq!(action(&index, "gone"), Some(WriteAction::Create));
}

/// The copy there before, the write's result, the index's step, the next write it plans.
type WriteCase = (Option<Secret>, WriteResult, Step, Option<WriteAction>);

#[test]
fn write_results_settle_the_namespace_or_ask_for_another_write() {
    let written = |v: &str| WriteResult::Written {
        uid: Some(uid_of("ns")),
        resource_version: Some(v.to_owned()),
    };
    let refused = WriteResult::Refused;
    let cases: [WriteCase; 7] = [
        (None, written("5"), Step::Done(EnsureOutcome::Created), None),
        (
            Some(mk_copy("ns", true, Some("old"), 4)),
            written("5"),
            Step::Done(EnsureOutcome::Updated),
            None,
        ),
        // Create refused: created meanwhile with the current source (another replica).
        (
            None,
            refused(seen(true, Some("pw1"), 6)),
            Step::Done(EnsureOutcome::Current),
            None,
        ),
        // Create refused: someone else's Secret.
        (
            None,
            refused(seen(false, None, 6)),
            Step::Done(EnsureOutcome::Foreign),
            None,
        ),
        // Create refused: ours but stale: update it, from the version read.
        (
            None,
            refused(seen(true, Some("old"), 6)),
            Step::Again,
            update_from("ns", 6),
        ),
        // Update refused: the copy changed since (a newer write, or it changed hands).
        (
            Some(mk_copy("ns", true, Some("old"), 4)),
            refused(seen(true, Some("other"), 9)),
            Step::Again,
            update_from("ns", 9),
        ),
        // Update refused: it is gone: create it.
        (
            Some(mk_copy("ns", true, Some("old"), 4)),
            refused(None),
            Step::Again,
            Some(WriteAction::Create),
        ),
    ];
    for (i, (existing, result, step, next)) in cases.into_iter().enumerate() {
        let mut index = mk_index(Some("pw1"), existing.into_iter().collect());
        let write = planned(&index, "ns");
        assert_eq!(index.record(&write, result), step, "case {i}");
        assert_eq!(action(&index, "ns"), next, "case {i}");
        if let Step::Done(EnsureOutcome::Created | EnsureOutcome::Updated) = step {
            assert_eq!(index.answer("ns"), Some(EnsureOutcome::Current), "case {i}");
            assert!(
                index.take_work().is_empty(),
                "case {i}: nothing left to repair"
            );
        }
    }
}

#[test]
fn a_write_planned_from_an_older_source_is_guarded_by_the_version_it_saw() {
    // The race: an admission planned pw2 from version 4; the leader wrote pw3 (version 7)
    // first. The admission's update carries version 4, the API refuses it, and the read
    // shows pw3: current, nothing more to write.
    let mut index = mk_index(Some("pw2"), vec![mk_copy("shop", true, Some("pw1"), 4)]);
    let admission = planned(&index, "shop");
    assert_eq!(admission.action, update_from("shop", 4).expect("update"));
    assert!(index.apply_source(Event::Apply(mk_source("pw3", true))));
    let leader = planned(&index, "shop");
    assert_eq!(leader.source.hash, hash_of("pw3"));
    let step = index.record(
        &leader,
        WriteResult::Written {
            uid: Some(uid_of("shop")),
            resource_version: Some("7".to_owned()),
        },
    );
    assert_eq!(step, Step::Done(EnsureOutcome::Updated));
    let pw3 = Some(Box::new(mk_copy("shop", true, Some("pw3"), 7)));
    assert_eq!(
        index.record(&admission, WriteResult::Refused(pw3)),
        Step::Done(EnsureOutcome::Current)
    );
    assert_eq!(index.answer("shop"), Some(EnsureOutcome::Current));
}

#[test]
fn the_mesh_namespace_holds_the_source_not_a_copy() {
    let mut index = mk_index(Some("pw1"), vec![mk_copy(MESH, true, Some("old"), 1)]);
    assert!(index.stale().is_empty(), "the source is not a stale copy");
    index.apply_copy(Event::Delete(mk_copy(MESH, true, None, 2)));
    assert!(index.take_work().is_empty());
    assert_eq!(index.answer(MESH), Some(EnsureOutcome::SourceNamespace));
}

#[test]
fn a_periodic_resync_reschedules_what_is_still_stale() {
    let mut index = mk_index(Some("pw1"), vec![mk_copy("a", true, Some("old"), 1)]);
    assert_eq!(index.take_work().repair, ["a"]);
    assert!(index.take_work().is_empty());
    index.schedule_resync();
    assert_eq!(index.take_work().repair, ["a"]);
}

#[test]
fn a_secret_labelled_like_a_copy_without_the_proof_is_foreign_and_never_written() {
    // Every label and annotation of a genuine copy (stale data, to tempt a repair); then a
    // genuine copy's whole metadata, proof included, copied into another namespace; then the
    // genuine copy deleted and re-created by a tenant with the same metadata (another uid).
    let genuine = mk_copy("shop", true, Some("pw1"), 3);
    let mut transplanted = genuine.clone();
    transplanted.metadata.namespace = Some("tenant-2".to_owned());
    transplanted.metadata.uid = Some(uid_of("tenant-2"));
    transplanted.data = Some(data_of("old"));
    let mut recreated = genuine.clone();
    recreated.metadata.uid = Some("uid-recreated".to_owned());
    recreated.metadata.resource_version = Some("9".to_owned());
    recreated.data = Some(data_of("old"));
    let mut index = mk_index(
        Some("pw1"),
        vec![
            mk_copy("tenant", false, Some("old"), 1),
            transplanted,
            genuine,
        ],
    );
    for ns in ["tenant", "tenant-2"] {
        assert_eq!(index.answer(ns), Some(EnsureOutcome::Foreign), "{ns}");
    }
    assert_eq!(index.answer("shop"), Some(EnsureOutcome::Current));
    index.apply_copy(Event::Apply(recreated));
    assert_eq!(index.answer("shop"), Some(EnsureOutcome::Foreign));
    // A rotation schedules no write into any of them, nor does a resync.
    assert!(index.apply_source(Event::Apply(mk_source("pw2", true))));
    index.schedule_resync();
    assert!(index.take_work().is_empty());
    assert!(index.stale().is_empty());
    // Their deletion restores nothing.
    index.apply_copy(Event::Delete(mk_copy("tenant", false, Some("old"), 12)));
    assert!(index.take_work().is_empty());
}

#[test]
fn a_copy_edited_by_hand_is_stale_whatever_its_annotations_say() {
    let mut index = mk_index(Some("pw1"), vec![mk_copy("shop", true, Some("pw1"), 3)]);
    let mut edited = mk_copy("shop", true, Some("pw1"), 4);
    edited.data = Some(data_of("typed by hand"));
    index.apply_copy(Event::Apply(edited));
    assert_eq!(index.take_work().repair, ["shop"]);
    assert_eq!(action(&index, "shop"), update_from("shop", 4));
}

#[test]
fn copies_are_owed_where_injected_pods_run_without_any_secret_of_that_name() {
    let index = mk_index(
        Some("pw1"),
        vec![
            mk_copy("shop", true, Some("pw1"), 3),
            mk_copy("tenant", false, Some("old"), 4),
        ],
    );
    let injected = ["shop", "tenant", "web", MESH].map(str::to_owned);
    assert_eq!(index.without_copy(injected), ["web"]);
}

/// The Secret `ecr-pull` another tool keeps: of `type_`, holding `config` as its
/// `.dockerconfigjson`, with no label of ours.
fn mk_external(type_: &str, config: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some("ecr-pull".to_owned()),
            namespace: Some(MESH.to_owned()),
            ..ObjectMeta::default()
        },
        type_: Some(type_.to_owned()),
        data: Some(data_of(config)),
        ..Secret::default()
    }
}

const DOCKER_CONFIG: &str = "kubernetes.io/dockerconfigjson";

#[test]
fn a_secret_another_tool_keeps_is_copied_as_it_is_and_an_unusable_one_never() {
    let good = r#"{"auths":{"r.example":{"auth":"dTpw"}}}"#;
    let mut index = CopyIndex::new(MESH, key(), SourceSecret::External("ecr-pull".to_owned()));
    assert_eq!(index.source_state(), None, "not listed yet");
    index.apply_source(Event::Init);
    index.apply_source(Event::InitApply(mk_external(DOCKER_CONFIG, good)));
    index.apply_source(Event::InitDone);
    index.apply_copy(Event::Init);
    index.apply_copy(Event::InitApply(mk_copy("a", true, Some("old"), 1)));
    index.apply_copy(Event::InitDone);
    assert_eq!(index.source_state(), Some(SourceState::Present));
    let external = mk_external(DOCKER_CONFIG, good);
    assert_eq!(
        index.source().map(|s| s.data.clone()),
        external.data,
        "byte for byte, without a label of ours"
    );
    assert_eq!(index.take_work().repair, ["a"], "the stale copy follows it");

    // Emptied, or rewritten with the wrong type: the copies stay as they are.
    let unusable = [
        (
            mk_external(DOCKER_CONFIG, r#"{"auths":{}}"#),
            "its .dockerconfigjson is unusable: \"auths\" is empty",
        ),
        (
            mk_external("Opaque", good),
            "it is of type Opaque, not kubernetes.io/dockerconfigjson",
        ),
    ];
    for (secret, why) in unusable {
        assert!(index.apply_source(Event::Apply(secret)));
        assert_eq!(
            index.source_state(),
            Some(SourceState::Unusable(why.to_owned()))
        );
        assert_eq!(index.answer("a"), Some(EnsureOutcome::NoSource));
        assert_eq!(index.answer("new"), Some(EnsureOutcome::NoSource));
        assert!(index.take_work().is_empty(), "nothing written");
    }
    assert!(index.apply_source(Event::Delete(mk_external(DOCKER_CONFIG, good))));
    assert_eq!(index.source_state(), Some(SourceState::Missing));
    assert!(index.take_work().is_empty(), "nothing deleted or written");
    assert!(index.apply_source(Event::Apply(mk_external(DOCKER_CONFIG, good))));
    assert_eq!(index.source_state(), Some(SourceState::Present));
}
