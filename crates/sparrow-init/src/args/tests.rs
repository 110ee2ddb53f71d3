use clap::Parser as _;
use sparrow_inject::{InjectConfig, PortRange, RedirectFlags, init_container};

use super::*;

fn ports(list: &str) -> Vec<PortRange> {
    PortRange::parse_list(list).unwrap_or_else(|| panic!("bad list {list:?}"))
}

fn parse(args: &[String]) -> Args {
    let argv = std::iter::once("sparrow-init".to_owned()).chain(args.iter().cloned());
    Args::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?} refused: {e}"))
}

#[test]
fn accepts_exactly_what_the_injector_renders() {
    let cases = [
        ("", ""),
        ("25", ""),
        ("", "3306,5432"),
        ("8000-8100,4191", "1-1024"),
    ];
    for (inbound, outbound) in cases {
        let (inbound, outbound) = (ports(inbound), ports(outbound));
        let container = init_container(&InjectConfig::default(), &inbound, &outbound);
        let args = container.args.unwrap_or_default();
        let parsed = parse(&args).redirect();
        assert_eq!(
            parsed.flags,
            RedirectFlags::for_pod(&inbound, &outbound),
            "{args:?}"
        );
        assert!(parsed.subnets_to_ignore.is_empty());
    }
}

#[test]
fn flags_round_trip() {
    let flags = RedirectFlags {
        incoming_proxy_port: 5143,
        outgoing_proxy_port: 5140,
        proxy_uid: 1234,
        inbound_ports_to_ignore: ports("22,4191"),
        outbound_ports_to_ignore: ports("443,9000-9100"),
    };
    assert_eq!(parse(&flags.to_args()).redirect().flags, flags);
}

#[test]
fn defaults_are_the_mesh_ports() {
    let args = parse(&[]);
    let flags = args.redirect().flags;
    assert_eq!(
        (
            flags.incoming_proxy_port,
            flags.outgoing_proxy_port,
            flags.proxy_uid
        ),
        (4143, 4140, 2102)
    );
    assert_eq!(args.iptables_mode, IptablesMode::Auto);
    assert!(!args.simulate);
}

#[test]
fn bad_values_are_usage_errors_naming_the_flag() {
    let cases = [
        (
            vec!["--inbound-ports-to-ignore", "80,http"],
            "--inbound-ports-to-ignore",
        ),
        (
            vec!["--outbound-ports-to-ignore", "0"],
            "--outbound-ports-to-ignore",
        ),
        (
            vec!["--incoming-proxy-port", "70000"],
            "--incoming-proxy-port",
        ),
        (
            vec!["--subnets-to-ignore", "10.0.0.0/40"],
            "--subnets-to-ignore",
        ),
        (vec!["--iptables-mode", "ebpf"], "--iptables-mode"),
    ];
    for (argv, flag) in cases {
        let err = Args::try_parse_from(std::iter::once("sparrow-init").chain(argv.iter().copied()))
            .expect_err(&format!("{argv:?} accepted"));
        assert_eq!(err.exit_code(), 2, "{argv:?}");
        let text = err.to_string();
        assert!(text.contains(flag), "{text}");
    }
}

#[test]
fn subnets_are_sorted_and_deduplicated() {
    let args = parse(&[
        "--subnets-to-ignore".into(),
        "10.96.0.0/12,10.0.0.0/8,10.96.0.0/12".into(),
    ]);
    let subnets: Vec<String> = args
        .redirect()
        .subnets_to_ignore
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(subnets, ["10.0.0.0/8", "10.96.0.0/12"]);
}
