//! `sparrowctl webhook-auth`: the two files the API server's administrator needs, with the
//! key in neither the output nor (unless `--embed`) the files.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

const CERT: &str = "-----BEGIN CERTIFICATE-----\nQ0VSVA==\n-----END CERTIFICATE-----\n";
const KEY: &str =
    "-----BEGIN EC PRIVATE KEY-----\nS0VZLVNFQ1JFVC12YWx1ZQ==\n-----END EC PRIVATE KEY-----\n";

fn sparrowctl(args: &[&str]) -> std::process::Output {
    assert_cmd::Command::cargo_bin("sparrowctl")
        .expect("binary")
        .args(args)
        .output()
        .expect("run sparrowctl")
}

fn yaml(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("written");
    serde_saphyr::from_str(&text).expect("YAML")
}

fn files(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("client.crt"), dir.join("client.key"));
    std::fs::write(&cert, CERT).expect("write");
    std::fs::write(&key, KEY).expect("write");
    (cert.display().to_string(), key.display().to_string())
}

#[test]
fn writes_the_admission_configuration_and_a_kubeconfig_naming_the_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = files(dir.path());
    let out = dir.path().join("apiserver");
    let output = sparrowctl(&[
        "webhook-auth",
        "-n",
        "team",
        "--client-cert",
        &cert,
        "--client-key",
        &key,
        "--out",
        &out.display().to_string(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        !stdout.contains("S0VZ") && !stdout.contains("PRIVATE KEY"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "--admission-control-config-file={}",
            out.join("admission-config.yaml").display()
        )),
        "{stdout}"
    );

    let admission = yaml(&out.join("admission-config.yaml"));
    assert_eq!(admission["kind"], "AdmissionConfiguration");
    assert_eq!(admission["plugins"][0]["name"], "MutatingAdmissionWebhook");
    assert_eq!(
        admission["plugins"][0]["configuration"]["kubeConfigFile"],
        out.join("webhook-kubeconfig.yaml").display().to_string()
    );
    let kubeconfig_path = out.join("webhook-kubeconfig.yaml");
    let kubeconfig = yaml(&kubeconfig_path);
    let user = &kubeconfig["users"][0];
    assert_eq!(user["name"], "sparrow-controller.team.svc");
    assert_eq!(user["user"]["client-certificate"], cert);
    assert_eq!(user["user"]["client-key"], key);
    let text = std::fs::read_to_string(&kubeconfig_path).expect("written");
    assert!(!text.contains("S0VZ"), "the key's text stays in its file");
}

#[test]
fn embed_inlines_the_key_into_a_file_only_its_owner_reads_and_server_dir_moves_the_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = files(dir.path());
    let out = dir.path().join("out");
    let output = sparrowctl(&[
        "webhook-auth",
        "--client-cert",
        &cert,
        "--client-key",
        &key,
        "--out",
        &out.display().to_string(),
        "--server-dir",
        "/etc/kubernetes/sparrow",
        "--embed",
    ]);
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains("S0VZ") && !stdout.contains("PRIVATE KEY"),
        "{stdout}"
    );
    let admission = yaml(&out.join("admission-config.yaml"));
    assert_eq!(
        admission["plugins"][0]["configuration"]["kubeConfigFile"],
        "/etc/kubernetes/sparrow/webhook-kubeconfig.yaml"
    );
    let kubeconfig_path = out.join("webhook-kubeconfig.yaml");
    let user = yaml(&kubeconfig_path)["users"][0]["user"].clone();
    use base64::Engine as _;
    let decoded = |field: &str| {
        let data = user[field].as_str().expect(field);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64");
        String::from_utf8(bytes).expect("utf-8")
    };
    assert_eq!(decoded("client-certificate-data"), CERT);
    assert_eq!(decoded("client-key-data"), KEY);
    let mode = std::fs::metadata(&kubeconfig_path)
        .expect("written")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Without --embed, --server-dir is where the certificate and key will be too.
    let output = sparrowctl(&[
        "webhook-auth",
        "--client-cert",
        &cert,
        "--client-key",
        &key,
        "--out",
        &out.display().to_string(),
        "--server-dir",
        "/etc/kubernetes/sparrow",
    ]);
    assert!(output.status.success(), "{output:?}");
    let user = yaml(&kubeconfig_path)["users"][0]["user"].clone();
    assert_eq!(
        user["client-certificate"],
        "/etc/kubernetes/sparrow/client.crt"
    );
    assert_eq!(user["client-key"], "/etc/kubernetes/sparrow/client.key");
    assert!(
        user.get("client-key-data").is_none(),
        "the file was replaced"
    );
}
