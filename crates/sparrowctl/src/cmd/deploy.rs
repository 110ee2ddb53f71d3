//! `sparrowctl deploy`: validate every input, then render (`--dry-run`) or apply the control plane.

use anyhow::Context as _;
use sparrow_core::config::{validate_enabled_namespace, validate_namespace};
use sparrow_core::{ControlPlane, InjectionScope, MeshConfig, PullPolicy, webhook_pki};

use std::path::{Path, PathBuf};

use sparrow_core::WebhookClientCa;
use sparrow_core::names::{
    CREDENTIAL_PROVIDER_SECRET_NAME, PULL_SECRET_NAME, WEBHOOK_CLIENT_CA_NAME,
};
use sparrow_kube::ClusterConfig;
use sparrow_kube::apply::{self, ApplyStep};
use sparrow_kube::wait;
use sparrow_kube::webhook_client_ca::{StoredClientCa, delete_client_ca, stored_client_ca};

use crate::GlobalArgs;
use crate::cluster::{block_on, reach_reporting};
use crate::credentials::{
    ExpiryArgs, ImageArgs, PASSWORD_ENV, PasswordSources, RegistryArgs, recorded_expiry,
};
use crate::external_secret;
use crate::input::StdinWithDeadline;
use crate::preflight::{RegistryTlsArgs, check_and_report};
use crate::progress::Progress;
use crate::usage::UsageError;

/// Flags of `deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// A kubernetes.io/dockerconfigjson Secret in the mesh namespace that another tool keeps
    /// (external-secrets, the Vault Secrets Operator, Sealed Secrets, SOPS): the control plane
    /// pulls with it and the controller copies it, byte for byte, into the namespaces of
    /// meshed pods on every change. Sparrow reads it (RBAC for that one name), never writes
    /// or deletes it; remove leaves it. Checked once here: its type, an entry under "auths"
    /// for --registry-server, and the registry check with it.
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with_all = ["registry_key", "registry_username", "registry_password", "registry_password_stdin", "registry_credential_expires"],
        help_heading = "Private registry"
    )]
    registry_secret: Option<String>,
    #[command(flatten)]
    plugin: crate::plugin::PluginArgs,
    #[command(flatten)]
    expiry: ExpiryArgs,
    #[command(flatten)]
    images: ImageArgs,
    #[command(flatten)]
    images_from: crate::images_from::ImagesFromArgs,
    #[command(flatten)]
    registry_tls: RegistryTlsArgs,
    /// Deploy without first checking the credentials and every image against the registry.
    #[arg(long, help_heading = "Registry check")]
    skip_registry_check: bool,
    /// imagePullPolicy of the mesh's containers.
    #[arg(long, value_name = "POLICY", default_value = "IfNotPresent", value_parser = ["Always", "IfNotPresent", "Never"], help_heading = "Images")]
    pull_policy: String,
    /// Do not inject namespaces automatically: only namespaces labelled
    /// injector.sparrow-mesh.io/auto-inject=enabled, those in --enabled-namespaces, and pods
    /// labelled enabled get the sidecar.
    #[arg(long, help_heading = "Injection")]
    disable_auto_inject: bool,
    /// Namespaces injected even with --disable-auto-inject, comma-separated (a,b).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "NS,...",
        requires = "disable_auto_inject",
        help_heading = "Injection"
    )]
    enabled_namespaces: Vec<String>,
    /// Life of the webhook's serving certificate, which the controller makes, renews at two
    /// thirds of its life and signs with a CA of its own that lives four times as long (rolled
    /// over with an overlap in the webhook's caBundle). At least 2m (for tests of rotation).
    #[arg(long, value_name = "DURATION", default_value = "90d", value_parser = parse_cert_validity, help_heading = "Webhook")]
    webhook_cert_validity: std::time::Duration,
    /// PEM file with the CA certificate(s) that sign the API server's client certificate: the
    /// webhook then answers only callers presenting one (anyone else fails at the TLS
    /// handshake). Give the API server its side with `sparrowctl webhook-auth`. A later deploy
    /// without this flag keeps the stored CA.
    #[arg(long, value_name = "FILE", help_heading = "Webhook callers")]
    webhook_client_ca: Option<PathBuf>,
    /// Answer any caller again: drop the client CA an earlier --webhook-client-ca stored.
    #[arg(
        long,
        conflicts_with = "webhook_client_ca",
        help_heading = "Webhook callers"
    )]
    no_webhook_client_ca: bool,
    /// Print the manifests instead of applying them; contacts no cluster and no registry.
    /// They hold no certificate or key (the controller makes those): fit for Git, but for the
    /// pull secret when credentials are given.
    #[arg(long)]
    dry_run: bool,
    /// Wait until the controller is available (up to --timeout); --wait=false returns once
    /// everything is applied.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    wait: bool,
    /// Output format of --dry-run: multi-document YAML, or one JSON List.
    #[arg(
        short,
        long,
        value_enum,
        default_value = "yaml",
        requires = "dry_run",
        value_name = "FORMAT"
    )]
    output: OutputFormat,
}

