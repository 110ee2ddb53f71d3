//! `sparrowctl status`: health of the mesh; exit 1 when something is wrong.

use sparrow_core::ExpiryState;
use sparrow_core::expiry::short_duration;
use sparrow_core::names::CONTAINER_PORT;
use sparrow_kube::status::{ExpiryStatus, StatusReport, WebhookCallers, status};

use crate::GlobalArgs;
use crate::cluster::{block_on, check_global, connect};

/// Flags of `status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text", value_name = "FORMAT")]
    output: StatusFormat,
    /// Warn this long before the registry credential expires (when its expiry is known),
    /// e.g. 7d, 48h.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_expiry_warning)]
    expiry_warning: std::time::Duration,
}

/// `--expiry-warning`: a duration.
fn parse_expiry_warning(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (e.g. 7d, 48h, 30m)"))
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
    check_global(global)?;
    let report = block_on(async {
        let cluster = connect(global).await?;
        anyhow::Ok(
            status(
                &cluster.client,
                &global.namespace,
                global.timeout,
                args.expiry_warning,
            )
            .await?,
        )
    })??;
    match args.output {
        StatusFormat::Json => crate::say!("{}", serde_json::to_string_pretty(&report)?),
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
    crate::say!("Sparrow Mesh in namespace {}", report.namespace);
    if c.present {
        crate::say!(
            "{} controller: {}/{} ready ({})",
            mark(c.ready_replicas >= c.replicas.max(1)),
            c.ready_replicas,
            c.replicas,
            c.image.as_deref().unwrap_or("no image")
        );
    } else {
        crate::say!("✗ controller: not deployed");
    }
    let w = &report.webhook;
    crate::say!(
        "{} webhook: {}",
        mark(w.present && w.ca_bundle_matches),
        match (w.present, w.ca_bundle_matches) {
            (false, _) => "missing",
            (true, true) => "present, its caBundle verifies the serving certificate",
            (true, false) => "present, its caBundle does NOT verify the serving certificate",
        }
    );
    match (&w.cert_expires, w.cert_expires_in_seconds) {
        (Some(at), Some(left)) if left > 0 => crate::say!(
            "  serving certificate: expires {at} (in {}; the controller renews it at two thirds of its life)",
            humantime::format_duration(std::time::Duration::from_secs(left.unsigned_abs()))
        ),
        (Some(at), Some(_)) => crate::say!("✗ serving certificate: expired {at}"),
        _ => crate::say!("✗ serving certificate: none yet (the controller makes it at start)"),
    }
    crate::say!("{}", webhook_callers_line(report));
    match &report.registry {
        Some(r) => match r.kept_by {
            sparrow_kube::status::SourceKind::Static => {
                crate::say!("✓ registry: {} ({})", r.server, r.credential)
            }
            sparrow_kube::status::SourceKind::Plugin => crate::say!(
                "✓ registry: {} ({}, kept fresh by the controller's credential-provider plugin)",
                r.server,
                r.credential
            ),
            sparrow_kube::status::SourceKind::External => crate::say!(
                "✓ registry: {} ({}, in Secret {} kept by another tool)",
                r.server,
                r.credential,
                r.secret
            ),
        },
        None => match &report.registry_secret {
            Some(name) => crate::say!(
                "✗ registry: Secret {}/{name}, kept by another tool, is missing or unusable (see below)",
                report.namespace
            ),
            None => crate::say!("  registry: no credentials stored"),
        },
    }
    if let Some(r) = &report.registry {
        crate::say!("{}", credential_expiry_line(r.expiry.as_ref()));
        if let Some(refresh) = &r.refresh {
            crate::say!(
                "  refreshed {}, next refresh {}",
                refresh
                    .refreshed_at
                    .as_deref()
                    .unwrap_or("never (seeded by deploy)"),
                refresh
                    .next_refresh
                    .as_deref()
                    .unwrap_or("as soon as the controller leads")
            );
        }
    }
    crate::say!(
        "{} copies: {} ({} stale)",
        mark(report.stale_copies.is_empty()),
        report.copies,
        report.stale_copies.len()
    );
    for ns in &report.namespaces_missing_copy {
        crate::say!("✗ namespace {ns}: injected pods but no registry secret");
    }
    for secret in &report.foreign_secrets {
        crate::say!(
            "  Secret {secret} is not Sparrow's (it lacks the controller's proof): left untouched"
        );
    }
    println_admission(report);
    for warning in &report.warnings {
        crate::say!("warning: {warning}");
    }
    for problem in &report.problems {
        crate::say!("problem: {problem}");
    }
}

/// Whether pod creation is blocked, and the pods that run without the sidecar.
fn println_admission(report: &StatusReport) {
    let a = &report.admission;
    crate::say!(
        "{} admission: {}",
        if a.blocked { "✗" } else { "✓" },
        a.describe()
    );
    const SHOWN: usize = 10;
    if !report.pods_without_sidecar.is_empty() {
        let more = report.pods_without_sidecar.len().saturating_sub(SHOWN);
        crate::say!(
            "  pods without the sidecar: {}{}",
            report.pods_without_sidecar[..report.pods_without_sidecar.len().min(SHOWN)].join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    }
}

/// When the registry credential expires, in one line (the warning or problem follows below).
fn credential_expiry_line(expiry: Option<&ExpiryStatus>) -> String {
    let Some(e) = expiry else {
        return "  credential: no expiry known (give sparrowctl registry update --registry-credential-expires DATE if it has one)".to_owned();
    };
    let left = short_duration(e.expires_in_seconds.unsigned_abs());
    let from = crate::cmd::deploy::expiry_origin(e.source);
    match e.state {
        ExpiryState::Expired => format!(
            "✗ credential: expired {} ({left} ago; from {from})",
            e.expires
        ),
        ExpiryState::Warning => format!(
            "! credential: expires {} (in {left}; from {from})",
            e.expires
        ),
        ExpiryState::Ok | ExpiryState::Unknown => {
            format!(
                "  credential: expires {} (in {left}; from {from})",
                e.expires
            )
        }
    }
}

/// Who the webhook answers, in one line.
fn webhook_callers_line(report: &StatusReport) -> String {
    match report.controller.webhook_callers {
        WebhookCallers::ApiServerOnly => {
            "  webhook callers: API server only (client certificate)".to_owned()
        }
        WebhookCallers::Anyone => format!(
            "  webhook callers: unauthenticated: anyone who reaches port {CONTAINER_PORT} is answered; see deploy --webhook-client-ca"
        ),
    }
}
