//! `sparrowctl status`: health of the mesh; exit 1 when something is wrong.

use sparrow_kube::status::{StatusReport, status};

use crate::GlobalArgs;
use crate::cluster::{block_on, connect};

/// Flags of `status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text", value_name = "FORMAT")]
    output: StatusFormat,
}

/// `-o/--output` of `status`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum StatusFormat {
    /// Lines for a person.
    Text,
    /// One JSON object.
    Json,
}

/// The mesh is not healthy; the report was printed.
#[derive(Debug, thiserror::Error)]
#[error("Sparrow Mesh in namespace {namespace} is not healthy: {first}")]
struct Unhealthy {
    namespace: String,
    first: String,
}

/// Runs `status`.
pub fn run(global: &GlobalArgs, args: StatusArgs) -> anyhow::Result<()> {
    let report = block_on(async {
        let cluster = connect(global).await?;
        anyhow::Ok(status(&cluster.client, &global.namespace, global.timeout).await?)
    })??;
    match args.output {
        StatusFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        StatusFormat::Text => print_text(&report),
    }
    match report.problems.first() {
        None => Ok(()),
        Some(first) => Err(Unhealthy {
            namespace: report.namespace.clone(),
            first: first.clone(),
        }
        .into()),
    }
}

fn print_text(report: &StatusReport) {
    let mark = |ok: bool| if ok { "✓" } else { "✗" };
    let c = &report.controller;
    println!("Sparrow Mesh in namespace {}", report.namespace);
    if c.present {
        println!(
            "{} controller: {}/{} ready ({})",
            mark(c.ready_replicas >= c.replicas.max(1)),
            c.ready_replicas,
            c.replicas,
            c.image.as_deref().unwrap_or("no image")
        );
    } else {
        println!("✗ controller: not deployed");
    }
    let w = &report.webhook;
    println!(
        "{} webhook: {}",
        mark(w.present && w.ca_bundle_matches),
        match (w.present, w.ca_bundle_matches) {
            (false, _) => "missing",
            (true, true) => "present, caBundle matches the TLS secret",
            (true, false) => "present, caBundle does NOT match the TLS secret",
        }
    );
    match &report.registry {
        Some(r) => println!("✓ registry: {} ({})", r.server, r.credential),
        None => println!("  registry: no credentials stored"),
    }
    println!(
        "{} copies: {} ({} stale)",
        mark(report.stale_copies.is_empty()),
        report.copies,
        report.stale_copies.len()
    );
    for ns in &report.namespaces_missing_copy {
        println!("✗ namespace {ns}: injected pods but no registry secret");
    }
    for secret in &report.foreign_secrets {
        println!("  Secret {secret} is not Sparrow's (no usage label): left untouched");
    }
    for problem in &report.problems {
        println!("problem: {problem}");
    }
}
