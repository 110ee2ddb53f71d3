//! Bad input gets the status a real API server returns, never a panic or a hang.

mod common;

use common::raw;
use serde_json::json;
use testkube::TestCluster;

const SECRETS: &str = "/api/v1/namespaces/default/secrets";

#[tokio::test]
async fn malformed_bodies_are_400() {
    let cluster = TestCluster::start().await.expect("start");
    let (code, body, _) = raw(
        &cluster,
        "POST",
        SECRETS,
        "application/json",
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "BadRequest");
    let (code, _, _) = raw(
        &cluster,
        "POST",
        SECRETS,
        "application/yaml",
        b"a: [unclosed".to_vec(),
    )
    .await;
    assert_eq!(code, 400);
    let wrong_kind = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    let (code, body, _) = raw(
        &cluster,
        "POST",
        SECRETS,
        "application/json",
        wrong_kind.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains("kind")),
        "{body}"
    );
    let wrong_version =
        json!({"apiVersion": "apps/v1", "kind": "Secret", "metadata": {"name": "x"}});
    let (code, _, _) = raw(
        &cluster,
        "POST",
        SECRETS,
        "application/json",
        wrong_version.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, 400);
    let (code, _, _) = raw(
        &cluster,
        "POST",
        SECRETS,
        "application/vnd.kubernetes.protobuf",
        b"garbage".to_vec(),
    )
    .await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn unknown_resources_and_objects_are_404() {
    let cluster = TestCluster::start().await.expect("start");
    let (code, body, _) = raw(
        &cluster,
        "GET",
        "/api/v1/nodes",
        "application/json",
        Vec::new(),
    )
    .await;
    assert_eq!((code, body["reason"].as_str()), (404, Some("NotFound")));
    let (code, _, _) = raw(
        &cluster,
        "GET",
        "/apis/batch/v1/jobs",
        "application/json",
        Vec::new(),
    )
    .await;
    assert_eq!(code, 404);
    let (code, body, _) = raw(
        &cluster,
        "GET",
        "/apis/apps/v1/namespaces/default/deployments/web",
        "application/json",
        Vec::new(),
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(body["message"], "deployments.apps \"web\" not found");
    assert_eq!(body["details"]["group"], "apps");
}

#[tokio::test]
async fn unsupported_media_types_are_415() {
    let cluster = TestCluster::start().await.expect("start");
    let (code, body, _) = raw(&cluster, "POST", SECRETS, "text/plain", b"hello".to_vec()).await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
    let (code, _, _) = raw(
        &cluster,
        "PATCH",
        &format!("{SECRETS}/x"),
        "application/json",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(code, 415);
}

#[tokio::test]
async fn bodies_over_three_mebibytes_are_413() {
    let cluster = TestCluster::start().await.expect("start");
    let big = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "big"},
        "stringData": {"k": "x".repeat(3 * 1024 * 1024)}});
    let (code, body, _) = raw(
        &cluster,
        "POST",
        SECRETS,
        "application/json",
        big.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, 413, "{body}");
    // The server still answers afterwards.
    let (code, _, _) = raw(&cluster, "GET", SECRETS, "application/json", Vec::new()).await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn invalid_objects_are_422() {
    let cluster = TestCluster::start().await.expect("start");
    let bad_name = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "Bad_Name"}});
    let (code, body, _) = raw(
        &cluster,
        "POST",
        SECRETS,
        "application/json",
        bad_name.to_string().into_bytes(),
    )
    .await;
    assert_eq!((code, body["reason"].as_str()), (422, Some("Invalid")));
    assert_eq!(body["details"]["causes"][0]["field"], "metadata.name");
    let opaque =
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque"});
    let (code, created, _) = raw(
        &cluster,
        "POST",
        SECRETS,
        "application/json",
        opaque.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, 201);
    let mut retyped = created.clone();
    retyped["type"] = json!("kubernetes.io/dockerconfigjson");
    retyped["data"] = json!({".dockerconfigjson": "e30="});
    let (code, body, _) = raw(
        &cluster,
        "PUT",
        &format!("{SECRETS}/s"),
        "application/json",
        retyped.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, 422);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("field is immutable")),
        "{body}"
    );
}

#[tokio::test]
async fn discovery_and_openapi_answer_kubectl_shapes() {
    let cluster = TestCluster::start().await.expect("start");
    let (code, groups, _) = raw(&cluster, "GET", "/apis", "application/json", Vec::new()).await;
    assert_eq!(code, 200);
    assert_eq!(groups["kind"], "APIGroupList");
    let (_, core, _) = raw(&cluster, "GET", "/api/v1", "application/json", Vec::new()).await;
    let cm = core["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"] == "configmaps")
        .cloned()
        .expect("configmaps");
    assert_eq!(cm["shortNames"], json!(["cm"]));
    let (_, index, _) = raw(
        &cluster,
        "GET",
        "/openapi/v3",
        "application/json",
        Vec::new(),
    )
    .await;
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("url")
        .to_string();
    let (code, doc, _) = raw(&cluster, "GET", &url, "application/json", Vec::new()).await;
    assert_eq!(code, 200);
    assert_eq!(
        doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]["x-kubernetes-group-version-kind"]
            ["kind"],
        "Deployment"
    );
}
