//! Kubelet credential-provider plugins on the real node, with the project's test plugin (it
//! speaks the kubelet's protocol, `credentialprovider.kubelet.k8s.io/v1`): configured into the
//! node's kubelet it pulls an image; the same binary then drives Sparrow. `deploy` runs it once
//! to check and seed the pull secret, the controller runs it in its pod (copied there from an
//! image with busybox's `cp`), an injected pod pulls the sidecar with the copy; the plugin's
//! credential is rotated and the old one revoked, the copy follows and a new pod pulls; the
//! plugin made to fail keeps the last good credential, and the Event, the metric and status say
//! so. The plugin reads what it answers over HTTP from a server in the node's namespace, so the
//! test changes it for the kubelet, `deploy` and the controller's pod alike.

mod real_node;

use std::path::{Path, PathBuf};
use std::time::Instant;

use real_node::{LIMIT, Mesh, secret_user, sparrowctl};
use serde_json::{Value, json};
use sparrow_testnode::{
    Credentials, Moto, Node, Served, TestNamespace, ecr_credential_provider, plugin_dir, wait_until,
};

const PLUGIN: &str = "sparrow-test-credential-provider";

/// The static test plugin `scripts/test.sh` builds (`$SPARROW_TEST_PLUGIN`).
fn test_plugin() -> PathBuf {
    let path = std::env::var_os("SPARROW_TEST_PLUGIN")
        .map(PathBuf::from)
        .expect("SPARROW_TEST_PLUGIN names the static test plugin (scripts/test.sh builds it)");
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

/// The port of the credential server the node's kubelet asks for the test plugin's answer
/// (its `--credential-file http://127.0.0.1:PORT/credential`). Read as text: the kubelet's
/// config also holds ecr-credential-provider with `defaultCacheDuration: 0s`, which the
/// kubelet takes and Sparrow's own reading of a config refuses.
fn kubelet_plugin_port(node: &Node) -> u16 {
    let path = node.credential_providers.as_ref().expect(
        "the node's kubelet runs no credential providers: bring it up as scripts/test.sh does",
    );
    let text = std::fs::read_to_string(path).expect("the kubelet's provider config");
    let (_, provider) = text
        .split_once(&format!("name: {PLUGIN}"))
        .expect("the kubelet runs the test plugin");
    let (_, after) = provider
        .split_once("http://127.0.0.1:")
        .expect("its credential URL");
    after
        .split('/')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("a port")
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write a served file");
}

/// A pod pulling `image` (always) without imagePullSecrets of its own; waits until it runs.
fn running_pod(ns: &TestNamespace, name: &str, image: &str, sidecar: bool) {
    Node::require().apply(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": ns.name },
        "spec": { "containers": [{ "name": "app", "image": image, "imagePullPolicy": "Always" }] }
    }));
    wait_until(&format!("pod {name} running"), LIMIT, || {
        let pod = ns.get_json(&["pod", name]);
        let statuses = pod["status"]["containerStatuses"].as_array()?;
        let inits = pod["status"]["initContainerStatuses"].as_array();
        let injected =
            pod["metadata"]["annotations"]["injector.sparrow-mesh.io/status"] == "injected";
        (statuses
            .iter()
            .chain(inits.into_iter().flatten())
            .all(|c| c["ready"] == true)
            && injected == sidecar)
            .then_some(())
    });
}

#[test]
fn the_kubelet_pulls_with_the_project_plugin() {
    let node = Node::require();
    let served = tempfile::tempdir().expect("tempdir");
    let _server = Served::serve_directory(node, Some(kubelet_plugin_port(node)), served.path())
        .unwrap_or_else(|e| panic!("{e}"));
    let creds = Credentials::random("robot-kubelet-plugin");
    node.registry_user(&creds).expect("registry user");
    write(
        served.path(),
        "credential",
        &format!("{}:{}", creds.user, creds.password),
    );
    let ns = TestNamespace::create(node, "kubelet-plugin");
    let image = node
        .push_image("httpecho", &format!("t-kubelet-plugin/{}", ns.name), &creds)
        .expect("push");
    // No imagePullSecrets and a registry that refuses anonymous pulls: only the plugin's answer
    // can pull it.
    running_pod(&ns, "pulled-by-the-plugin", &image, false);
    let _ = node.delete_registry_user(&creds.user);
}

