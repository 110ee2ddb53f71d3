//! The real `ecr-credential-provider` (k8s.io/cloud-provider-aws, pinned in
//! cluster/ecr-credential-provider) against moto's ECR API: on the host, inside the node's
//! namespace through the node's address, and run by the node's own kubelet for a pod whose image
//! (the plugin itself) is named in ECR and pulled from the node's registry, then in that pod.

use std::time::Duration;

use serde_json::{Value, json};
use sparrow_testnode::{
    MOTO_ECR_REGISTRY, Moto, Node, TestNamespace, ecr_credential_provider, moto_ecr_password,
    run_credential_provider, run_credential_provider_on, wait_until,
};

const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mesh/sparrow-proxy:0.1.0";

/// What the plugin answers for moto's token: the registry host as the only key, user `AWS`, and
/// no cacheDuration, because moto's `expiresAt` (2015-01-01) is past and the plugin halves the
/// remaining life only when it is positive (the kubelet then applies its defaultCacheDuration).
fn assert_motos_credential(response: &Value) {
    assert_eq!(
        response,
        &json!({
            "kind": "CredentialProviderResponse",
            "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
            "cacheKeyType": "Registry",
            "auth": { MOTO_ECR_REGISTRY: { "username": "AWS", "password": moto_ecr_password() } }
        })
    );
    assert!(response.get("cacheDuration").is_none(), "{response}");
}

