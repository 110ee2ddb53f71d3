//! The three floods of issue 27 against a running webhook, each bounded in connections, count
//! and time; run from a network namespace the project's scripts created (the node's or a
//! pod's), never from the host's.
//!
//! ```text
//! flood connections ADDR --count 300 --seconds 60   # kept-alive TLS connections posting reviews
//! flood idle ADDR --count 400 --seconds 60          # TLS connections opened and left idle, reopened when closed
//! flood forged ADDR --count 2000 --seconds 6.5 --namespace NS   # reviews for pods that will never exist
//! ```
//!
//! Prints one line of figures. The server's certificate is not verified: this is a load
//! generator, and what it sends is no secret.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    flood: Flood,
}

#[derive(Debug, Subcommand)]
enum Flood {
    /// COUNT kept-alive TLS connections each posting dry-run reviews back to back.
    Connections(Common),
    /// COUNT clients each opening a TLS connection and leaving it idle; reopened when closed.
    Idle(Common),
    /// COUNT reviews of pods that will never exist in NAMESPACE, spread over SECONDS.
    Forged {
        #[command(flatten)]
        common: Common,
        /// The namespace the forged pods claim.
        #[arg(long)]
        namespace: String,
        /// Connections the reviews are sent over.
        #[arg(long, default_value_t = 16)]
        connections: usize,
    },
}

#[derive(Debug, clap::Args)]
struct Common {
    /// The webhook: HOST:PORT (the Service's IP and 443, or the pod's IP and 8443).
    addr: String,
    /// Connections, clients or reviews (see each flood).
    #[arg(long)]
    count: usize,
    /// How long the flood lasts (fractions allowed).
    #[arg(long)]
    seconds: f64,
    /// The name sent in the TLS handshake.
    #[arg(long, default_value = "sparrow-controller.sparrow-mesh.svc")]
    server_name: String,
}

impl Common {
    fn duration(&self) -> anyhow::Result<Duration> {
        if !(self.seconds > 0.0 && self.seconds <= 3600.0) {
            bail!("--seconds must be above 0 and at most 3600");
        }
        Ok(Duration::from_secs_f64(self.seconds))
    }
}

/// What the clients saw.
#[derive(Default)]
struct Figures {
    opened: AtomicU64,
    handshake_failed: AtomicU64,
    closed_by_server: AtomicU64,
    answered_ok: AtomicU64,
    answered_other: AtomicU64,
    errors: AtomicU64,
}

impl Figures {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn line(&self, what: &str, elapsed: Duration) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "{what}: {:.1} s, connections opened {}, handshakes failed {}, closed by the server {}, answered 200 {}, answered otherwise {}, errors {}",
            elapsed.as_secs_f64(),
            get(&self.opened),
            get(&self.handshake_failed),
            get(&self.closed_by_server),
            get(&self.answered_ok),
            get(&self.answered_other),
            get(&self.errors),
        )
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a rustls crypto provider was already installed"))?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("runtime")?
        .block_on(run(cli.flood))
}

