//! Our `.dockerconfigjson` must be byte-identical to what the real kubectl writes.
//! kubectl ships on the machine image (scripts/test.sh installs it); without it this test fails.

use std::process::Command;

use base64::Engine as _;
use sparrow_core::{RegistryAuth, RegistryServer, dockerconfigjson};

fn kubectl_dockerconfigjson(server: &str, user: &str, password: &str) -> Vec<u8> {
    let output = match Command::new("kubectl")
        .args([
            "create",
            "secret",
            "docker-registry",
            "parity",
            "--dry-run=client",
            "-o",
            "json",
        ])
        .arg(format!("--docker-server={server}"))
        .arg(format!("--docker-username={user}"))
        .arg(format!("--docker-password={password}"))
        .env("KUBECONFIG", "/nonexistent")
        .output()
    {
        Ok(output) => output,
        Err(error) => panic!(
            "kubectl not found ({error}): the byte-for-byte parity check needs it: apt-get install -y kubernetes-client"
        ),
    };
    assert!(
        output.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let secret: serde_json::Value = serde_json::from_slice(&output.stdout).expect("kubectl JSON");
    let data = secret["data"][".dockerconfigjson"]
        .as_str()
        .expect(".dockerconfigjson");
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64")
}

#[test]
fn matches_kubectl_byte_for_byte() {
    let key_text = "{\n  \"type\": \"service_account\",\n  \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMII<&>\\n\",\n  \"note\": \"a\u{2028}b\\u0001\\t\"\n}\n";
    let cases: Vec<(&str, RegistryAuth)> = vec![
        (
            "registry.example.com:5000/mesh",
            RegistryAuth::user_password("robot", "s3cret").expect("valid"),
        ),
        (
            "127.0.0.1:5000",
            RegistryAuth::user_password("robot$harbor", "p<a>&\"\\é\t x:y%").expect("valid"),
        ),
        (
            "docker.io/acme",
            RegistryAuth::user_password("acme", "dckr_pat_0123").expect("valid"),
        ),
        (
            "[::1]:5000",
            RegistryAuth::user_password("u", "\u{7f}\u{2029}").expect("valid"),
        ),
        (
            "europe-docker.pkg.dev/acme/mesh",
            RegistryAuth::json_key(key_text).expect("valid"),
        ),
    ];
    for (server_text, auth) in cases {
        let server = RegistryServer::parse(server_text).expect("valid server");
        let expected =
            kubectl_dockerconfigjson(&server.auth_key(), auth.username(), auth.password());
        let ours = dockerconfigjson(&server, &auth);
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&expected),
            "server {server_text}"
        );
    }
}
