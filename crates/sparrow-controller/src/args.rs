//! Flags (those `sparrow_core::manifests::controller_args` renders, plus tuning) and what
//! they describe. The run itself is [`crate::run`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use sparrow_core::PullPolicy;
use sparrow_core::names::DEFAULT_NAMESPACE;
use sparrow_inject::InjectConfig;
use sparrow_kube::runtime::leader::LeaseConfig;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// The Sparrow Mesh controller: injects the sidecar into pods of meshed namespaces.
#[derive(Debug, Clone, Parser)]
#[command(name = "sparrow-controller", version)]
pub struct Args {
    /// Address to serve HTTPS on.
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub addr: SocketAddr,
    /// Address to serve plain-HTTP `/healthz`, `/readyz` and `/metrics` on, for the kubelet's
    /// probes: a listener of its own that no load on --addr can starve (the Deployment sets
    /// 0.0.0.0:9990) [default: none; the same paths are served on --addr too].
    #[arg(long, value_name = "ADDR")]
    pub health_addr: Option<SocketAddr>,
    /// PEM certificate (chain) to serve, made and renewed by someone else (cert-manager, a
    /// test); re-read when it changes. Without it the controller keeps its own CA and serving
    /// certificate in Secrets of the mesh namespace and the webhook's caBundle true.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert; re-read when it changes.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Life of the serving certificate the controller makes (without --tls-cert): renewed at
    /// two thirds of it; its CA lives four times as long. At least 2m.
    #[arg(long, value_name = "DURATION", default_value = "90d", value_parser = humantime::parse_duration)]
    pub webhook_cert_validity: Duration,
    /// PEM CA certificate(s): every caller of --addr must present a client certificate
    /// signed by one of them (the API server, as `sparrowctl webhook-auth` configures it), or
    /// is refused at the TLS handshake; re-read when it changes. The --health-addr listener
    /// stays open [default: none; anyone who reaches --addr is answered].
    #[arg(long, value_name = "FILE")]
    pub webhook_client_ca: Option<PathBuf>,
    /// The control plane's namespace (never injected).
    #[arg(long, value_name = "NS", default_value = DEFAULT_NAMESPACE)]
    pub mesh_namespace: String,
    /// A `kubernetes.io/dockerconfigjson` Secret of the mesh namespace that another tool
    /// keeps (external-secrets, Vault, Sealed Secrets): copied as it is into the namespaces of
    /// meshed pods and followed on every change, never written [default: the mesh's own
    /// sparrow-registry-key].
    #[arg(long, value_name = "NAME")]
    pub registry_secret: Option<String>,
    /// A kubelet CredentialProviderConfig (the Secret deploy's --registry-credential-provider
    /// stores, mounted): the Lease holder runs its --credential-provider plugin as the kubelet
    /// does and keeps Secret sparrow-registry-key fresh with the answer.
    #[arg(
        long,
        value_name = "FILE",
        requires_all = ["credential_provider_bin_dir", "credential_provider", "registry_server"]
    )]
    pub credential_provider_config: Option<PathBuf>,
    /// Where the plugin binaries are (the kubelet's --image-credential-provider-bin-dir).
    #[arg(long, value_name = "DIR", requires = "credential_provider_config")]
    pub credential_provider_bin_dir: Option<PathBuf>,
    /// The provider of --credential-provider-config to run (its `name`).
    #[arg(long, value_name = "NAME", requires = "credential_provider_config")]
    pub credential_provider: Option<String>,
    /// The registry the mesh's images come from (HOST[:PORT][/PATH]): the credential the plugin
    /// answers with is stored for it.
    #[arg(
        long,
        value_name = "HOST[:PORT][/PATH]",
        requires = "credential_provider_config"
    )]
    pub registry_server: Option<String>,
    /// Image of the injected sidecar proxy [default: the release's image on ghcr.io/sparrow-mesh].
    #[arg(long, value_name = "IMG")]
    pub sidecar_image: Option<String>,
    /// Image of the injected init container [default: the release's image on ghcr.io/sparrow-mesh].
    #[arg(long, value_name = "IMG")]
    pub init_image: Option<String>,
    /// `imagePullPolicy` of the injected containers (Always, IfNotPresent, Never).
    #[arg(long, value_name = "POLICY")]
    pub pull_policy: Option<PullPolicy>,
    /// Namespaces injected even with --disable-auto-inject, whatever their label.
    #[arg(long, value_name = "NS,...", value_delimiter = ',')]
    pub enabled_namespaces: Vec<String>,
    /// Inject only namespaces or pods labelled `injector.sparrow-mesh.io/auto-inject=enabled`
    /// and the --enabled-namespaces.
    #[arg(long)]
    pub disable_auto_inject: bool,
    /// Log format.
    #[arg(long, value_enum, default_value = "plain")]
    pub log_format: LogFormat,
    /// How long the leader keeps the Lease without renewing it (e.g. 15s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,
    /// How often the leader renews the Lease and the others try to take it; below
    /// --lease-duration.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub lease_renew_interval: Duration,
    /// After SIGTERM, how long to keep answering (with /readyz failing and the Lease given up)
    /// before the listener closes: the time the Service's endpoints and every node's proxy
    /// take to stop sending new connections to this pod. Then in-flight requests get 20s.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub shutdown_delay: Duration,
}

