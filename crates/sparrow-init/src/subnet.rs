//! IPv4 subnets in CIDR notation (`10.96.0.0/12`), for the outbound destinations left alone.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network: an address and a prefix length, the host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ipv4Subnet {
    /// The network address.
    pub addr: Ipv4Addr,
    /// The prefix length, 0-32.
    pub prefix: u8,
}

impl fmt::Display for Ipv4Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Subnet {
    type Err = String;

    /// `A.B.C.D/N` (a bare address is a /32); host bits are cleared (`10.1.2.3/8` is
    /// `10.0.0.0/8`, as iptables itself would store it).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("{s:?} is not an IPv4 subnet like 10.96.0.0/12");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => (addr, prefix),
            None => (s.trim(), "32"),
        };
        let addr: Ipv4Addr = addr.parse().map_err(|_| invalid())?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
        if prefix > 32 {
            return Err(invalid());
        }
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        Ok(Self {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        for (input, want) in [
            ("10.96.0.0/12", "10.96.0.0/12"),
            ("10.1.2.3/8", "10.0.0.0/8"),
            ("192.168.1.7", "192.168.1.7/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            (" 172.16.0.0/12 ", "172.16.0.0/12"),
        ] {
            let subnet: Ipv4Subnet = input.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(subnet.to_string(), want, "{input:?}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_subnet() {
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0/8",
            "fd00::/8",
            "10.0.0.0/+8",
            "x",
        ] {
            let err = bad.parse::<Ipv4Subnet>().expect_err(bad);
            assert!(err.contains("is not an IPv4 subnet"), "{err}");
        }
    }
}
