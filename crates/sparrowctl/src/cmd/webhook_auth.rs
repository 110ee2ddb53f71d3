//! `sparrowctl webhook-auth`: writes what a cluster administrator gives
//! `kube-apiserver --admission-control-config-file` so that the API server presents its client
//! certificate to the mesh's webhook (which `deploy --webhook-client-ca` makes it require).
//! Contacts no cluster. Key material goes only into a file, and only with `--embed`.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sparrow_core::config::validate_namespace;
use sparrow_core::manifests::to_yaml_documents;
use sparrow_core::webhook_auth::{
    ADMISSION_CONFIG_FILE, ClientCredential, WEBHOOK_KUBECONFIG_FILE, admission_configuration,
    webhook_host, webhook_kubeconfig,
};

use crate::GlobalArgs;
use crate::usage::UsageError;

/// Flags of `webhook-auth`.
#[derive(Debug, clap::Args)]
pub struct WebhookAuthArgs {
    /// The API server's client certificate (PEM), signed by the CA given to
    /// `deploy --webhook-client-ca`.
    #[arg(long, value_name = "FILE")]
    client_cert: PathBuf,
    /// Its private key (PEM). Read only to check it is one; never printed.
    #[arg(long, value_name = "FILE")]
    client_key: PathBuf,
    /// Directory to write admission-config.yaml and webhook-kubeconfig.yaml into (created
    /// if missing; existing files are replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Where the files will be on the API server's host, if not where --out puts them: the
    /// AdmissionConfiguration's kubeConfigFile, and the kubeconfig's certificate and key
    /// paths unless --embed, are written relative to it [default: --out's absolute path, and
    /// the certificate and key where they are now].
    #[arg(long, value_name = "DIR")]
    server_dir: Option<PathBuf>,
    /// Inline the certificate and key into webhook-kubeconfig.yaml (then the file holds the
    /// key: written with mode 0600) instead of referring to their files.
    #[arg(long)]
    embed: bool,
}

/// Runs `webhook-auth`.
pub fn run(global: &GlobalArgs, args: WebhookAuthArgs) -> anyhow::Result<()> {
    validate_namespace(&global.namespace)
        .map_err(|e| UsageError(format!("-n/--namespace: {e}")))?;
    let cert_pem = read_pem(
        "--client-cert",
        &args.client_cert,
        "CERTIFICATE",
        "give the API server's client certificate",
    )?;
    let key_pem = read_pem(
        "--client-key",
        &args.client_key,
        "PRIVATE KEY",
        "give the client certificate's private key",
    )?;
    let credential = if args.embed {
        ClientCredential::Embedded { cert_pem, key_pem }
    } else {
        let placed = |file: &Path| -> anyhow::Result<String> {
            Ok(match &args.server_dir {
                Some(dir) => dir.join(file_name(file)?).display().to_string(),
                None => absolute(file)?.display().to_string(),
            })
        };
        ClientCredential::Files {
            cert: placed(&args.client_cert)?,
            key: placed(&args.client_key)?,
        }
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("--out {}: cannot create the directory", args.out.display()))?;
    let kubeconfig_on_server = match &args.server_dir {
        Some(dir) => dir.join(WEBHOOK_KUBECONFIG_FILE),
        None => absolute(&args.out)?.join(WEBHOOK_KUBECONFIG_FILE),
    };
    let admission = admission_configuration(&kubeconfig_on_server.display().to_string());
    let kubeconfig = webhook_kubeconfig(&global.namespace, &credential);
    let admission_path = args.out.join(ADMISSION_CONFIG_FILE);
    let kubeconfig_path = args.out.join(WEBHOOK_KUBECONFIG_FILE);
    write_yaml(&admission_path, &admission, 0o644)?;
    // Only the embedded form holds the key; the paths alone are no secret, but 0600 costs nothing.
    write_yaml(&kubeconfig_path, &kubeconfig, 0o600)?;
    crate::say!(
        "Wrote {} and {} (user {}; {}).",
        admission_path.display(),
        kubeconfig_path.display(),
        webhook_host(&global.namespace),
        if args.embed {
            "certificate and key embedded: keep the kubeconfig as secret as the key"
        } else {
            "the kubeconfig refers to the certificate and key files, which the API server must be able to read"
        }
    );
    crate::say!(
        "Next: start kube-apiserver with --admission-control-config-file={} (it is read at start: restart the API server), then `sparrowctl deploy --webhook-client-ca CA.crt` with the CA that signed {}. If the API server has an admission configuration already, add this MutatingAdmissionWebhook entry and kubeconfig user to it instead.",
        args.server_dir
            .as_ref()
            .map(|d| d.join(ADMISSION_CONFIG_FILE))
            .unwrap_or_else(|| absolute(&admission_path).unwrap_or(admission_path.clone()))
            .display(),
        args.client_cert.display()
    );
    Ok(())
}

/// Reads `path` and checks it holds a PEM block whose label contains `label`.
fn read_pem(flag: &str, path: &Path, label: &str, what_to_do: &str) -> anyhow::Result<String> {
    let shown = path.display();
    let bytes = crate::input::read_file(
        flag,
        path,
        crate::input::MAX_KEY_BYTES,
        "no certificate or key is that large",
    )?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{flag} {shown}: the file is not UTF-8 text: {what_to_do}"))?;
    let has_block = text
        .lines()
        .any(|l| l.starts_with("-----BEGIN ") && l.contains(label));
    if !has_block {
        anyhow::bail!("{flag} {shown}: holds no PEM {label} block: {what_to_do}");
    }
    if flag == "--client-cert" && text.contains("PRIVATE KEY-----") {
        anyhow::bail!(
            "{flag} {shown}: holds a private key too: give the key only with --client-key"
        );
    }
    Ok(text)
}

fn file_name(path: &Path) -> anyhow::Result<&std::ffi::OsStr> {
    path.file_name()
        .ok_or_else(|| anyhow::anyhow!("{} names no file", path.display()))
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path)
        .with_context(|| format!("{}: cannot make it absolute", path.display()))
}

fn write_yaml(path: &Path, document: &serde_json::Value, mode: u32) -> anyhow::Result<()> {
    let text = to_yaml_documents(std::slice::from_ref(document))
        .with_context(|| format!("rendering {}", path.display()))?;
    // Replaced, not rewritten in place: a kubeconfig that held a key keeps no old bytes, and
    // the mode is the one asked for.
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