/// `-o/--output`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum OutputFormat {
    /// Multi-document YAML.
    Yaml,
    /// A `v1` `List`.
    Json,
}

impl DeployArgs {
    /// Every input validated and turned into a [`MeshConfig`]; nothing is contacted.
    fn mesh_config(&self, global: &GlobalArgs) -> anyhow::Result<MeshConfig> {
        validate_namespace(&global.namespace)
            .map_err(|e| UsageError(format!("-n/--namespace: {e}")))?;
        for ns in &self.enabled_namespaces {
            validate_enabled_namespace(ns, &global.namespace)
                .map_err(|e| UsageError(format!("--enabled-namespaces: {e}")))?;
        }
        let pull_policy: PullPolicy = self.pull_policy.parse().map_err(UsageError::from_display)?;
        // Image flags are checked before credentials so that no stdin is read for a usage error.
        let registry_server = match &self.registry.registry_server {
            Some(text) => {
                sparrow_core::RegistryServer::parse(text).map_err(UsageError::from_display)?
            }
            None => sparrow_core::RegistryServer::default(),
        };
        let images = self.images.resolve(&registry_server)?;
        let tag = self.images.image_tag.as_deref();
        let tag = tag.unwrap_or(sparrow_core::names::DEFAULT_IMAGE_TAG);
        let images = self.images_from.pin(&registry_server, tag, images)?;
        let credential_plugin = crate::plugin::read(&self.plugin, &images)?;
        let webhook_client_ca = self
            .webhook_client_ca
            .as_deref()
            .map(read_webhook_client_ca)
            .transpose()?;
        let registry_secret = self
            .registry_secret
            .as_deref()
            .map(|name| external_secret::check_registry_secret_name(name, &global.namespace))
            .transpose()?;
        // Before the password is read: a refused date reads nothing and writes nothing.
        self.registry
            .check_rules(false, std::env::var(PASSWORD_ENV).is_ok())?;
        let expires_flag = self.expiry.check(&self.registry)?;
        let registry = self.registry.resolve(
            PasswordSources {
                env: std::env::var(PASSWORD_ENV).ok(),
                stdin: &mut StdinWithDeadline::stdin(global.timeout),
                warnings: &mut std::io::stderr(),
            },
            None,
        )?;
        if let Some(auth) = &registry.auth {
            sparrow_core::auth::check_fits_in_secret(&registry.server, auth)?;
        }
        Ok(MeshConfig {
            namespace: global.namespace.clone(),
            registry: registry.server,
            credential_expiry: recorded_expiry(expires_flag, registry.auth.as_ref()),
            auth: registry.auth,
            stored_pull_secret: false,
            registry_secret,
            credential_plugin,
            images,
            pull_policy,
            injection: InjectionScope {
                disable_auto_inject: self.disable_auto_inject,
                enabled_namespaces: self.enabled_namespaces.clone(),
            },
            webhook_cert_validity: (self.webhook_cert_validity
                != webhook_pki::DEFAULT_LEAF_VALIDITY)
                .then_some(self.webhook_cert_validity),
            webhook_client_ca,
        })
    }
}

