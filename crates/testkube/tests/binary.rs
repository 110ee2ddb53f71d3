//! The `testkube serve` binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn serve_prints_its_url_writes_a_kubeconfig_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_testkube"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--service-endpoint",
            "sparrow-mesh/sparrow-controller=127.0.0.1:8443",
            "--kubeconfig-out",
        ])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn testkube");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read line");
    assert!(
        line.starts_with("listening on https://127.0.0.1:"),
        "{line}"
    );
    let url = line.trim().trim_start_matches("listening on ").to_string();
    let written = std::fs::read_to_string(&kubeconfig).expect("kubeconfig written");
    assert!(written.contains(&format!("server: {url}")));
    assert!(written.contains("certificate-authority-data:"));
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "exits cleanly on SIGTERM: {exit:?}");
}

#[test]
fn bad_service_endpoint_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_testkube"))
        .args(["serve", "--service-endpoint", "nonsense"])
        .output()
        .expect("run testkube");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must look like NS/NAME=HOST:PORT"));
}
