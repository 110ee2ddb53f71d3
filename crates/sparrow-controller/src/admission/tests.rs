use std::sync::Mutex;

use base64::Engine;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use sparrow_core::names::{AUTO_INJECT_LABEL, INJECT_STATUS_ANNOTATION, PROXY_CONTAINER};

use super::*;
use crate::namespaces::StaticNamespaceLabels;
use crate::pull_secrets::{AdmissionWarning, BoxFuture, PullSecretCopyError};
use sparrow_inject::{InjectConfig, Injector};

const REVIEW_REPLICASET_POD: &str =
    include_str!("../../../../testdata/reviews/review-replicaset-pod.json");
const REVIEW_BARE_POD: &str = include_str!("../../../../testdata/reviews/review-bare-pod.json");

/// Records the namespaces it is asked about and answers as told; an injected pod exists in
/// every namespace but those in `no_pod_in`.
#[derive(Default)]
struct RecordingCopies {
    calls: Mutex<Vec<String>>,
    answer: Option<&'static str>,
    fail: bool,
    no_pod_in: Vec<&'static str>,
}

impl PullSecretCopies for RecordingCopies {
    fn ensure_pull_secret_copy<'a>(
        &'a self,
        namespace: &'a str,
        _pod: &'a str,
    ) -> BoxFuture<'a, Result<Option<AdmissionWarning>, PullSecretCopyError>> {
        Box::pin(async move {
            self.calls.lock().expect("lock").push(namespace.to_owned());
            if self.fail {
                return Err(PullSecretCopyError {
                    namespace: namespace.to_owned(),
                    source: "the API server said no".into(),
                });
            }
            Ok(self.answer.map(|w| AdmissionWarning(w.to_owned())))
        })
    }

    fn injected_pod_exists<'a>(
        &'a self,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<bool, PullSecretCopyError>> {
        Box::pin(async move { Ok(!self.no_pod_in.contains(&namespace)) })
    }
}

fn namespaces() -> StaticNamespaceLabels {
    StaticNamespaceLabels::with_switches(&[("shop", None), ("legacy", Some("disabled"))])
}

fn webhook(copies: Option<Arc<RecordingCopies>>) -> Webhook {
    let copies = copies.map(|c| c as Arc<dyn PullSecretCopies>);
    Webhook::new(
        Injector::new(InjectConfig::default()).expect("injector"),
        Arc::new(namespaces()),
        copies,
        AdmissionMetrics::register(&mut Registry::default()),
    )
}

fn review_with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut review: Value = serde_json::from_str(REVIEW_REPLICASET_POD).expect("fixture");
    edit(&mut review);
    serde_json::to_vec(&review).expect("serializes")
}