/// Where a recorded expiry came from, for people.
pub(crate) fn expiry_origin(source: sparrow_core::ExpirySource) -> &'static str {
    match source {
        sparrow_core::ExpirySource::Flag => "--registry-credential-expires",
        sparrow_core::ExpirySource::Jwt => "the password's JWT exp claim",
        sparrow_core::ExpirySource::Plugin => "the credential-provider plugin's cacheDuration",
    }
}

/// `--webhook-cert-validity`: a duration of at least two minutes.
fn parse_cert_validity(text: &str) -> Result<std::time::Duration, String> {
    let validity =
        humantime::parse_duration(text).map_err(|e| format!("{e} (e.g. 90d, 720h, 2m)"))?;
    if validity < webhook_pki::MIN_LEAF_VALIDITY {
        return Err("must be at least 2m".to_owned());
    }
    Ok(validity)
}

/// Runs `deploy`.
pub fn run(global: &GlobalArgs, args: DeployArgs) -> anyhow::Result<()> {
    let mut config = args.mesh_config(global)?;
    if args.dry_run {
        return print_rendered(&ControlPlane::render(&config), args.output);
    }
    // Read and validated before anything is contacted.
    let check_options = args.registry_tls.options(global, &args.registry)?;
    block_on(async {
        let cluster = crate::cluster::load(global).await?;
        let mut check = !args.skip_registry_check;
        if let Some(plugin) = &config.credential_plugin {
            match &args.plugin.credential_provider_bin_dir {
                Some(bin_dir) => {
                    let seed =
                        crate::plugin::run_once(plugin, bin_dir, &config.registry, &config.images)
                            .await
                            .map_err(|e| {
                                anyhow::anyhow!(
                                    "--credential-provider-bin-dir: {e}; nothing was deployed"
                                )
                            })?;
                    crate::say!(
                        "The credential-provider plugin {} answered with a {} for {}{}.",
                        plugin.provider,
                        seed.auth.kind(),
                        config.registry.auth_key(),
                        seed.expiry
                            .map(|e| format!(", valid until {}", e.rfc3339()))
                            .unwrap_or_default()
                    );
                    config.auth = Some(seed.auth);
                    config.credential_expiry = seed.expiry;
                }
                None => {
                    crate::say!(
                        "The credential-provider plugin {} is not run here (no --credential-provider-bin-dir): the registry is not checked, and the nodes' kubelets must pull the control plane with their own plugin until the controller has stored its first credential.",
                        plugin.provider
                    );
                    check = false;
                }
            }
        }
        // A Secret another tool keeps is checked once it has been read from the cluster.
        if check && config.registry_secret.is_none() {
            crate::say!("Checking {} with the given credentials:", config.registry);
            check_and_report(
                &config.registry,
                config.auth.as_ref(),
                &config.images.all(),
                &check_options,
                "; nothing was deployed (fix the credentials or images, or pass --skip-registry-check)",
            )
            .await?;
        }
        let callers = if args.no_webhook_client_ca {
            Callers::Anyone
        } else {
            Callers::AsGivenOrStored
        };
        let check = check.then_some(&check_options);
        deploy_to_cluster(global, cluster, &config, callers, args.wait, check).await
    })?
}

/// Checks the Secret another tool keeps that `config` names, if any
/// ([`external_secret::check_registry_secret`]).
async fn check_registry_secret(
    cluster: &sparrow_kube::Cluster,
    config: &MeshConfig,
    global: &GlobalArgs,
    progress: &Progress,
    check: Option<&sparrow_registry::CheckOptions>,
) -> anyhow::Result<()> {
    let Some(name) = &config.registry_secret else {
        return Ok(());
    };
    let secret = external_secret::ExternalSecret {
        namespace: &config.namespace,
        name,
        registry: &config.registry,
        images: &config.images,
    };
    external_secret::check_registry_secret(
        cluster,
        &secret,
        global.timeout,
        progress,
        check,
        &external_secret::DEPLOY,
    )
    .await
}

fn print_rendered(plane: &ControlPlane, output: OutputFormat) -> anyhow::Result<()> {
    let rendered = match output {
        OutputFormat::Yaml => plane.to_yaml().context("rendering YAML")?,
        OutputFormat::Json => {
            let mut text =
                serde_json::to_string_pretty(&plane.to_json_list()).context("rendering JSON")?;
            text.push('\n');
            text
        }
    };
    crate::output::write_all(rendered.as_bytes()).context("writing to stdout")
}

