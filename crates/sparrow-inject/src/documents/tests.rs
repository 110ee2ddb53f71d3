use serde_json::Value;
use sparrow_core::names::{INIT_CONTAINER, PROXY_CONTAINER, PULL_SECRET_NAME};

use super::*;
use crate::SkipReason;

const MANIFESTS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: registry.example.com/web:1.0
          ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: job, image: registry.example.com/job:1.0}]
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: a}
    spec:
      containers: [{name: a, image: a}]
  - apiVersion: v1
    kind: Pod
    metadata:
      name: b
      labels: {"injector.sparrow-mesh.io/auto-inject": disabled}
    spec:
      containers: [{name: b, image: b}]
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: c}
    data: {"a/b~c": "x"}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      hostNetwork: true
      containers: [{name: agent, image: agent}]
---
"#;

fn parse(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(yaml).expect("output is YAML")
}

fn container_names(spec: &Value, list: &str) -> Vec<String> {
    spec[list]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_injected(template: &Value, app: &str) {
    let spec = &template["spec"];
    // A native sidecar by default: Jobs and CronJobs complete.
    assert_eq!(container_names(spec, "containers"), [app]);
    assert_eq!(
        container_names(spec, "initContainers"),
        [INIT_CONTAINER, PROXY_CONTAINER]
    );
    assert_eq!(spec["initContainers"][1]["restartPolicy"], "Always");
    assert_eq!(spec["imagePullSecrets"][0]["name"], PULL_SECRET_NAME);
    assert_eq!(
        template["metadata"]["annotations"]["injector.sparrow-mesh.io/status"],
        "injected"
    );
}

#[test]
fn workloads_and_list_items_are_injected_others_pass_through() {
    let input = parse(MANIFESTS);
    let injected =
        inject_documents_with_report(MANIFESTS, &InjectConfig::default()).expect("inject");
    let out = parse(&injected.yaml);
    assert_eq!(out.len(), 5, "the empty trailing document is dropped");

    assert_injected(&out[0]["spec"]["template"], "web");
    assert_eq!(out[0]["spec"]["replicas"], 2);
    assert_eq!(
        out[0]["spec"]["template"]["metadata"]["labels"]["app"],
        "web"
    );
    assert_eq!(out[1], input[1], "a Service passes through unchanged");
    assert_injected(&out[2]["spec"]["jobTemplate"]["spec"]["template"], "job");
    assert_injected(&out[3]["items"][0], "a");
    assert_eq!(
        out[3]["items"][1], input[3]["items"][1],
        "a disabled pod is left alone"
    );
    assert_eq!(out[3]["items"][2], input[3]["items"][2]);
    assert_eq!(out[4], input[4], "a hostNetwork DaemonSet is left alone");

    let outcomes: Vec<(&str, &str, Decision)> = injected
        .outcomes
        .iter()
        .map(|o| (o.kind.as_str(), o.name.as_str(), o.decision))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("Deployment", "web", Decision::Inject),
            ("CronJob", "nightly", Decision::Inject),
            ("Pod", "a", Decision::Inject),
            ("Pod", "b", Decision::Skip(SkipReason::DisabledByPodLabel)),
            (
                "DaemonSet",
                "node-agent",
                Decision::Skip(SkipReason::HostNetwork)
            ),
        ]
    );
}

#[test]
fn injecting_the_output_again_changes_nothing() {
    let cfg = InjectConfig::default();
    let once = inject_documents(MANIFESTS, &cfg).expect("inject");
    let twice = inject_documents(&once, &cfg).expect("inject again");
    assert_eq!(parse(&twice), parse(&once));
}

#[test]
fn every_workload_kind_is_injected() {
    for kind in [
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "Job",
    ] {
        let yaml = format!(
            "apiVersion: apps/v1\nkind: {kind}\nmetadata: {{name: w}}\nspec:\n  template:\n    spec:\n      containers: [{{name: app, image: app}}]\n"
        );
        let out = parse(&inject_documents(&yaml, &InjectConfig::default()).expect("inject"));
        assert_injected(&out[0]["spec"]["template"], "app");
    }
}

#[test]
fn system_namespace_from_the_manifest_is_respected() {
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: kube-system}\nspec:\n  containers: [{name: app, image: app}]\n";
    let report = inject_documents_with_report(yaml, &InjectConfig::default()).expect("inject");
    assert_eq!(
        report.outcomes[0].decision,
        Decision::Skip(SkipReason::SystemNamespace)
    );
    assert_eq!(parse(&report.yaml), parse(yaml));
}

#[test]
fn errors_name_what_to_fix() {
    let cfg = InjectConfig::default();
    assert!(matches!(
        inject_documents("kind: Pod\n  bad: [indent", &cfg),
        Err(InjectError::ParseYaml(_))
    ));
    let no_template =
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 1}\n";
    let err = inject_documents(no_template, &cfg).expect_err("no template accepted");
    assert_eq!(
        err.to_string(),
        "Deployment \"web\" has no pod template at /spec/template"
    );
    let bad_template = "apiVersion: apps/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec: {containers: notalist}\n";
    assert!(matches!(
        inject_documents(bad_template, &cfg),
        Err(InjectError::InvalidPodTemplate { .. })
    ));
    let bad_ports = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {config.sparrow-mesh.io/skip-inbound-ports: \"http\"}\nspec:\n  containers: [{name: app, image: app}]\n";
    assert!(matches!(
        inject_documents(bad_ports, &cfg),
        Err(InjectError::InvalidPorts { .. })
    ));
}
