//! Drives the real test plugin (`sparrow-test-credential-provider`) through `run`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sparrow_core::RegistryServer;
use sparrow_core::credential_provider::{
    CacheKeyType, CredentialProviderConfig, Provider, pull_secret,
};
use sparrow_credential_provider::{Limits, RunError, run};

const PLUGIN: &str = "test-provider";
const IMAGE: &str = "registry.example.com:5000/mesh/sparrow-proxy:v1";

/// A bin dir holding the test plugin as `test-provider`, with its credential and fault files.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_sparrow-test-credential-provider"),
            dir.path().join(PLUGIN),
        )
        .expect("symlink the plugin");
        std::fs::write(dir.path().join("credential"), "robot:s3cret-password\n").expect("write");
        Self { dir }
    }

    fn bin_dir(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn fault(&self, fault: &str) {
        std::fs::write(self.file("fault"), fault).expect("write the fault");
    }

    /// The provider, from a config as a user writes it, with `args` after the usual ones.
    fn provider(&self, args: &[&str], extra: &str) -> Provider {
        let mut all = vec![
            "--credential-file".to_owned(),
            self.file("credential").display().to_string(),
            "--fault-file".to_owned(),
            self.file("fault").display().to_string(),
            "--pid-file".to_owned(),
            self.file("pid").display().to_string(),
        ];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        let config = format!(
            r#"{{"apiVersion":"kubelet.config.k8s.io/v1","kind":"CredentialProviderConfig","providers":[{{"name":"{PLUGIN}","matchImages":["registry.example.com:5000"],"defaultCacheDuration":"1h","apiVersion":"credentialprovider.kubelet.k8s.io/v1","args":{}{extra}}}]}}"#,
            serde_json::to_string(&all).expect("json")
        );
        let config = CredentialProviderConfig::parse(&config).expect("valid config");
        config.providers[0].clone()
    }

    /// True while the last run's plugin process exists (a zombie counts).
    fn plugin_process_exists(&self) -> bool {
        let pid = std::fs::read_to_string(self.file("pid")).expect("the plugin wrote its pid");
        Path::new("/proc").join(pid.trim()).exists()
    }
}

/// Long enough for the plugin to start and write its pid on a loaded machine; the other
/// tests keep the default minute, so that a slow start is never taken for a hang.
fn short() -> Limits {
    Limits {
        timeout: Duration::from_secs(2),
        ..Limits::default()
    }
}

async fn error(fixture: &Fixture, provider: &Provider, limits: &Limits) -> String {
    run(fixture.bin_dir(), provider, IMAGE, None, limits)
        .await
        .expect_err("the plugin misbehaves")
        .to_string()
}

#[test]
fn the_default_limits_are_the_kubelets_minute_and_one_mib() {
    assert_eq!(
        Limits::default(),
        Limits {
            timeout: Duration::from_secs(60),
            max_output: 1 << 20
        }
    );
}

#[tokio::test]
async fn a_registry_answer_becomes_the_pull_secret() {
    let fixture = Fixture::new();
    let provider = fixture.provider(&["--cache-duration", "10m"], "");
    let response = run(
        fixture.bin_dir(),
        &provider,
        IMAGE,
        None,
        &Limits::default(),
    )
    .await
    .expect("answer");
    assert_eq!(response.cache_key_type, CacheKeyType::Registry);
    assert_eq!(response.cache_duration, Some(Duration::from_secs(600)));
    assert_eq!(
        response.auth.keys().collect::<Vec<_>>(),
        ["registry.example.com:5000"]
    );
    let server = RegistryServer::parse("registry.example.com:5000/mesh").expect("server");
    let secret = pull_secret(&response, &server, &[IMAGE.to_owned()]).expect("secret");
    assert_eq!(
        String::from_utf8(secret).expect("utf-8"),
        r#"{"auths":{"registry.example.com:5000":{"username":"robot","password":"s3cret-password","auth":"cm9ib3Q6czNjcmV0LXBhc3N3b3Jk"}}}"#
    );
    assert!(!fixture.plugin_process_exists());
}