async fn deploy_to_cluster(
    global: &GlobalArgs,
    cluster: ClusterConfig,
    config: &MeshConfig,
    callers: Callers,
    wait: bool,
    check: Option<&sparrow_registry::CheckOptions>,
) -> anyhow::Result<()> {
    let progress = Progress::new();
    let cluster = reach_reporting(cluster, global, &progress).await?;
    let client = &cluster.client;
    // A Secret named on the command line is checked before anything else is read.
    check_registry_secret(&cluster, config, global, &progress, check).await?;

    // Reads before the first write: a foreign pull secret or another mesh stops us with
    // nothing written, the webhook certificate in use is kept so the controller and the
    // caBundle never disagree, and a namespace that exists is used, never adopted.
    let mut existing = apply::read_existing(client, &config.namespace, global.timeout).await?;
    if let Some(uid) = &existing.namespace_terminating {
        // Right after `remove`: Kubernetes refuses anything created in it until it is gone.
        progress
            .waiting(
                &format!(
                    "waiting for Namespace {} to finish terminating (a previous remove)",
                    config.namespace
                ),
                apply::wait_namespace_gone(client, &config.namespace, uid, global.timeout),
            )
            .await?;
        progress.done(&format!("Namespace {} is gone", config.namespace));
        existing = apply::read_existing(client, &config.namespace, global.timeout).await?;
    }
    // No credential flags over a mesh that copies a Secret another tool keeps: keep it.
    let external;
    let (config, kept_external) = match (&config.registry_secret, &existing.registry_secret) {
        (None, Some(name)) if config.auth.is_none() => {
            progress.done(&format!(
                "no credential flags given: keeping Secret {}/{name}, kept by another tool (--registry-secret)",
                config.namespace
            ));
            external = MeshConfig {
                registry_secret: Some(name.clone()),
                ..config.clone()
            };
            (&external, true)
        }
        _ => (config, false),
    };
    if kept_external {
        // Kept from the previous deploy: checked again, before anything is written.
        check_registry_secret(&cluster, config, global, &progress, check).await?;
    }
    // No credential flags over a mesh whose controller runs a plugin: it keeps running it.
    let plugin;
    let config = match &existing.credential_plugin {
        Some(stored)
            if config.auth.is_none()
                && config.registry_secret.is_none()
                && config.credential_plugin.is_none() =>
        {
            progress.done(&format!(
                "no credential flags given: the controller keeps running the credential-provider plugin {} (Secret {}/{CREDENTIAL_PROVIDER_SECRET_NAME})",
                stored.provider, config.namespace
            ));
            plugin = MeshConfig {
                credential_plugin: Some(stored.clone()),
                ..config.clone()
            };
            &plugin
        }
        _ => config,
    };
    // No credential flags over a mesh deployed with credentials: keep pulling with them.
    let kept;
    let config = if config.auth.is_none()
        && config.registry_secret.is_none()
        && existing.pull_secret_present
    {
        kept = MeshConfig {
            stored_pull_secret: true,
            ..config.clone()
        };
        progress.done(&format!(
            "no credential flags given: keeping the stored registry credential (Secret {}/{PULL_SECRET_NAME})",
            config.namespace
        ));
        &kept
    } else {
        config
    };
    let stored_ca = stored_client_ca(client, &config.namespace, global.timeout).await?;
    let with_ca;
    let config = match webhook_client_ca(config, callers, stored_ca.as_ref(), &progress)? {
        Some(changed) => {
            with_ca = changed;
            &with_ca
        }
        None => config,
    };
    let plane = ControlPlane::render(config);
    apply::apply_control_plane(
        client,
        &plane,
        &existing,
        global.timeout,
        |step| match step {
            ApplyStep::Applied(what) => progress.done(&format!("applied {what}")),
            ApplyStep::NamespaceKept(ns) => progress.done(&format!(
                "using the existing Namespace {ns} (not created by Sparrow: remove keeps it)"
            )),
        },
    )
    .await?;
    if config.auth.is_some() && config.credential_expiry.is_none() {
        sparrow_kube::secrets::drop_stale_credential_expiry(
            client,
            &config.namespace,
            global.timeout,
        )
        .await?;
    }
    if let Some(expiry) = &config.credential_expiry {
        progress.done(&format!(
            "the registry credential expires {} (from {})",
            expiry.rfc3339(),
            expiry_origin(expiry.source)
        ));
    }

    // The webhook goes in last, once the controller can answer it: a controller that never
    // comes up leaves pod creation unblocked.
    if wait {
        let waited = progress
            .waiting(
                "waiting for the controller to become available",
                wait::wait_for_controller(client, &config.namespace, global.timeout),
            )
            .await;
        if let Err(error) = waited {
            drop(progress);
            return Err(not_available(&cluster, config, &existing, error, global).await);
        }
        progress.done("controller available");
    }
    if let Some(what) = apply::apply_webhook(client, &plane, global.timeout).await? {
        progress.done(&format!("applied {what}"));
    }
    if config.registry_secret.is_some() && existing.pull_secret_present {
        // Switched to a Secret another tool keeps: the controller now copies that one, and
        // the credential Sparrow stored before goes (the copies are rewritten, never emptied).
        if wait {
            sparrow_kube::secrets::delete_own_source(client, &config.namespace, global.timeout)
                .await?;
            progress.done(&format!(
                "deleted Secret {}/{PULL_SECRET_NAME}: the credential Sparrow stored before (the copies now follow Secret {}/{})",
                config.namespace,
                config.namespace,
                config.registry_secret.as_deref().unwrap_or_default()
            ));
        } else {
            progress.done(&format!(
                "kept Secret {}/{PULL_SECRET_NAME}, the credential Sparrow stored before, while the controller starts (--wait=false); deploy again to delete it",
                config.namespace
            ));
        }
    }
    if let (None, Some(stored)) = (&config.webhook_client_ca, &stored_ca) {
        // After the Deployment that no longer reads it.
        delete_client_ca(client, &config.namespace, stored, global.timeout).await?;
        progress.done(&format!(
            "deleted ConfigMap {}/{WEBHOOK_CLIENT_CA_NAME}: the webhook answers any caller",
            config.namespace
        ));
    }
    if wait {
        let probed = progress
            .waiting(
                "waiting for the API server to reach the webhook",
                wait::wait_for_webhook(client, &config.namespace, global.timeout),
            )
            .await;
        match probed {
            Ok(wait::WebhookProbe::Injected) => {
                progress.done("the API server reaches the webhook (a dry-run pod got the sidecar)")
            }
            Ok(wait::WebhookProbe::Unchecked(why)) => progress.done(&format!(
                "not checked that the API server reaches the webhook: {why}"
            )),
            Err(error) => {
                drop(progress);
                let callers = if config.webhook_client_ca.is_some() {
                    "; the webhook requires the API server's client certificate (--webhook-client-ca): check that kube-apiserver runs with the admission configuration `sparrowctl webhook-auth` writes"
                } else {
                    ""
                };
                anyhow::bail!(
                    "{error}; pods in namespaces that opted into the mesh are refused until it does; check the Service's endpoints (`kubectl -n {} get endpointslices`) and the node's Service rules{callers}, then run deploy again",
                    config.namespace
                );
            }
        }
    }
    drop(progress);
    print_summary(config, wait);
    Ok(())
}

