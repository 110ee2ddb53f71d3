//! sparrow-init, the binary, in network namespaces this test creates (run as root): the
//! rules it leaves, a second run, both backends, backend detection, and its errors.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_sparrow-init");

/// A network namespace, deleted on drop (also when the test fails).
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "spinit-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let created = run("ip", &["netns", "add", &name]);
        assert!(
            created.status.success(),
            "ip netns add failed (run the tests as root with iproute2 installed): {}",
            String::from_utf8_lossy(&created.stderr)
        );
        Self { name }
    }

    /// Runs `program args` inside the namespace.
    fn exec(&self, program: &str, args: &[&str]) -> Output {
        let mut argv = vec!["netns", "exec", &self.name, program];
        argv.extend_from_slice(args);
        run("ip", &argv)
    }

    fn init(&self, args: &[&str]) -> Output {
        self.exec(BIN, args)
    }

    /// `iptables-save -t nat` of a backend, without the comment and counter noise.
    fn nat_rules(&self, backend: &str) -> Vec<String> {
        let save = self.exec(
            &format!("xtables-{backend}-multi"),
            &["iptables-save", "-t", "nat"],
        );
        assert!(
            save.status.success(),
            "{}",
            String::from_utf8_lossy(&save.stderr)
        );
        String::from_utf8_lossy(&save.stdout)
            .lines()
            .filter(|l| l.starts_with("-A ") || l.starts_with(':'))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (install iproute2 and iptables): {e}"))
}

fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "sparrow-init failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

const INJECTED: [&str; 10] = [
    "--incoming-proxy-port",
    "4143",
    "--outgoing-proxy-port",
    "4140",
    "--proxy-uid",
    "2102",
    "--inbound-ports-to-ignore",
    "4191,25",
    "--outbound-ports-to-ignore",
    "3306",
];

fn with_mode<'a>(mode: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = INJECTED.to_vec();
    args.extend_from_slice(&["--iptables-mode", mode]);
    args.extend_from_slice(extra);
    args
}

fn installs_once_even_when_run_twice(backend: &str) {
    let ns = Netns::new();
    assert_ok(&ns.init(&with_mode(
        backend,
        &["--subnets-to-ignore", "10.96.0.0/12"],
    )));
    let once = ns.nat_rules(backend);
    let ours: Vec<&String> = once
        .iter()
        .filter(|l| l.contains("SPARROW_INIT_"))
        .collect();
    let expected = [
        ":SPARROW_INIT_OUTPUT - [0:0]",
        ":SPARROW_INIT_REDIRECT - [0:0]",
        "-A PREROUTING -m comment --comment \"sparrow-init/install inbound\" -j SPARROW_INIT_REDIRECT",
        "-A OUTPUT -m comment --comment \"sparrow-init/install outbound\" -j SPARROW_INIT_OUTPUT",
        "-A SPARROW_INIT_OUTPUT -m owner --uid-owner 2102 -m comment --comment \"sparrow-init/outbound: connections of the proxy (by uid)\" -j RETURN",
        "-A SPARROW_INIT_OUTPUT -o lo -m comment --comment \"sparrow-init/outbound: loopback\" -j RETURN",
        "-A SPARROW_INIT_OUTPUT -p tcp -m multiport --dports 3306 -m comment --comment \"sparrow-init/outbound: ignored ports 3306\" -j RETURN",
        "-A SPARROW_INIT_OUTPUT -d 10.96.0.0/12 -m comment --comment \"sparrow-init/outbound: ignored subnet 10.96.0.0/12\" -j RETURN",
        "-A SPARROW_INIT_OUTPUT -p tcp -m comment --comment \"sparrow-init/outbound: all other TCP to the proxy\" -j REDIRECT --to-ports 4140",
        "-A SPARROW_INIT_REDIRECT -p tcp -m multiport --dports 4143,4140 -m comment --comment \"sparrow-init/inbound: ports of the proxy\" -j RETURN",
        "-A SPARROW_INIT_REDIRECT -p tcp -m multiport --dports 25,4191 -m comment --comment \"sparrow-init/inbound: ignored ports 25,4191\" -j RETURN",
        "-A SPARROW_INIT_REDIRECT -p tcp -m comment --comment \"sparrow-init/inbound: all other TCP to the proxy\" -j REDIRECT --to-ports 4143",
    ];
    for rule in expected {
        assert!(
            ours.iter().any(|l| *l == rule),
            "{backend}: missing {rule}\nin {ours:#?}"
        );
    }
    assert_eq!(ours.len(), expected.len(), "{backend}: {ours:#?}");

    assert_ok(&ns.init(&with_mode(
        backend,
        &["--subnets-to-ignore", "10.96.0.0/12"],
    )));
    assert_eq!(
        ns.nat_rules(backend),
        once,
        "{backend}: a second run changed the rules"
    );

    // A run with other flags replaces the rules instead of adding to them.
    assert_ok(&ns.init(&with_mode(backend, &[])));
    let third = ns.nat_rules(backend);
    assert!(
        !third.iter().any(|l| l.contains("10.96.0.0/12")),
        "{third:#?}"
    );
    assert_eq!(
        third
            .iter()
            .filter(|l| l.contains("-j SPARROW_INIT_OUTPUT"))
            .count(),
        1
    );
    assert_eq!(
        third
            .iter()
            .filter(|l| l.contains("-j SPARROW_INIT_REDIRECT"))
            .count(),
        1
    );
}

