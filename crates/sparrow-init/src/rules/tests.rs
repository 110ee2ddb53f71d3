use sparrow_inject::{PortRange, RedirectFlags};

use super::*;

fn ports(list: &str) -> Vec<PortRange> {
    PortRange::parse_list(list).unwrap_or_else(|| panic!("bad list {list:?}"))
}

fn redirect(inbound: &str, outbound: &str, subnets: &[&str]) -> Redirect {
    Redirect {
        flags: RedirectFlags::for_pod(&ports(inbound), &ports(outbound)),
        subnets_to_ignore: subnets
            .iter()
            .map(|s| s.parse().unwrap_or_else(|e| panic!("{e}")))
            .collect(),
    }
}

#[test]
fn default_pod_document() {
    let doc = restore_document(&redirect("", "", &[]), Existing::default());
    assert_eq!(
        doc,
        r#"*nat
:SPARROW_INIT_REDIRECT - [0:0]
:SPARROW_INIT_OUTPUT - [0:0]
-A SPARROW_INIT_REDIRECT -p tcp -m multiport --dports 4143,4140 -m comment --comment "sparrow-init/inbound: ports of the proxy" -j RETURN
-A SPARROW_INIT_REDIRECT -p tcp -m multiport --dports 4191 -m comment --comment "sparrow-init/inbound: ignored ports 4191" -j RETURN
-A SPARROW_INIT_REDIRECT -p tcp -m comment --comment "sparrow-init/inbound: all other TCP to the proxy" -j REDIRECT --to-ports 4143
-A SPARROW_INIT_OUTPUT -m owner --uid-owner 2102 -m comment --comment "sparrow-init/outbound: connections of the proxy (by uid)" -j RETURN
-A SPARROW_INIT_OUTPUT -o lo -m comment --comment "sparrow-init/outbound: loopback" -j RETURN
-A SPARROW_INIT_OUTPUT -p tcp -m comment --comment "sparrow-init/outbound: all other TCP to the proxy" -j REDIRECT --to-ports 4140
-A PREROUTING -m comment --comment "sparrow-init/install inbound" -j SPARROW_INIT_REDIRECT
-A OUTPUT -m comment --comment "sparrow-init/install outbound" -j SPARROW_INIT_OUTPUT
COMMIT
"#
    );
}

