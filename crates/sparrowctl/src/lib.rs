//! The `sparrowctl` command line. Each verb lives in `cmd/<verb>.rs`; the doc comments of
//! the clap types below are the `--help` text.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod cluster;
mod cmd;
mod credentials;
mod external_secret;
mod images_from;
mod input;
pub mod output;
mod plugin;
mod preflight;
mod progress;
mod usage;

pub use usage::UsageError;

/// Deploy Sparrow Mesh from a private registry, and remove it again.
///
/// Sparrow stores your registry credentials as a `kubernetes.io/dockerconfigjson` Secret
/// named `sparrow-registry-key` (label `usage=sparrow-registry-key`), copies it into every
/// namespace whose pods get the sidecar, and deletes every copy when the mesh is removed.
#[derive(Debug, Parser)]
#[command(
    name = "sparrowctl",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Flags every verb accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context to use (default: the current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace of the control plane.
    #[arg(short = 'n', long, global = true, default_value = sparrow_core::names::DEFAULT_NAMESPACE, value_name = "NS")]
    pub namespace: String,
    /// How long to wait for the cluster and the registry, for example 30s, 2m or 1m30s.
    #[arg(long, global = true, default_value = "2m", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
}

// Parsed once per process: variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Deploy (or update) the control plane, with credentials for a private registry.
    ///
    /// Examples:
    ///   sparrowctl deploy --registry-server registry.example.com:5000/mesh \
    ///       --registry-username robot --registry-password-stdin < password.txt
    ///   sparrowctl deploy --registry-server europe-docker.pkg.dev/acme/mesh --registry-key key.json
    ///   sparrowctl deploy --registry-server harbor.example.com/mesh --dry-run > sparrow.yaml
    #[command(verbatim_doc_comment)]
    Deploy(cmd::deploy::DeployArgs),
    /// Remove the control plane and every registry secret Sparrow created, in every namespace.
    ///
    /// Deletes only what carries the marker label sparrow-mesh.io/mesh=<namespace>, in this
    /// order: the webhook, the control plane, the copies of the registry Secret the controller
    /// proves it made, the key they are proven with, the namespace if deploy created it and it
    /// holds nothing else. Lookalikes are named and left untouched. Idempotent.
    ///
    /// An install made before Sparrow marked its objects is left too (each object named);
    /// --adopt-unmarked lists and then deletes it.
    ///
    /// Examples:
    ///   sparrowctl remove
    ///   sparrowctl remove -n team --yes
    ///   sparrowctl remove --adopt-unmarked
    #[command(verbatim_doc_comment)]
    Remove(cmd::remove::RemoveArgs),
    /// Show whether the mesh is healthy; exits 1 when something is wrong.
    Status(cmd::status::StatusArgs),
    /// Add the sidecar to the pods and pod templates of YAML manifests (offline).
    ///
    /// Example:
    ///   sparrowctl inject -f app.yaml --registry-server registry.example.com:5000/mesh | kubectl apply -f -
    #[command(verbatim_doc_comment)]
    Inject(cmd::inject::InjectArgs),
    /// Write the API server's side of webhook client authentication: an AdmissionConfiguration
    /// and a kubeconfig that make kube-apiserver present its client certificate to the mesh's
    /// webhook. Contacts no cluster.
    ///
    /// With `deploy --webhook-client-ca CA.crt` the webhook answers only callers with a client
    /// certificate signed by CA.crt; anyone else who reaches port 8443 fails at the TLS
    /// handshake. The API server presents one only when its admission configuration says so,
    /// which is what this writes.
    ///
    /// Example:
    ///   sparrowctl webhook-auth --client-cert apiserver-webhook.crt \
    ///       --client-key apiserver-webhook.key --out /etc/kubernetes/sparrow
    ///   kube-apiserver ... --admission-control-config-file=/etc/kubernetes/sparrow/admission-config.yaml
    ///   sparrowctl deploy --webhook-client-ca CA.crt ...
    #[command(verbatim_doc_comment)]
    WebhookAuth(cmd::webhook_auth::WebhookAuthArgs),
    /// Manage the registry credentials.
    #[command(subcommand)]
    Registry(cmd::registry::RegistryCommand),
    /// List the mesh's images, or push them from a built layout into a private registry.
    #[command(subcommand)]
    Images(cmd::images::ImagesCommand),
    /// Print the version of sparrowctl and of the images it deploys by default.
    Version(cmd::version::VersionArgs),
    /// Print a shell completion script: `sparrowctl completion bash > /etc/bash_completion.d/sparrowctl`.
    Completion {
        /// The shell to generate completions for.
        shell: clap_complete::Shell,
    },
}

impl Cli {
    /// Parses `std::env::args`, runs the verb, prints any error as one line on stderr, and
    /// returns 0 on success, 2 for a usage error, 1 for anything else.
    pub fn parse_and_run() -> ExitCode {
        // A bug must still be one line on stderr, never a multi-line dump.
        std::panic::set_hook(Box::new(|info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            let location = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let _ = writeln!(
                std::io::stderr(),
                "error: internal error (please report it): {}{location}",
                message.replace('\n', " ")
            );
        }));
        let cli = match Self::try_parse() {
            Ok(cli) => cli,
            Err(error) if !error.use_stderr() => error.exit(), // --help, --version
            Err(error) => {
                // clap's first line names the problem; its usage block would make it many lines.
                let rendered = error.render().to_string();
                let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
                let mut message = lines
                    .next()
                    .unwrap_or("error: invalid arguments")
                    .to_owned();
                if message.ends_with(':') {
                    // "the following required arguments were not provided:" names them below.
                    message = format!("{message} {}", lines.next().unwrap_or_default());
                }
                let _ = writeln!(std::io::stderr(), "{message} (see --help)");
                return ExitCode::from(2);
            }
        };
        match cli.run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                let code = if error.downcast_ref::<UsageError>().is_some() {
                    2
                } else {
                    1
                };
                let _ = writeln!(std::io::stderr(), "error: {}", one_line(&error));
                ExitCode::from(code)
            }
        }
    }

    fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Deploy(args) => cmd::deploy::run(&self.global, args),
            Command::Inject(args) => cmd::inject::run(&self.global, args),
            Command::Remove(args) => cmd::remove::run(&self.global, args),
            Command::Status(args) => cmd::status::run(&self.global, args),
            Command::Registry(command) => cmd::registry::run(&self.global, command),
            Command::Images(command) => cmd::images::run(&self.global, command),
            Command::Version(args) => cmd::version::run(args),
            Command::WebhookAuth(args) => cmd::webhook_auth::run(&self.global, args),
            Command::Completion { shell } => cmd::completion::run::<Self>(shell),
        }
    }
}

/// The error and its causes on one line. A cluster error already describes its API cause
/// (whose own Display is a Debug dump), so the chain stops there; a cause whose text is
/// already shown is not repeated.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        if cause.downcast_ref::<sparrow_kube::ClusterError>().is_some() {
            break;
        }
    }
    line.replace('\n', " ")
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("{e}: use a duration such as 30s, 2m or 1m30s"))?;
    if duration.is_zero() {
        return Err("the timeout must be greater than zero".to_owned());
    }
    Ok(duration)
}
