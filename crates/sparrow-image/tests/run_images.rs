//! The built images run: each is unpacked from the layout with umoci and run under runc, as
//! root, without any container engine. The controller prints its version; the proxy starts as
//! uid 2102 in a network namespace of its own and answers `/live` on its admin port; the
//! init program's `--simulate` prints its rules.
//!
//! The layout is the one `scripts/build-images.sh` writes (`target/images/`, or the directory
//! in `$SPARROW_IMAGES`): scripts/test.sh builds it before the tests run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TAG: &str = env!("CARGO_PKG_VERSION");

/// Tests run in parallel: each container and namespace gets a name of its own.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

fn layout() -> PathBuf {
    let dir = std::env::var_os("SPARROW_IMAGES").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/images"),
        PathBuf::from,
    );
    assert!(
        dir.join("index.json").is_file(),
        "no built images at {}: run scripts/build-images.sh first (or set SPARROW_IMAGES to a layout)",
        dir.display()
    );
    dir
}

fn require(binary: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(binary).is_file()));
    assert!(
        found,
        "`{binary}` is not installed: run apt-get update && apt-get install -y {package}"
    );
}

fn run(command: &mut Command) -> Output {
    let shown = format!("{command:?}");
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("{shown}: {error}"));
    assert!(
        output.status.success(),
        "{shown} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// An unpacked image and the runc state directory its container uses; a container still
/// running is deleted on drop, with the bundle.
struct Bundle {
    dir: tempfile::TempDir,
    id: String,
}

impl Bundle {
    fn unpack(name: &str) -> Self {
        require("umoci", "umoci");
        require("runc", "runc");
        let dir = tempfile::Builder::new()
            .prefix("sparrow-image-run-")
            .tempdir()
            .expect("tempdir");
        let image = format!("{}:{name}:{TAG}", layout().display());
        run(Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(&image)
            .arg(dir.path().join("bundle")));
        let id = unique(&format!("sparrow-image-test-{name}"));
        Self { dir, id }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("bundle/config.json")
    }

    fn config(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.config_path()).expect("config.json");
        serde_json::from_str(&text).expect("config.json is JSON")
    }

    fn set_config(&self, config: &serde_json::Value) {
        std::fs::write(self.config_path(), config.to_string()).expect("write config.json");
    }

    /// `process.args` replaced by the image's entrypoint followed by `extra`; no terminal.
    fn with_args(&self, extra: &[&str]) {
        let mut config = self.config();
        let entrypoint = config["process"]["args"][0].clone();
        let mut args = vec![entrypoint];
        args.extend(extra.iter().map(|arg| serde_json::json!(arg)));
        config["process"]["args"] = serde_json::Value::Array(args);
        config["process"]["terminal"] = serde_json::json!(false);
        self.set_config(&config);
    }

    fn runc(&self) -> Command {
        let mut command = Command::new("runc");
        command
            .arg("--root")
            .arg(self.dir.path().join("runc-state"));
        command
    }

    /// `runc run` to completion.
    fn run_to_end(&self) -> Output {
        run(self
            .runc()
            .arg("run")
            .arg("--bundle")
            .arg(self.dir.path().join("bundle"))
            .arg(&self.id))
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // Nothing to delete when the container already exited and was removed.
        let _ = self
            .runc()
            .args(["delete", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A network namespace of its own, deleted on drop.
struct NetNs(String);

impl NetNs {
    fn create() -> Self {
        require("ip", "iproute2");
        let name = unique("sparrow-image");
        run(Command::new("ip").args(["netns", "add", &name]));
        let netns = Self(name);
        run(Command::new("ip").args(["-n", &netns.0, "link", "set", "lo", "up"]));
        netns
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }

    /// An HTTP/1.0 GET to 127.0.0.1:`port` inside the namespace (bash's /dev/tcp: no client
    /// needs to be installed); `None` while nothing listens.
    fn get(&self, port: u16, path: &str) -> Option<String> {
        let script = format!(
            "exec 3<>/dev/tcp/127.0.0.1/{port} && printf 'GET {path} HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && cat <&3"
        );
        let output = Command::new("ip")
            .args(["netns", "exec", &self.0, "bash", "-c", &script])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn the_controller_prints_its_version_as_a_non_root_user() {
    let bundle = Bundle::unpack("sparrow-controller");
    let config = bundle.config();
    assert_eq!(config["process"]["user"]["uid"], 65532, "{config}");
    bundle.with_args(&["--version"]);
    let output = bundle.run_to_end();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("sparrow-controller {TAG}")
    );
}

#[test]
fn the_init_program_simulates_its_rules() {
    let bundle = Bundle::unpack("sparrow-init");
    assert_eq!(bundle.config()["process"]["user"]["uid"], 0);
    bundle.with_args(&["--simulate"]);
    let output = bundle.run_to_end();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("*nat"), "{stdout}");
    assert!(stdout.contains("REDIRECT --to-ports 4143"), "{stdout}");
    assert!(stdout.contains("REDIRECT --to-ports 4140"), "{stdout}");
    assert!(stdout.contains("--uid-owner 2102"), "{stdout}");
    assert!(stdout.contains("COMMIT"), "{stdout}");
}

/// The container joins `netns` and may program netfilter there (CAP_NET_ADMIN, CAP_NET_RAW).
fn join_with_net_admin(config: &mut serde_json::Value, netns: &NetNs) {
    let namespaces = config["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces");
    namespaces.retain(|ns| ns["type"] != "network");
    namespaces.push(serde_json::json!({"type": "network", "path": netns.path()}));
    for set in ["bounding", "effective", "permitted"] {
        if let Some(caps) = config["process"]["capabilities"][set].as_array_mut() {
            caps.extend([
                serde_json::json!("CAP_NET_ADMIN"),
                serde_json::json!("CAP_NET_RAW"),
            ]);
        }
    }
    config["process"]["terminal"] = serde_json::json!(false);
}

#[test]
fn the_init_image_installs_the_redirect_with_its_own_iptables() {
    // What the init container does in a pod: its binaries, libraries, loader and extensions
    // all come from the image. Each backend in a namespace of its own.
    for mode in ["nft", "legacy"] {
        let netns = NetNs::create();
        let bundle = Bundle::unpack("sparrow-init");
        let mut config = bundle.config();
        join_with_net_admin(&mut config, &netns);
        let entrypoint = config["process"]["args"][0].clone();
        config["process"]["args"] = serde_json::json!([entrypoint, "--iptables-mode", mode]);
        bundle.set_config(&config);
        bundle.run_to_end();

        let save = Bundle::unpack("sparrow-init");
        let mut config = save.config();
        join_with_net_admin(&mut config, &netns);
        config["process"]["args"] =
            serde_json::json!([format!("/usr/sbin/iptables-{mode}-save"), "-t", "nat"]);
        save.set_config(&config);
        let output = save.run_to_end();
        let rules = String::from_utf8_lossy(&output.stdout);
        assert!(
            rules.contains("-j SPARROW_INIT_REDIRECT"),
            "{mode}: {rules}"
        );
        assert!(rules.contains("--uid-owner 2102"), "{mode}: {rules}");
        assert!(rules.contains("--to-ports 4140"), "{mode}: {rules}");
    }
}

#[test]
fn the_proxy_runs_as_2102_and_answers_live_on_its_admin_port() {
    let netns = NetNs::create();
    let bundle = Bundle::unpack("sparrow-proxy");
    let mut config = bundle.config();
    let namespaces = config["linux"]["namespaces"]
        .as_array_mut()
        .expect("namespaces");
    namespaces.retain(|ns| ns["type"] != "network");
    namespaces.push(serde_json::json!({"type": "network", "path": netns.path()}));
    config["process"]["terminal"] = serde_json::json!(false);
    bundle.set_config(&config);
    let log = std::fs::File::create(bundle.dir.path().join("proxy.log")).expect("log");
    run(bundle
        .runc()
        .arg("run")
        .arg("--detach")
        .arg("--bundle")
        .arg(bundle.dir.path().join("bundle"))
        .arg(&bundle.id)
        .stdout(log.try_clone().expect("log"))
        .stderr(log));

    // Bounded: a proxy that never listens fails the test with its log.
    let deadline = Instant::now() + Duration::from_secs(60);
    let live = loop {
        if let Some(answer) = netns.get(4191, "/live") {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy never answered on 4191; its log: {}",
            std::fs::read_to_string(bundle.dir.path().join("proxy.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        live.starts_with("HTTP/1.0 200") || live.starts_with("HTTP/1.1 200"),
        "{live}"
    );

    let state = run(bundle.runc().args(["state", &bundle.id]));
    let state: serde_json::Value = serde_json::from_slice(&state.stdout).expect("state JSON");
    let pid = state["pid"].as_u64().expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let uid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .expect("Uid line");
    assert_eq!(
        uid.split_whitespace().collect::<Vec<_>>(),
        ["2102"; 4],
        "{status}"
    );
}