#[tokio::test]
async fn an_image_answer_is_keyed_by_the_repository_and_the_default_lifetime_applies() {
    let fixture = Fixture::new();
    let provider = fixture.provider(&["--cache-key-type", "Image"], "");
    let response = run(
        fixture.bin_dir(),
        &provider,
        IMAGE,
        None,
        &Limits::default(),
    )
    .await
    .expect("answer");
    assert_eq!(response.cache_key_type, CacheKeyType::Image);
    assert_eq!(
        response.auth.keys().collect::<Vec<_>>(),
        ["registry.example.com:5000/mesh/sparrow-proxy"]
    );
    assert_eq!(response.cache_duration, None);
    assert_eq!(
        response.lifetime(provider.default_cache_duration),
        Some(Duration::from_secs(3600))
    );
}

#[tokio::test]
async fn the_providers_env_reaches_the_plugin() {
    let fixture = Fixture::new();
    let env = format!(
        r#","env":[{{"name":"SPARROW_TEST_CREDENTIAL_FILE","value":"{}"}}]"#,
        fixture.file("credential").display()
    );
    let mut provider = fixture.provider(&[], &env);
    // The credential file comes from the environment only.
    assert_eq!(provider.args[0], "--credential-file");
    provider.args.drain(..2);
    let response = run(
        fixture.bin_dir(),
        &provider,
        IMAGE,
        None,
        &Limits::default(),
    )
    .await
    .expect("answer");
    assert_eq!(response.auth["registry.example.com:5000"].username, "robot");
}

#[tokio::test]
async fn token_mode_sends_the_token_and_never_shows_it() {
    let fixture = Fixture::new();
    std::fs::write(fixture.file("token"), "the-sa-token").expect("write");
    let attributes = r#","tokenAttributes":{"serviceAccountTokenAudience":"registry.example.com","requireServiceAccount":true,"cacheType":"ServiceAccount"}"#;
    let token_file = fixture.file("token").display().to_string();
    let provider = fixture.provider(&["--token-file", &token_file], attributes);
    let limits = Limits::default();
    run(
        fixture.bin_dir(),
        &provider,
        IMAGE,
        Some("the-sa-token"),
        &limits,
    )
    .await
    .expect("answer with the right token");

    let message = run(
        fixture.bin_dir(),
        &provider,
        IMAGE,
        Some("another-token"),
        &limits,
    )
    .await
    .expect_err("wrong token")
    .to_string();
    assert_eq!(
        message,
        "the plugin test-provider failed (exit status 1): sparrow-test-credential-provider: the request's serviceAccountToken is missing or not the expected one: its own message says why; run it by hand with a CredentialProviderRequest on stdin to see more"
    );
    assert!(!message.contains("another-token"));

    let message = run(fixture.bin_dir(), &provider, IMAGE, None, &limits)
        .await
        .expect_err("no token")
        .to_string();
    assert_eq!(
        message,
        "the plugin test-provider runs in service-account token mode (tokenAttributes with requireServiceAccount) and was given no token: request one for audience registry.example.com"
    );

    // A provider without tokenAttributes is never sent the token.
    let plain = fixture.provider(&["--token-file", &token_file], "");
    let message = run(
        fixture.bin_dir(),
        &plain,
        IMAGE,
        Some("the-sa-token"),
        &limits,
    )
    .await
    .expect_err("the plugin got no token")
    .to_string();
    assert!(
        message.contains("serviceAccountToken is missing"),
        "{message}"
    );
}

#[tokio::test]
async fn a_failing_plugin_is_named_with_its_last_stderr_line() {
    let fixture = Fixture::new();
    let provider = fixture.provider(&[], "");
    fixture.fault("fail");
    assert_eq!(
        error(&fixture, &provider, &Limits::default()).await,
        "the plugin test-provider failed (exit status 1): sparrow-test-credential-provider: fault injected: fail: its own message says why; run it by hand with a CredentialProviderRequest on stdin to see more"
    );
    // The fault switched off, the same config answers again.
    fixture.fault("");
    run(
        fixture.bin_dir(),
        &provider,
        IMAGE,
        None,
        &Limits::default(),
    )
    .await
    .expect("answer");
}

#[tokio::test]
async fn a_hanging_plugin_is_killed_and_reaped_at_the_timeout() {
    let fixture = Fixture::new();
    let provider = fixture.provider(&[], "");
    fixture.fault("hang");
    assert_eq!(
        error(&fixture, &provider, &short()).await,
        "the plugin test-provider did not answer within 2s: run it by hand with a CredentialProviderRequest on stdin to see what it waits for (the network, a metadata endpoint), or raise the timeout"
    );
    assert!(
        !fixture.plugin_process_exists(),
        "the plugin outlived run()"
    );
}

