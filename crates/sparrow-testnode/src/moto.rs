//! moto, the local AWS API (pinned in `cluster/moto/requirements.txt`, installed by
//! `scripts/local-cluster.sh install-moto`), as a guard: started on a free port, stopped by its
//! PID when dropped.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Node, NodeError, repo_root};

/// How long moto may take to import and listen (a few seconds on an idle machine).
const START_LIMIT: Duration = Duration::from_secs(90);

/// A running `moto_server`, killed (with its forwarder, if any) when dropped.
pub type Moto = Served;

/// A test's HTTP server (moto, a file server), killed with its forwarder, if any, when
/// dropped; inside the node's namespace on every address when started for the node.
pub struct Served {
    what: String,
    server: Child,
    forwarder: Option<Child>,
    port: u16,
    node_ip: Option<String>,
    log: tempfile::NamedTempFile,
}

impl Served {
    /// moto on the host's loopback only: for a plugin the test runs on the host.
    pub fn start() -> Result<Moto, NodeError> {
        retry_ports(|port| {
            let log = log_file()?;
            let server = spawn(
                "moto_server",
                Command::new(moto_server()?)
                    .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                    .stdout(log_stdio(&log)?)
                    .stderr(log_stdio(&log)?),
            )?;
            Served::ready(Served {
                what: "moto_server".into(),
                server,
                forwarder: None,
                port,
                node_ip: None,
                log,
            })
        })
    }

    /// moto inside the node's network namespace, on every address there: `127.0.0.1` for the
    /// plugins the kubelet runs, the node's address for pods (the controller runs the plugin in
    /// its pod), and the same port on the host's loopback through a forwarder of its own (the
    /// node's `netns-forward`), for a run on the host such as `sparrowctl deploy`.
    pub fn start_on(node: &Node) -> Result<Moto, NodeError> {
        Self::start_on_port(node, None)
    }

    /// [`Moto::start_on`] on a given port: the one a kubelet credential-provider config names.
    pub fn start_on_port(node: &Node, port: Option<u16>) -> Result<Moto, NodeError> {
        let program = moto_server()?;
        Self::start_in_node(node, port, "moto_server", |port| {
            let mut command = Command::new(&program);
            command.args(["-H", "0.0.0.0", "-p", &port.to_string()]);
            command
        })
    }

    /// A plain HTTP server of `dir` (Python's `http.server`) in the node's namespace, as
    /// [`Moto::start_on`] runs moto: the project's test plugin reads its credential from it,
    /// on the host (`deploy`), for the kubelet and in a pod alike.
    pub fn serve_directory(
        node: &Node,
        port: Option<u16>,
        dir: &std::path::Path,
    ) -> Result<Served, NodeError> {
        Self::start_in_node(node, port, "http.server", |port| {
            let mut command = Command::new("python3");
            command
                .args(["-m", "http.server", "--bind", "0.0.0.0"])
                .arg("--directory")
                .arg(dir)
                .arg(port.to_string());
            command
        })
    }

    /// `program` (its command for a port) inside the node's network namespace, on every
    /// address there, and the same port on the host's loopback through a forwarder of its own
    /// (the node's `netns-forward`).
    fn start_in_node(
        node: &Node,
        port: Option<u16>,
        what: &str,
        program: impl Fn(u16) -> Command,
    ) -> Result<Served, NodeError> {
        let netns = format!("/var/run/netns/{}", node.netns);
        let forward = node.kubectl.with_file_name("netns-forward");
        let start = |port: u16| {
            let log = log_file()?;
            let inner = program(port);
            // nsenter enters only the network namespace and then execs: its PID is the server's.
            let server = spawn(
                what,
                Command::new("nsenter")
                    .arg(format!("--net={netns}"))
                    .arg("--")
                    .arg(inner.get_program())
                    .args(inner.get_args())
                    .stdout(log_stdio(&log)?)
                    .stderr(log_stdio(&log)?),
            )?;
            let pair = format!("127.0.0.1:{port}=127.0.0.1:{port}");
            let mut served = Served {
                what: what.to_owned(),
                server,
                forwarder: None,
                port,
                node_ip: Some(node.node_ip.clone()),
                log,
            };
            served.forwarder = Some(spawn(
                "netns-forward",
                Command::new(&forward)
                    .args(["-netns", &netns, &pair])
                    .stdout(log_stdio(&served.log)?)
                    .stderr(log_stdio(&served.log)?),
            )?);
            Served::ready(served)
        };
        match port {
            Some(port) => start(port),
            None => retry_ports(start),
        }
    }