async fn run(flood: Flood) -> anyhow::Result<()> {
    let figures = Arc::new(Figures::default());
    let started = Instant::now();
    let (what, common) = match &flood {
        Flood::Connections(c) => ("connections", c),
        Flood::Idle(c) => ("idle", c),
        Flood::Forged { common, .. } => ("forged", common),
    };
    let target = Target::new(common)?;
    let deadline = started + common.duration()?;
    let mut tasks = tokio::task::JoinSet::new();
    match &flood {
        Flood::Connections(c) => {
            for n in 0..c.count {
                let (target, figures) = (target.clone(), figures.clone());
                let body = review(&format!("flood-{n}"), "default", true);
                tasks.spawn(async move { keep_posting(&target, &figures, &body, deadline).await });
            }
        }
        Flood::Idle(c) => {
            for _ in 0..c.count {
                let (target, figures) = (target.clone(), figures.clone());
                tasks.spawn(async move { stay_idle(&target, &figures, deadline).await });
            }
        }
        Flood::Forged {
            common,
            namespace,
            connections,
        } => {
            let connections = (*connections).clamp(1, common.count.max(1));
            let spacing = common.duration()?.div_f64(common.count.max(1) as f64);
            for lane in 0..connections {
                let (target, figures) = (target.clone(), figures.clone());
                let bodies: Vec<Vec<u8>> = (lane..common.count)
                    .step_by(connections)
                    .map(|n| review(&format!("forged-{n}"), namespace, false))
                    .collect();
                let first = started + spacing * u32::try_from(lane).unwrap_or(u32::MAX);
                let step = spacing * u32::try_from(connections).unwrap_or(u32::MAX);
                // A forged burst must all be sent: its deadline is generous, its count fixed.
                let until = deadline + Duration::from_secs(30);
                tasks.spawn(async move {
                    post_all(&target, &figures, bodies, first, step, until).await
                });
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    println!("{}", figures.line(what, started.elapsed()));
    Ok(())
}

#[derive(Clone)]
struct Target {
    addr: String,
    name: ServerName<'static>,
    connector: TlsConnector,
}

impl Target {
    fn new(common: &Common) -> anyhow::Result<Self> {
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .context("no crypto provider")?;
        let mut config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            addr: common.addr.clone(),
            name: ServerName::try_from(common.server_name.clone())?,
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    async fn connect(&self, figures: &Figures) -> Option<TlsStream<TcpStream>> {
        Figures::add(&figures.opened);
        let connect = async {
            let tcp = TcpStream::connect(&self.addr).await.ok()?;
            self.connector.connect(self.name.clone(), tcp).await.ok()
        };
        match tokio::time::timeout(Duration::from_secs(15), connect).await {
            Ok(Some(tls)) => Some(tls),
            _ => {
                Figures::add(&figures.handshake_failed);
                None
            }
        }
    }
}

/// A connection kept alive, posting `body` back to back until `deadline`; reopened when the
/// server closes it.
async fn keep_posting(target: &Target, figures: &Figures, body: &[u8], deadline: Instant) {
    while Instant::now() < deadline {
        let Some(mut tls) = target.connect(figures).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        while Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, post(&mut tls, body)).await {
                Err(_) => return,
                Ok(Ok(answer)) => {
                    count(figures, answer.status);
                    if answer.close {
                        Figures::add(&figures.closed_by_server);
                        break;
                    }
                }
                Ok(Err(_)) => {
                    Figures::add(&figures.closed_by_server);
                    break;
                }
            }
        }
    }
}

/// A client that opens a connection and sends nothing; reopens it when the server closes it.
async fn stay_idle(target: &Target, figures: &Figures, deadline: Instant) {
    while Instant::now() < deadline {
        let Some(mut tls) = target.connect(figures).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut buf = [0u8; 512];
        let closed = async {
            loop {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        };
        if tokio::time::timeout_at(deadline, closed).await.is_ok() {
            Figures::add(&figures.closed_by_server);
        }
    }
}

/// Posts each of `bodies`, the first at `first`, then one every `step`, over one connection
/// (reopened when closed); gives up at `until`.
async fn post_all(
    target: &Target,
    figures: &Figures,
    bodies: Vec<Vec<u8>>,
    first: Instant,
    step: Duration,
    until: Instant,
) {
    let mut tls = None;
    for (n, body) in bodies.iter().enumerate() {
        let at = first + step * u32::try_from(n).unwrap_or(u32::MAX);
        tokio::time::sleep_until(at).await;
        loop {
            if Instant::now() >= until {
                Figures::add(&figures.errors);
                return;
            }
            if tls.is_none() {
                tls = target.connect(figures).await;
            }
            let Some(stream) = tls.as_mut() else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            match tokio::time::timeout_at(until, post(stream, body)).await {
                Ok(Ok(answer)) => {
                    count(figures, answer.status);
                    if answer.close {
                        tls = None;
                    }
                    break;
                }
                _ => {
                    Figures::add(&figures.closed_by_server);
                    tls = None;
                }
            }
        }
    }
}

fn count(figures: &Figures, status: u16) {
    if status == 200 {
        Figures::add(&figures.answered_ok);
    } else {
        Figures::add(&figures.answered_other);
    }
}

struct Answer {
    status: u16,
    close: bool,
}

/// One HTTP/1.1 POST /inject and its answer.
async fn post(tls: &mut TlsStream<TcpStream>, body: &[u8]) -> std::io::Result<Answer> {
    let head = format!(
        "POST /inject HTTP/1.1\r\nhost: sparrow-controller\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    tls.write_all(&request).await?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = tls.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let close = head.lines().any(|l| l.trim() == "connection: close");
    let mut have = buf.len() - header_end;
    while have < length {
        let n = tls.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        have += n;
    }
    Ok(Answer { status, close })
}

/// A pod CREATE review for `name` in `namespace`.
fn review(name: &str, namespace: &str, dry_run: bool) -> Vec<u8> {
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("flood-{name}"),
            "kind": { "group": "", "version": "v1", "kind": "Pod" },
            "resource": { "group": "", "version": "v1", "resource": "pods" },
            "namespace": namespace,
            "operation": "CREATE",
            "dryRun": dry_run,
            "userInfo": { "username": "flood" },
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": { "name": name, "namespace": namespace },
                "spec": { "containers": [{ "name": "app", "image": "registry.invalid/app:1" }] }
            }
        }
    })
    .to_string()
    .into_bytes()
}

/// Accepts any certificate: a load generator needs no trust.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
