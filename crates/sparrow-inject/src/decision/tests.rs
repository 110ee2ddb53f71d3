use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use sparrow_core::MeshConfig;
use sparrow_core::manifests::injector_webhooks;
use sparrow_core::names::{
    AUTO_INJECT_LABEL, INJECT_STATUS_ANNOTATION, NAMESPACE_NAME_LABEL, PROXY_CONTAINER,
};

use super::*;
use crate::fixtures::{PodExt, mk_pod, ns_labels};

fn config(disable_auto_inject: bool, enabled: &[&str]) -> InjectConfig {
    InjectConfig {
        disable_auto_inject,
        enabled_namespaces: enabled.iter().map(|s| (*s).to_owned()).collect(),
        ..InjectConfig::default()
    }
}

/// A pod whose proxy is among its init containers (injected as a native sidecar).
fn native_sidecar_pod() -> k8s_openapi::api::core::v1::Pod {
    let mut pod = mk_pod("shop", "web", &["app"]);
    if let Some(spec) = pod.spec.as_mut() {
        spec.init_containers = mk_pod("shop", "x", &[PROXY_CONTAINER])
            .spec
            .map(|s| s.containers);
    }
    pod
}

#[test]
fn table() {
    use Decision::{Inject, Skip};
    use SkipReason::*;
    let auto = config(false, &[]);
    let opt_in = config(true, &["listed"]);
    let pod = || mk_pod("shop", "web", &["app"]);
    type Case<'a> = (
        &'a str,
        Pod,
        BTreeMap<String, String>,
        &'a InjectConfig,
        Decision,
    );
    let cases: Vec<Case> = vec![
        (
            "auto, unlabelled",
            pod(),
            ns_labels("shop", &[]),
            &auto,
            Inject,
        ),
        (
            "auto, namespace enabled",
            pod(),
            ns_labels("shop", &[(AUTO_INJECT_LABEL, "enabled")]),
            &auto,
            Inject,
        ),
        (
            "auto, namespace disabled",
            pod(),
            ns_labels("shop", &[(AUTO_INJECT_LABEL, "disabled")]),
            &auto,
            Skip(DisabledByNamespaceLabel),
        ),
        (
            "auto, namespace disabled, pod enabled: pod wins",
            pod().label(AUTO_INJECT_LABEL, "enabled"),
            ns_labels("shop", &[(AUTO_INJECT_LABEL, "disabled")]),
            &auto,
            Inject,
        ),
        (
            "auto, pod disabled",
            pod().label(AUTO_INJECT_LABEL, "disabled"),
            ns_labels("shop", &[(AUTO_INJECT_LABEL, "enabled")]),
            &auto,
            Skip(DisabledByPodLabel),
        ),
        (
            "kube-system, pod enabled",
            mk_pod("kube-system", "dns", &["coredns"]).label(AUTO_INJECT_LABEL, "enabled"),
            ns_labels("kube-system", &[]),
            &auto,
            Skip(SystemNamespace),
        ),
        (
            "mesh namespace",
            mk_pod("sparrow-mesh", "x", &["x"]),
            ns_labels("sparrow-mesh", &[(AUTO_INJECT_LABEL, "enabled")]),
            &auto,
            Skip(MeshNamespace),
        ),
        (
            "namespace name from the pod when the label is missing",
            mk_pod("kube-public", "x", &["x"]),
            BTreeMap::new(),
            &auto,
            Skip(SystemNamespace),
        ),
        (
            "hostNetwork",
            pod().host_network().label(AUTO_INJECT_LABEL, "enabled"),
            ns_labels("shop", &[]),
            &auto,
            Skip(HostNetwork),
        ),
        (
            "sidecar present",
            mk_pod("shop", "web", &["app", PROXY_CONTAINER]),
            ns_labels("shop", &[]),
            &auto,
            Skip(AlreadyInjected),
        ),
        (
            "native sidecar present",
            native_sidecar_pod(),
            ns_labels("shop", &[]),
            &auto,
            Skip(AlreadyInjected),
        ),
        (
            "status annotation",
            pod().annotate(INJECT_STATUS_ANNOTATION, "injected"),
            ns_labels("shop", &[]),
            &auto,
            Skip(AlreadyInjected),
        ),
        (
            "opt-in, unlabelled",
            pod(),
            ns_labels("shop", &[]),
            &opt_in,
            Skip(NotEnabled),
        ),
        (
            "opt-in, namespace enabled",
            pod(),
            ns_labels("shop", &[(AUTO_INJECT_LABEL, "enabled")]),
            &opt_in,
            Inject,
        ),
        (
            "opt-in, listed namespace labelled disabled: the flag wins",
            mk_pod("listed", "web", &["app"]),
            ns_labels("listed", &[(AUTO_INJECT_LABEL, "disabled")]),
            &opt_in,
            Inject,
        ),
        (
            "opt-in, listed namespace, pod disabled",
            mk_pod("listed", "web", &["app"]).label(AUTO_INJECT_LABEL, "disabled"),
            ns_labels("listed", &[]),
            &opt_in,
            Skip(DisabledByPodLabel),
        ),
        (
            "opt-in, pod enabled",
            pod().label(AUTO_INJECT_LABEL, "enabled"),
            ns_labels("shop", &[(AUTO_INJECT_LABEL, "disabled")]),
            &opt_in,
            Inject,
        ),
    ];
    for (name, pod, labels, config, want) in cases {
        assert_eq!(decide(&pod, &labels, config), want, "{name}");
    }
}