/// The controller's `/metrics`, through the API server's proxy to its pod.
fn controller_metrics(node: &Node) -> String {
    let pods = node.get_json(&[
        "-n",
        "sparrow-mesh",
        "pods",
        "-l",
        "app.kubernetes.io/name=sparrow-controller",
    ]);
    let name = pods["items"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["status"]["phase"] == "Running"))
        .and_then(|p| p["metadata"]["name"].as_str())
        .unwrap_or_default()
        .to_owned();
    let path = format!("/api/v1/namespaces/sparrow-mesh/pods/{name}:9990/proxy/metrics");
    node.kubectl_output(&["get", "--raw", &path], None)
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn source(node: &Node) -> Value {
    node.get_json(&["-n", "sparrow-mesh", "secret", "sparrow-registry-key"])
}

#[test]
fn sparrow_keeps_its_pull_secret_fresh_with_the_plugin() {
    let node = Node::require();
    let served = tempfile::tempdir().expect("tempdir");
    let server =
        Served::serve_directory(node, None, served.path()).unwrap_or_else(|e| panic!("{e}"));
    let base = format!("http://{}:{}", node.node_ip, server.port());
    let bin_dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(test_plugin(), bin_dir.path().join(PLUGIN)).expect("symlink");
    let config_file = tempfile::NamedTempFile::new().expect("config file");
    let mut plugin_image = String::new();

    let mesh = Mesh::deploy_with_plugin(node, "plugin", |mesh| {
        write(
            served.path(),
            "credential",
            &format!("{}:{}", mesh.creds.user, mesh.creds.password),
        );
        let busybox = Path::new("/bin/busybox");
        let packed = node
            .pack_files(
                "/bin/cp",
                &[
                    (busybox, "/bin/cp"),
                    (&test_plugin(), &format!("/credential-providers/{PLUGIN}")),
                ],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let repo = mesh
            .registry
            .split_once('/')
            .map(|(_, path)| format!("{path}/credential-providers"))
            .expect("a path");
        plugin_image = node
            .push_layout(&packed.path().join("image"), &repo, &mesh.creds)
            .expect("push the plugin image");
        let match_images = mesh
            .registry
            .rsplit_once('/')
            .map(|(r, _)| r)
            .unwrap_or_default();
        std::fs::write(
            config_file.path(),
            format!(
                "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n\
                 - name: {PLUGIN}\n  matchImages: [\"{match_images}\"]\n  defaultCacheDuration: 1m\n  \
                 apiVersion: credentialprovider.kubelet.k8s.io/v1\n  \
                 args: [--credential-file, \"{base}/credential\", --fault-file, \"{base}/fault\"]\n"
            ),
        )
        .expect("write the config");
        [
            "--registry-server",
            &mesh.registry,
            "--registry-credential-provider",
            &config_file.path().to_string_lossy(),
            "--credential-provider-image",
            &plugin_image,
            "--credential-provider-bin-dir",
            &bin_dir.path().to_string_lossy(),
            "--pull-policy",
            "Always",
        ]
        .map(str::to_owned)
        .to_vec()
    });

    // The controller runs the plugin itself: the source records its runs.
    wait_until("the controller's first plugin run", LIMIT, || {
        let annotations = source(node)["metadata"]["annotations"].clone();
        (annotations["sparrow-mesh.io/credential-kind"] == "plugin"
            && annotations["sparrow-mesh.io/refreshed-at"].is_string())
        .then_some(())
    });
    let out = sparrowctl(node, &["status"], None);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("kept fresh by the controller's credential-provider plugin"),
        "{report}"
    );
    assert!(report.contains("refreshed 20"), "{report}");

    // An injected pod pulls its app and the sidecar with the copy.
    let ns = TestNamespace::create(node, "plugin");
    ns.kubectl(&[
        "label",
        "namespace",
        &ns.name,
        "injector.sparrow-mesh.io/auto-inject=enabled",
    ]);
    let app = node
        .push_image(
            "httpecho",
            &format!("t-plugin-app/{}", ns.name),
            &mesh.creds,
        )
        .expect("push the app");
    running_pod(&ns, "first", &app, true);

    // Rotated in the plugin's backend; the old user revoked once the copy follows.
    let next = Credentials::random("robot-plugin-next");
    node.registry_user(&next).expect("registry user");
    let rotated = Instant::now();
    write(
        served.path(),
        "credential",
        &format!("{}:{}", next.user, next.password),
    );
    wait_until("the copy to hold the rotated credential", LIMIT, || {
        let copy = ns.get_json(&["secret", "sparrow-registry-key"]);
        (secret_user(&copy).as_deref() == Some(next.user.as_str())).then_some(())
    });
    eprintln!(
        "the copy followed the plugin's rotation in {:?}",
        rotated.elapsed()
    );
    node.delete_registry_user(&mesh.creds.user)
        .expect("revoke the old user");
    running_pod(&ns, "second", &app, true);

    // Deployed again without credential flags: the controller keeps running the plugin.
    let images = real_node::mesh_images();
    let again = real_node::sparrowctl_ok(
        node,
        &[
            "deploy",
            "--images-from",
            &images.to_string_lossy(),
            "--registry-server",
            &mesh.registry,
            "--registry-ca",
            &node.registry_ca.to_string_lossy(),
            "--pull-policy",
            "Always",
            "--skip-registry-check",
        ],
        None,
    );
    assert!(
        again.contains(
            "keeps running the credential-provider plugin sparrow-test-credential-provider"
        ),
        "{again}"
    );
    let deployment = node.get_json(&["-n", "sparrow-mesh", "deployment", "sparrow-controller"]);
    assert!(
        deployment
            .to_string()
            .contains("--credential-provider=sparrow-test-credential-provider"),
        "the plugin still runs"
    );

    // The plugin fails: the last good credential stays; Event, metric and status say so.
    write(served.path(), "fault", "fail");
    let event = wait_until("a CredentialRefreshFailed Event", LIMIT, || {
        let events = node.get_json(&["-n", "sparrow-mesh", "events"]);
        events["items"].as_array()?.iter().find_map(|e| {
            (e["reason"] == "CredentialRefreshFailed")
                .then(|| e["message"].as_str().unwrap_or_default().to_owned())
        })
    });
    assert!(event.contains("fault injected: fail"), "{event}");
    assert!(!event.contains(&next.password), "{event}");
    let metrics = wait_until("the failure counted", LIMIT, || {
        let text = controller_metrics(node);
        text.contains("sparrow_credential_refresh_total{outcome=\"failure\"}")
            .then_some(text)
    });
    assert!(
        metrics.contains("sparrow_credential_refresh_total{outcome=\"success\"}"),
        "{metrics}"
    );
    let out = sparrowctl(node, &["status"], None);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        report.contains("the credential-provider plugin failed at"),
        "{report}"
    );
    assert!(!report.contains(&next.password), "{report}");
    let copy = ns.get_json(&["secret", "sparrow-registry-key"]);
    assert_eq!(
        secret_user(&copy).as_deref(),
        Some(next.user.as_str()),
        "the last good one stays"
    );
    std::fs::remove_file(served.path().join("fault")).expect("fault off");
    let _ = node.delete_registry_user(&next.user);
    drop(mesh);
}