async fn answer(webhook: &Webhook, body: &[u8]) -> (AdmissionOutcome, Value) {
    let outcome = webhook.review(body).await.expect("a review");
    let json: Value = serde_json::from_slice(&outcome.body).expect("response is JSON");
    assert_eq!(json["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(json["kind"], "AdmissionReview");
    (outcome, json)
}

fn decoded_patch(response: &Value) -> json_patch::Patch {
    let b64 = response["response"]["patch"].as_str().expect("a patch");
    let bytes = STANDARD.decode(b64).expect("base64");
    serde_json::from_slice(&bytes).expect("a JSON patch")
}

#[tokio::test]
async fn recorded_pod_is_injected() {
    let copies = Arc::new(RecordingCopies::default());
    let webhook = webhook(Some(copies.clone()));
    let (outcome, json) = answer(&webhook, REVIEW_REPLICASET_POD.as_bytes()).await;
    assert_eq!((outcome.result, outcome.reason), ("injected", ""));
    let response = &json["response"];
    assert_eq!(response["uid"], "8f7c2b1e-3d4a-4c5b-9e6f-1a2b3c4d5e6f");
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    let mut object: Value = serde_json::from_str::<Value>(REVIEW_REPLICASET_POD).expect("fixture")
        ["request"]["object"]
        .clone();
    json_patch::patch(&mut object, &decoded_patch(&json)).expect("patch applies");
    // A native sidecar: the proxy follows sparrow-init among the init containers.
    let containers: Vec<&str> = object["spec"]["initContainers"]
        .as_array()
        .expect("initContainers")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(containers, ["sparrow-init", PROXY_CONTAINER]);
    assert_eq!(*copies.calls.lock().expect("lock"), ["shop"]);
}

#[tokio::test]
async fn disabled_namespace_and_disabled_pod_are_allowed_without_patch() {
    let copies = Arc::new(RecordingCopies::default());
    let webhook = webhook(Some(copies.clone()));
    let in_legacy = review_with(|r| {
        r["request"]["namespace"] = json!("legacy");
        r["request"]["object"]["metadata"]["namespace"] = json!("legacy");
    });
    let (outcome, json) = answer(&webhook, &in_legacy).await;
    assert_eq!(
        (outcome.result, outcome.reason),
        ("skipped", "namespace-disabled")
    );
    assert_eq!(json["response"]["allowed"], true);
    assert!(json["response"].get("patch").is_none());

    let disabled_pod = review_with(|r| {
        r["request"]["object"]["metadata"]["labels"][AUTO_INJECT_LABEL] = json!("disabled");
    });
    let (outcome, json) = answer(&webhook, &disabled_pod).await;
    assert_eq!(
        (outcome.result, outcome.reason),
        ("skipped", "pod-disabled")
    );
    assert!(json["response"].get("patch").is_none());
    assert!(
        copies.calls.lock().expect("lock").is_empty(),
        "no copy for pods without the sidecar"
    );
}

#[tokio::test]
async fn unknown_namespace_is_decided_by_its_name() {
    let webhook = webhook(None);
    let in_system = review_with(|r| {
        r["request"]["namespace"] = json!("kube-system");
        r["request"]["object"]["metadata"]["namespace"] = json!("kube-system");
    });
    let (outcome, _) = answer(&webhook, &in_system).await;
    assert_eq!(
        (outcome.result, outcome.reason),
        ("skipped", "system-namespace")
    );
    let in_new = review_with(|r| {
        r["request"]["namespace"] = json!("brand-new");
        r["request"]["object"]["metadata"]["namespace"] = json!("brand-new");
    });
    let (outcome, _) = answer(&webhook, &in_new).await;
    assert_eq!(outcome.result, "injected");
}

#[tokio::test]
async fn already_injected_pod_gets_no_patch_and_no_copy() {
    let copies = Arc::new(RecordingCopies::default());
    let webhook = webhook(Some(copies.clone()));
    let (_, first) = answer(&webhook, REVIEW_REPLICASET_POD.as_bytes()).await;
    let mut object: Value = serde_json::from_str::<Value>(REVIEW_REPLICASET_POD).expect("fixture")
        ["request"]["object"]
        .clone();
    json_patch::patch(&mut object, &decoded_patch(&first)).expect("applies");
    let again = review_with(|r| r["request"]["object"] = object);
    let (outcome, json) = answer(&webhook, &again).await;
    assert_eq!(
        (outcome.result, outcome.reason),
        ("skipped", "already-injected")
    );
    assert!(json["response"].get("patch").is_none());
    assert!(json["response"].get("warnings").is_none());
    assert_eq!(
        *copies.calls.lock().expect("lock"),
        ["shop"],
        "only the pod injected now gets a copy"
    );
}

/// Defect 8: the status annotation in the request granted a copy in a disabled namespace.
#[tokio::test]
async fn an_annotation_or_label_in_the_request_grants_no_copy() {
    let copies = Arc::new(RecordingCopies::default());
    let webhook = webhook(Some(copies.clone()));
    let annotated = review_with(|r| {
        r["request"]["namespace"] = json!("legacy");
        r["request"]["object"]["metadata"]["namespace"] = json!("legacy");
        r["request"]["object"]["metadata"]["annotations"][INJECT_STATUS_ANNOTATION] =
            json!("injected");
    });
    let (outcome, _) = answer(&webhook, &annotated).await;
    assert_eq!(
        (outcome.result, outcome.reason),
        ("skipped", "already-injected")
    );

    // A pod label opting in is honoured for the sidecar, but the namespace is not meshed.
    let opted_in = review_with(|r| {
        r["request"]["namespace"] = json!("legacy");
        r["request"]["object"]["metadata"]["namespace"] = json!("legacy");
        r["request"]["object"]["metadata"]["labels"][AUTO_INJECT_LABEL] = json!("enabled");
    });
    let (outcome, json) = answer(&webhook, &opted_in).await;
    assert_eq!(outcome.result, "injected");
    assert_eq!(
        json["response"]["warnings"],
        json!([
            "sparrow-mesh: namespace legacy is not meshed, so the registry pull secret was not copied there"
        ])
    );
    assert!(copies.calls.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn an_invalid_namespace_is_denied_before_any_use() {
    let copies = Arc::new(RecordingCopies::default());
    let webhook = webhook(Some(copies.clone()));
    let spliced = review_with(|r| {
        r["request"]["namespace"] = json!("kube-system/secrets?x=");
        r["request"]["object"]["metadata"]
            .as_object_mut()
            .expect("metadata")
            .remove("namespace");
    });
    let (outcome, json) = answer(&webhook, &spliced).await;
    assert_eq!(
        (outcome.result, outcome.reason),
        ("denied", "invalid-request")
    );
    assert_eq!(json["response"]["allowed"], false);
    assert_eq!(
        json["response"]["status"]["message"],
        "the request's namespace \"kube-system/secrets?x=\" is not a valid namespace name (RFC 1123 label: at most 63 lowercase letters, digits and '-')"
    );
    assert!(copies.calls.lock().expect("lock").is_empty());
}

/// Namespace labels that a test changes while the webhook runs (a cache learning namespaces).
#[derive(Default)]
struct LearningNamespaces(Mutex<BTreeMap<String, BTreeMap<String, String>>>);

impl LearningNamespaces {
    fn learn(&self, namespace: &str, switch: Option<&str>) {
        let mut labels = BTreeMap::new();
        if let Some(switch) = switch {
            labels.insert(AUTO_INJECT_LABEL.to_owned(), switch.to_owned());
        }
        self.0
            .lock()
            .expect("lock")
            .insert(namespace.to_owned(), labels);
    }
}

impl NamespaceLabels for LearningNamespaces {
    fn labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.0.lock().expect("lock").get(namespace).cloned()
    }
    fn is_synced(&self) -> bool {
        true
    }
}

fn learning_webhook(copies: Arc<RecordingCopies>) -> (Arc<Webhook>, Arc<LearningNamespaces>) {
    let namespaces = Arc::new(LearningNamespaces::default());
    let webhook = Webhook::new(
        Injector::new(InjectConfig::default()).expect("injector"),
        namespaces.clone(),
        Some(copies),
        AdmissionMetrics::register(&mut Registry::default()),
    );
    (Arc::new(webhook), namespaces)
}

fn review_in(namespace: &str) -> Vec<u8> {
    review_with(|r| {
        r["request"]["namespace"] = json!(namespace);
        r["request"]["object"]["metadata"]["namespace"] = json!(namespace);
    })
}

#[tokio::test(start_paused = true)]
async fn a_namespace_unknown_at_admission_gets_its_copy_once_the_cache_learns_it() {
    let copies = Arc::new(RecordingCopies::default());
    let (webhook, namespaces) = learning_webhook(copies.clone());
    let started = tokio::time::Instant::now();
    let (outcome, json) = answer(&webhook, &review_in("brand-new")).await;
    assert_eq!(outcome.result, "injected");
    assert!(started.elapsed() >= NAMESPACE_WAIT, "waited for the cache");
    let warning = json["response"]["warnings"][0].as_str().expect("a warning");
    assert_eq!(
        warning,
        "sparrow-mesh: namespace brand-new is not known to the controller yet; the registry pull secret will be copied there as soon as it is"
    );
    assert!(copies.calls.lock().expect("lock").is_empty(), "no copy yet");

    let worker = tokio::spawn({
        let webhook = webhook.clone();
        async move { webhook.copy_parked().await }
    });
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        copies.calls.lock().expect("lock").is_empty(),
        "nothing copied while the namespace is unknown"
    );
    namespaces.learn("brand-new", None);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(*copies.calls.lock().expect("lock"), ["brand-new"]);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(copies.calls.lock().expect("lock").len(), 1, "made once");
    worker.abort();
}

#[tokio::test(start_paused = true)]
async fn a_parked_namespace_that_turns_out_unmeshed_or_never_appears_gets_no_copy() {
    let copies = Arc::new(RecordingCopies::default());
    let (webhook, namespaces) = learning_webhook(copies.clone());
    answer(&webhook, &review_in("opted-out")).await;
    answer(&webhook, &review_in("ghost")).await;
    let worker = tokio::spawn({
        let webhook = webhook.clone();
        async move { webhook.copy_parked().await }
    });
    namespaces.learn("opted-out", Some("disabled"));
    tokio::time::sleep(crate::parked::PARK_LIMIT + Duration::from_secs(5)).await;
    assert!(copies.calls.lock().expect("lock").is_empty());
    // Given up: learning it now makes no copy either.
    namespaces.learn("ghost", None);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(copies.calls.lock().expect("lock").is_empty());
    worker.abort();
}

#[tokio::test(start_paused = true)]
async fn a_parked_namespace_whose_pod_never_appears_gets_no_copy() {
    // A forged review for a namespace created later: no pod was ever created there.
    let copies = Arc::new(RecordingCopies {
        no_pod_in: vec!["forged"],
        ..RecordingCopies::default()
    });
    let (webhook, namespaces) = learning_webhook(copies.clone());
    answer(&webhook, &review_in("forged")).await;
    let worker = tokio::spawn({
        let webhook = webhook.clone();
        async move { webhook.copy_parked().await }
    });
    namespaces.learn("forged", None);
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(copies.calls.lock().expect("lock").is_empty());
    worker.abort();
}

#[tokio::test(start_paused = true)]
async fn a_failed_deferred_copy_is_retried() {
    let copies = Arc::new(RecordingCopies {
        fail: true,
        ..RecordingCopies::default()
    });
    let (webhook, namespaces) = learning_webhook(copies.clone());
    answer(&webhook, &review_in("shop-2")).await;
    namespaces.learn("shop-2", None);
    let worker = tokio::spawn({
        let webhook = webhook.clone();
        async move { webhook.copy_parked().await }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        copies.calls.lock().expect("lock").len() >= 2,
        "retried: {:?}",
        copies.calls.lock().expect("lock")
    );
    worker.abort();
}

#[tokio::test]
async fn dry_run_makes_no_copy() {
    let copies = Arc::new(RecordingCopies::default());
    let webhook = webhook(Some(copies.clone()));
    let dry = review_with(|r| r["request"]["dryRun"] = json!(true));
    let (outcome, _) = answer(&webhook, &dry).await;
    assert_eq!(outcome.result, "injected");
    assert!(copies.calls.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn failed_copy_still_admits_with_a_warning() {
    let copies = Arc::new(RecordingCopies {
        fail: true,
        ..RecordingCopies::default()
    });
    let webhook = webhook(Some(copies));
    let (outcome, json) = answer(&webhook, REVIEW_BARE_POD.as_bytes()).await;
    assert_eq!(outcome.result, "injected");
    assert_eq!(json["response"]["allowed"], true);
    let warning = json["response"]["warnings"][0].as_str().expect("a warning");
    assert!(warning.contains("namespace shop"), "{warning}");
    assert!(
        !warning.contains("said no"),
        "API details stay in the log: {warning}"
    );
}

#[tokio::test]
async fn non_pods_and_other_operations_pass_unchanged() {
    let webhook = webhook(None);
    let deployment = review_with(|r| {
        r["request"]["kind"] = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
        r["request"]["object"] =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
    });
    let (outcome, json) = answer(&webhook, &deployment).await;
    assert_eq!(outcome.result, "allowed");
    assert_eq!(json["response"]["allowed"], true);
    assert!(json["response"].get("patch").is_none());
    let update = review_with(|r| r["request"]["operation"] = json!("UPDATE"));
    let (outcome, _) = answer(&webhook, &update).await;
    assert_eq!(outcome.result, "allowed");
}

#[tokio::test]
async fn invalid_objects_are_denied_with_the_uid() {
    let webhook = webhook(None);
    let not_a_pod = review_with(|r| r["request"]["object"]["spec"]["containers"] = json!("web"));
    let (outcome, json) = answer(&webhook, &not_a_pod).await;
    assert_eq!((outcome.result, outcome.reason), ("denied", "invalid-pod"));
    assert_eq!(json["response"]["allowed"], false);
    assert_eq!(
        json["response"]["uid"],
        "8f7c2b1e-3d4a-4c5b-9e6f-1a2b3c4d5e6f"
    );
    assert_eq!(json["response"]["status"]["code"], 400);

    let bad_ports = review_with(|r| {
        r["request"]["object"]["metadata"]["annotations"]["config.sparrow-mesh.io/skip-inbound-ports"] =
            json!("http");
    });
    let (outcome, json) = answer(&webhook, &bad_ports).await;
    assert_eq!(
        (outcome.result, outcome.reason),
        ("denied", "invalid-annotation")
    );
    let message = json["response"]["status"]["message"]
        .as_str()
        .expect("message");
    assert!(
        message.contains("config.sparrow-mesh.io/skip-inbound-ports"),
        "{message}"
    );
}

#[tokio::test]
async fn unreadable_reviews_are_errors() {
    let webhook = webhook(None);
    for (body, want) in [
        (&b"{not json"[..], "json"),
        (&b"[]"[..], "kind"),
        (&br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u","kind":{}}}"#[..], "kind"),
        (&br#"{"apiVersion":"v1","kind":"Pod"}"#[..], "kind"),
        (&br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#[..], "no-request"),
        (&br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7}}"#[..], "json"),
    ] {
        let err = webhook.review(body).await.expect_err("accepted");
        let got = match err {
            BadReview::Json(_) => "json",
            BadReview::WrongKind { .. } => "kind",
            BadReview::NoRequest => "no-request",
            BadReview::Uid(_) => "uid",
        };
        assert_eq!(got, want, "{}", String::from_utf8_lossy(body));
    }
}
