use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, LocalObjectReference, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use proptest::prelude::*;
use serde_json::{Value, json};
use sparrow_core::PullPolicy;
use sparrow_core::names::{
    INIT_CONTAINER, INJECT_STATUS_ANNOTATION, PROXY_CONTAINER, PULL_SECRET_NAME,
};

use super::*;
use crate::fixtures::{PodExt, mk_pod};
use crate::{ADMIN_PORT, SKIP_INBOUND_PORTS_ANNOTATION, SKIP_OUTBOUND_PORTS_ANNOTATION};

const REVIEW_REPLICASET_POD: &str =
    include_str!("../../../../testdata/reviews/review-replicaset-pod.json");
const REVIEW_BARE_POD: &str = include_str!("../../../../testdata/reviews/review-bare-pod.json");

fn cfg() -> InjectConfig {
    InjectConfig {
        mesh_namespace: "sparrow-mesh".to_owned(),
        proxy_image: "registry.example.com:5000/mesh/sparrow-proxy:0.1.0".to_owned(),
        init_image: "registry.example.com:5000/mesh/sparrow-init:0.1.0".to_owned(),
        pull_policy: Some(PullPolicy::IfNotPresent),
        disable_auto_inject: false,
        enabled_namespaces: Vec::new(),
        sidecar: crate::SidecarKind::Classic,
    }
}

/// The request's object, as the API server sends it.
fn review_object(review: &str) -> Value {
    let review: Value = serde_json::from_str(review).expect("fixture is JSON");
    review
        .pointer("/request/object")
        .cloned()
        .expect("fixture has request.object")
}

fn ok_patch(pod: &Pod) -> Patch {
    patch(pod, &cfg()).expect("patch")
}

fn apply(value: &Value, ops: &Patch) -> Value {
    let mut value = value.clone();
    json_patch::patch(&mut value, ops).expect("patch applies");
    value
}

