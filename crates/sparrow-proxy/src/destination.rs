//! Where a redirected connection goes, and when the proxy refuses it. Pure.

use std::fmt;
use std::net::SocketAddr;

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// From outside the pod to the application.
    Inbound,
    /// From the application to outside the pod.
    Outbound,
}

impl Direction {
    /// The metrics label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a connection is closed without being forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Refusal {
    /// The connection was not redirected (it was made to the listener itself), so there is
    /// no original destination to forward to.
    NotRedirected,
    /// The original destination is one of the proxy's own listeners: forwarding would loop.
    Loop,
}

impl Refusal {
    /// The metrics label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotRedirected => "not_redirected",
            Self::Loop => "loop",
        }
    }
}

/// The ports of the proxy's traffic listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnPorts {
    /// The inbound listener's port.
    pub inbound: u16,
    /// The outbound listener's port.
    pub outbound: u16,
}

/// The address to connect to for a connection accepted at `local` whose original
/// destination is `original` (`None` when the kernel has none: not redirected). A
/// destination on one of our listener ports at a local address (loopback, the address the
/// connection arrived on, or unspecified) is ourselves.
pub fn destination(
    original: Option<SocketAddr>,
    local: SocketAddr,
    own: OwnPorts,
) -> Result<SocketAddr, Refusal> {
    let target = original.ok_or(Refusal::NotRedirected)?;
    let own_port = target.port() == own.inbound || target.port() == own.outbound;
    let ip = target.ip();
    let local_ip = ip.is_loopback() || ip.is_unspecified() || ip == local.ip();
    if own_port && local_ip {
        return Err(Refusal::Loop);
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: OwnPorts = OwnPorts {
        inbound: 4143,
        outbound: 4140,
    };

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn forwards_redirected_connections_and_refuses_loops() {
        let pod_inbound = addr("10.1.0.5:4143");
        let outbound = addr("127.0.0.1:4140");
        let cases = [
            // Inbound: the application on the pod IP.
            (Some("10.1.0.5:8080"), pod_inbound, Ok("10.1.0.5:8080")),
            // Outbound: a peer, also on the proxy's port numbers (another pod's proxy).
            (Some("10.1.0.9:80"), outbound, Ok("10.1.0.9:80")),
            (Some("10.1.0.9:4143"), outbound, Ok("10.1.0.9:4143")),
            (Some("10.1.0.9:4140"), pod_inbound, Ok("10.1.0.9:4140")),
            // Ourselves.
            (Some("10.1.0.5:4143"), pod_inbound, Err(Refusal::Loop)),
            (Some("10.1.0.5:4140"), pod_inbound, Err(Refusal::Loop)),
            (Some("127.0.0.1:4140"), outbound, Err(Refusal::Loop)),
            (Some("127.0.0.1:4143"), outbound, Err(Refusal::Loop)),
            (Some("0.0.0.0:4143"), outbound, Err(Refusal::Loop)),
            (Some("[::1]:4140"), outbound, Err(Refusal::Loop)),
            // Another port on loopback is the application, not us.
            (Some("127.0.0.1:8080"), outbound, Ok("127.0.0.1:8080")),
            (None, pod_inbound, Err(Refusal::NotRedirected)),
        ];
        for (original, local, want) in cases {
            let got = destination(original.map(addr), local, OWN);
            assert_eq!(got, want.map(addr), "{original:?} at {local}");
        }
    }
}
