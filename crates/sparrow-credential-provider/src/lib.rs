//! Runs a kubelet credential-provider plugin (KEP-2133) as the kubelet runs it: the binary
//! `<bin dir>/<provider name>` with the provider's `args`, the current process environment
//! plus the provider's `env` (a provider variable wins over an inherited one, as in the
//! kubelet), a `CredentialProviderRequest` on stdin, a `CredentialProviderResponse` on stdout.
//!
//! Unlike the kubelet, the output is bounded ([`Limits::max_output`]) and the plugin killed as
//! soon as it prints more; like it, the plugin has a time limit ([`Limits::timeout`], the
//! kubelet's one minute by default). On every path the child is killed if still running and
//! reaped before [`run`] returns. What the request, the response and the pull secret mean is
//! `sparrow_core::credential_provider`'s; this crate only runs the process.
//!
//! `src/bin/sparrow-test-credential-provider.rs` is a plugin speaking the real protocol, for
//! tests here and on real kubelets.

#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sparrow_core::credential_provider::{
    CredentialProviderRequest, CredentialProviderResponse, Provider, ResponseError,
};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, Command};

/// How much of stderr is kept (its end) to explain a failure.
const STDERR_KEPT_BYTES: usize = 4 << 10;
/// How much of stderr's last line a message shows.
const STDERR_SHOWN_CHARS: usize = 200;

/// Bounds on one plugin run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// How long the plugin may take, from start to exit. Default: 60 s, the kubelet's
    /// catch-all timeout for every exec of a plugin.
    pub timeout: Duration,
    /// The most the plugin may print on stdout. Default: 1 MiB; an answer is a few KiB.
    pub max_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            max_output: 1 << 20,
        }
    }
}

/// Why a plugin run gave no answer. One line each, naming the plugin and what to do. Never
/// holds what the plugin printed on stdout, nor the token passed to it; stderr shows at most
/// its last line, 200 characters, with the token masked (plugins print diagnostics there;
/// one that prints its credentials on stderr is broken beyond what we can hide).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `<bin dir>/<name>` does not exist.
    #[error(
        "no plugin {plugin} in {dir}: put the plugin binary there (--credential-provider-bin-dir) or correct the provider's name"
    )]
    NotFound {
        /// The provider's name.
        plugin: String,
        /// The bin dir.
        dir: PathBuf,
    },
    /// Not a file, or no execute permission.
    #[error("the plugin {path} is not an executable file: make it one (chmod +x)")]
    NotExecutable {
        /// The binary's path.
        path: PathBuf,
        /// What refused it, when the system did.
        #[source]
        source: Option<std::io::Error>,
    },
    /// The token mode provider needs a token and none was given.
    #[error(
        "the plugin {plugin} runs in service-account token mode (tokenAttributes with requireServiceAccount) and was given no token: request one for audience {audience}"
    )]
    TokenRequired {
        /// The provider's name.
        plugin: String,
        /// The audience the token must be for.
        audience: String,
    },
    /// Starting it or talking to it failed.
    #[error("cannot run the plugin {plugin}: {source}")]
    Io {
        /// The provider's name.
        plugin: String,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// It did not exit in time.
    #[error(
        "the plugin {plugin} did not answer within {after}: run it by hand with a CredentialProviderRequest on stdin to see what it waits for (the network, a metadata endpoint), or raise the timeout"
    )]
    Timeout {
        /// The provider's name.
        plugin: String,
        /// The limit, as `60s`.
        after: String,
    },
    /// It printed more than the limit on stdout.
    #[error(
        "the plugin {plugin} printed more than {limit} on stdout: an answer is a few KiB, so it is broken or no credential provider; run it by hand to see"
    )]
    TooMuchOutput {
        /// The provider's name.
        plugin: String,
        /// The limit, as `1 MiB`.
        limit: String,
    },
    /// It exited unsuccessfully.
    #[error(
        "the plugin {plugin} failed ({status}){said}: its own message says why; run it by hand with a CredentialProviderRequest on stdin to see more"
    )]
    Failed {
        /// The provider's name.
        plugin: String,
        /// `exit status 1`, `killed by signal 9`.
        status: String,
        /// `: ` and stderr's last line, or nothing.
        said: String,
    },
    /// Its answer is not a valid `CredentialProviderResponse`.
    #[error("the plugin {plugin} {source}")]
    Response {
        /// The provider's name.
        plugin: String,
        /// What is wrong with the answer.
        #[source]
        source: ResponseError,
    },
}