/// (op, path) pairs as they go on the wire.
fn ops_of(ops: &Patch) -> Vec<(String, String)> {
    let wire = serde_json::to_value(ops).expect("patch serializes");
    wire.as_array()
        .expect("array")
        .iter()
        .map(|op| {
            (
                op["op"].as_str().unwrap_or_default().to_owned(),
                op["path"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn names(list: Option<&Value>) -> Vec<String> {
    list.and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn recorded_replicaset_pod_gets_sidecar_init_pull_secret_and_annotation() {
    let object = review_object(REVIEW_REPLICASET_POD);
    let pod: Pod = serde_json::from_value(object.clone()).expect("pod");
    let ops = ok_patch(&pod);
    assert_eq!(
        ops_of(&ops),
        [
            ("add", "/spec/initContainers"),
            ("add", "/spec/containers/-"),
            ("add", "/spec/imagePullSecrets/-"),
            (
                "add",
                "/metadata/annotations/injector.sparrow-mesh.io~1status"
            ),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let patched = apply(&object, &ops);
    assert_eq!(
        names(patched.pointer("/spec/containers")),
        ["web", "worker", "metrics", PROXY_CONTAINER]
    );
    assert_eq!(
        names(patched.pointer("/spec/initContainers")),
        [INIT_CONTAINER]
    );
    // The user's entry (or the ServiceAccount plugin's) stays first.
    assert_eq!(
        names(patched.pointer("/spec/imagePullSecrets")),
        ["shop-registry", PULL_SECRET_NAME]
    );
    let annotations = &patched["metadata"]["annotations"];
    assert_eq!(annotations[INJECT_STATUS_ANNOTATION], "injected");
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["example.com/odd~key"], "tilde");
    // Nothing else changed.
    let mut back = patched.clone();
    back["spec"]["containers"]
        .as_array_mut()
        .expect("containers")
        .pop();
    back["spec"]["imagePullSecrets"]
        .as_array_mut()
        .expect("secrets")
        .pop();
    back["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("initContainers");
    back["metadata"]["annotations"]
        .as_object_mut()
        .expect("annotations")
        .remove(INJECT_STATUS_ANNOTATION);
    assert_eq!(back, object);
    // k8s-openapi accepts the result.
    let _: Pod = serde_json::from_value(patched).expect("injected pod is a Pod");
}

/// What the webhook sends: [`Injector::patch_json`], as JSON.
fn patch_json_value(pod: &Pod) -> Value {
    let injector = Injector::new(cfg()).expect("injector");
    let bytes = injector.patch_json(pod).expect("patch_json");
    serde_json::from_slice(&bytes).expect("patch_json is JSON")
}

#[test]
fn serialized_patch_of_recorded_pods_equals_the_patch() {
    for review in [REVIEW_REPLICASET_POD, REVIEW_BARE_POD] {
        let pod: Pod = serde_json::from_value(review_object(review)).expect("pod");
        let annotated = pod.clone().annotate(SKIP_INBOUND_PORTS_ANNOTATION, "25");
        for pod in [pod, annotated] {
            let want = serde_json::to_value(ok_patch(&pod)).expect("serializes");
            assert_eq!(patch_json_value(&pod), want);
        }
    }
}

#[test]
fn bare_pod_gets_lists_and_annotations_created() {
    let object = review_object(REVIEW_BARE_POD);
    let pod: Pod = serde_json::from_value(object.clone()).expect("pod");
    let ops = ok_patch(&pod);
    assert_eq!(
        ops_of(&ops),
        [
            ("add", "/spec/initContainers"),
            ("add", "/spec/containers/-"),
            ("add", "/spec/imagePullSecrets"),
            ("add", "/metadata/annotations"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let patched = apply(&object, &ops);
    assert_eq!(
        patched["spec"]["imagePullSecrets"],
        json!([{ "name": PULL_SECRET_NAME }])
    );
    assert_eq!(
        patched["metadata"]["annotations"],
        json!({ INJECT_STATUS_ANNOTATION: "injected" })
    );
}

#[test]
fn pull_secret_is_never_duplicated_and_user_entries_are_kept() {
    let cases: [(Option<&[&str]>, &[&str]); 5] = [
        (None, &[PULL_SECRET_NAME]),
        (Some(&[]), &[PULL_SECRET_NAME]),
        (Some(&["user"]), &["user", PULL_SECRET_NAME]),
        // What the ServiceAccount admission plugin leaves when the SA lists our secret.
        (
            Some(&["default-dockercfg", PULL_SECRET_NAME]),
            &["default-dockercfg", PULL_SECRET_NAME],
        ),
        (
            Some(&[PULL_SECRET_NAME, "user"]),
            &[PULL_SECRET_NAME, "user"],
        ),
    ];
    for (before, want) in cases {
        let mut pod = mk_pod("shop", "web", &["app"]);
        if let Some(before) = before {
            pod = pod.pull_secrets(before);
        }
        let injected = inject_pod(&pod, &cfg()).expect("inject");
        let got: Vec<String> = injected
            .spec
            .as_ref()
            .and_then(|s| s.image_pull_secrets.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(got, want, "before {before:?}");
    }
}

#[test]
fn pointer_tokens_are_escaped() {
    let (path, piece) = at(
        &["metadata", "annotations", "a~b/c"],
        Piece::Owned(json!("v")),
    );
    let op = PatchOperation::Add(AddOperation {
        path,
        value: piece.into_value(),
    });
    assert_eq!(op.path().as_str(), "/metadata/annotations/a~0b~1c");
    let mut doc = json!({ "metadata": { "annotations": { "x/y": "1" } } });
    json_patch::patch(&mut doc, &[op]).expect("applies");
    assert_eq!(doc["metadata"]["annotations"]["a~b/c"], "v");
    assert_eq!(doc["metadata"]["annotations"]["x/y"], "1");
}

#[test]
fn status_annotation_with_another_value_is_replaced() {
    let pod = mk_pod("shop", "web", &["app"]).annotate(INJECT_STATUS_ANNOTATION, "pending");
    let injected = inject_pod(&pod, &cfg()).expect("inject");
    let annotations = injected.metadata.annotations.expect("annotations");
    assert_eq!(annotations[INJECT_STATUS_ANNOTATION], "injected");
    assert_eq!(annotations.len(), 1);
}

fn container<'a>(pod: &'a Pod, list: &str, name: &str) -> &'a Container {
    let spec = pod.spec.as_ref().expect("spec");
    let containers = if list == "init" {
        spec.init_containers.as_deref().unwrap_or_default()
    } else {
        &spec.containers
    };
    containers
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

#[test]
fn init_container_can_install_iptables_rules_and_skips_annotated_ports() {
    let pod = mk_pod("shop", "web", &["app"])
        .annotate(SKIP_INBOUND_PORTS_ANNOTATION, "8000-8100, 25")
        .annotate(SKIP_OUTBOUND_PORTS_ANNOTATION, "5432,3306");
    let injected = inject_pod(&pod, &cfg()).expect("inject");
    let init = container(&injected, "init", INIT_CONTAINER);
    assert_eq!(init.image.as_deref(), Some(cfg().init_image.as_str()));
    assert_eq!(init.image_pull_policy.as_deref(), Some("IfNotPresent"));
    let sc = init.security_context.as_ref().expect("securityContext");
    let caps = sc.capabilities.as_ref().and_then(|c| c.add.clone());
    assert_eq!(
        caps,
        Some(vec!["NET_ADMIN".to_owned(), "NET_RAW".to_owned()])
    );
    assert_eq!(sc.run_as_user, Some(0));
    assert_eq!(sc.run_as_non_root, Some(false));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    let args = init.args.clone().expect("args");
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    assert_eq!(
        flag("--inbound-ports-to-ignore").as_deref(),
        Some(format!("25,{ADMIN_PORT},8000-8100").as_str())
    );
    assert_eq!(
        flag("--outbound-ports-to-ignore").as_deref(),
        Some("3306,5432")
    );
    assert_eq!(flag("--proxy-uid").as_deref(), Some("2102"));

    let plain = inject_pod(&mk_pod("shop", "web", &["app"]), &cfg()).expect("inject");
    let args = container(&plain, "init", INIT_CONTAINER)
        .args
        .clone()
        .expect("args");
    assert!(
        !args.iter().any(|a| a == "--outbound-ports-to-ignore"),
        "{args:?}"
    );
}

#[test]
fn invalid_port_annotation_is_an_error_naming_it() {
    let pod = mk_pod("shop", "web", &["app"]).annotate(SKIP_OUTBOUND_PORTS_ANNOTATION, "mysql");
    let err = patch(&pod, &cfg()).expect_err("invalid ports accepted");
    assert!(
        matches!(err, InjectError::InvalidPorts { annotation, .. } if annotation == SKIP_OUTBOUND_PORTS_ANNOTATION)
    );
}

#[test]
fn proxy_is_unprivileged_and_has_a_readiness_probe() {
    let injected = inject_pod(&mk_pod("shop", "web", &["app"]), &cfg()).expect("inject");
    let proxy = container(&injected, "main", PROXY_CONTAINER);
    assert_eq!(proxy.image.as_deref(), Some(cfg().proxy_image.as_str()));
    let sc = proxy.security_context.as_ref().expect("securityContext");
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert!(sc.run_as_user.is_some_and(|u| u > 0));
    let probe = proxy
        .readiness_probe
        .as_ref()
        .and_then(|p| p.http_get.as_ref());
    assert_eq!(probe.and_then(|g| g.path.as_deref()), Some("/ready"));
    let resources = proxy.resources.as_ref().expect("resources");
    assert!(
        resources
            .requests
            .as_ref()
            .is_some_and(|r| r.contains_key("memory"))
    );
    assert!(
        resources
            .limits
            .as_ref()
            .is_some_and(|r| r.contains_key("memory"))
    );
    let ports: Vec<i32> = proxy
        .ports
        .iter()
        .flatten()
        .map(|p| p.container_port)
        .collect();
    assert!(ports.contains(&i32::from(ADMIN_PORT)), "{ports:?}");
}

#[test]
fn pod_without_spec_gets_one() {
    let pod = Pod {
        metadata: ObjectMeta::default(),
        spec: None,
        status: None,
    };
    let injected = inject_pod(&pod, &cfg()).expect("inject");
    let spec = injected.spec.expect("spec");
    assert_eq!(spec.containers.len(), 1);
    assert_eq!(spec.init_containers.map(|c| c.len()), Some(1));
}

// ---- properties ----

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}",
        "[a-z]{1,6}\\.io/[a-z~/]{1,8}",
        Just("a~0b/~1c".to_owned()),
        Just(INJECT_STATUS_ANNOTATION.to_owned()),
    ]
}

fn port_annotation() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(
        proptest::collection::vec((1u16..=65535, 0u16..10), 0..4).prop_map(|ranges| {
            ranges
                .into_iter()
                .map(|(p, len)| {
                    if len == 0 {
                        p.to_string()
                    } else {
                        format!("{p}-{}", p.saturating_add(len))
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        }),
    )
}

fn container_names(special: &'static str, min: usize) -> impl Strategy<Value = Vec<String>> {
    (
        proptest::collection::btree_set("[a-z]{1,6}", min..4),
        any::<bool>(),
    )
        .prop_map(move |(set, with_special)| {
            let mut names: Vec<String> = set.into_iter().collect();
            if with_special {
                names.push(special.to_owned());
            }
            names
        })
}

fn containers(names: Vec<String>) -> Vec<Container> {
    names
        .into_iter()
        .map(|name| Container {
            image: Some(format!("example.com/{name}:1")),
            name,
            ..Container::default()
        })
        .collect()
}

prop_compose! {
    fn arb_pod()(
        labels in proptest::option::of(proptest::collection::btree_map(key(), "[a-z0-9]{0,6}", 0..4)),
        annotations in proptest::option::of(proptest::collection::btree_map(key(), ".{0,8}", 0..5)),
        skip_in in port_annotation(),
        skip_out in port_annotation(),
        main in container_names(PROXY_CONTAINER, 1),
        init in proptest::option::of(container_names(INIT_CONTAINER, 0)),
        secrets in proptest::option::of(proptest::collection::vec(
            prop_oneof![Just(PULL_SECRET_NAME.to_owned()), "[a-z]{1,5}"], 0..4)),
        has_spec in proptest::bool::weighted(0.95),
    ) -> Pod {
        let mut annotations = annotations;
        for (key, value) in [(SKIP_INBOUND_PORTS_ANNOTATION, skip_in), (SKIP_OUTBOUND_PORTS_ANNOTATION, skip_out)] {
            if let Some(value) = value {
                annotations.get_or_insert_with(BTreeMap::new).insert(key.to_owned(), value);
            }
        }
        let spec = has_spec.then(|| PodSpec {
            containers: containers(main),
            init_containers: init.map(containers),
            image_pull_secrets: secrets.map(|s| s.into_iter().map(|name| LocalObjectReference { name }).collect()),
            ..PodSpec::default()
        });
        Pod {
            metadata: ObjectMeta {
                name: Some("p".to_owned()),
                namespace: Some("shop".to_owned()),
                labels,
                annotations,
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }
}

fn count(list: &[String], name: &str) -> usize {
    list.iter().filter(|n| *n == name).count()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn patch_applies_to_any_pod_and_yields_a_valid_injected_pod(pod in arb_pod()) {
        let value = serde_json::to_value(&pod).expect("pod serializes");
        let ops = ok_patch(&pod);
        let patched = apply(&value, &ops);
        let typed: Pod = serde_json::from_value(patched.clone()).expect("k8s-openapi accepts the result");
        // Nothing is lost in the typed round trip: the result is exactly a Pod.
        prop_assert_eq!(serde_json::to_value(&typed).expect("serializes"), patched.clone());

        let before_main = names(value.pointer("/spec/containers"));
        let after_main = names(patched.pointer("/spec/containers"));
        prop_assert!(after_main.starts_with(&before_main));
        prop_assert_eq!(count(&after_main, PROXY_CONTAINER), 1);
        let before_init = names(value.pointer("/spec/initContainers"));
        let after_init = names(patched.pointer("/spec/initContainers"));
        prop_assert!(after_init.starts_with(&before_init));
        prop_assert_eq!(count(&after_init, INIT_CONTAINER), 1);
        let before_secrets = names(value.pointer("/spec/imagePullSecrets"));
        let after_secrets = names(patched.pointer("/spec/imagePullSecrets"));
        prop_assert!(after_secrets.starts_with(&before_secrets));
        prop_assert_eq!(count(&after_secrets, PULL_SECRET_NAME), count(&before_secrets, PULL_SECRET_NAME).max(1));

        let before_annotations = pod.metadata.annotations.clone().unwrap_or_default();
        let after_annotations = typed.metadata.annotations.clone().unwrap_or_default();
        prop_assert_eq!(after_annotations.get(INJECT_STATUS_ANNOTATION).map(String::as_str), Some("injected"));
        for (k, v) in &before_annotations {
            if k != INJECT_STATUS_ANNOTATION {
                prop_assert_eq!(after_annotations.get(k), Some(v));
            }
        }
        prop_assert_eq!(after_annotations.len(), before_annotations.len() + usize::from(!before_annotations.contains_key(INJECT_STATUS_ANNOTATION)));
        prop_assert_eq!(&typed.metadata.labels, &pod.metadata.labels);
    }

    #[test]
    fn serialized_patch_equals_the_patch(pod in arb_pod()) {
        prop_assert_eq!(patch_json_value(&pod), serde_json::to_value(ok_patch(&pod)).expect("serializes"));
    }

    #[test]
    fn injecting_twice_equals_injecting_once(pod in arb_pod()) {
        let once = inject_pod(&pod, &cfg()).expect("inject");
        let twice = inject_pod(&once, &cfg()).expect("inject again");
        prop_assert_eq!(&twice, &once);
        prop_assert!(ok_patch(&once).0.is_empty());
    }
}

// ---- the native sidecar (Kubernetes >= 1.29) ----

fn native() -> InjectConfig {
    InjectConfig {
        sidecar: crate::SidecarKind::Native,
        ..cfg()
    }
}

fn native_patch(pod: &Pod) -> Patch {
    patch(pod, &native()).expect("patch")
}

#[test]
fn native_proxy_is_an_init_container_after_sparrow_init() {
    let object = review_object(REVIEW_REPLICASET_POD);
    let pod: Pod = serde_json::from_value(object.clone()).expect("pod");
    let ops = native_patch(&pod);
    assert_eq!(
        ops_of(&ops),
        [
            ("add", "/spec/initContainers"),
            ("add", "/spec/imagePullSecrets/-"),
            (
                "add",
                "/metadata/annotations/injector.sparrow-mesh.io~1status"
            ),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let patched = apply(&object, &ops);
    // The application's containers are left alone.
    assert_eq!(patched["spec"]["containers"], object["spec"]["containers"]);
    assert_eq!(
        names(patched.pointer("/spec/initContainers")),
        [INIT_CONTAINER, PROXY_CONTAINER]
    );
    let proxy = &patched["spec"]["initContainers"][1];
    assert_eq!(proxy["restartPolicy"], "Always");
    assert_eq!(proxy["startupProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(proxy["startupProbe"]["httpGet"]["port"], ADMIN_PORT);
    assert_eq!(proxy["startupProbe"]["periodSeconds"], 1);
    assert_eq!(proxy["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(proxy["livenessProbe"]["httpGet"]["path"], "/live");
    // sparrow-init runs once and ends: not restartable.
    assert_eq!(
        patched["spec"]["initContainers"][0].get("restartPolicy"),
        None
    );
    let _: Pod = serde_json::from_value(patched).expect("injected pod is a Pod");
}

#[test]
fn native_proxy_follows_the_users_init_containers() {
    let mut pod = mk_pod("shop", "web", &["app"]);
    if let Some(spec) = pod.spec.as_mut() {
        spec.init_containers = Some(containers(vec!["migrate".to_owned()]));
    }
    let injected = inject_pod(&pod, &native()).expect("inject");
    let spec = injected.spec.expect("spec");
    let inits: Vec<&str> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(inits, ["migrate", INIT_CONTAINER, PROXY_CONTAINER]);
    let main: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(main, ["app"]);
}

#[test]
fn classic_proxy_has_no_restart_policy_or_startup_probe() {
    let injected = inject_pod(&mk_pod("shop", "web", &["app"]), &cfg()).expect("inject");
    let proxy = container(&injected, "main", PROXY_CONTAINER);
    assert_eq!(proxy.restart_policy, None);
    assert_eq!(proxy.startup_probe, None);
}

#[test]
fn native_pod_without_spec_gets_one() {
    let pod = Pod {
        metadata: ObjectMeta::default(),
        spec: None,
        status: None,
    };
    let injected = inject_pod(&pod, &native()).expect("inject");
    let spec = injected.spec.expect("spec");
    assert!(spec.containers.is_empty());
    let inits: Vec<String> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(inits, [INIT_CONTAINER, PROXY_CONTAINER]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn native_patch_yields_one_proxy_and_is_idempotent(pod in arb_pod()) {
        let value = serde_json::to_value(&pod).expect("pod serializes");
        let patched = apply(&value, &native_patch(&pod));
        let _: Pod = serde_json::from_value(patched.clone()).expect("k8s-openapi accepts the result");
        let before_main = names(value.pointer("/spec/containers"));
        let after_main = names(patched.pointer("/spec/containers"));
        let after_init = names(patched.pointer("/spec/initContainers"));
        // The proxy is added only where there is none yet, and then among the init containers.
        prop_assert_eq!(&after_main, &before_main);
        prop_assert_eq!(count(&after_main, PROXY_CONTAINER) + count(&after_init, PROXY_CONTAINER), 1);
        prop_assert_eq!(count(&after_init, INIT_CONTAINER), 1);
        if !before_main.contains(&PROXY_CONTAINER.to_owned()) {
            let init_at = after_init.iter().position(|n| n == INIT_CONTAINER);
            let proxy_at = after_init.iter().position(|n| n == PROXY_CONTAINER);
            prop_assert!(init_at < proxy_at, "{:?}", after_init);
        }
        let injector = Injector::new(native()).expect("injector");
        let wire: Value = serde_json::from_slice(&injector.patch_json(&pod).expect("patch_json")).expect("JSON");
        prop_assert_eq!(wire, serde_json::to_value(native_patch(&pod)).expect("serializes"));
        let once = inject_pod(&pod, &native()).expect("inject");
        prop_assert!(native_patch(&once).0.is_empty());
        prop_assert_eq!(inject_pod(&once, &native()).expect("inject again"), once);
    }
}