/// The real ecr-credential-provider in the controller's pod against moto (the local AWS API)
/// for a mesh whose images are named in ECR (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/...`, which
/// the node resolves to its own registry): the token it gets is written, copied and pulled
/// with. moto's token never changes (and says it expired in 2015), so this proves the plugin's
/// exchange end to end, not a rotation; the test plugin above proves rotation.
#[test]
fn the_real_ecr_credential_provider_keeps_the_pull_secret_of_a_mesh_in_ecr() {
    let node = Node::require();
    let moto = Moto::start_on(node).unwrap_or_else(|e| panic!("{e}"));
    let endpoint = moto
        .pod_endpoint()
        .expect("moto on the node has a pod endpoint");
    let aws = node.ecr_registry_user().expect("registry user AWS");
    let ecr = ecr_credential_provider().unwrap_or_else(|e| panic!("{e}"));
    let config_file = tempfile::NamedTempFile::new().expect("config file");

    let mesh = Mesh::deploy_with_plugin(node, "ecr", |mesh| {
        let path = mesh
            .registry
            .split_once('/')
            .map(|(_, p)| p)
            .expect("a path");
        let packed = node
            .pack_files(
                "/bin/cp",
                &[
                    (Path::new("/bin/busybox"), "/bin/cp"),
                    (&ecr, "/credential-providers/ecr-credential-provider"),
                ],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        node.push_layout(
            &packed.path().join("image"),
            &format!("{path}/credential-providers"),
            &mesh.creds,
        )
        .expect("push the plugin image");
        std::fs::write(
            config_file.path(),
            format!(
                "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n\
                 - name: ecr-credential-provider\n  matchImages: [\"*.dkr.ecr.*.amazonaws.com\"]\n  \
                 defaultCacheDuration: 12h\n  apiVersion: credentialprovider.kubelet.k8s.io/v1\n  env:\n  \
                 - {{name: AWS_ENDPOINT_URL_ECR, value: \"{endpoint}\"}}\n  \
                 - {{name: AWS_ACCESS_KEY_ID, value: testing}}\n  \
                 - {{name: AWS_SECRET_ACCESS_KEY, value: testing}}\n  \
                 - {{name: AWS_REGION, value: us-east-1}}\n"
            ),
        )
        .expect("write the config");
        let server = format!("{}/{path}", node.ecr_registry);
        [
            "--registry-server",
            &server,
            "--registry-credential-provider",
            &config_file.path().to_string_lossy(),
            "--credential-provider-image",
            &format!("{server}/credential-providers:1"),
            "--credential-provider-bin-dir",
            &plugin_dir()
                .expect("the node's plugin directory")
                .to_string_lossy(),
            // The ECR name resolves only in containerd's hosts.toml, not for a client on the
            // host: deploy's own run of the plugin is the check here.
            "--skip-registry-check",
        ]
        .map(str::to_owned)
        .to_vec()
    });

    wait_until(
        "the controller's first run of ecr-credential-provider",
        LIMIT,
        || {
            let source = source(node);
            (source["metadata"]["annotations"]["sparrow-mesh.io/refreshed-at"].is_string()
                && secret_user(&source).as_deref() == Some("AWS"))
            .then_some(())
        },
    );
    let ns = TestNamespace::create(node, "ecr-mesh");
    ns.kubectl(&[
        "label",
        "namespace",
        &ns.name,
        "injector.sparrow-mesh.io/auto-inject=enabled",
    ]);
    let repo = format!("t-ecr-app/{}", ns.name);
    node.push_image("httpecho", &repo, &aws)
        .expect("push the app");
    // The kubelet's own ecr-credential-provider asks a moto that is not running: only the copy
    // of the pull secret the controller wrote pulls the ECR-named app and sidecar.
    running_pod(&ns, "in-ecr", &node.ecr_image(&repo), true);
    let copy = ns.get_json(&["secret", "sparrow-registry-key"]);
    assert_eq!(secret_user(&copy).as_deref(), Some("AWS"));
    assert!(
        moto.log().contains("POST"),
        "moto answered the controller's plugin: {}",
        moto.log()
    );
    drop(mesh);
}
