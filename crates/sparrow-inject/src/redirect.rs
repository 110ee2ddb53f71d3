//! The flags of `sparrow-init`, defined once: the injector renders them from a
//! [`RedirectFlags`] and `sparrow-init` declares its command line with the same names and
//! parses the same port syntax, so the two cannot drift apart.

use crate::containers::{ADMIN_PORT, INBOUND_PORT, OUTBOUND_PORT, PROXY_UID};
use crate::ports::{PortRange, join_ranges};

/// `--incoming-proxy-port`: the proxy's inbound listener, where inbound TCP is redirected.
pub const INCOMING_PROXY_PORT_FLAG: &str = "incoming-proxy-port";
/// `--outgoing-proxy-port`: the proxy's outbound listener, where outbound TCP is redirected.
pub const OUTGOING_PROXY_PORT_FLAG: &str = "outgoing-proxy-port";
/// `--proxy-uid`: the proxy's user; its own connections are not redirected.
pub const PROXY_UID_FLAG: &str = "proxy-uid";
/// `--inbound-ports-to-ignore`: ports and ranges (`25,8000-8100`) inbound TCP reaches directly.
pub const INBOUND_PORTS_TO_IGNORE_FLAG: &str = "inbound-ports-to-ignore";
/// `--outbound-ports-to-ignore`: destination ports and ranges outbound TCP reaches directly.
pub const OUTBOUND_PORTS_TO_IGNORE_FLAG: &str = "outbound-ports-to-ignore";

/// What the redirect of one pod is made of: the values behind `sparrow-init`'s flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectFlags {
    /// The proxy's inbound port.
    pub incoming_proxy_port: u16,
    /// The proxy's outbound port.
    pub outgoing_proxy_port: u16,
    /// The proxy's uid.
    pub proxy_uid: u32,
    /// Inbound ports left alone (the admin port among them, for the kubelet's probes).
    pub inbound_ports_to_ignore: Vec<PortRange>,
    /// Outbound destination ports left alone.
    pub outbound_ports_to_ignore: Vec<PortRange>,
}

impl RedirectFlags {
    /// The redirect of an injected pod: the mesh's ports and uid, the admin port and
    /// `skip_inbound` left alone inbound, `skip_outbound` outbound (both from the pod's
    /// annotations), sorted and de-duplicated.
    pub fn for_pod(skip_inbound: &[PortRange], skip_outbound: &[PortRange]) -> Self {
        let mut inbound = vec![PortRange {
            first: ADMIN_PORT,
            last: ADMIN_PORT,
        }];
        inbound.extend_from_slice(skip_inbound);
        inbound.sort();
        inbound.dedup();
        let mut outbound = skip_outbound.to_vec();
        outbound.sort();
        outbound.dedup();
        Self {
            incoming_proxy_port: INBOUND_PORT,
            outgoing_proxy_port: OUTBOUND_PORT,
            // PROXY_UID is a positive constant; the conversion cannot fail.
            proxy_uid: u32::try_from(PROXY_UID).unwrap_or(2102),
            inbound_ports_to_ignore: inbound,
            outbound_ports_to_ignore: outbound,
        }
    }

    /// The command line of `sparrow-init` (empty ignore lists are left out).
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            format!("--{INCOMING_PROXY_PORT_FLAG}"),
            self.incoming_proxy_port.to_string(),
            format!("--{OUTGOING_PROXY_PORT_FLAG}"),
            self.outgoing_proxy_port.to_string(),
            format!("--{PROXY_UID_FLAG}"),
            self.proxy_uid.to_string(),
        ];
        for (flag, ranges) in [
            (INBOUND_PORTS_TO_IGNORE_FLAG, &self.inbound_ports_to_ignore),
            (
                OUTBOUND_PORTS_TO_IGNORE_FLAG,
                &self.outbound_ports_to_ignore,
            ),
        ] {
            if !ranges.is_empty() {
                args.push(format!("--{flag}"));
                args.push(join_ranges(ranges));
            }
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(first: u16, last: u16) -> PortRange {
        PortRange { first, last }
    }

    #[test]
    fn default_pod_ignores_only_the_admin_port() {
        assert_eq!(
            RedirectFlags::for_pod(&[], &[]).to_args(),
            [
                "--incoming-proxy-port",
                "4143",
                "--outgoing-proxy-port",
                "4140",
                "--proxy-uid",
                "2102",
                "--inbound-ports-to-ignore",
                "4191",
            ]
        );
    }

    #[test]
    fn skip_lists_are_merged_sorted_and_rendered() {
        let flags = RedirectFlags::for_pod(
            &[range(8000, 8100), range(4191, 4191), range(25, 25)],
            &[range(5432, 5432), range(3306, 3306), range(3306, 3306)],
        );
        let args = flags.to_args();
        assert_eq!(
            args[6..],
            [
                "--inbound-ports-to-ignore",
                "25,4191,8000-8100",
                "--outbound-ports-to-ignore",
                "3306,5432"
            ]
        );
    }
}
