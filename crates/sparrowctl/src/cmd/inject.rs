//! `sparrowctl inject -f FILE|-`: add the sidecar to pods and pod templates in YAML, offline,
//! with the same decision and patch as the webhook. Useful for GitOps and for clusters where
//! the webhook is not wanted; the controller still copies the pull secret when such a pod is
//! admitted.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use sparrow_core::{MeshConfig, RegistryServer};
use sparrow_inject::{
    Decision, InjectConfig, InjectError, SidecarKind, inject_documents_with_report,
};

use crate::GlobalArgs;
use crate::credentials::ImageArgs;
use crate::input::{MAX_MANIFEST_BYTES, StdinWithDeadline, read_bounded, read_file};
use crate::usage::UsageError;

/// Flags of `inject`.
#[derive(Debug, clap::Args)]
pub struct InjectArgs {
    /// YAML file with Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs,
    /// CronJobs or Lists; `-` reads standard input. Other documents pass through unchanged.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    file: PathBuf,
    /// Registry the sidecar and init images come from (as given to deploy).
    #[arg(long, value_name = "HOST[:PORT][/PATH]", default_value = sparrow_core::names::DEFAULT_REGISTRY_SERVER)]
    registry_server: String,
    #[command(flatten)]
    images: ImageArgs,
    /// Kubernetes version of the target cluster: before 1.29 the proxy is a classic
    /// container instead of a native sidecar (an init container with restartPolicy Always)
    /// [default: native]
    #[arg(long, value_name = "MAJOR.MINOR", value_parser = sidecar_for_version)]
    server_version: Option<SidecarKind>,
}

fn sidecar_for_version(value: &str) -> Result<SidecarKind, String> {
    let version = value.trim().trim_start_matches('v');
    match version.split_once('.') {
        Some((major, minor))
            if [major, minor]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) =>
        {
            Ok(SidecarKind::for_server_version(major, minor))
        }
        _ => Err(format!("{value:?} is not a Kubernetes version like 1.29")),
    }
}

/// Runs `inject`: YAML on stdout, one line per workload on stderr.
pub fn run(global: &GlobalArgs, args: InjectArgs) -> anyhow::Result<()> {
    sparrow_core::config::validate_namespace(&global.namespace)
        .map_err(|e| UsageError(format!("-n/--namespace: {e}")))?;
    let registry =
        RegistryServer::parse(&args.registry_server).map_err(UsageError::from_display)?;
    let images = args.images.resolve(&registry)?;
    let bytes = if args.file.as_os_str() == "-" {
        read_bounded(
            "-f -",
            &mut StdinWithDeadline::stdin(global.timeout),
            MAX_MANIFEST_BYTES,
            "split the manifests into smaller files",
        )?
    } else {
        read_file(
            "-f",
            &args.file,
            MAX_MANIFEST_BYTES,
            "split the manifests into smaller files",
        )?
    };
    let input = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "-f {}: not UTF-8 text (invalid byte at offset {})",
            args.file.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    let mesh = MeshConfig {
        namespace: global.namespace.clone(),
        registry,
        images,
        ..MeshConfig::default()
    };
    let config = InjectConfig {
        sidecar: args.server_version.unwrap_or_default(),
        ..InjectConfig::from_mesh(&mesh)
    };
    let injected = inject_documents_with_report(&input, &config)
        .map_err(|e| anyhow::anyhow!("-f {}: {}", args.file.display(), describe(&e)))?;
    crate::output::write_all(injected.yaml.as_bytes()).context("writing to stdout")?;
    let mut stderr = std::io::stderr().lock();
    for outcome in &injected.outcomes {
        let _ = match &outcome.decision {
            Decision::Inject => writeln!(stderr, "injected {} {}", outcome.kind, outcome.name),
            Decision::Skip(reason) => writeln!(
                stderr,
                "skipped {} {}: {}",
                outcome.kind,
                outcome.name,
                reason.as_str()
            ),
        };
    }
    Ok(())
}

/// An injection error in one line. A YAML error shows its position only: the parser's own
/// text quotes the source, and manifests can hold Secrets.
fn describe(error: &InjectError) -> String {
    match error {
        InjectError::ParseYaml(yaml) if let Some(problem) = alias_problem(yaml) => format!(
            "refused: {problem}{}: write the objects out without YAML aliases",
            yaml.location()
                .map(|at| format!(" (line {}, column {})", at.line(), at.column()))
                .unwrap_or_default()
        ),
        InjectError::ParseYaml(yaml) => match yaml.location() {
            Some(at) => format!(
                "not valid YAML: error at line {}, column {}",
                at.line(),
                at.column()
            ),
            None => "not valid YAML".to_owned(),
        },
        other => other.to_string(),
    }
}

/// Why the parser stopped, when aliases (`*name`) made it: a document that expands
/// without bound (a "billion laughs"), or an alias inside the node it names.
fn alias_problem(error: &serde_saphyr::Error) -> Option<&'static str> {
    use serde_saphyr::Error as E;
    use serde_saphyr::budget::BudgetBreach as B;
    const EXPANDS: &str = "its YAML aliases (*name) expand to more nodes than the parser allows (a \"billion laughs\" document)";
    match error.without_snippet() {
        // Any budget (nodes, events) breached while replaying an alias is the aliases' doing.
        E::AliasError { error, .. } => match error.without_snippet() {
            E::Budget { .. } => Some(EXPANDS),
            _ => alias_problem(error),
        },
        E::RecursiveReferencesRequireWeakTypes { .. } => {
            Some("a YAML alias (*name) refers to the node that holds it (a recursive document)")
        }
        E::AliasReplayCounterOverflow { .. }
        | E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. } => Some(EXPANDS),
        E::Budget {
            breach: B::Aliases { .. } | B::Anchors { .. },
            ..
        } => Some(EXPANDS),
        _ => None,
    }
}
