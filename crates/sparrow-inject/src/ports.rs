//! Ports the iptables redirect leaves alone, from pod annotations.

use std::collections::BTreeMap;
use std::fmt;

use crate::InjectError;

/// Pod annotation: inbound ports (or ranges) not redirected to the proxy, e.g. `25,8000-8100`.
pub const SKIP_INBOUND_PORTS_ANNOTATION: &str = "config.sparrow-mesh.io/skip-inbound-ports";
/// Pod annotation: outbound ports (or ranges) not redirected to the proxy, e.g. `3306,5432`.
pub const SKIP_OUTBOUND_PORTS_ANNOTATION: &str = "config.sparrow-mesh.io/skip-outbound-ports";

/// A port or an inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port (equal to `first` for a single port).
    pub last: u16,
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

fn parse_port(s: &str) -> Option<u16> {
    // u16 parsing alone would accept "+80"; ports are plain digits.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p != 0)
}

/// Parses `80,443, 8000-8100` (blanks around items tolerated, empty value = no ports) into
/// sorted, de-duplicated ranges. Anything else is an error naming the annotation.
pub fn parse_port_ranges(
    annotation: &'static str,
    value: &str,
) -> Result<Vec<PortRange>, InjectError> {
    PortRange::parse_list(value).ok_or_else(|| InjectError::InvalidPorts {
        annotation,
        value: value.to_owned(),
    })
}

impl PortRange {
    /// Parses `80,443, 8000-8100` (blanks around items tolerated, empty value = no ports)
    /// into sorted, de-duplicated ranges; `None` when an item is not a port (1-65535) or a
    /// range `first-last` with `first <= last`.
    pub fn parse_list(value: &str) -> Option<Vec<PortRange>> {
        let mut ranges = Vec::new();
        if value.trim().is_empty() {
            return Some(ranges);
        }
        for item in value.split(',') {
            let item = item.trim();
            let range = match item.split_once('-') {
                Some((first, last)) => {
                    let first = parse_port(first.trim())?;
                    let last = parse_port(last.trim())?;
                    if first > last {
                        return None;
                    }
                    PortRange { first, last }
                }
                None => {
                    let port = parse_port(item)?;
                    PortRange {
                        first: port,
                        last: port,
                    }
                }
            };
            ranges.push(range);
        }
        ranges.sort();
        ranges.dedup();
        Some(ranges)
    }
}

/// The ranges in one of the skip annotations of a pod (none when the annotation is absent).
pub(crate) fn annotated_ranges(
    annotations: Option<&BTreeMap<String, String>>,
    annotation: &'static str,
) -> Result<Vec<PortRange>, InjectError> {
    match annotations.and_then(|a| a.get(annotation)) {
        Some(value) => parse_port_ranges(annotation, value),
        None => Ok(Vec::new()),
    }
}

/// `80,443,8000-8100`, as the init container's flags take them.
pub(crate) fn join_ranges(ranges: &[PortRange]) -> String {
    ranges
        .iter()
        .map(PortRange::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(value: &str) -> String {
        match parse_port_ranges(SKIP_INBOUND_PORTS_ANNOTATION, value) {
            Ok(r) => join_ranges(&r),
            Err(e) => panic!("{value:?} refused: {e}"),
        }
    }

    #[test]
    fn accepts_ports_and_ranges_sorted_and_deduplicated() {
        let cases = [
            ("", ""),
            ("  ", ""),
            ("80", "80"),
            ("443, 80", "80,443"),
            ("8000-8100,25", "25,8000-8100"),
            ("1-65535", "1-65535"),
            ("80,80", "80"),
            ("9000 - 9001", "9000-9001"),
            ("7-7", "7"),
        ];
        for (input, want) in cases {
            assert_eq!(ok(input), want, "input {input:?}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_port() {
        for bad in [
            "0", "65536", "http", "80,", ",80", "-1", "+80", "90-80", "1-2-3", "80;443", "8 0",
            "1--2",
        ] {
            let err = parse_port_ranges(SKIP_OUTBOUND_PORTS_ANNOTATION, bad)
                .expect_err(&format!("{bad:?} accepted"));
            let msg = err.to_string();
            assert!(msg.contains(SKIP_OUTBOUND_PORTS_ANNOTATION), "{msg}");
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
        }
    }
}
