//! A meshed "pod" namespace (sparrow-init applied with the injector's flags, sparrow-proxy
//! running as uid 2102 with the injector's environment) joined by a veth pair to a "peer"
//! namespace.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clap::Parser as _;
use sparrow_inject::{InjectConfig, init_container, proxy_container};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::netns::{Netns, NsTask, ip};
use super::traffic::{HANG, serve};

pub const POD_IP: &str = "10.77.0.1";
pub const PEER_IP: &str = "10.77.0.2";
pub const ADMIN: &str = "10.77.0.1:4191";

/// The proxy process, killed on drop.
pub struct Proxy {
    child: Option<Child>,
}

impl Proxy {
    /// Sends a signal to the proxy (`TERM`, `KILL`).
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().map(Child::id).expect("running");
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{name} {pid}");
    }

    /// Waits for the proxy to exit; its exit code.
    pub fn wait(&mut self) -> Option<i32> {
        let mut child = self.child.take().expect("running");
        child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The two namespaces and the proxy.
pub struct Mesh {
    pub proxy: Proxy,
    // Dropped after the proxy: the proxy is killed before its namespace goes.
    pub pod: Netns,
    pub peer: Netns,
}

impl Mesh {
    /// A pod namespace redirected with `backend` (`nft`, `legacy`) and the proxy started
    /// with `proxy_args`, ready.
    pub fn new(backend: &str, proxy_args: &[&str]) -> Self {
        let pod = Netns::new("pod");
        let peer = Netns::new("peer");
        ip(&[
            "-n",
            pod.name(),
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            peer.name(),
        ]);
        for (ns, addr) in [(&pod, POD_IP), (&peer, PEER_IP)] {
            ip(&[
                "-n",
                ns.name(),
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", ns.name(), "link", "set", "eth0", "up"]);
        }
        let config = InjectConfig::default();
        let mut init_args = vec!["sparrow-init".to_owned()];
        init_args.extend(init_container(&config, &[], &[]).args.unwrap_or_default());
        init_args.extend(["--iptables-mode".to_owned(), backend.to_owned()]);
        pod.run(move || {
            let args = sparrow_init::Args::try_parse_from(init_args).expect("the injector's flags");
            args.run().unwrap_or_else(|e| panic!("sparrow-init: {e:#}"));
        });
        let proxy = start_proxy(&pod, &config, proxy_args);
        let mesh = Self { proxy, pod, peer };
        mesh.await_ready();
        mesh
    }

    /// Waits until the admin port, seen from the peer, says ready (the proxy starting).
    fn await_ready(&self) {
        self.peer.block_on(|| async {
            for _ in 0..600 {
                if let Ok((200, _)) = http_get(ADMIN, "/ready").await {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("the proxy never became ready");
        });
    }

    /// Waits until the proxy's metrics satisfy `done` (counters move after the bytes do).
    pub fn await_metrics(&self, what: &str, done: impl Fn(&Metrics) -> bool) -> Metrics {
        for _ in 0..1200 {
            let metrics = self.metrics();
            if done(&metrics) {
                return metrics;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the metrics never showed {what}:\n{}", self.metrics().0);
    }

    /// The proxy's metrics, fetched from the peer.
    pub fn metrics(&self) -> Metrics {
        let (status, body) = self
            .peer
            .block_on(|| async { http_get(ADMIN, "/metrics").await.expect("GET /metrics") });
        assert_eq!(status, 200, "{body}");
        Metrics(body)
    }
}

/// Runs a server in `ns` on `addr` with `handle`, once it is bound.
pub fn server<F, Fut>(ns: &Netns, addr: &'static str, handle: F) -> NsTask<()>
where
    F: Fn(TcpStream, SocketAddr) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let (bound, is_bound) = std::sync::mpsc::channel();
    let task = ns.spawn(move || serve(addr, handle, bound));
    is_bound
        .recv_timeout(HANG)
        .unwrap_or_else(|_| panic!("the server on {addr} never bound"));
    task
}

fn start_proxy(pod: &Netns, config: &InjectConfig, args: &[&str]) -> Proxy {
    let container = proxy_container(config);
    let mut command = Command::new("nsenter");
    command
        .arg(format!("--net={}", pod.path()))
        .args(["--setuid", "2102", "--setgid", "2102", "--"])
        .arg(env!("CARGO_BIN_EXE_sparrow-proxy"))
        .args(args)
        .env_clear()
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    for var in container.env.unwrap_or_default() {
        // The downward-API values the kubelet would fill in.
        let value = var
            .value
            .unwrap_or_else(|| format!("test-{}", var.name.to_lowercase()));
        command.env(var.name, value);
    }
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the proxy with nsenter (util-linux): {e}"));
    Proxy { child: Some(child) }
}

/// A metrics page.
pub struct Metrics(pub String);

impl Metrics {
    /// The value of the sample `name{labels}` (0 when absent: counters start at zero).
    pub fn value(&self, name: &str, labels: &str) -> u64 {
        let key = format!("{name}{{{labels}}} ");
        self.0
            .lines()
            .find_map(|line| line.strip_prefix(&key))
            .map(|v| v.trim().parse().unwrap_or_else(|e| panic!("{key}{v}: {e}")))
            .unwrap_or(0)
    }

    /// `sparrow_proxy_tcp_<what>_total{direction="<direction>"}`.
    pub fn tcp(&self, what: &str, direction: &str) -> u64 {
        self.value(
            &format!("sparrow_proxy_tcp_{what}_total"),
            &format!("direction=\"{direction}\""),
        )
    }
}

/// A GET over HTTP/1.1 with `Connection: close`: status and body.
pub async fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let addr: SocketAddr = addr.parse().expect("an address");
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}
