//! The `iptables-restore` document of the redirect. Pure: built from the flags and from what
//! `iptables-save` says is already there, so it is tested line by line without root.

use std::fmt::Write as _;

use sparrow_inject::{PortRange, RedirectFlags};

use crate::subnet::Ipv4Subnet;

/// The inbound chain, jumped to from PREROUTING.
pub const INBOUND_CHAIN: &str = "SPARROW_INIT_REDIRECT";
/// The outbound chain, jumped to from OUTPUT.
pub const OUTBOUND_CHAIN: &str = "SPARROW_INIT_OUTPUT";
/// Every rule's comment starts with this, so `iptables-save | grep sparrow-init` shows ours.
pub const COMMENT_PREFIX: &str = "sparrow-init/";
/// multiport takes at most 15 ports a rule, a range counting as two.
const MULTIPORT_MAX: usize = 15;

/// Everything the redirect is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// Ports, uid and ignored ports, as the injector renders them.
    pub flags: RedirectFlags,
    /// Outbound destinations left alone.
    pub subnets_to_ignore: Vec<Ipv4Subnet>,
}

/// What a previous run left in the NAT table (from `iptables-save -t nat`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Existing {
    /// PREROUTING already jumps to the inbound chain.
    pub inbound_jump: bool,
    /// OUTPUT already jumps to the outbound chain.
    pub outbound_jump: bool,
}

impl Existing {
    /// Reads the output of `iptables-save -t nat` (or of a whole `iptables-save`: only the
    /// `*nat` table counts).
    pub fn parse(save: &str) -> Self {
        let mut existing = Self::default();
        let mut in_nat = false;
        for line in save.lines().map(str::trim) {
            if let Some(table) = line.strip_prefix('*') {
                in_nat = table == "nat";
                continue;
            }
            if !in_nat {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let jumps_to = |chain: &str| words.windows(2).any(|w| w == ["-j", chain]);
            match words.as_slice() {
                ["-A", "PREROUTING", ..] if jumps_to(INBOUND_CHAIN) => existing.inbound_jump = true,
                ["-A", "OUTPUT", ..] if jumps_to(OUTBOUND_CHAIN) => existing.outbound_jump = true,
                _ => {}
            }
        }
        existing
    }
}

/// One rule: `-A <chain> <matches> -m comment --comment "sparrow-init/<comment>" -j <target>`.
/// Comments hold no quotes (iptables-save would print them escaped).
fn rule(out: &mut String, chain: &str, matches: &str, comment: &str, target: &str) {
    let matches = if matches.is_empty() {
        String::new()
    } else {
        format!("{matches} ")
    };
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "-A {chain} {matches}-m comment --comment \"{COMMENT_PREFIX}{comment}\" -j {target}"
    );
}

/// Splits ranges into multiport lists of at most 15 ports (a range counts as two).
fn multiport_lists(ranges: &[PortRange]) -> Vec<String> {
    let mut lists = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut used = 0;
    for range in ranges {
        let (item, cost) = if range.first == range.last {
            (range.first.to_string(), 1)
        } else {
            (format!("{}:{}", range.first, range.last), 2)
        };
        if used + cost > MULTIPORT_MAX {
            lists.push(current.join(","));
            current.clear();
            used = 0;
        }
        current.push(item);
        used += cost;
    }
    if !current.is_empty() {
        lists.push(current.join(","));
    }
    lists
}

fn ignored_ports(out: &mut String, chain: &str, what: &str, ranges: &[PortRange]) {
    for list in multiport_lists(ranges) {
        let matches = format!("-p tcp -m multiport --dports {list}");
        rule(out, chain, &matches, &format!("{what} {list}"), "RETURN");
    }
}

fn inbound_chain(out: &mut String, flags: &RedirectFlags) {
    let own = multiport_lists(&[
        PortRange {
            first: flags.incoming_proxy_port,
            last: flags.incoming_proxy_port,
        },
        PortRange {
            first: flags.outgoing_proxy_port,
            last: flags.outgoing_proxy_port,
        },
    ]);
    for list in own {
        let matches = format!("-p tcp -m multiport --dports {list}");
        rule(
            out,
            INBOUND_CHAIN,
            &matches,
            "inbound: ports of the proxy",
            "RETURN",
        );
    }
    ignored_ports(
        out,
        INBOUND_CHAIN,
        "inbound: ignored ports",
        &flags.inbound_ports_to_ignore,
    );
    let to = format!("REDIRECT --to-ports {}", flags.incoming_proxy_port);
    rule(
        out,
        INBOUND_CHAIN,
        "-p tcp",
        "inbound: all other TCP to the proxy",
        &to,
    );
}

fn outbound_chain(out: &mut String, redirect: &Redirect) {
    let flags = &redirect.flags;
    let uid = format!("-m owner --uid-owner {}", flags.proxy_uid);
    rule(
        out,
        OUTBOUND_CHAIN,
        &uid,
        "outbound: connections of the proxy (by uid)",
        "RETURN",
    );
    rule(out, OUTBOUND_CHAIN, "-o lo", "outbound: loopback", "RETURN");
    ignored_ports(
        out,
        OUTBOUND_CHAIN,
        "outbound: ignored ports",
        &flags.outbound_ports_to_ignore,
    );
    for subnet in &redirect.subnets_to_ignore {
        let matches = format!("-d {subnet}");
        let comment = format!("outbound: ignored subnet {subnet}");
        rule(out, OUTBOUND_CHAIN, &matches, &comment, "RETURN");
    }
    let to = format!("REDIRECT --to-ports {}", flags.outgoing_proxy_port);
    rule(
        out,
        OUTBOUND_CHAIN,
        "-p tcp",
        "outbound: all other TCP to the proxy",
        &to,
    );
}

/// The document for `iptables-restore --noflush`: declaring the two chains creates them or
/// empties them when a previous run left them, and the jumps are added only where missing,
/// so running it twice leaves the same rules as running it once.
pub fn restore_document(redirect: &Redirect, existing: Existing) -> String {
    let mut out = String::from("*nat\n");
    for chain in [INBOUND_CHAIN, OUTBOUND_CHAIN] {
        let _ = writeln!(out, ":{chain} - [0:0]");
    }
    inbound_chain(&mut out, &redirect.flags);
    outbound_chain(&mut out, redirect);
    if !existing.inbound_jump {
        rule(&mut out, "PREROUTING", "", "install inbound", INBOUND_CHAIN);
    }
    if !existing.outbound_jump {
        rule(&mut out, "OUTPUT", "", "install outbound", OUTBOUND_CHAIN);
    }
    out.push_str("COMMIT\n");
    out
}

#[cfg(test)]
mod tests;