/// Runs `provider`'s plugin from `bin_dir` for `image`. `service_account_token` is sent only
/// to a provider with `tokenAttributes` (the kubelet sends none to others), and must be given
/// to one that requires a ServiceAccount.
pub async fn run(
    bin_dir: &Path,
    provider: &Provider,
    image: &str,
    service_account_token: Option<&str>,
    limits: &Limits,
) -> Result<CredentialProviderResponse, RunError> {
    let mut request = CredentialProviderRequest::new(image);
    if provider.token_attributes.is_some() {
        request.service_account_token = service_account_token.map(str::to_owned);
    }
    run_request(bin_dir, provider, &request, limits).await
}

/// [`run`] with a whole request (service-account annotations too).
pub async fn run_request(
    bin_dir: &Path,
    provider: &Provider,
    request: &CredentialProviderRequest,
    limits: &Limits,
) -> Result<CredentialProviderResponse, RunError> {
    let plugin = provider.name.as_str();
    if let Some(attributes) = &provider.token_attributes
        && attributes.require_service_account
        && request
            .service_account_token
            .as_deref()
            .unwrap_or_default()
            .is_empty()
    {
        return Err(RunError::TokenRequired {
            plugin: plugin.to_owned(),
            audience: attributes.service_account_token_audience.clone(),
        });
    }
    let path = bin_dir.join(plugin);
    check_executable(&path, bin_dir, plugin).await?;
    let started = Instant::now();
    tracing::debug!(%plugin, image = %request.image, "running credential provider plugin");
    let mut child = Command::new(&path)
        .args(&provider.args)
        .envs(provider.env.iter().map(|var| (&var.name, &var.value)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::PermissionDenied => RunError::NotExecutable {
                path: path.clone(),
                source: Some(source),
            },
            _ => RunError::Io {
                plugin: plugin.to_owned(),
                source,
            },
        })?;
    let outcome = tokio::time::timeout(
        limits.timeout,
        exchange(&mut child, request.to_json(), limits.max_output),
    )
    .await;
    let result = match outcome {
        Err(_elapsed) => Err(RunError::Timeout {
            plugin: plugin.to_owned(),
            after: seconds(limits.timeout),
        }),
        Ok(Err(Trouble::TooMuchOutput)) => Err(RunError::TooMuchOutput {
            plugin: plugin.to_owned(),
            limit: bytes(limits.max_output),
        }),
        Ok(Err(Trouble::Io(source))) => Err(RunError::Io {
            plugin: plugin.to_owned(),
            source,
        }),
        Ok(Ok((status, _, stderr))) if !status.success() => Err(RunError::Failed {
            plugin: plugin.to_owned(),
            status: describe(status),
            said: last_line(&stderr, request.service_account_token.as_deref())
                .map(|line| format!(": {line}"))
                .unwrap_or_default(),
        }),
        Ok(Ok((_, stdout, _))) => CredentialProviderResponse::parse(&stdout, &provider.api_version)
            .map_err(|source| RunError::Response {
                plugin: plugin.to_owned(),
                source,
            }),
    };
    // Killed if still running (timeout, too much output, a broken pipe), and reaped either way.
    let _ = child.start_kill();
    let _ = child.wait().await;
    match &result {
        Ok(_) => {
            tracing::debug!(%plugin, elapsed = ?started.elapsed(), "credential provider plugin answered")
        }
        Err(error) => {
            tracing::debug!(%plugin, elapsed = ?started.elapsed(), %error, "credential provider plugin gave no answer")
        }
    }
    result
}

enum Trouble {
    TooMuchOutput,
    Io(std::io::Error),
}

