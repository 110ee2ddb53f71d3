//! Which iptables the node uses: nft or legacy, decided as kubernetes-sigs/iptables-wrappers
//! does. Both work in any network namespace, but one pod must never mix them (the kernel
//! would evaluate both rule sets), so the choice follows the node's own rules.

use std::fmt;

/// An iptables backend, each shipped as a multi-call binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// iptables over nf_tables (`xtables-nft-multi`).
    Nft,
    /// The legacy x_tables interface (`xtables-legacy-multi`).
    Legacy,
}

/// Chains the kubelet creates in the mangle table of the backend it uses.
pub const KUBELET_HINTS: [&str; 2] = ["KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"];

impl Backend {
    /// The multi-call binary; its first argument names the applet (`iptables-save`, ...).
    pub fn program(self) -> &'static str {
        match self {
            Self::Nft => "xtables-nft-multi",
            Self::Legacy => "xtables-legacy-multi",
        }
    }

    /// The choice of iptables-wrappers: a kubelet hint in the nft mangle table means nft,
    /// else one in the legacy mangle table means legacy, else nft. The arguments are the
    /// output of `iptables-save -t mangle` of each backend, `None` where it could not be read.
    pub fn choose(nft_mangle: Option<&str>, legacy_mangle: Option<&str>) -> Self {
        let hinted = |save: Option<&str>| {
            save.is_some_and(|s| KUBELET_HINTS.iter().any(|hint| s.contains(hint)))
        };
        if hinted(nft_mangle) {
            Self::Nft
        } else if hinted(legacy_mangle) {
            Self::Legacy
        } else {
            Self::Nft
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Nft => "nft",
            Self::Legacy => "legacy",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HINT: &str = "*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n";
    const CANARY: &str = "*mangle\n:KUBE-KUBELET-CANARY - [0:0]\nCOMMIT\n";
    const EMPTY: &str = "*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n";

    #[test]
    fn follows_the_kubelet_hints_nft_first() {
        let cases = [
            (Some(HINT), Some(HINT), Backend::Nft),
            (Some(HINT), Some(EMPTY), Backend::Nft),
            (Some(CANARY), None, Backend::Nft),
            (Some(EMPTY), Some(HINT), Backend::Legacy),
            (Some(EMPTY), Some(CANARY), Backend::Legacy),
            (None, Some(CANARY), Backend::Legacy),
            (Some(EMPTY), Some(EMPTY), Backend::Nft),
            (None, None, Backend::Nft),
        ];
        for (nft, legacy, want) in cases {
            assert_eq!(
                Backend::choose(nft, legacy),
                want,
                "nft {nft:?} legacy {legacy:?}"
            );
        }
    }
}