#[test]
fn manual_decision_ignores_namespace_labels_but_not_the_pod() {
    let cfg = config(true, &[]);
    let pod = mk_pod("shop", "web", &["app"]);
    assert_eq!(decide_manual(&pod, Some("shop"), &cfg), Decision::Inject);
    assert_eq!(decide_manual(&pod, None, &cfg), Decision::Inject);
    assert_eq!(
        decide_manual(&pod, Some("kube-system"), &cfg),
        Decision::Skip(SkipReason::SystemNamespace)
    );
    let disabled = pod.label(AUTO_INJECT_LABEL, "disabled");
    assert_eq!(
        decide_manual(&disabled, None, &cfg),
        Decision::Skip(SkipReason::DisabledByPodLabel)
    );
}

/// `In`/`NotIn` as the API server evaluates them (`NotIn` matches an absent key).
fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let matched_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let matched_expressions = selector.match_expressions.iter().flatten().all(|r| {
        let values = r.values.clone().unwrap_or_default();
        let value = labels.get(&r.key);
        match r.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            other => panic!("operator {other} not expected in our selectors"),
        }
    });
    matched_labels && matched_expressions
}

/// The decision agrees with the rendered webhook selectors for every combination, and at most
/// one webhook is called for a pod.
#[test]
fn agrees_with_the_webhook_selectors() {
    let switches = [None, Some("enabled"), Some("disabled"), Some("other")];
    let namespaces = [
        "shop",
        "listed",
        "kube-system",
        "kube-node-lease",
        "sparrow-mesh",
    ];
    let modes: [(bool, &[&str]); 4] = [
        (false, &[]),
        (false, &["listed"]),
        (true, &[]),
        (true, &["listed"]),
    ];
    let mut checked = 0;
    for (disable, enabled) in modes {
        let mut mesh = MeshConfig::default();
        mesh.injection.disable_auto_inject = disable;
        mesh.injection.enabled_namespaces = enabled.iter().map(|s| (*s).to_owned()).collect();
        let webhooks = injector_webhooks(&mesh, Some("ca"));
        let cfg = InjectConfig::from_mesh(&mesh);
        for ns in namespaces {
            for ns_switch in switches {
                for pod_switch in switches {
                    let mut labels =
                        BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), ns.to_owned())]);
                    if let Some(s) = ns_switch {
                        labels.insert(AUTO_INJECT_LABEL.to_owned(), s.to_owned());
                    }
                    let mut pod = mk_pod(ns, "p", &["app"]);
                    if let Some(s) = pod_switch {
                        pod = pod.label(AUTO_INJECT_LABEL, s);
                    }
                    let pod_labels = pod.metadata.labels.clone().unwrap_or_default();
                    let called = webhooks
                        .iter()
                        .filter(|w| {
                            w.namespace_selector
                                .as_ref()
                                .is_some_and(|s| selects(s, &labels))
                                && w.object_selector
                                    .as_ref()
                                    .is_some_and(|s| selects(s, &pod_labels))
                        })
                        .count();
                    let context = format!(
                        "disable={disable} listed={enabled:?} ns={ns} ns_label={ns_switch:?} pod_label={pod_switch:?}"
                    );
                    assert!(called <= 1, "{context}: {called} webhooks called");
                    let injected = decide(&pod, &labels, &cfg) == Decision::Inject;
                    assert_eq!(injected, called == 1, "{context}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 4 * 5 * 4 * 4);
}
