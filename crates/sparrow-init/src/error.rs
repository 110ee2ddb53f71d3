//! What can go wrong while installing the redirect.

/// A failure to read or write the NAT table; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The iptables binary of the chosen backend is not installed.
    #[error(
        "cannot run {program}: it is not installed (Debian: apt-get install iptables; the sparrow-init image ships it)"
    )]
    MissingBinary {
        /// The binary looked for on PATH.
        program: &'static str,
        /// The error of the exec.
        #[source]
        source: std::io::Error,
    },
    /// The binary exists but could not be started or talked to.
    #[error("cannot run {program} {applet}: {source}")]
    Spawn {
        /// The binary.
        program: &'static str,
        /// The applet (`iptables-save`, `iptables-restore`).
        applet: &'static str,
        /// The error of the exec or of the pipe.
        #[source]
        source: std::io::Error,
    },
    /// iptables refused for lack of privilege.
    #[error(
        "{program} {applet}: permission denied: sparrow-init must run as root with CAP_NET_ADMIN and CAP_NET_RAW in the pod's network namespace (the injected init container has them)"
    )]
    PermissionDenied {
        /// The binary.
        program: &'static str,
        /// The applet.
        applet: &'static str,
    },
    /// iptables ran and failed.
    #[error("{program} {applet} failed ({status}): {stderr}")]
    Failed {
        /// The binary.
        program: &'static str,
        /// The applet.
        applet: &'static str,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed on stderr, on one line.
        stderr: String,
    },
}