/// Writes the request and closes stdin, reads stdout (bounded) and the end of stderr, and
/// waits for the exit, all at once: a plugin may answer before it reads, or print a lot on
/// stderr before it answers.
async fn exchange(
    child: &mut Child,
    request: Vec<u8>,
    max_output: usize,
) -> Result<(ExitStatus, Vec<u8>, Vec<u8>), Trouble> {
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let write = async move {
        if let Some(mut stdin) = stdin {
            // A plugin that exits without reading breaks the pipe: its exit status says more.
            let _ = stdin.write_all(&request).await;
        }
        Ok::<_, Trouble>(())
    };
    let read_stdout = async move {
        let mut out = Vec::new();
        if let Some(stdout) = stdout {
            stdout
                .take(max_output as u64 + 1)
                .read_to_end(&mut out)
                .await
                .map_err(Trouble::Io)?;
        }
        if out.len() > max_output {
            return Err(Trouble::TooMuchOutput);
        }
        Ok(out)
    };
    let read_stderr = async move { Ok(read_tail(stderr).await) };
    let ((), stdout, stderr) = tokio::try_join!(write, read_stdout, read_stderr)?;
    let status = child.wait().await.map_err(Trouble::Io)?;
    Ok((status, stdout, stderr))
}

/// The last [`STDERR_KEPT_BYTES`] of a pipe, read to its end.
async fn read_tail(pipe: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else {
        return kept;
    };
    let mut chunk = [0u8; 4096];
    while let Ok(n) = pipe.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&chunk[..n]);
        if kept.len() > 2 * STDERR_KEPT_BYTES {
            kept.drain(..kept.len() - STDERR_KEPT_BYTES);
        }
    }
    kept
}

async fn check_executable(path: &Path, dir: &Path, plugin: &str) -> Result<(), RunError> {
    use std::os::unix::fs::PermissionsExt as _;
    match tokio::fs::metadata(path).await {
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => Err(RunError::NotExecutable {
            path: path.to_owned(),
            source: None,
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(RunError::NotFound {
            plugin: plugin.to_owned(),
            dir: dir.to_owned(),
        }),
        Err(source) => Err(RunError::Io {
            plugin: plugin.to_owned(),
            source,
        }),
    }
}

/// stderr's last non-empty line, at most [`STDERR_SHOWN_CHARS`], with `token` masked.
fn last_line(stderr: &[u8], token: Option<&str>) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let line = match token.filter(|t| !t.is_empty()) {
        Some(token) => line.replace(token, "<redacted>"),
        None => line.to_owned(),
    };
    let mut shown: String = line
        .chars()
        .filter(|c| !c.is_control())
        .take(STDERR_SHOWN_CHARS)
        .collect();
    if line.chars().count() > STDERR_SHOWN_CHARS {
        shown.push('…');
    }
    Some(shown)
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "no exit status".to_owned(),
    }
}

/// `60s`, `1.5s`.
fn seconds(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}s", duration.as_secs_f64())
    }
}

/// `1 MiB`, `64 KiB`, `100 bytes`.
fn bytes(count: usize) -> String {
    match count {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_shows_its_last_line_short_and_without_the_token() {
        assert_eq!(last_line(b"", None), None);
        assert_eq!(
            last_line(b"first\nlast\n\n  \n", None).as_deref(),
            Some("last")
        );
        assert_eq!(
            last_line(b"denied for token tok-123 (tok-123)\n", Some("tok-123")).as_deref(),
            Some("denied for token <redacted> (<redacted>)")
        );
        let long = format!("{}\n", "e".repeat(300));
        let shown = last_line(long.as_bytes(), None).expect("a line");
        assert_eq!(shown, format!("{}…", "e".repeat(200)));
        assert_eq!(
            last_line(b"bell\x07 here", None).as_deref(),
            Some("bell here")
        );
    }

    #[test]
    fn limits_and_statuses_read_well() {
        assert_eq!(seconds(Duration::from_secs(60)), "60s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5s");
        assert_eq!(bytes(1 << 20), "1 MiB");
        assert_eq!(bytes(64 << 10), "64 KiB");
        assert_eq!(bytes(100), "100 bytes");
    }
}