fn plugin() -> std::path::PathBuf {
    ecr_credential_provider().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_plugin_answers_with_motos_token() {
    let moto = Moto::start().unwrap_or_else(|e| panic!("{e}"));
    let response = run_credential_provider(&plugin(), IMAGE, &Moto::aws_env(&moto.endpoint()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_motos_credential(&response);
}

#[test]
fn the_plugin_fails_when_the_endpoint_does_not_answer() {
    // The same request with moto gone: an error exit, never an empty or anonymous answer.
    let endpoint = {
        let moto = Moto::start().unwrap_or_else(|e| panic!("{e}"));
        moto.endpoint()
    };
    let mut env = Moto::aws_env(&endpoint);
    // The SDK retries a refused connection with backoff; one attempt keeps the test short.
    env.push(("AWS_MAX_ATTEMPTS".into(), "1".into()));
    let error = run_credential_provider(&plugin(), IMAGE, &env)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("connection refused"), "{error}");
}

#[test]
fn moto_on_the_node_answers_on_the_node_address_and_on_the_host() {
    let node = Node::require();
    let moto = Moto::start_on(node).unwrap_or_else(|e| panic!("{e}"));
    let pod_endpoint = moto
        .pod_endpoint()
        .expect("a moto on the node has a pod endpoint");
    assert_eq!(
        pod_endpoint,
        format!("http://{}:{}", node.node_ip, moto.port())
    );
    // Inside the namespace, through the address pods route to (what the controller's pod uses).
    let inside = run_credential_provider_on(node, &plugin(), IMAGE, &Moto::aws_env(&pod_endpoint))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_motos_credential(&inside);
    // On the host, through the forwarder (what a run of `sparrowctl deploy` uses).
    let host = run_credential_provider(&plugin(), IMAGE, &Moto::aws_env(&moto.endpoint()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_motos_credential(&host);
}

/// The moto port a kubelet credential-provider config points `ecr-credential-provider` at.
fn moto_port_of(config: &str) -> Option<u16> {
    let (_, rest) = config.split_once("http://127.0.0.1:")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The whole chain on the real node, as the controller will use it: the kubelet pulls an image
/// named in ECR (the plugin itself, packed as an image) with the credential its
/// `ecr-credential-provider` got from moto, and that image, run in a pod, gets moto's token
/// through the node's address.
#[test]
fn the_kubelet_pulls_an_ecr_image_with_the_plugins_credential_and_the_plugin_runs_in_a_pod() {
    let node = Node::require();
    let config_path = node.credential_providers.as_ref().unwrap_or_else(|| {
        panic!(
            "the node's kubelet has no credential providers: bring it up with \
             SPARROW_NODE_CREDENTIAL_PROVIDER_CONFIG=<(scripts/local-cluster.sh ecr-provider-config PORT) \
             scripts/local-cluster.sh up (scripts/test.sh does)"
        )
    });
    let config = std::fs::read_to_string(config_path)
        .unwrap_or_else(|e| panic!("{}: {e}", config_path.display()));
    let port = moto_port_of(&config)
        .unwrap_or_else(|| panic!("no moto endpoint in {}", config_path.display()));
    let moto = Moto::start_on_port(node, Some(port)).unwrap_or_else(|e| panic!("{e}"));
    let pod_endpoint = moto
        .pod_endpoint()
        .expect("a moto on the node has a pod endpoint");

    let ns = TestNamespace::create(node, "ecr");
    let creds = node.ecr_registry_user().expect("registry user AWS");
    // An image no other test pulls: the kubelet records pulls by image ID (KEP-2535), so pulling
    // a preloaded image's content (the pause image) under this name would make Never-policy pods
    // of its own name fail with ErrImageNeverPull for the rest of the node's life.
    let repo = format!("{}/ecr-credential-provider", ns.name);
    let packed = node
        .pack_program(&plugin())
        .unwrap_or_else(|e| panic!("{e}"));
    node.push_layout(&packed.path().join("image"), &repo, &creds)
        .expect("push");
    let image = node.ecr_image(&repo);
    assert!(
        image.starts_with(&format!("{MOTO_ECR_REGISTRY}/")),
        "{image}"
    );

    // No imagePullSecrets: the only credential for the ECR name is the one the kubelet gets from
    // the plugin, and the registry refuses anonymous pulls. The pod reads the request on stdin.
    let request = json!({
        "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
        "kind": "CredentialProviderRequest",
        "image": IMAGE,
    });
    let mut args = vec![
        "-n".to_owned(),
        ns.name.clone(),
        "run".into(),
        "plugin".into(),
        "-i".into(),
        "--quiet".into(),
        "--restart=Never".into(),
        "--image-pull-policy=Always".into(),
        "--pod-running-timeout=5m".into(),
        format!("--image={image}"),
    ];
    args.extend(
        Moto::aws_env(&pod_endpoint)
            .iter()
            .map(|(k, v)| format!("--env={k}={v}")),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stdout = node.kubectl_stdin(&args, Some(&request.to_string()));
    let response: Value = stdout
        .lines()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("the plugin's pod printed no response: {stdout}"));
    assert_motos_credential(&response);

    let pod = ns.get_json(&["pod", "plugin"]);
    let status = &pod["status"]["containerStatuses"][0];
    assert_eq!(status["state"]["terminated"]["exitCode"], 0, "{status}");
    // The kubelet's own word that it pulled this reference (the container status names the
    // image by the first name of its digest, which an earlier run on this node may have pushed).
    let pulled = format!("Successfully pulled image \"{image}\"");
    wait_until(
        &format!("the kubelet's Pulled Event for {image}"),
        Duration::from_secs(60),
        || {
            let events = ns.get_json(&[
                "events",
                "--field-selector",
                "involvedObject.kind=Pod,involvedObject.name=plugin,reason=Pulled",
            ]);
            let items = events["items"].as_array()?;
            items
                .iter()
                .any(|e| e["message"].as_str().is_some_and(|m| m.contains(&pulled)))
                .then_some(())
        },
    );
    // Two kinds of caller in moto's log: the kubelet's plugin from the namespace's loopback, the
    // pod's plugin from the pod's own address.
    let pod_ip = pod["status"]["podIP"].as_str().unwrap_or_default();
    let log = moto.log();
    assert!(
        log.contains("127.0.0.1 - - [") && log.contains(&format!("{pod_ip} - - [")),
        "moto answered the kubelet and the pod {pod_ip}: {log}"
    );
}

#[test]
fn the_moto_port_is_read_from_the_provider_config() {
    let config = "env:\n- { name: AWS_ENDPOINT_URL_ECR, value: \"http://127.0.0.1:20117\" }\n";
    assert_eq!(moto_port_of(config), Some(20117));
    assert_eq!(moto_port_of("providers: []\n"), None);
}