    /// The port moto listens on (inside the namespace and, forwarded, on the host).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`: moto from the host, and from inside the node's namespace (where
    /// the kubelet runs its plugins) when started with [`Moto::start_on`].
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://NODE_IP:PORT`: moto from a pod on the node; `None` for a moto on the host only.
    pub fn pod_endpoint(&self) -> Option<String> {
        self.node_ip
            .as_ref()
            .map(|ip| format!("http://{ip}:{}", self.port))
    }

    /// What moto (and its forwarder) logged so far: one line per request it answered.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// The environment that points the AWS SDK (v2, as in `ecr-credential-provider`) at moto
    /// through `endpoint`: the ECR endpoint override and static fake credentials.
    pub fn aws_env(endpoint: &str) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL_ECR", endpoint),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Waits until moto answers HTTP on the host side of its port; a process that exits first
    /// is an error carrying its log.
    fn ready(mut self) -> Result<Served, NodeError> {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if answers_http(self.port) {
                return Ok(self);
            }
            let exited = [Some(&mut self.server), self.forwarder.as_mut()]
                .into_iter()
                .flatten()
                .any(|child| !matches!(child.try_wait(), Ok(None)));
            if exited || Instant::now() > deadline {
                let why = if exited { "exited" } else { "no answer" };
                let log = self.log();
                let tail: Vec<&str> = log.lines().rev().take(8).collect();
                return Err(NodeError::NotStarted {
                    what: format!("{} on port {}", self.what, self.port),
                    detail: format!(
                        "{why}; its log ends: {}",
                        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        for child in [Some(&mut self.server), self.forwarder.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `moto_server` in the venv `scripts/local-cluster.sh install-moto` makes
/// (`/var/cache/sparrow-mesh/moto/<version>`, or under `$SPARROW_MOTO_CACHE`).
pub fn moto_server() -> Result<PathBuf, NodeError> {
    let requirements = repo_root().join("cluster/moto/requirements.txt");
    let text = std::fs::read_to_string(&requirements).map_err(|source| NodeError::Io {
        what: format!("reading {}", requirements.display()),
        source,
    })?;
    let version = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("moto[server]=="))
        .ok_or_else(|| NodeError::Io {
            what: format!("no moto[server]==VERSION in {}", requirements.display()),
            source: std::io::ErrorKind::InvalidData.into(),
        })?;
    let cache = std::env::var_os("SPARROW_MOTO_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/sparrow-mesh/moto"));
    let path = cache.join(version.trim()).join("bin/moto_server");
    if path.is_file() {
        return Ok(path);
    }
    Err(NodeError::NotInstalled {
        what: "moto_server".into(),
        path: path.display().to_string(),
        fix: "scripts/local-cluster.sh install-moto".into(),
    })
}

/// Tries `start` on up to three free ports: another process may take a port between the
/// probe and moto's bind.
fn retry_ports(
    mut start: impl FnMut(u16) -> Result<Served, NodeError>,
) -> Result<Served, NodeError> {
    let mut last = None;
    for _ in 0..3 {
        match start(free_port()?) {
            Ok(moto) => return Ok(moto),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| NodeError::NotStarted {
        what: "moto_server".into(),
        detail: "no attempt".into(),
    }))
}

fn free_port() -> Result<u16, NodeError> {
    let io = |source| NodeError::Io {
        what: "finding a free port on 127.0.0.1".into(),
        source,
    };
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io)?;
    Ok(listener.local_addr().map_err(io)?.port())
}

/// An HTTP status line back for a request: through the forwarder, a connection alone proves
/// nothing (it accepts before its upstream exists).
fn answers_http(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n";
    let mut head = [0u8; 8];
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_exact(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.")
}

fn spawn(what: &str, command: &mut Command) -> Result<Child, NodeError> {
    command
        .stdin(Stdio::null())
        .spawn()
        .map_err(|source| NodeError::Io {
            what: format!("starting {what}"),
            source,
        })
}

fn log_file() -> Result<tempfile::NamedTempFile, NodeError> {
    tempfile::Builder::new()
        .prefix("sparrow-moto-")
        .suffix(".log")
        .tempfile()
        .map_err(|source| NodeError::Io {
            what: "a log file for moto".into(),
            source,
        })
}

fn log_stdio(log: &tempfile::NamedTempFile) -> Result<Stdio, NodeError> {
    // A clone shares the file offset: the writers append after one another.
    let file = log.as_file().try_clone().map_err(|source| NodeError::Io {
        what: "opening moto's log".into(),
        source,
    })?;
    Ok(Stdio::from(file))
}