#[test]
fn nft_installs_once_even_when_run_twice() {
    installs_once_even_when_run_twice("nft");
}

#[test]
fn legacy_installs_once_even_when_run_twice() {
    installs_once_even_when_run_twice("legacy");
}

#[test]
fn auto_follows_the_kubelet_hint_and_defaults_to_nft() {
    let ns = Netns::new();
    assert_ok(&ns.init(&with_mode("auto", &[])));
    assert!(
        ns.nat_rules("nft")
            .iter()
            .any(|l| l.contains("SPARROW_INIT_OUTPUT"))
    );

    let hinted = Netns::new();
    let hint = hinted.exec(
        "xtables-legacy-multi",
        &["iptables", "-w", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"],
    );
    assert!(
        hint.status.success(),
        "{}",
        String::from_utf8_lossy(&hint.stderr)
    );
    assert_ok(&hinted.init(&with_mode("auto", &[])));
    assert!(
        hinted
            .nat_rules("legacy")
            .iter()
            .any(|l| l.contains("SPARROW_INIT_OUTPUT"))
    );
    assert!(
        !hinted
            .nat_rules("nft")
            .iter()
            .any(|l| l.contains("SPARROW_INIT"))
    );
}

#[test]
fn simulate_prints_the_document_and_touches_nothing() {
    let ns = Netns::new();
    let output = ns.init(&with_mode("nft", &["--simulate"]));
    assert_ok(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("# iptables-restore --noflush (backend: nft)\n*nat\n"),
        "{stdout}"
    );
    assert!(stdout.contains("-j REDIRECT --to-ports 4140"), "{stdout}");
    assert!(stdout.ends_with("COMMIT\n"), "{stdout}");
    assert!(
        !ns.nat_rules("nft")
            .iter()
            .any(|l| l.contains("SPARROW_INIT"))
    );
}

#[test]
fn without_privilege_the_error_says_what_is_needed() {
    let ns = Netns::new();
    for mode in ["nft", "legacy", "auto"] {
        let mut argv = vec![
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            BIN,
        ];
        argv.extend(with_mode(mode, &[]));
        let output = ns.exec("setpriv", &argv);
        assert_eq!(output.status.code(), Some(1), "{mode}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("sparrow-init: error: "),
            "{mode}: {stderr}"
        );
        assert!(
            last.contains("permission denied: sparrow-init must run as root with CAP_NET_ADMIN"),
            "{mode}: {stderr}"
        );
    }
}

#[test]
fn without_iptables_the_error_names_the_binary() {
    let ns = Netns::new();
    let mut argv = vec!["PATH=/nonexistent", BIN];
    argv.extend(with_mode("legacy", &[]));
    let output = ns.exec("env", &argv);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "cannot run xtables-legacy-multi: it is not installed (Debian: apt-get install iptables"
        ),
        "{stderr}"
    );
}

#[test]
fn bad_flags_are_usage_errors() {
    let output = run(BIN, &["--inbound-ports-to-ignore", "80,http", "--simulate"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--inbound-ports-to-ignore"), "{stderr}");
    assert!(
        stderr.contains("\"80,http\" is not a comma-separated list of ports"),
        "{stderr}"
    );
}
