//! `deploy`, `registry update`, `status` and `remove` through the real binary against
//! testkube, checked with testkube's store and request counters and with the real kubectl.

use std::path::PathBuf;
use std::process::Output;

use base64::Engine as _;
use testkube::TestCluster;

struct Env {
    cluster: TestCluster,
    dir: tempfile::TempDir,
}

impl Env {
    async fn start() -> Self {
        Self::with(TestCluster::start().await.expect("testkube"))
    }

    /// What the controller does at start (testkube runs no pod): its keeper makes the
    /// webhook's CA, serving certificate and caBundle.
    async fn keep_certificates(&self) {
        use sparrow_core::webhook_pki::{DEFAULT_LEAF_VALIDITY, Lifetimes};
        sparrow_kube::runtime::webhook_certs::CertKeeper::new(
            self.cluster.client(),
            "sparrow-mesh",
            sparrow_core::tls::service_dns_names("sparrow-mesh"),
            Lifetimes::for_leaf(DEFAULT_LEAF_VALIDITY, std::time::Duration::ZERO),
        )
        .settle()
        .await
        .expect("certificates kept");
    }

    fn with(cluster: TestCluster) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("kubeconfig"), cluster.kubeconfig()).expect("kubeconfig");
        Self { cluster, dir }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Runs sparrowctl with this cluster's kubeconfig, off the async runtime.
    async fn sparrowctl(&self, args: &[&str], stdin: &str) -> Output {
        let kubeconfig = self.kubeconfig();
        let home = self.dir.path().to_path_buf();
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let stdin = stdin.to_owned();
        tokio::task::spawn_blocking(move || {
            assert_cmd::Command::cargo_bin("sparrowctl")
                .expect("binary")
                .env("KUBECONFIG", kubeconfig)
                .env("HOME", home)
                .env_remove("SPARROW_REGISTRY_PASSWORD")
                .args(&args)
                .write_stdin(stdin)
                .output()
                .expect("run sparrowctl")
        })
        .await
        .expect("join")
    }

    async fn deploy(&self, password: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "deploy",
            "--wait=false",
            "--skip-registry-check",
            "--registry-server",
            "127.0.0.1:5000/team/mesh",
            "--registry-username",
            "robot",
            "--registry-password-stdin",
        ];
        args.extend_from_slice(extra);
        self.sparrowctl(&args, &format!("{password}\n")).await
    }

    /// The real kubectl against this cluster (discovery cache isolated in the tempdir).
    async fn kubectl(&self, args: &[&str]) -> Output {
        let kubeconfig = self.kubeconfig();
        let home = self.dir.path().to_path_buf();
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("kubectl")
                .env("KUBECONFIG", kubeconfig)
                .env("HOME", home)
                .args(&args)
                .output()
                .expect("kubectl not found: apt-get install -y kubernetes-client")
        })
        .await
        .expect("join")
    }

    /// A namespace holding a Secret named `sparrow-registry-key` that is not Sparrow's.
    async fn create_foreign_secret(&self, namespace: &str) {
        assert_ok(&self.kubectl(&["create", "namespace", namespace]).await);
        let secret = [
            "-n",
            namespace,
            "create",
            "secret",
            "generic",
            "sparrow-registry-key",
            "--from-literal=token=theirs",
        ];
        assert_ok(&self.kubectl(&secret).await);
    }

    /// Makes the install look like one from before the marker: the label comes off every
    /// part that exists. Returns the non-namespace parts, `(resource, ns, name, Kind ns/name)`.
    async fn strip_markers(&self) -> Vec<(&'static str, &'static str, &'static str, String)> {
        let mut stripped = Vec::new();
        for part in sparrow_core::PARTS {
            let (resource, ns, name) = (
                part.kind.plural(),
                part.namespace("sparrow-mesh").unwrap_or(""),
                part.name("sparrow-mesh"),
            );
            if self.cluster.object(resource, ns, name).is_none() {
                continue;
            }
            let mut args = vec!["label", resource, name, "sparrow-mesh.io/mesh-"];
            if !ns.is_empty() {
                args.extend(["-n", ns]);
            }
            assert_ok(&self.kubectl(&args).await);
            if !part.is_namespace() {
                stripped.push((resource, ns, name, part.describe("sparrow-mesh")));
            }
        }
        stripped
    }

    fn writes(&self) -> u64 {
        self.cluster
            .requests()
            .iter()
            .filter(|((verb, _), _)| {
                matches!(
                    verb.as_str(),
                    "create" | "update" | "patch" | "delete" | "deletecollection"
                )
            })
            .map(|(_, n)| n)
            .sum()
    }

    fn dockerconfigjson(&self, namespace: &str) -> String {
        let secret = self
            .cluster
            .object("secrets", namespace, "sparrow-registry-key")
            .expect("pull secret");
        let data = secret["data"][".dockerconfigjson"].as_str().expect("data");
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .expect("b64"),
        )
        .expect("utf8")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// Every object of the control plane deployed to `sparrow-mesh` with credentials:
/// (resource, namespace or "", name), from the one list of parts.
fn objects() -> Vec<(&'static str, &'static str, &'static str)> {
    sparrow_core::PARTS
        .iter()
        // What deploy writes with credentials and no client CA: not the controller's own
        // certificates, not the client CA's ConfigMap.
        .filter(|p| {
            use sparrow_core::inventory::Presence;
            matches!(p.presence, Presence::Always | Presence::WithCredentials)
        })
        .map(|p| {
            (
                p.kind.plural(),
                p.namespace("sparrow-mesh").unwrap_or(""),
                p.name("sparrow-mesh"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_creates_every_object_with_minimal_requests_and_converges() {
    let env = Env::start().await;
    let output = env.deploy("first-pw", &[]).await;
    assert_ok(&output);
    assert!(
        !text(&output.stdout).contains("first-pw") && !text(&output.stderr).contains("first-pw"),
        "no credential in output"
    );
    for (resource, ns, name) in objects() {
        let object = env
            .cluster
            .object(resource, ns, name)
            .unwrap_or_else(|| panic!("{resource} {ns}/{name} missing"));
        let labels = &object["metadata"]["labels"];
        assert_eq!(
            labels["app.kubernetes.io/part-of"], "sparrow-mesh",
            "{resource} {name}"
        );
        assert_eq!(
            labels["app.kubernetes.io/managed-by"], "sparrowctl",
            "{resource} {name}"
        );
    }
    assert_eq!(
        env.cluster
            .object("secrets", "sparrow-mesh", "sparrow-registry-key")
            .expect("secret")["metadata"]["labels"]["usage"],
        "sparrow-registry-key"
    );
    assert!(
        env.dockerconfigjson("sparrow-mesh")
            .contains(r#""password":"first-pw""#)
    );
    // The minimum: the namespace created, one apply per other object, and one read of each
    // cluster-wide part (whose they are); a new namespace holds no secret to read.
    assert_eq!(
        env.cluster.request_count("patch", "*"),
        0,
        "no wildcard bookkeeping"
    );
    let requests = env.cluster.requests();
    let patches: u64 = requests
        .iter()
        .filter(|((v, _), _)| v == "patch")
        .map(|(_, n)| n)
        .sum();
    let gets: u64 = requests
        .iter()
        .filter(|((v, _), _)| v == "get")
        .map(|(_, n)| n)
        .sum();
    // Nine objects applied (the controller makes its certificates); the webhook configuration
    // read twice: before any write, and for its live caBundle right before it is applied; the
    // client CA's ConfigMap read once (a stored one is kept by a deploy without the flag); the
    // pull secret read once (a stale credential expiry is dropped from it).
    assert_eq!(patches, 9, "{requests:?}");
    assert_eq!(gets, 7, "{requests:?}");
    assert_eq!(env.cluster.request_count("create", "namespaces"), 1);
    assert_eq!(env.cluster.total_requests(), 17, "{requests:?}");

    // The controller makes its certificates (testkube runs no pod: its keeper is run here).
    env.keep_certificates().await;
    let kept = |env: &Env| {
        (
            env.cluster
                .object("secrets", "sparrow-mesh", "sparrow-controller-tls")
                .expect("tls")["data"]
                .clone(),
            env.cluster
                .object(
                    "mutatingwebhookconfigurations",
                    "",
                    "sparrow-sidecar-injector",
                )
                .expect("webhook")["webhooks"][0]["clientConfig"]["caBundle"]
                .clone(),
        )
    };
    let before = kept(&env);
    assert!(before.1.is_string(), "the keeper set caBundle");
    // Deploy again with a new password: same objects, credentials updated, certificate and
    // caBundle kept (deploy renders none and never blanks the controller's).
    let output = env.deploy("second-pw", &[]).await;
    assert_ok(&output);
    assert!(
        env.dockerconfigjson("sparrow-mesh")
            .contains(r#""password":"second-pw""#)
    );
    assert_eq!(
        before,
        kept(&env),
        "certificate and caBundle are the controller's"
    );
    // Another injection mode changes the set of webhooks: the configuration is replaced whole,
    // caBundle still kept.
    assert_ok(&env.deploy("second-pw", &["--disable-auto-inject"]).await);
    let webhook = env
        .cluster
        .object(
            "mutatingwebhookconfigurations",
            "",
            "sparrow-sidecar-injector",
        )
        .expect("webhook");
    let hooks = webhook["webhooks"].as_array().expect("webhooks");
    assert!(
        hooks
            .iter()
            .all(|h| h["clientConfig"]["caBundle"] == before.1),
        "{webhook}"
    );
    assert!(hooks.iter().any(|h| {
        h["name"]
            .as_str()
            .unwrap_or_default()
            .starts_with("namespaces.")
    }));
    assert_eq!(
        env.cluster.objects("secrets", Some("sparrow-mesh")).len(),
        3,
        "the pull secret, the CA and the serving certificate (no controller runs to make the copy key)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_make_no_request_at_all() {
    let env = Env::start().await;
    for args in [
        &[
            "deploy",
            "--registry-server",
            "r.example.com",
            "--registry-username",
            "u",
        ][..],
        &[
            "deploy",
            "--registry-key",
            "k.json",
            "--registry-username",
            "u",
            "--registry-server",
            "r.example.com",
        ],
        &["deploy", "--registry-server", "Bad Server"],
        &["registry", "update", "--registry-password", "p"],
        &["registry", "update"],
        &["remove"],
    ] {
        let output = env.sparrowctl(args, "").await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
    assert_eq!(
        env.cluster.total_requests(),
        0,
        "{:?}",
        env.cluster.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_is_a_clear_error_and_the_next_deploy_succeeds() {
    let env = Env::start().await;
    for (resource, ns, name) in objects() {
        // The namespace is created (deploy made it), then applied on every later deploy.
        let verb = if resource == "namespaces" {
            "create"
        } else {
            "patch"
        };
        env.cluster.fail_next(verb, resource, 1, 500);
        let output = env.deploy("pw", &[]).await;
        assert_eq!(
            output.status.code(),
            Some(1),
            "500 on {resource}: {}",
            text(&output.stdout)
        );
        let stderr = text(&output.stderr);
        let shown = if ns.is_empty() {
            name.to_string()
        } else {
            format!("{ns}/{name}")
        };
        let action = if verb == "create" {
            "creating"
        } else {
            "applying"
        };
        assert!(
            stderr.starts_with(&format!("error: {action} ")) && stderr.contains(&shown),
            "{resource}: {stderr}"
        );
        assert!(stderr.contains("HTTP 500"), "{resource}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        env.cluster.clear_faults();
        assert_ok(&env.deploy("pw", &[]).await);
    }
    // A server too slow for --timeout: a clear error, then success once it answers.
    env.cluster
        .set_latency(std::time::Duration::from_millis(1500));
    let output = env.deploy("pw", &["--timeout", "1s"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("no answer from the API server within 1s"),
        "{}",
        text(&output.stderr)
    );
    env.cluster.set_latency(std::time::Duration::ZERO);
    assert_ok(&env.deploy("pw", &["--timeout", "10s"]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_pull_secret_stops_deploy_and_survives_remove() {
    let env = Env::start().await;
    env.create_foreign_secret("sparrow-mesh").await;
    env.cluster.reset_requests();
    let output = env.deploy("pw", &[]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains(
            "Secret sparrow-mesh/sparrow-registry-key exists and was not created by Sparrow"
        ),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(
        env.writes(),
        0,
        "nothing written: {:?}",
        env.cluster.requests()
    );

    // In another namespace it is left alone by deploy and by remove.
    let env = Env::start().await;
    env.create_foreign_secret("shop").await;
    assert_ok(&env.deploy("pw", &[]).await);
    let output = env.sparrowctl(&["remove", "--yes"], "").await;
    assert_ok(&output);
    assert!(
        text(&output.stdout).contains("Left untouched: Secret shop/sparrow-registry-key"),
        "{}",
        text(&output.stdout)
    );
    let theirs = env
        .cluster
        .object("secrets", "shop", "sparrow-registry-key")
        .expect("user's secret survives");
    assert_eq!(
        theirs["data"]["token"],
        base64::engine::general_purpose::STANDARD.encode("theirs")
    );
}

/// Every namespace meshed: the copies below are made on purpose, not chosen by a webhook.
struct EveryNamespace;

impl sparrow_kube::runtime::copies::MeshedNamespaces for EveryNamespace {
    fn meshed_now(&self, _namespace: &str) -> Option<bool> {
        Some(true)
    }
}

/// Copies made by the controller's own copier (its key made as the controller makes it).
async fn controller_copies(env: &Env, namespaces: &[&str]) {
    use sparrow_kube::runtime::copies::{CopyConfig, EnsureOutcome, PullSecretCopier};
    let client = env.cluster.client();
    let timeout = std::time::Duration::from_secs(10);
    let key = sparrow_kube::runtime::copy_key::ensure_copy_key(&client, "sparrow-mesh", timeout)
        .await
        .expect("copy key");
    let copier = PullSecretCopier::new(
        client,
        CopyConfig::new("sparrow-mesh"),
        key,
        std::sync::Arc::new(EveryNamespace),
        sparrow_kube::runtime::metrics::CopyMetrics::default(),
    );
    let watches = copier.clone();
    let watching = tokio::spawn(async move { watches.run_watches().await });
    tokio::time::timeout(timeout, copier.synced())
        .await
        .expect("copier synced");
    for ns in namespaces {
        assert_eq!(
            copier.ensure_copy(ns).await.expect("copy"),
            EnsureOutcome::Created
        );
    }
    watching.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_deletes_every_proven_copy_and_no_labelled_lookalike_and_is_idempotent() {
    let env = Env::start().await;
    assert_ok(&env.deploy("pw", &[]).await);
    for ns in ["shop", "payments", "tenant"] {
        assert_ok(&env.kubectl(&["create", "namespace", ns]).await);
    }
    controller_copies(&env, &["shop", "payments"]).await;
    // A tenant's own Secret labelled and annotated exactly like a copy: not ours.
    assert_ok(
        &env.kubectl(&[
            "-n",
            "tenant",
            "create",
            "secret",
            "docker-registry",
            "sparrow-registry-key",
            "--docker-server=127.0.0.1:5000",
            "--docker-username=tenant",
            "--docker-password=theirs",
        ])
        .await,
    );
    assert_ok(
        &env.kubectl(&[
            "-n",
            "tenant",
            "label",
            "secret",
            "sparrow-registry-key",
            "usage=sparrow-registry-key",
        ])
        .await,
    );
    assert_ok(
        &env.kubectl(&[
            "-n",
            "tenant",
            "annotate",
            "secret",
            "sparrow-registry-key",
            "sparrow-mesh.io/source=sparrow-mesh/sparrow-registry-key",
            "sparrow-mesh.io/proof=00ff",
        ])
        .await,
    );
    let listed = env
        .kubectl(&[
            "get",
            "secrets",
            "-l",
            "usage=sparrow-registry-key",
            "-A",
            "--no-headers",
        ])
        .await;
    assert_eq!(
        text(&listed.stdout).lines().count(),
        4,
        "source, two copies and the lookalike: {}",
        text(&listed.stdout)
    );

    let output = env.sparrowctl(&["remove", "--yes"], "").await;
    assert_ok(&output);
    let stdout = text(&output.stdout);
    for id in [
        "Secret payments/sparrow-registry-key",
        "Secret shop/sparrow-registry-key",
        "Secret sparrow-mesh/sparrow-registry-key",
        "Secret sparrow-mesh/sparrow-copy-key",
        "MutatingWebhookConfiguration sparrow-sidecar-injector",
        "Namespace sparrow-mesh",
    ] {
        assert!(
            stdout.contains(&format!("deleted {id}")),
            "{id} not reported: {stdout}"
        );
    }
    let webhook_line = stdout
        .find("deleted MutatingWebhookConfiguration")
        .expect("webhook");
    let deployment_line = stdout.find("deleted Deployment").expect("deployment");
    let secrets_line = stdout.find("deleted Secret shop/").expect("copy");
    let namespace_line = stdout.find("deleted Namespace").expect("namespace");
    assert!(
        webhook_line < deployment_line
            && deployment_line < secrets_line
            && secrets_line < namespace_line,
        "order: {stdout}"
    );

    assert!(
        stdout.contains("Left untouched: Secret tenant/sparrow-registry-key (labelled like a copy of this mesh's, but the controller's proof is not on it)."),
        "{stdout}"
    );
    let theirs = env
        .cluster
        .object("secrets", "tenant", "sparrow-registry-key")
        .expect("the tenant's secret survives");
    assert!(
        theirs["data"][".dockerconfigjson"]
            .as_str()
            .is_some_and(|b64| {
                let json = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap_or_default();
                String::from_utf8_lossy(&json).contains("\"username\":\"tenant\"")
            }),
        "unchanged: {theirs}"
    );
    let listed = env
        .kubectl(&[
            "get",
            "secrets",
            "-l",
            "usage=sparrow-registry-key",
            "-A",
            "--no-headers",
        ])
        .await;
    assert_ok(&listed);
    assert_eq!(
        text(&listed.stdout).lines().count(),
        1,
        "only the lookalike is left: {}",
        text(&listed.stdout)
    );
    for (resource, ns, name) in objects() {
        assert!(
            env.cluster.object(resource, ns, name).is_none(),
            "{resource} {ns}/{name} left behind"
        );
    }
    // Twice: still success, and it says so.
    env.cluster.reset_requests();
    let output = env.sparrowctl(&["remove", "--yes"], "").await;
    assert_ok(&output);
    assert!(
        text(&output.stdout)
            .contains("Nothing installed: no Sparrow Mesh in namespace sparrow-mesh"),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(env.writes(), 0, "{:?}", env.cluster.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_needs_confirmation_without_a_terminal() {
    let env = Env::start().await;
    for args in [&["remove"][..], &["remove", "--adopt-unmarked"]] {
        let output = env.sparrowctl(args, "y\n").await;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            text(&output.stderr).contains("stdin is not a terminal; pass --yes"),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
    assert_eq!(env.cluster.total_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_update_rotates_only_the_source() {
    let env = Env::start().await;
    let output = env
        .sparrowctl(
            &[
                "registry",
                "update",
                "--registry-username",
                "robot2",
                "--registry-password-stdin",
            ],
            "pw2\n",
        )
        .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains(
            "Sparrow has no registry secret in namespace sparrow-mesh: run `sparrowctl deploy`"
        ),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(env.writes(), 0);

    assert_ok(&env.deploy("pw1", &[]).await);
    env.cluster.reset_requests();
    let output = env
        .sparrowctl(
            &[
                "registry",
                "update",
                "--skip-registry-check",
                "--registry-username",
                "robot2",
                "--registry-password-stdin",
            ],
            "pw2\n",
        )
        .await;
    assert_ok(&output);
    assert!(
        text(&output.stdout).contains("the controller will refresh 0 copies"),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(
        env.dockerconfigjson("sparrow-mesh"),
        r#"{"auths":{"127.0.0.1:5000":{"username":"robot2","password":"pw2","auth":"cm9ib3QyOnB3Mg=="}}}"#,
        "the stored registry is kept when --registry-server is not given"
    );
    assert_eq!(
        env.writes(),
        1,
        "only the source secret is written: {:?}",
        env.cluster.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_without_credentials_and_exits_1_when_unhealthy() {
    let env = Env::start().await;
    let output = env.sparrowctl(&["status"], "").await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stdout).contains("controller: not deployed"),
        "{}",
        text(&output.stdout)
    );

    assert_ok(&env.deploy("hunter2-secret", &[]).await);
    env.keep_certificates().await;
    let output = env.sparrowctl(&["status", "-o", "json"], "").await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "no controller pod runs in testkube"
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(report["webhook"]["present"], true);
    assert_eq!(report["webhook"]["caBundleMatches"], true);
    assert_eq!(report["registry"]["server"], "127.0.0.1:5000");
    assert_eq!(report["registry"]["credential"], "username-password");
    assert_eq!(report["copies"], 0);
    let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(
        !all.contains("hunter2-secret")
            && !all.contains(
                &base64::engine::general_purpose::STANDARD.encode("robot:hunter2-secret")
            ),
        "{all}"
    );
    assert!(
        text(&output.stderr)
            .starts_with("error: Sparrow Mesh in namespace sparrow-mesh is not healthy")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_timeout_names_the_image_that_cannot_be_pulled() {
    let env = Env::start().await;
    assert_ok(&env.kubectl(&["create", "namespace", "sparrow-mesh"]).await);
    let event = serde_json::json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "sparrow-controller-abc.1", "namespace": "sparrow-mesh"},
        "involvedObject": {"kind": "Pod", "name": "sparrow-controller-abc", "namespace": "sparrow-mesh"},
        "reason": "Failed", "type": "Warning",
        "message": "Failed to pull image \"127.0.0.1:5000/team/mesh/sparrow-controller:0.1.0\": unauthorized: authentication required",
    });
    let path = env.dir.path().join("event.json");
    std::fs::write(&path, event.to_string()).expect("write");
    assert_ok(
        &env.kubectl(&["create", "-f", path.to_str().expect("utf8")])
            .await,
    );
    let output = env
        .sparrowctl(
            &[
                "deploy",
                "--timeout",
                "2s",
                "--skip-registry-check",
                "--registry-server",
                "127.0.0.1:5000/team/mesh",
            ],
            "",
        )
        .await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("is not available after 2s"), "{stderr}");
    assert!(stderr.contains("image 127.0.0.1:5000/team/mesh/sparrow-controller:0.1.0 cannot be pulled from registry 127.0.0.1:5000"), "{stderr}");
    assert!(stderr.contains("unauthorized"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_name_the_server_and_context() {
    let env = Env::start().await;
    let addr = env.cluster.addr();
    env.cluster.stop().await;
    let output = env.sparrowctl(&["status", "--timeout", "3s"], "").await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot reach the Kubernetes API server at https://{addr}"
        )) && stderr.contains("(context testkube)"),
        "{stderr}"
    );

    let output = env.sparrowctl(&["status", "--context", "nope"], "").await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("cannot use the kubeconfig (context nope)"),
        "{}",
        text(&output.stderr)
    );

    let output = env
        .sparrowctl(&["status", "--kubeconfig", "/nonexistent/kubeconfig"], "")
        .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("/nonexistent/kubeconfig"),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_waits_for_the_controller_then_for_the_api_server_to_reach_the_webhook() {
    // testkube plays the deployment controller (the Deployment rolls out) but nothing serves
    // the controller's Service: the API server's calls to the webhook fail, and deploy says so.
    let env = Env::with(
        TestCluster::builder()
            .ready_deployments()
            .start()
            .await
            .expect("testkube"),
    );
    let output = env
        .sparrowctl(
            &[
                "deploy",
                "--timeout",
                "3s",
                "--skip-registry-check",
                "--registry-server",
                "127.0.0.1:5000/team/mesh",
            ],
            "",
        )
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("controller available"), "{stdout}");
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "error: the API server does not reach the webhook through Service sparrow-mesh/sparrow-controller after 3s: "
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("pods in namespaces that opted into the mesh are refused until it does"),
        "{stderr}"
    );
    assert!(
        env.cluster
            .objects("pods", None)
            .iter()
            .all(|pod| !pod["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .starts_with("sparrow-webhook-probe")),
        "the probe is a dry run: no pod stored"
    );
    env.keep_certificates().await;
    let output = env.sparrowctl(&["status"], "").await;
    let stdout = text(&output.stdout);
    assert!(stdout.contains("✓ controller: 1/1 ready"), "{stdout}");
    assert!(
        stdout.contains("✓ webhook: present, its caBundle verifies the serving certificate"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  serving certificate: expires "),
        "{stdout}"
    );
    assert!(
        stdout.contains("  webhook callers: unauthenticated: anyone who reaches port 8443 is answered; see deploy --webhook-client-ca"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_update_reads_and_checks_credentials_before_contacting_the_cluster() {
    let env = Env::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let not_json = dir.path().join("key.txt");
    std::fs::write(&not_json, "not a key").expect("write");
    let key = not_json.to_str().expect("utf8");
    for (args, stdin, needle) in [
        (
            vec!["registry", "update", "--registry-key", key],
            "",
            "is not a JSON object",
        ),
        (
            vec![
                "registry",
                "update",
                "--registry-username",
                "robot:pw",
                "--registry-password-stdin",
            ],
            "x\n",
            "contains ':'",
        ),
        (
            vec![
                "registry",
                "update",
                "--registry-username",
                "robot",
                "--registry-password-stdin",
            ],
            "\n",
            "the registry password is empty",
        ),
    ] {
        let output = env.sparrowctl(&args, stdin).await;
        assert_ne!(output.status.code(), Some(0), "{args:?}");
        assert!(
            text(&output.stderr).contains(needle),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
    assert_eq!(
        env.cluster.total_requests(),
        0,
        "{:?}",
        env.cluster.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_into_an_existing_namespace_never_adopts_it_and_remove_keeps_it() {
    let env = Env::start().await;
    assert_ok(&env.kubectl(&["create", "namespace", "team"]).await);
    assert_ok(
        &env.kubectl(&[
            "-n",
            "team",
            "create",
            "configmap",
            "app",
            "--from-literal=a=b",
        ])
        .await,
    );
    let output = env.deploy("pw", &["-n", "team"]).await;
    assert_ok(&output);
    assert!(
        text(&output.stdout).contains("using the existing Namespace team (not created by Sparrow"),
        "{}",
        text(&output.stdout)
    );
    let namespace = env.cluster.object("namespaces", "", "team").expect("team");
    assert!(
        namespace["metadata"]["labels"]
            .get("sparrow-mesh.io/mesh")
            .is_none(),
        "an existing namespace is never marked as ours: {namespace}"
    );
    let output = env.sparrowctl(&["remove", "-n", "team", "--yes"], "").await;
    assert_ok(&output);
    assert!(
        text(&output.stdout).contains("Namespace team was kept: Sparrow did not create it."),
        "{}",
        text(&output.stdout)
    );
    assert!(env.cluster.object("namespaces", "", "team").is_some());
    assert!(env.cluster.object("configmaps", "team", "app").is_some());
    assert!(
        env.cluster
            .object("deployments", "team", "sparrow-controller")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_with_a_namespace_holding_no_control_plane_deletes_nothing() {
    let env = Env::start().await;
    assert_ok(&env.deploy("pw", &[]).await);
    env.cluster.reset_requests();
    for namespace in ["kube-system", "sparrow-msh", "default"] {
        let output = env
            .sparrowctl(&["remove", "-n", namespace, "--yes"], "")
            .await;
        assert_eq!(output.status.code(), Some(1), "{namespace}");
        let stderr = text(&output.stderr);
        assert_eq!(
            stderr.trim_end(),
            format!(
                "error: no Sparrow control plane in namespace {namespace}: nothing was deleted (Sparrow is installed in namespace sparrow-mesh: sparrowctl remove -n sparrow-mesh)"
            )
        );
    }
    for namespace in ["Bad_Name", "x-", ""] {
        let output = env
            .sparrowctl(&["remove", "--yes", "--namespace", namespace], "")
            .await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{namespace:?}: {}",
            text(&output.stderr)
        );
        assert!(text(&output.stderr).contains("-n/--namespace: invalid namespace"));
    }
    assert_eq!(env.writes(), 0, "{:?}", env.cluster.requests());
    for (resource, ns, name) in objects() {
        assert!(
            env.cluster.object(resource, ns, name).is_some(),
            "{resource} {ns}/{name} must survive"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_mesh_is_refused_before_any_write() {
    let env = Env::start().await;
    assert_ok(&env.deploy("pw", &[]).await);
    env.cluster.reset_requests();
    let output = env.deploy("pw", &["-n", "other"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains(
            "ClusterRole sparrow-controller belongs to the Sparrow mesh in namespace sparrow-mesh"
        ),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(env.writes(), 0, "{:?}", env.cluster.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_keeps_a_namespace_that_holds_someone_elses_objects() {
    let env = Env::start().await;
    assert_ok(&env.deploy("pw", &[]).await);
    assert_ok(
        &env.kubectl(&[
            "-n",
            "sparrow-mesh",
            "create",
            "configmap",
            "notes",
            "--from-literal=a=b",
        ])
        .await,
    );
    let output = env.sparrowctl(&["remove", "--yes"], "").await;
    assert_ok(&output);
    assert!(
        text(&output.stdout).contains(
            "Namespace sparrow-mesh was kept: it holds objects Sparrow did not create: ConfigMap sparrow-mesh/notes."
        ),
        "{}",
        text(&output.stdout)
    );
    assert!(
        env.cluster
            .object("configmaps", "sparrow-mesh", "notes")
            .is_some()
    );
    assert!(
        env.cluster
            .object("secrets", "sparrow-mesh", "sparrow-registry-key")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_that_never_comes_up_blocks_no_pod_creation() {
    let env = Env::start().await;
    let output = env
        .sparrowctl(
            &[
                "deploy",
                "--timeout",
                "2s",
                "--skip-registry-check",
                "--registry-server",
                "127.0.0.1:5000/team/mesh",
            ],
            "",
        )
        .await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "the webhook configuration was not applied, so pod creation is not blocked anywhere"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("no controller pod was created"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // Plain progress lines when stdout is not a terminal, including the wait.
    assert!(
        text(&output.stdout).contains("… waiting for the controller to become available"),
        "{}",
        text(&output.stdout)
    );
    assert!(
        env.cluster
            .object(
                "mutatingwebhookconfigurations",
                "",
                "sparrow-sidecar-injector"
            )
            .is_none()
    );
    // `status` says where pod creation is blocked: nowhere.
    let output = env.sparrowctl(&["status"], "").await;
    assert!(
        text(&output.stdout).contains("✓ admission: pod creation is not blocked anywhere"),
        "{}",
        text(&output.stdout)
    );

    // With the webhook in place (--wait=false) and no controller, status names the
    // namespaces that opted in, and only those.
    assert_ok(&env.kubectl(&["create", "namespace", "shop"]).await);
    assert_ok(
        &env.kubectl(&[
            "label",
            "namespace",
            "shop",
            "injector.sparrow-mesh.io/auto-inject=enabled",
        ])
        .await,
    );
    assert_ok(&env.deploy("pw", &[]).await);
    let output = env.sparrowctl(&["status", "-o", "json"], "").await;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(report["admission"]["blocked"], true);
    assert_eq!(
        report["admission"]["blockedNamespaces"],
        serde_json::json!(["shop"])
    );
}

const LEFT_UNMARKED: &str = "(carries no mesh marker, as from an install before the marker: --adopt-unmarked would remove it).";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_marker_install_is_named_and_left_then_adopt_unmarked_lists_and_deletes_it() {
    let env = Env::start().await;
    assert_ok(&env.deploy("pw", &[]).await);
    env.keep_certificates().await;
    let stripped = env.strip_markers().await;
    let adoptable: Vec<_> = stripped
        .iter()
        .filter(|(_, _, name, _)| *name != "sparrow-registry-key")
        .collect();
    assert_eq!(adoptable.len(), 10, "{stripped:?}");
    env.cluster.reset_requests();

    // Without the flag: nothing deleted, as before, and each lookalike named with the way out.
    let output = env.sparrowctl(&["remove", "--yes"], "").await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stderr).trim_end(),
        "error: no Sparrow control plane in namespace sparrow-mesh: nothing was deleted"
    );
    let stdout = text(&output.stdout);
    for (_, _, _, object) in &adoptable {
        assert!(
            stdout.contains(&format!("Left untouched: {object} {LEFT_UNMARKED}")),
            "{object}: {stdout}"
        );
    }
    assert_eq!(
        stdout.matches("--adopt-unmarked would remove it").count(),
        10,
        "{stdout}"
    );
    assert!(
        stdout.contains("Left untouched: Secret sparrow-mesh/sparrow-registry-key (carries no mesh marker, and a Secret sparrow-registry-key is deleted only when Sparrow can prove it made it)."),
        "{stdout}"
    );
    assert_eq!(env.writes(), 0, "{:?}", env.cluster.requests());

    // With it: the list first, then the deletions.
    let output = env
        .sparrowctl(&["remove", "--adopt-unmarked", "--yes"], "")
        .await;
    assert_ok(&output);
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let header = lines
        .iter()
        .position(|l| *l == "remove --adopt-unmarked will delete, in this order:")
        .unwrap_or_else(|| panic!("no list: {stdout}"));
    let first_deletion = lines
        .iter()
        .position(|l| l.starts_with("✓ deleted "))
        .unwrap_or_else(|| panic!("nothing deleted: {stdout}"));
    let listed = &lines[header + 1..first_deletion];
    assert_eq!(
        listed.first().copied(),
        Some(
            "  MutatingWebhookConfiguration sparrow-sidecar-injector (unmarked, from an install before the marker)"
        ),
        "the webhook goes first: {stdout}"
    );
    assert_eq!(listed.len(), 10, "{stdout}");
    for (resource, ns, name, object) in &adoptable {
        assert!(
            listed.contains(
                &format!("  {object} (unmarked, from an install before the marker)").as_str()
            ),
            "{object} listed: {stdout}"
        );
        assert!(
            stdout.contains(&format!("✓ deleted {object}\n")),
            "{object}: {stdout}"
        );
        assert!(
            env.cluster.object(resource, ns, name).is_none(),
            "{object} deleted"
        );
    }
    // Never the namespace it did not create, never an unproven registry Secret.
    assert!(
        stdout.contains("Namespace sparrow-mesh was kept: Sparrow did not create it."),
        "{stdout}"
    );
    assert!(
        env.cluster
            .object("namespaces", "", "sparrow-mesh")
            .is_some()
    );
    assert!(
        env.cluster
            .object("secrets", "sparrow-mesh", "sparrow-registry-key")
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopt_unmarked_stops_at_an_object_marked_for_another_mesh() {
    let env = Env::start().await;
    assert_ok(&env.deploy("pw", &[]).await);
    env.strip_markers().await;
    let mark = [
        "label",
        "clusterroles",
        "sparrow-controller",
        "sparrow-mesh.io/mesh=other",
    ];
    assert_ok(&env.kubectl(&mark).await);
    env.cluster.reset_requests();
    let output = env
        .sparrowctl(&["remove", "--adopt-unmarked", "--yes"], "")
        .await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stdout));
    assert_eq!(
        text(&output.stderr).trim_end(),
        "error: ClusterRole sparrow-controller carries the marker of the Sparrow mesh in namespace other, not sparrow-mesh: --adopt-unmarked removes only objects with no marker; nothing was deleted (that mesh is removed with sparrowctl remove -n other)"
    );
    assert!(
        !text(&output.stdout).contains("will delete"),
        "nothing is listed for deletion: {}",
        text(&output.stdout)
    );
    // Without the flag, as before: that mesh is named.
    let output = env.sparrowctl(&["remove", "--yes"], "").await;
    assert_eq!(
        text(&output.stderr).trim_end(),
        "error: no Sparrow control plane in namespace sparrow-mesh: nothing was deleted (Sparrow is installed in namespace other: sparrowctl remove -n other)"
    );
    assert_eq!(env.writes(), 0, "{:?}", env.cluster.requests());
    for (resource, ns, name) in [
        ("clusterroles", "", "sparrow-controller"),
        ("deployments", "sparrow-mesh", "sparrow-controller"),
        (
            "mutatingwebhookconfigurations",
            "",
            "sparrow-sidecar-injector",
        ),
    ] {
        assert!(
            env.cluster.object(resource, ns, name).is_some(),
            "{resource} {name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_made_lookalike_outlives_remove_and_is_adopted_by_name_of_its_namespace() {
    let env = Env::start().await;
    assert_ok(&env.deploy("pw", &[]).await);
    // The binding made by hand, as an install before the marker did.
    assert_ok(
        &env.kubectl(&["delete", "clusterrolebinding", "sparrow-controller"])
            .await,
    );
    // From a file: kubectl's imperative create speaks protobuf, which testkube decodes only
    // for a few kinds.
    let file = env.dir.path().join("binding.yaml");
    std::fs::write(
        &file,
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: sparrow-controller
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: sparrow-controller
subjects:
- kind: ServiceAccount
  name: sparrow-controller
  namespace: sparrow-mesh
",
    )
    .expect("binding.yaml");
    let binding = ["create", "-f", file.to_str().expect("utf-8 path")];
    assert_ok(&env.kubectl(&binding).await);
    let output = env.sparrowctl(&["remove", "--yes"], "").await;
    assert_ok(&output);
    assert!(
        text(&output.stdout).contains(&format!(
            "Left untouched: ClusterRoleBinding sparrow-controller {LEFT_UNMARKED}"
        )),
        "{}",
        text(&output.stdout)
    );
    assert!(
        env.cluster
            .object("clusterroles", "", "sparrow-controller")
            .is_none()
    );
    assert!(
        env.cluster
            .object("clusterrolebindings", "", "sparrow-controller")
            .is_some()
    );
    // Its namespace gone, the binding still names it: that ties it to -n sparrow-mesh.
    let output = env
        .sparrowctl(&["remove", "--adopt-unmarked", "--yes"], "")
        .await;
    assert_ok(&output);
    assert!(
        text(&output.stdout).contains(
            "remove --adopt-unmarked will delete, in this order:\n  ClusterRoleBinding sparrow-controller (unmarked, from an install before the marker)\n"
        ),
        "{}",
        text(&output.stdout)
    );
    assert!(
        env.cluster
            .object("clusterrolebindings", "", "sparrow-controller")
            .is_none()
    );
    // From another -n it is not tied to, it is named and kept.
    assert_ok(&env.kubectl(&binding).await);
    let output = env
        .sparrowctl(&["remove", "-n", "team", "--adopt-unmarked", "--yes"], "")
        .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stdout).contains("Left untouched: ClusterRoleBinding sparrow-controller (carries no mesh marker, and nothing ties it to namespace team: it may belong to an install in another namespace (remove with that -n))."),
        "{}",
        text(&output.stdout)
    );
    assert!(
        env.cluster
            .object("clusterrolebindings", "", "sparrow-controller")
            .is_some()
    );
}

/// Now plus `days` and half an hour further from now (so the whole hours shown stay the same
/// while the test runs), as RFC 3339 UTC and as seconds since the epoch.
fn days_from_now(days: i64) -> (String, i64) {
    let at =
        time::OffsetDateTime::now_utc().unix_timestamp() + days * 86_400 + days.signum() * 1_800;
    (sparrow_core::expiry::rfc3339(at), at)
}

/// A JWT (unsigned for this purpose: only its `exp` is read) expiring at `exp`.
fn jwt(exp: i64) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk",
        b64(r#"{"alg":"RS256","typ":"JWT"}"#),
        b64(&format!(r#"{{"sub":"robot","exp":{exp}}}"#))
    )
}

fn annotations_of_source(env: &Env) -> serde_json::Value {
    env.cluster
        .object("secrets", "sparrow-mesh", "sparrow-registry-key")
        .expect("pull secret")["metadata"]["annotations"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_expiry_in_the_past_is_refused_with_nothing_written() {
    let env = Env::start().await;
    let past = "--registry-credential-expires=2020-01-01";
    for (args, stdin) in [
        (
            &[
                "deploy",
                "--skip-registry-check",
                "--registry-server",
                "127.0.0.1:5000/team/mesh",
                "--registry-username",
                "robot",
                "--registry-password-stdin",
                past,
            ][..],
            "hunter2-secret\n",
        ),
        (
            &[
                "registry",
                "update",
                "--registry-username",
                "robot",
                "--registry-password-stdin",
                past,
            ],
            "hunter2-secret\n",
        ),
    ] {
        let output = env.sparrowctl(args, stdin).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert_eq!(
            text(&output.stderr),
            "error: --registry-credential-expires 2020-01-01T00:00:00Z is in the past: the credential has already expired; get a new one and give its expiry date\n"
        );
        assert!(output.stdout.is_empty());
    }
    let output = env
        .sparrowctl(
            &[
                "deploy",
                "--registry-server",
                "127.0.0.1:5000/team/mesh",
                "--registry-credential-expires",
                "2099-01-01",
            ],
            "",
        )
        .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr)
            .contains("--registry-credential-expires needs the credential it describes"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(
        env.cluster.total_requests(),
        0,
        "{:?}",
        env.cluster.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_warns_within_the_window_and_fails_once_the_credential_expired() {
    let env = Env::start().await;
    let (soon, _) = days_from_now(3);
    let flag = format!("--registry-credential-expires={soon}");
    assert_ok(&env.deploy("hunter2-secret", &[&flag]).await);
    let annotations = annotations_of_source(&env);
    assert_eq!(
        annotations["sparrow-mesh.io/credential-expires"],
        soon.as_str(),
        "{annotations}"
    );
    assert_eq!(
        annotations["sparrow-mesh.io/credential-expires-source"], "flag",
        "{annotations}"
    );
    env.keep_certificates().await;

    let output = env.sparrowctl(&["status", "-o", "json"], "").await;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(report["registry"]["expiry"]["state"], "warning");
    assert_eq!(report["registry"]["expiry"]["expires"], soon.as_str());
    let warning = format!(
        "the registry credential in Secret sparrow-mesh/sparrow-registry-key expires {soon} (in 3d 0h): give a new one with sparrowctl registry update before then"
    );
    assert_eq!(report["warnings"], serde_json::json!([warning]));
    let problems = report["problems"].as_array().expect("problems");
    assert!(
        !problems
            .iter()
            .any(|p| p.as_str().unwrap_or_default().contains("credential")),
        "a warning is not a problem: {problems:?}"
    );
    // A longer window than is left is still a warning; a shorter one is fine.
    let output = env
        .sparrowctl(&["status", "--expiry-warning", "1d"], "")
        .await;
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(&format!(
            "  credential: expires {soon} (in 3d 0h; from --registry-credential-expires)"
        )),
        "{stdout}"
    );
    assert!(
        !stdout.contains("warning: the registry credential"),
        "{stdout}"
    );
    let output = env.sparrowctl(&["status"], "").await;
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(&format!("! credential: expires {soon} (in 3d 0h")),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("warning: {warning}")), "{stdout}");

    // Written by hand (as an operator would for a credential that lapsed): status fails.
    let (past, _) = days_from_now(-1);
    let annotation = format!("sparrow-mesh.io/credential-expires={past}");
    let annotate = [
        "-n",
        "sparrow-mesh",
        "annotate",
        "--overwrite",
        "secret",
        "sparrow-registry-key",
        annotation.as_str(),
    ];
    assert_ok(&env.kubectl(&annotate).await);
    let output = env.sparrowctl(&["status"], "").await;
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    let problem = format!(
        "problem: the registry credential in Secret sparrow-mesh/sparrow-registry-key expired {past} (1d 0h ago): new meshed pods and controller pods cannot pull; give a new one with sparrowctl registry update"
    );
    assert!(stdout.contains(&problem), "{stdout}");
    assert!(
        stdout.contains(&format!("✗ credential: expired {past}")),
        "{stdout}"
    );
    let all = format!("{stdout}{}", text(&output.stderr));
    assert!(!all.contains("hunter2-secret"), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_passwords_exp_shows_in_status_and_the_token_nowhere() {
    let env = Env::start().await;
    let (at_text, at) = days_from_now(90);
    let token = jwt(at);
    let deployed = env.deploy(&token, &[]).await;
    assert_ok(&deployed);
    let annotations = annotations_of_source(&env);
    assert_eq!(
        annotations["sparrow-mesh.io/credential-expires"],
        at_text.as_str(),
        "{annotations}"
    );
    assert_eq!(
        annotations["sparrow-mesh.io/credential-expires-source"], "jwt",
        "{annotations}"
    );
    env.keep_certificates().await;
    let text_status = env.sparrowctl(&["status"], "").await;
    let json_status = env.sparrowctl(&["status", "-o", "json"], "").await;
    let stdout = text(&text_status.stdout);
    assert!(
        stdout.contains(&format!(
            "  credential: expires {at_text} (in 90d 0h; from the password's JWT exp claim)"
        )),
        "{stdout}"
    );
    let report: serde_json::Value = serde_json::from_slice(&json_status.stdout).expect("json");
    assert_eq!(report["registry"]["expiry"]["source"], "jwt");
    assert_eq!(report["registry"]["expiry"]["state"], "ok");

    // A new credential without a known expiry drops the old one's.
    let update = env
        .sparrowctl(
            &[
                "registry",
                "update",
                "--skip-registry-check",
                "--registry-username",
                "robot",
                "--registry-password-stdin",
            ],
            "plain-password\n",
        )
        .await;
    assert_ok(&update);
    assert!(
        text(&update.stdout).contains("No expiry is known for the credential"),
        "{}",
        text(&update.stdout)
    );
    let annotations = annotations_of_source(&env);
    assert!(
        annotations
            .get("sparrow-mesh.io/credential-expires")
            .is_none()
            && annotations
                .get("sparrow-mesh.io/credential-expires-source")
                .is_none(),
        "{annotations}"
    );
    let after = env.sparrowctl(&["status"], "").await;
    assert!(
        text(&after.stdout).contains("  credential: no expiry known"),
        "{}",
        text(&after.stdout)
    );

    let payload = token.split('.').nth(1).expect("payload").to_owned();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("robot:{token}"));
    for output in [&deployed, &text_status, &json_status, &update, &after] {
        let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
        for needle in [token.as_str(), payload.as_str(), basic.as_str()] {
            assert!(!all.contains(needle), "the token leaked: {all}");
        }
    }
}

/// The controller Deployment's args and imagePullSecrets names, and the names of the Secrets
/// its Role may read beyond Sparrow's own.
fn controller_pulls(env: &Env) -> (Vec<String>, Vec<String>, Vec<String>) {
    let deployment = env
        .cluster
        .object("deployments", "sparrow-mesh", "sparrow-controller")
        .expect("Deployment");
    let strings = |value: &serde_json::Value| -> Vec<String> {
        value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().or_else(|| v["name"].as_str()).map(str::to_owned))
            .collect()
    };
    let args = strings(&deployment["spec"]["template"]["spec"]["containers"][0]["args"]);
    let pull = strings(&deployment["spec"]["template"]["spec"]["imagePullSecrets"]);
    let role = env
        .cluster
        .object("roles", "sparrow-mesh", "sparrow-controller")
        .expect("Role");
    let readable = role["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["verbs"] == serde_json::json!(["get", "list", "watch"]))
        .flat_map(|r| strings(&r["resourceNames"]))
        .collect();
    (args, pull, readable)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_update_switches_to_a_secret_another_tool_keeps_and_back() {
    let env = Env::with(
        TestCluster::builder()
            .ready_deployments()
            .start()
            .await
            .expect("testkube"),
    );
    assert_ok(&env.deploy("pw1", &[]).await);
    for (ns, name) in [("sparrow-mesh", "ecr-pull"), ("sparrow-mesh", "vault-pull")] {
        let create = [
            "-n",
            ns,
            "create",
            "secret",
            "docker-registry",
            name,
            "--docker-server=127.0.0.1:5000",
            "--docker-username=ecr",
            "--docker-password=ECR-PASSWORD",
        ];
        assert_ok(&env.kubectl(&create).await);
    }
    // A copy in a meshed namespace, as the controller makes them (testkube runs no pod).
    assert_ok(&env.kubectl(&["create", "namespace", "app"]).await);
    let copy = sparrow_core::manifests::pull_secret("app", b"{\"auths\":{}}".to_vec());
    sparrow_kube::apply::apply_object(
        &env.cluster.client(),
        &sparrow_core::Object::Secret(copy),
        std::time::Duration::from_secs(10),
    )
    .await
    .expect("copy");
    let external = |name: &str| {
        env.cluster
            .object("secrets", "sparrow-mesh", name)
            .expect("external Secret")
    };
    let (ecr, vault) = (external("ecr-pull"), external("vault-pull"));
    let mut printed = String::new();

    // static -> external
    env.cluster.reset_requests();
    let output = env
        .sparrowctl(
            &[
                "registry",
                "update",
                "--skip-registry-check",
                "--registry-secret",
                "ecr-pull",
            ],
            "",
        )
        .await;
    assert_ok(&output);
    printed.push_str(&text(&output.stdout));
    let stdout = text(&output.stdout);
    for line in [
        "✓ Secret sparrow-mesh/ecr-pull holds a username-password for 127.0.0.1:5000",
        "✓ applied Role sparrow-mesh/sparrow-controller: the controller may read Secret sparrow-mesh/ecr-pull",
        "✓ patched Deployment sparrow-mesh/sparrow-controller: it copies and pulls with Secret sparrow-mesh/ecr-pull",
        "✓ the new controller is available",
        "✓ deleted Secret sparrow-mesh/sparrow-registry-key",
        "Registry credentials of the mesh in namespace sparrow-mesh switched to Secret sparrow-mesh/ecr-pull",
    ] {
        assert!(stdout.contains(line), "{line:?} in {stdout}");
    }
    let (args, pull, readable) = controller_pulls(&env);
    assert!(
        args.contains(&"--registry-secret=ecr-pull".to_owned()),
        "{args:?}"
    );
    assert_eq!(pull, ["ecr-pull"]);
    assert_eq!(readable, ["ecr-pull"]);
    assert!(
        env.cluster
            .object("secrets", "sparrow-mesh", "sparrow-registry-key")
            .is_none(),
        "the own source is deleted"
    );
    assert!(
        env.cluster
            .object("secrets", "app", "sparrow-registry-key")
            .is_some()
    );
    assert_eq!(
        external("ecr-pull"),
        ecr,
        "the external Secret is never written"
    );
    assert_eq!(env.cluster.request_count("delete", "secrets"), 1);
    assert_eq!(env.cluster.request_count("patch", "deployments"), 1);
    assert_eq!(env.writes(), 3, "{:?}", env.cluster.requests());

    // Deploy renders what the switch patched: its apply leaves the pod template as it is.
    let rendered = env
        .sparrowctl(
            &[
                "deploy",
                "--dry-run",
                "-o",
                "json",
                "--registry-server",
                "127.0.0.1:5000/team/mesh",
                "--registry-secret",
                "ecr-pull",
            ],
            "",
        )
        .await;
    assert_ok(&rendered);
    let list: serde_json::Value = serde_json::from_slice(&rendered.stdout).expect("json");
    let deployment = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("Deployment");
    let live = env
        .cluster
        .object("deployments", "sparrow-mesh", "sparrow-controller")
        .expect("Deployment");
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["args"],
        deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    );

    // external -> another external
    env.cluster.reset_requests();
    let output = env
        .sparrowctl(
            &[
                "registry",
                "update",
                "--skip-registry-check",
                "--registry-secret",
                "vault-pull",
            ],
            "",
        )
        .await;
    assert_ok(&output);
    printed.push_str(&text(&output.stdout));
    let (args, pull, readable) = controller_pulls(&env);
    assert!(
        args.contains(&"--registry-secret=vault-pull".to_owned()),
        "{args:?}"
    );
    assert!(
        !args.contains(&"--registry-secret=ecr-pull".to_owned()),
        "{args:?}"
    );
    assert_eq!(pull, ["vault-pull"]);
    assert_eq!(readable, ["vault-pull"]);
    assert_eq!(env.cluster.request_count("delete", "secrets"), 0);
    assert_eq!(
        (external("ecr-pull"), external("vault-pull")),
        (ecr.clone(), vault.clone())
    );

    // external -> static: the own source is written first, nothing is deleted.
    env.cluster.reset_requests();
    let output = env
        .sparrowctl(
            &[
                "registry",
                "update",
                "--skip-registry-check",
                "--registry-username",
                "robot2",
                "--registry-password-stdin",
            ],
            "pw2\n",
        )
        .await;
    assert_ok(&output);
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("✓ wrote Secret sparrow-mesh/sparrow-registry-key with the given credential (username-password) for 127.0.0.1:5000"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Secret sparrow-mesh/vault-pull was not touched"),
        "{stdout}"
    );
    assert_eq!(
        env.dockerconfigjson("sparrow-mesh"),
        r#"{"auths":{"127.0.0.1:5000":{"username":"robot2","password":"pw2","auth":"cm9ib3QyOnB3Mg=="}}}"#
    );
    assert_eq!(
        annotations_of_source(&env)["sparrow-mesh.io/credential-kind"],
        "static"
    );
    let (args, pull, readable) = controller_pulls(&env);
    assert!(
        !args.iter().any(|a| a.starts_with("--registry-secret")),
        "{args:?}"
    );
    assert_eq!(pull, ["sparrow-registry-key"]);
    assert!(readable.is_empty(), "{readable:?}");
    assert_eq!(env.cluster.request_count("delete", "secrets"), 0);
    assert_eq!((external("ecr-pull"), external("vault-pull")), (ecr, vault));
    assert!(
        env.cluster
            .object("secrets", "app", "sparrow-registry-key")
            .is_some()
    );
    printed.push_str(&text(&output.stdout));
    printed.push_str(&text(&output.stderr));
    assert!(
        !printed.contains("pw2") && !printed.contains("ECR-PASSWORD"),
        "no credential printed: {printed}"
    );

    // A plugin mesh is switched by deploy: refused, nothing written.
    let plugin = r#"[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--credential-provider-config=/etc/sparrow/credential-provider/config.yaml"}]"#;
    assert_ok(
        &env.kubectl(&[
            "-n",
            "sparrow-mesh",
            "patch",
            "deployment",
            "sparrow-controller",
            "--type=json",
            "-p",
            plugin,
        ])
        .await,
    );
    for args in [
        &[
            "registry",
            "update",
            "--skip-registry-check",
            "--registry-secret",
            "ecr-pull",
        ][..],
        &[
            "registry",
            "update",
            "--skip-registry-check",
            "--registry-username",
            "robot3",
            "--registry-password-stdin",
        ][..],
    ] {
        env.cluster.reset_requests();
        let output = env.sparrowctl(args, "pw3\n").await;
        assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
        let stderr = text(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("switching from or to a plugin is done with `sparrowctl deploy`"),
            "{stderr}"
        );
        assert_eq!(env.writes(), 0, "{:?}", env.cluster.requests());
    }
}