#[tokio::test]
async fn a_flooding_plugin_is_killed_past_the_output_limit() {
    let fixture = Fixture::new();
    let provider = fixture.provider(&[], "");
    fixture.fault("flood");
    assert_eq!(
        error(&fixture, &provider, &Limits::default()).await,
        "the plugin test-provider printed more than 1 MiB on stdout: an answer is a few KiB, so it is broken or no credential provider; run it by hand to see"
    );
    assert!(
        !fixture.plugin_process_exists(),
        "the plugin outlived run()"
    );
}

#[tokio::test]
async fn a_wrong_api_version_or_garbage_is_named() {
    let fixture = Fixture::new();
    let provider = fixture.provider(&[], "");
    fixture.fault("wrong-api-version");
    assert_eq!(
        error(&fixture, &provider, &Limits::default()).await,
        "the plugin test-provider answered apiVersion \"credentialprovider.kubelet.k8s.io/v1beta1\"; this provider is configured for credentialprovider.kubelet.k8s.io/v1: use a plugin version that speaks it, or set the provider's apiVersion to what the plugin speaks"
    );
    fixture.fault("garbage");
    assert_eq!(
        error(&fixture, &provider, &Limits::default()).await,
        "the plugin test-provider printed no JSON on stdout (error at line 1, column 2): a credential provider prints a CredentialProviderResponse there, and its diagnostics on stderr"
    );
}

#[tokio::test]
async fn a_missing_or_unexecutable_plugin_is_named() {
    let fixture = Fixture::new();
    let mut provider = fixture.provider(&[], "");
    provider.name = "missing-provider".to_owned();
    let message = error(&fixture, &provider, &Limits::default()).await;
    assert_eq!(
        message,
        format!(
            "no plugin missing-provider in {}: put the plugin binary there (--credential-provider-bin-dir) or correct the provider's name",
            fixture.bin_dir().display()
        )
    );
    provider.name = "credential".to_owned(); // A file without execute permission.
    let message = error(&fixture, &provider, &Limits::default()).await;
    assert_eq!(
        message,
        format!(
            "the plugin {} is not an executable file: make it one (chmod +x)",
            fixture.file("credential").display()
        )
    );
    assert!(!message.contains("s3cret"));
}

#[tokio::test]
async fn errors_are_one_line_and_debug_shows_no_credential() {
    let fixture = Fixture::new();
    let provider = fixture.provider(&[], "");
    let response = run(
        fixture.bin_dir(),
        &provider,
        IMAGE,
        None,
        &Limits::default(),
    )
    .await
    .expect("answer");
    let debug = format!("{response:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    let error = RunError::Timeout {
        plugin: PLUGIN.to_owned(),
        after: "1s".to_owned(),
    };
    assert!(!error.to_string().contains('\n'));
}

/// Serves `body` (200) to every GET of `/credential`, 404 to anything else, on loopback.
fn serve_once_per_request(body: &'static str) -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 1024];
            let n = stream.read(&mut request).unwrap_or(0);
            let request = String::from_utf8_lossy(&request[..n]);
            let answer = if request.starts_with("GET /credential ") {
                format!("HTTP/1.0 200 OK\r\n\r\n{body}")
            } else {
                "HTTP/1.0 404 Not Found\r\n\r\n".to_owned()
            };
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_test_plugin_reads_its_credential_and_fault_over_http() {
    let fixture = Fixture::new();
    let base = serve_once_per_request("robot-http:s3cret-over-http\n");
    let provider = fixture.provider(
        &[
            "--credential-file",
            &format!("{base}/credential"),
            "--fault-file",
            &format!("{base}/fault"),
        ],
        "",
    );
    let response = run(
        fixture.bin_dir(),
        &provider,
        IMAGE,
        None,
        &Limits::default(),
    )
    .await
    .expect("answers from the served credential; a 404 fault is no fault");
    let entry = &response.auth["registry.example.com:5000"];
    assert_eq!(entry.username, "robot-http");
    assert_eq!(entry.password, "s3cret-over-http");
}