impl Args {
    /// Parses the command line (exit 2 on a bad flag) and runs the controller until SIGTERM
    /// or Ctrl-C.
    pub fn parse_and_run() -> anyhow::Result<()> {
        let args = Self::parse();
        if let Err(error) = args.check() {
            error.exit();
        }
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("could not start the async runtime")?
            .block_on(crate::run::run(args))
    }

    /// What clap cannot check alone.
    fn check(&self) -> Result<(), clap::Error> {
        use clap::CommandFactory as _;
        if self.webhook_cert_validity < sparrow_core::webhook_pki::MIN_LEAF_VALIDITY {
            return Err(Self::command().error(
                clap::error::ErrorKind::ValueValidation,
                "--webhook-cert-validity must be at least 2m",
            ));
        }
        if self.lease_renew_interval.is_zero() || self.lease_renew_interval >= self.lease_duration {
            return Err(Self::command().error(
                clap::error::ErrorKind::ValueValidation,
                "--lease-renew-interval must be above zero and below --lease-duration",
            ));
        }
        Ok(())
    }

    /// The Lease named `name` that this replica (`identity`) competes for.
    pub fn lease_config(&self, name: &str, identity: &str) -> LeaseConfig {
        LeaseConfig {
            namespace: self.mesh_namespace.clone(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            lease_duration: self.lease_duration,
            renew_interval: self.lease_renew_interval,
        }
    }

    /// The injection settings these flags describe.
    pub fn inject_config(&self) -> InjectConfig {
        let defaults = InjectConfig::default();
        InjectConfig {
            mesh_namespace: self.mesh_namespace.clone(),
            proxy_image: self.sidecar_image.clone().unwrap_or(defaults.proxy_image),
            init_image: self.init_image.clone().unwrap_or(defaults.init_image),
            pull_policy: self.pull_policy.or(defaults.pull_policy),
            disable_auto_inject: self.disable_auto_inject,
            enabled_namespaces: self
                .enabled_namespaces
                .iter()
                .filter(|n| !n.is_empty())
                .cloned()
                .collect(),
            sidecar: defaults.sidecar,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use sparrow_core::manifests::controller_args;
    use sparrow_core::{InjectionScope, MeshConfig};

    use super::*;

    fn parse(mesh: &MeshConfig) -> Args {
        let argv = std::iter::once("sparrow-controller".to_owned()).chain(controller_args(mesh));
        match Args::try_parse_from(argv) {
            Ok(args) => args,
            Err(e) => panic!("the rendered Deployment's flags are refused: {e}"),
        }
    }

    #[test]
    fn accepts_the_flags_the_deployment_renders() {
        let mut mesh = MeshConfig {
            namespace: "mesh".to_owned(),
            ..MeshConfig::default()
        };
        let args = parse(&mesh);
        assert_eq!(args.addr.to_string(), "0.0.0.0:8443");
        assert_eq!(
            args.health_addr.map(|a| a.to_string()).as_deref(),
            Some("0.0.0.0:9990"),
            "the probes' own listener"
        );
        assert_eq!(args.log_format, LogFormat::Json);
        assert_eq!(args.inject_config(), InjectConfig::from_mesh(&mesh));

        mesh.injection = InjectionScope {
            disable_auto_inject: true,
            enabled_namespaces: vec!["a".to_owned(), "b".to_owned()],
        };
        let args = parse(&mesh);
        assert!(args.disable_auto_inject);
        assert_eq!(args.inject_config(), InjectConfig::from_mesh(&mesh));
        assert_eq!(args.inject_config().enabled_namespaces, ["a", "b"]);
    }

    #[test]
    fn lease_timings_default_to_todays_and_can_be_tuned() {
        let base = ["sparrow-controller", "--tls-cert", "c", "--tls-key", "k"];
        let args = Args::try_parse_from(base).expect("flags");
        let lease = args.lease_config("sparrow-controller", "pod-0");
        assert_eq!(lease.lease_duration, LeaseConfig::DEFAULT_LEASE_DURATION);
        assert_eq!(lease.renew_interval, LeaseConfig::DEFAULT_RENEW_INTERVAL);
        assert_eq!(
            (lease.namespace.as_str(), lease.identity.as_str()),
            ("sparrow-mesh", "pod-0")
        );
        let tuned = [
            &base[..],
            &["--lease-duration", "1m", "--lease-renew-interval", "20s"],
        ]
        .concat();
        let args = Args::try_parse_from(tuned).expect("flags");
        assert_eq!(args.lease_duration, Duration::from_secs(60));
        assert_eq!(args.lease_renew_interval, Duration::from_secs(20));
        assert!(args.check().is_ok());
    }

    #[test]
    fn lease_timings_that_cannot_work_are_refused() {
        let base = ["sparrow-controller", "--tls-cert", "c", "--tls-key", "k"];
        for bad in [
            ["--lease-renew-interval", "15s"],
            ["--lease-renew-interval", "0s"],
        ] {
            let args = Args::try_parse_from([&base[..], &bad[..]].concat()).expect("parses");
            let error = args.check().expect_err("refused");
            assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
            assert!(
                error.to_string().contains(
                    "--lease-renew-interval must be above zero and below --lease-duration"
                ),
                "{error}"
            );
        }
        let error = Args::try_parse_from([&base[..], &["--lease-duration", "soon"]].concat())
            .expect_err("not a duration");
        assert!(error.to_string().contains("--lease-duration"), "{error}");
    }

    #[test]
    fn the_shutdown_delay_defaults_to_five_seconds_and_can_be_tuned() {
        let base = ["sparrow-controller", "--tls-cert", "c", "--tls-key", "k"];
        let args = Args::try_parse_from(base).expect("flags");
        assert_eq!(args.shutdown_delay, Duration::from_secs(5));
        let args =
            Args::try_parse_from([&base[..], &["--shutdown-delay", "0s"]].concat()).expect("flags");
        assert_eq!(args.shutdown_delay, Duration::ZERO);
        let error = Args::try_parse_from([&base[..], &["--shutdown-delay", "5"]].concat())
            .expect_err("a number without a unit");
        assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(error.to_string().contains("--shutdown-delay"), "{error}");
    }

    #[test]
    fn the_rendered_client_ca_flag_is_accepted() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key).expect("CA").pem();
        let ca = sparrow_core::WebhookClientCa::parse(&pem, time::OffsetDateTime::now_utc())
            .expect("a CA");
        let mut mesh = MeshConfig::default();
        assert_eq!(parse(&mesh).webhook_client_ca, None);
        mesh.webhook_client_ca = Some(ca);
        let args = parse(&mesh);
        let path = args
            .webhook_client_ca
            .expect("--webhook-client-ca rendered");
        assert!(
            path.starts_with(sparrow_core::manifests::WEBHOOK_CLIENT_CA_MOUNT_PATH),
            "{}",
            path.display()
        );
    }

    #[test]
    fn certificate_files_come_in_pairs_or_not_at_all() {
        // Without files the controller keeps its own certificates.
        let args = Args::try_parse_from(["sparrow-controller"]).expect("no flags needed");
        assert_eq!(args.tls_cert, None);
        assert_eq!(args.webhook_cert_validity, Duration::from_secs(90 * 86_400));
        assert!(Args::try_parse_from(["sparrow-controller", "--tls-cert", "c"]).is_err());
        assert!(Args::try_parse_from(["sparrow-controller", "--tls-key", "k"]).is_err());
        let short = Args::try_parse_from(["sparrow-controller", "--webhook-cert-validity", "1m"])
            .expect("parses");
        let error = short.check().expect_err("below the floor");
        assert!(
            error
                .to_string()
                .contains("--webhook-cert-validity must be at least 2m"),
            "{error}"
        );
        let args = Args::try_parse_from([
            "sparrow-controller",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
            "--log-format",
            "plain",
        ])
        .expect("minimal flags");
        assert_eq!(args.inject_config(), InjectConfig::default());
    }
}