/// The wait failed: say so, and whether pod creation is blocked anywhere because of it.
async fn not_available(
    cluster: &sparrow_kube::Cluster,
    config: &MeshConfig,
    existing: &apply::Existing,
    error: wait::WaitError,
    global: &GlobalArgs,
) -> anyhow::Error {
    let blocking = if existing.webhook_present {
        match sparrow_kube::status::admission_now(
            &cluster.client,
            &config.namespace,
            global.timeout,
        )
        .await
        {
            Ok(admission) => format!(
                "the webhook configuration of the previous deploy stays: {}",
                admission.describe()
            ),
            Err(e) => format!("the webhook configuration of the previous deploy stays ({e})"),
        }
    } else {
        "the webhook configuration was not applied, so pod creation is not blocked anywhere"
            .to_owned()
    };
    anyhow::anyhow!("{error}; {blocking}; run deploy again once it is fixed")
}

fn print_summary(config: &MeshConfig, wait: bool) {
    let credentials = match &config.auth {
        None if config.registry_secret.is_some() => format!(
            "credentials copied from Secret {}/{}, which another tool keeps (Sparrow never writes or deletes it)",
            config.namespace,
            config.registry_secret.as_deref().unwrap_or_default()
        ),
        Some(auth) => format!(
            "credentials ({}) stored in Secret {}/{}",
            auth.kind(),
            config.namespace,
            PULL_SECRET_NAME
        ),
        None if config.stored_pull_secret => format!(
            "the registry credentials stored earlier in Secret {}/{PULL_SECRET_NAME} are kept",
            config.namespace
        ),
        None => "no registry credentials".to_owned(),
    };
    crate::say!(
        "Sparrow Mesh deployed to namespace {} from {}; {credentials}.",
        config.namespace,
        config.registry
    );
    match &config.webhook_client_ca {
        Some(ca) => crate::say!(
            "The webhook answers only callers with a client certificate from {} (ConfigMap {}/{WEBHOOK_CLIENT_CA_NAME}).",
            ca.subjects().join(", "),
            config.namespace
        ),
        None => crate::say!(
            "The webhook answers any caller that reaches it; deploy --webhook-client-ca limits it to the API server."
        ),
    }
    if !wait {
        crate::say!(
            "Not waiting for the controller (--wait=false): until it is ready, pods in namespaces that opted in (auto-inject=enabled) are refused; others are admitted without the sidecar. `sparrowctl status` shows when it is ready."
        );
    }
}

