//! A kubeconfig `exec` credential plugin, run by us rather than by kube-rs: kube-rs runs it
//! with a blocking `Command::output()` (a plugin that hangs holds the command forever), and
//! its errors quote the plugin's output (a token) or dump a Rust `Output`. Here the plugin
//! runs within `--timeout`, is killed when that passes, its output is bounded and never
//! shown, and every message names the command.

use std::process::Stdio;
use std::time::Duration;

use kube::config::ExecConfig;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// A credential is a token or a certificate and key: far below this.
const MAX_OUTPUT_BYTES: u64 = 1 << 20;
/// How much of the plugin's stderr is kept to explain a failure.
const MAX_SHOWN_STDERR_CHARS: usize = 200;

/// What the plugin answered.
pub enum ExecCredential {
    /// A bearer token.
    Token(String),
    /// A client certificate and its key (PEM).
    Certificate {
        /// The certificate.
        cert: String,
        /// The key.
        key: String,
    },
}

#[derive(Deserialize)]
struct Output {
    status: Option<Status>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    token: Option<String>,
    client_certificate_data: Option<String>,
    client_key_data: Option<String>,
}

/// Runs the plugin of `exec` within `timeout`. The error is one line that names the
/// command and never holds what the plugin printed on stdout.
pub async fn run(exec: &ExecConfig, timeout: Duration) -> Result<ExecCredential, String> {
    let Some(program) = exec.command.as_deref().filter(|c| !c.is_empty()) else {
        return Err("its exec plugin has no command".to_owned());
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(exec.args.iter().flatten())
        .envs(
            exec.env
                .iter()
                .flatten()
                .filter_map(|pair| Some((pair.get("name")?.as_str(), pair.get("value")?.as_str()))),
        )
        .env("KUBERNETES_EXEC_INFO", exec_info(exec))
        // Never interactive: our standard input may be a password (--registry-password-stdin),
        // and the plugin's messages must not break the one-line error.
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|error| {
        let hint = exec
            .install_hint
            .as_deref()
            .map(|h| format!("; {}", one_line(h)))
            .unwrap_or_default();
        format!("cannot run its exec plugin {program}: {error}{hint}")
    })?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let finished = async {
        let (stdout, stderr, status) =
            tokio::join!(read_bounded(stdout), read_bounded(stderr), child.wait());
        (stdout, stderr, status)
    };
    // On timeout the future is dropped, and with it the child, which kill_on_drop ends.
    let (stdout, stderr, status) = tokio::time::timeout(timeout, finished)
        .await
        .map_err(|_| {
            format!(
                "its exec plugin {program} did not finish within {} (--timeout): run it by hand to see what it waits for (a login prompt, the network), or raise --timeout",
                crate::connect::humanize(timeout)
            )
        })?;
    let status = status.map_err(|e| format!("its exec plugin {program}: {e}"))?;
    if !status.success() {
        let said = String::from_utf8_lossy(&stderr.unwrap_or_default())
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(|l| {
                format!(
                    ": {}",
                    l.chars().take(MAX_SHOWN_STDERR_CHARS).collect::<String>()
                )
            })
            .unwrap_or_default();
        let how = match status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_owned(),
        };
        return Err(format!("its exec plugin {program} failed ({how}){said}"));
    }
    let stdout = stdout.map_err(|_| {
        format!("its exec plugin {program} printed more than 1 MiB: that is no ExecCredential")
    })?;
    parse(&stdout).map_err(|why| format!("its exec plugin {program} {why}"))
}

/// The ExecCredential on the plugin's stdout. JSON or YAML, as client-go accepts; errors give
/// a position at most, never the text (it is a token when the format is almost right).
fn parse(stdout: &[u8]) -> Result<ExecCredential, String> {
    let output: Output =
        serde_saphyr::from_slice(stdout).map_err(|error| match error.location() {
            Some(at) => format!(
                "printed no valid ExecCredential (error at line {}, column {})",
                at.line(),
                at.column()
            ),
            None => "printed no valid ExecCredential".to_owned(),
        })?;
    let status = output
        .status
        .ok_or("printed an ExecCredential without a status")?;
    match status {
        Status {
            client_certificate_data: Some(cert),
            client_key_data: Some(key),
            ..
        } => Ok(ExecCredential::Certificate { cert, key }),
        Status {
            token: Some(token), ..
        } if !token.is_empty() => Ok(ExecCredential::Token(token)),
        _ => Err(
            "printed an ExecCredential with neither a token nor a client certificate and key"
                .to_owned(),
        ),
    }
}

/// `KUBERNETES_EXEC_INFO`, as client-go sets it.
fn exec_info(exec: &ExecConfig) -> String {
    let mut spec = serde_json::json!({"interactive": false});
    if exec.provide_cluster_info
        && let Some(cluster) = &exec.cluster
    {
        spec["cluster"] = serde_json::to_value(cluster).unwrap_or_default();
    }
    serde_json::json!({
        "apiVersion": exec.api_version.as_deref().unwrap_or("client.authentication.k8s.io/v1"),
        "kind": "ExecCredential",
        "spec": spec,
    })
    .to_string()
}

/// Reads a pipe to its end, at most [`MAX_OUTPUT_BYTES`]; `Err` past it.
async fn read_bounded(pipe: Option<impl AsyncRead + Unpin>) -> Result<Vec<u8>, ()> {
    let mut bytes = Vec::new();
    if let Some(pipe) = pipe {
        let _ = pipe
            .take(MAX_OUTPUT_BYTES + 1)
            .read_to_end(&mut bytes)
            .await;
    }
    if bytes.len() as u64 > MAX_OUTPUT_BYTES {
        return Err(());
    }
    Ok(bytes)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_never_quotes_the_output() {
        for bad in [
            &b"TOPSECRET-token"[..],
            b"{\"status\": {\"token\": TOPSECRET [}",
            b"status: {token: [TOPSECRET}",
        ] {
            let Err(why) = parse(bad) else {
                panic!("{bad:?} parsed");
            };
            assert!(why.starts_with("printed no valid ExecCredential"), "{why}");
            assert!(!why.contains("TOPSECRET"), "{why}");
        }
        assert!(matches!(
            parse(b"{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t\"}}"),
            Ok(ExecCredential::Token(t)) if t == "t"
        ));
        assert_eq!(
            parse(b"{\"kind\":\"ExecCredential\"}").err().as_deref(),
            Some("printed an ExecCredential without a status")
        );
    }
}