#[test]
fn skip_lists_and_subnets() {
    let doc = restore_document(
        &redirect(
            "25,8000-8100",
            "3306,5432",
            &["10.96.0.0/12", "169.254.169.254"],
        ),
        Existing::default(),
    );
    let lines: Vec<&str> = doc.lines().collect();
    assert!(lines.contains(&r#"-A SPARROW_INIT_REDIRECT -p tcp -m multiport --dports 25,4191,8000:8100 -m comment --comment "sparrow-init/inbound: ignored ports 25,4191,8000:8100" -j RETURN"#), "{doc}");
    assert!(lines.contains(&r#"-A SPARROW_INIT_OUTPUT -p tcp -m multiport --dports 3306,5432 -m comment --comment "sparrow-init/outbound: ignored ports 3306,5432" -j RETURN"#), "{doc}");
    assert!(lines.contains(&r#"-A SPARROW_INIT_OUTPUT -d 10.96.0.0/12 -m comment --comment "sparrow-init/outbound: ignored subnet 10.96.0.0/12" -j RETURN"#), "{doc}");
    assert!(lines.contains(&r#"-A SPARROW_INIT_OUTPUT -d 169.254.169.254/32 -m comment --comment "sparrow-init/outbound: ignored subnet 169.254.169.254/32" -j RETURN"#), "{doc}");
    // The exemptions come before the redirect that would otherwise catch their traffic.
    let position = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} missing"))
    };
    assert!(position("ignored subnet 169.254") < position("outbound: all other TCP"));
    assert!(position("--uid-owner 2102") < position("outbound: all other TCP"));
    assert!(position("inbound: ignored ports") < position("inbound: all other TCP"));
}

#[test]
fn every_rule_is_commented() {
    let doc = restore_document(
        &redirect("1-10,20", "30-40", &["10.0.0.0/8"]),
        Existing::default(),
    );
    for line in doc.lines().filter(|l| l.starts_with("-A ")) {
        assert!(
            line.contains("-m comment --comment \"sparrow-init/"),
            "{line}"
        );
        // A quote inside a comment would come back escaped from iptables-save.
        assert_eq!(line.matches('"').count(), 2, "{line}");
        assert!(!line.contains('\''), "{line}");
    }
}

#[test]
fn multiport_lists_hold_at_most_15_ports() {
    // 20 single ports and 3 ranges: 26 ports as multiport counts them.
    let mut list: Vec<String> = (1..=20).map(|p| (p * 100).to_string()).collect();
    list.extend(["3000-3001".into(), "4000-4001".into(), "5000-5001".into()]);
    let doc = restore_document(&redirect(&list.join(","), "", &[]), Existing::default());
    let mut seen = Vec::new();
    for line in doc.lines().filter(|l| l.contains("inbound: ignored ports")) {
        let dports = line
            .split_whitespace()
            .skip_while(|w| *w != "--dports")
            .nth(1)
            .unwrap_or_else(|| panic!("no --dports in {line}"));
        let cost: usize = dports
            .split(',')
            .map(|p| if p.contains(':') { 2 } else { 1 })
            .sum();
        assert!(cost <= 15, "{cost} ports in {line}");
        seen.extend(dports.split(',').map(str::to_owned));
    }
    // Every port is still there, 4191 included, in order.
    assert_eq!(seen.len(), 24, "{seen:?}");
    assert!(seen.contains(&"4191".to_owned()));
    assert!(seen.contains(&"5000:5001".to_owned()));
}

#[test]
fn second_run_replaces_chains_without_new_jumps() {
    let first = restore_document(&redirect("", "", &[]), Existing::default());
    // What iptables-save prints after the first run.
    let save = "# Generated by iptables-save\n*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j SPARROW_INIT_REDIRECT\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:SPARROW_INIT_REDIRECT - [0:0]\n:SPARROW_INIT_OUTPUT - [0:0]\n-A PREROUTING -m comment --comment \"sparrow-init/install inbound\" -j SPARROW_INIT_REDIRECT\n-A OUTPUT -m comment --comment \"sparrow-init/install outbound\" -j SPARROW_INIT_OUTPUT\nCOMMIT\n";
    let existing = Existing::parse(save);
    assert_eq!(
        existing,
        Existing {
            inbound_jump: true,
            outbound_jump: true
        }
    );
    let second = restore_document(&redirect("", "", &[]), existing);
    let without_jumps: Vec<&str> = first
        .lines()
        .filter(|l| !l.starts_with("-A PREROUTING") && !l.starts_with("-A OUTPUT"))
        .collect();
    assert_eq!(second.lines().collect::<Vec<_>>(), without_jumps);
}

#[test]
fn existing_jumps_are_read_from_the_nat_table_only() {
    let cases = [
        ("", Existing::default()),
        (
            "*nat\n-A OUTPUT -j SPARROW_INIT_OUTPUT\nCOMMIT\n",
            Existing {
                inbound_jump: false,
                outbound_jump: true,
            },
        ),
        (
            "*nat\n-A PREROUTING -p tcp -j SPARROW_INIT_REDIRECT\nCOMMIT\n",
            Existing {
                inbound_jump: true,
                outbound_jump: false,
            },
        ),
        (
            "*filter\n-A OUTPUT -j SPARROW_INIT_OUTPUT\nCOMMIT\n",
            Existing::default(),
        ),
        // A chain of another name that merely starts like ours is not ours.
        (
            "*nat\n-A OUTPUT -j SPARROW_INIT_OUTPUT_X\nCOMMIT\n",
            Existing::default(),
        ),
        (
            "*nat\n-A SPARROW_INIT_OUTPUT -j RETURN\nCOMMIT\n",
            Existing::default(),
        ),
    ];
    for (save, want) in cases {
        assert_eq!(Existing::parse(save), want, "{save:?}");
    }
}