/// What `deploy` does about who may call the webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Callers {
    /// `--webhook-client-ca` when given, else the CA stored by an earlier deploy, if any.
    AsGivenOrStored,
    /// `--no-webhook-client-ca`: anyone who reaches the webhook.
    Anyone,
}

/// Reads and checks `--webhook-client-ca FILE` (before anything is contacted).
fn read_webhook_client_ca(path: &Path) -> anyhow::Result<WebhookClientCa> {
    let shown = path.display();
    let bytes = crate::input::read_file(
        "--webhook-client-ca",
        path,
        crate::input::MAX_KEY_BYTES,
        "a ConfigMap holds at most 1 MiB, so no usable CA bundle is larger",
    )?;
    let text = String::from_utf8(bytes).map_err(|_| {
        anyhow::anyhow!(
            "--webhook-client-ca {shown}: the file is not UTF-8 text: give a PEM CA certificate"
        )
    })?;
    WebhookClientCa::parse(&text, time::OffsetDateTime::now_utc())
        .map_err(|e| anyhow::anyhow!("--webhook-client-ca {shown} {e}"))
}

/// The configuration with the client CA to deploy, when it differs from `config`'s: the
/// stored one when no flag was given, none with `--no-webhook-client-ca`.
fn webhook_client_ca(
    config: &MeshConfig,
    callers: Callers,
    stored: Option<&StoredClientCa>,
    progress: &Progress,
) -> anyhow::Result<Option<MeshConfig>> {
    let ns = &config.namespace;
    match (callers, &config.webhook_client_ca, stored) {
        (Callers::Anyone, _, _) => Ok(Some(MeshConfig {
            webhook_client_ca: None,
            ..config.clone()
        })),
        (Callers::AsGivenOrStored, None, Some(stored)) => {
            let ca = WebhookClientCa::parse(&stored.pem, time::OffsetDateTime::now_utc())
                .map_err(|e| {
                    anyhow::anyhow!(
                        "the webhook client CA stored in ConfigMap {ns}/{WEBHOOK_CLIENT_CA_NAME} {e}; or pass --no-webhook-client-ca to answer any caller"
                    )
                })?;
            progress.done(&format!(
                "no --webhook-client-ca given: keeping the stored client CA (ConfigMap {ns}/{WEBHOOK_CLIENT_CA_NAME}); --no-webhook-client-ca drops it"
            ));
            Ok(Some(MeshConfig {
                webhook_client_ca: Some(ca),
                ..config.clone()
            }))
        }
        (Callers::AsGivenOrStored, _, _) => Ok(None),
    }
}
